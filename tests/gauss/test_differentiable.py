"""The eigenvector factor of gauss/differentiable.py (D1): A A^T = cov, canonical column signs, and the
derivative of what is returned.

Why the signs matter: LAPACK may return +-v for the same covariance in two compiled programs (a kernel's
value and its forward-mode trace); a quasi-Monte-Carlo estimate mapped by the factor then moves by its
own error (an LSTM's evidence and its gradient disagreed by 1.8e-5 relative under JAX 0.10).
"""

import jax
import jax.numpy as jnp
import numpy as np

from netfield.gauss.differentiable import eig_factor

jax.config.update("jax_enable_x64", True)


def _covariances(seed=0, batch=5, d=6):
    a = np.random.default_rng(seed).normal(size=(batch, d, d))
    return a @ np.swapaxes(a, -1, -2) + 0.1 * np.eye(d)


def test_factor_reproduces_the_covariance_in_descending_order():
    cov = _covariances()
    A = np.asarray(eig_factor(jnp.asarray(cov), True))
    assert np.allclose(A @ np.swapaxes(A, -1, -2), cov, atol=1e-12)
    norms = np.linalg.norm(A, axis=-2)  # sqrt(lambda) per column
    assert np.all(np.diff(norms, axis=-1) <= 1e-12)


def test_columns_have_the_canonical_sign_whatever_sign_lapack_returns():
    cov = _covariances(seed=1)
    A = np.asarray(eig_factor(jnp.asarray(cov)))
    weights = np.sqrt(np.arange(cov.shape[-1]) + 2.0)
    assert np.all(np.einsum("i,...ij->...j", weights, A) > 0)
    # a covariance built from the factor with some columns negated has the same canonical factor
    flipped = A * np.where(np.arange(A.shape[-1]) % 2 == 0, -1.0, 1.0)
    again = np.asarray(eig_factor(jnp.asarray(flipped @ np.swapaxes(flipped, -1, -2))))
    assert np.allclose(again, A, atol=1e-10)


def test_forward_mode_value_and_derivative_are_those_of_the_returned_factor():
    cov = jnp.asarray(_covariances(seed=2))
    direction = jnp.asarray(_covariances(seed=3))
    value, tangent = jax.jvp(lambda c: eig_factor(c, True), (cov,), (direction,))
    assert np.array_equal(np.asarray(value), np.asarray(eig_factor(cov, True)))
    h = 1e-6
    fd = (np.asarray(eig_factor(cov + h * direction, True)) - np.asarray(eig_factor(cov - h * direction, True))) / (2 * h)
    assert np.allclose(np.asarray(tangent), fd, atol=1e-6 * float(np.abs(fd).max()))
