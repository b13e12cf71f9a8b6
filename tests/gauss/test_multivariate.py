"""Multi-argument Gaussian expectations (gauss/multivariate.py) against exact values.

Exact references: Isserlis/Wick moments (E[Z1^2 Z2^2] = K11 K22 + 2 K12^2,
E[Z1 Z2 Z3 Z4] = K12 K34 + K13 K24 + K14 K23), the arc-cosine kernel of relu, the arcsin kernel of
erf, E[cos(a.Z)] = exp(-a^T K a / 2), and orthant probabilities of block-diagonal covariances
(products of lower-dimensional closed forms). Randomized QMC must agree within 5 of its own standard
errors (and those must be honest and small); Gauss-Hermite to 1e-10 on smooth integrands.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np
import pytest
from scipy import special

from netfield import gauss


def random_cov(rng, dim, batch=()):
    b = rng.normal(size=batch + (dim, dim))
    return b @ np.swapaxes(b, -1, -2) / dim + 0.05 * np.eye(dim)


def relu_pair(k11, k22, k12):
    c = np.clip(k12 / np.sqrt(k11 * k22), -1, 1)
    theta = np.arccos(c)
    return np.sqrt(k11 * k22) / (2 * np.pi) * (np.sin(theta) + (np.pi - theta) * c)


def erf_pair(k11, k22, k12):
    return 2 / np.pi * np.arcsin(2 * k12 / np.sqrt((1 + 2 * k11) * (1 + 2 * k22)))


def sig(u):
    return 0.5 * (1 + special.erf(u))


def gate_fn(signs):
    signs = np.asarray(signs, dtype=float)
    return lambda z: np.prod(sig(z * signs), axis=-1)


# ------------------------------------------------------------------------------------------ psd_sqrt


def test_psd_sqrt_reconstructs_and_orders_columns():
    rng = np.random.default_rng(0)
    k = random_cov(rng, 6)
    a = gauss.psd_sqrt(k)
    np.testing.assert_allclose(a @ a.T, k, atol=1e-13)
    norms = np.linalg.norm(a, axis=0)  # column norms = sqrt(eigenvalues), decreasing (PCA order)
    assert np.all(np.diff(norms) <= 1e-12)
    np.testing.assert_allclose(norms**2, np.sort(np.linalg.eigvalsh(k))[::-1], atol=1e-13)


def test_psd_sqrt_singular_and_rank_one():
    v = np.array([1.0, -2.0, 0.5, 3.0])
    a = gauss.psd_sqrt(np.outer(v, v))
    np.testing.assert_allclose(a @ a.T, np.outer(v, v), atol=1e-13)
    np.testing.assert_allclose(np.abs(a[:, 0]), np.abs(v), atol=1e-13)  # all variance in column 0
    assert np.abs(a[:, 1:]).max() < 1e-7
    singular = np.array([[1.0, 1.0, 0.0], [1.0, 1.0, 0.0], [0.0, 0.0, 2.0]])
    a = gauss.psd_sqrt(singular)
    np.testing.assert_allclose(a @ a.T, singular, atol=1e-13)
    assert np.all(np.isfinite(a))
    np.testing.assert_array_equal(gauss.psd_sqrt(np.zeros((3, 3))), np.zeros((3, 3)))
    # rounding-level negative eigenvalues are clipped, not rejected
    q, _ = np.linalg.qr(np.random.default_rng(1).normal(size=(3, 3)))
    k = q @ np.diag([2.0, 1.0, -1e-13]) @ q.T
    k = 0.5 * (k + k.T)
    a = gauss.psd_sqrt(k)
    np.testing.assert_allclose(a @ a.T, k, atol=1e-12)


def test_psd_sqrt_batched():
    rng = np.random.default_rng(2)
    k = random_cov(rng, 3, (4, 2))
    a = gauss.psd_sqrt(k)
    assert a.shape == (4, 2, 3, 3)
    np.testing.assert_allclose(a @ np.swapaxes(a, -1, -2), k, atol=1e-13)


@pytest.mark.parametrize(
    "cov, match",
    [
        (np.array([[1.0, 0.0], [0.0, -1e-3]]), r"my_cov must be positive semi-definite.*-0\.001"),
        (np.array([[1.0, 0.5], [0.4, 1.0]]), "my_cov must be symmetric"),
        (np.ones((2, 3)), "my_cov must be a square matrix"),
        (np.ones(3), "my_cov must be a square matrix"),
        (np.array([[1.0, np.nan], [np.nan, 1.0]]), "my_cov must contain only finite numbers"),
    ],
)
def test_psd_sqrt_errors(cov, match):
    with pytest.raises(ValueError, match=match):
        gauss.psd_sqrt(cov, name="my_cov")


# -------------------------------------------------------------------------------------- sobol / qmc


def test_sobol_normals_shape_cache_and_moments():
    xi = gauss.sobol_normals(1024, 3, replicates=4, seed=5)
    assert xi.shape == (4, 1024, 3)
    assert not xi.flags.writeable
    assert gauss.sobol_normals(1024, 3, replicates=4, seed=5) is xi  # cached
    assert np.all(np.isfinite(xi))
    assert not np.allclose(xi[0], xi[1])  # independent scramblings
    assert not np.allclose(xi[0], gauss.sobol_normals(1024, 3, replicates=4, seed=6)[0])
    np.testing.assert_allclose(xi.mean(axis=1), 0.0, atol=5e-3)
    np.testing.assert_allclose(xi.var(axis=1), 1.0, atol=2e-2)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"points": 1000, "dim": 2}, "points must be a power of 2.*got 1000.*512 or 1024"),
        ({"points": 0, "dim": 2}, "points must be an integer >= 1"),
        ({"points": 8, "dim": 0}, "dim must be an integer >= 1"),
        ({"points": 8, "dim": 30000}, "dim must be <= 21201"),
        ({"points": 8, "dim": 2, "seed": -1}, "seed must be an integer >= 0"),
    ],
)
def test_sobol_normals_errors(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gauss.sobol_normals(**kwargs)


SMOOTH_20D = {
    # name: (fn on (S, 20), exact value given K)
    "mean_cos": (lambda z: np.cos(z).mean(axis=1), lambda k: np.mean(np.exp(-np.diag(k) / 2))),
    "exp_mean": (lambda z: np.exp(z.mean(axis=1)), lambda k: np.exp(k.mean() / 2)),
    "erf_erf": (
        lambda z: jsp.erf(z[:, 0]) * jsp.erf(z[:, 7]),  # a JAX function
        lambda k: erf_pair(k[0, 0], k[7, 7], k[0, 7]),
    ),
}


@pytest.mark.parametrize("name", sorted(SMOOTH_20D))
def test_qmc_smooth_20d_accurate_and_honest(name):
    fn, exact = SMOOTH_20D[name]
    k = random_cov(np.random.default_rng(3), 20)
    truth = exact(k)
    for seed in range(3):
        mean, stderr = gauss.qmc_expectation(fn, k, seed=seed)
        assert mean.shape == () and stderr.shape == ()
        assert stderr < 1e-3
        assert abs(mean - truth) < 5 * stderr, (seed, mean - truth, stderr)


def test_qmc_vector_valued_wick_and_relu():
    rng = np.random.default_rng(4)
    k = random_cov(rng, 4)

    def fn(z):
        relu = np.maximum(z, 0)
        return np.stack([z[:, 0] ** 2 * z[:, 1] ** 2, z[:, 0] * z[:, 1] * z[:, 2] * z[:, 3],
                         relu[:, 0] * relu[:, 2]], axis=-1)

    truth = np.array([k[0, 0] * k[1, 1] + 2 * k[0, 1] ** 2,
                      k[0, 1] * k[2, 3] + k[0, 2] * k[1, 3] + k[0, 3] * k[1, 2],
                      relu_pair(k[0, 0], k[2, 2], k[0, 2])])
    for seed in (0, 1):
        mean, stderr = gauss.qmc_expectation(fn, k, seed=seed)
        assert mean.shape == stderr.shape == (3,)
        z = (mean - truth) / stderr
        assert np.all(np.abs(z) < 5), z


def test_qmc_singular_covariance():
    v = np.array([1.0, 0.5, -1.0])
    mean, stderr = gauss.qmc_expectation(lambda z: z[:, 0] * z[:, 2], np.outer(v, v), points=2**10)
    assert abs(mean - v[0] * v[2]) < 5 * stderr + 1e-12


def test_qmc_errors():
    k = np.eye(2)
    with pytest.raises(ValueError, match="points must be a power of 2"):
        gauss.qmc_expectation(lambda z: z[:, 0], k, points=100)
    with pytest.raises(ValueError, match="replicates must be an integer >= 2"):
        gauss.qmc_expectation(lambda z: z[:, 0], k, replicates=1)
    with pytest.raises(ValueError, match="fn must map samples of shape"):
        gauss.qmc_expectation(lambda z: z.sum(), k, points=16)
    with pytest.raises(TypeError, match="fn must be a callable"):
        gauss.qmc_expectation(3.0, k)
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        gauss.qmc_expectation(lambda z: z[:, 0], -k)
    with pytest.raises(ValueError, match="cov must be one"):
        gauss.qmc_expectation(lambda z: z[..., 0], np.stack([k, k]))


# ------------------------------------------------------------------------------------- Gauss-Hermite


def test_lowdim_polynomials_exact_batched():
    rng = np.random.default_rng(5)
    k = random_cov(rng, 4, (3,))
    value, error = gauss.lowdim_expectation(
        lambda z: z[..., 0] * z[..., 1] * z[..., 2] * z[..., 3], k, orders=(4, 8))
    wick = k[:, 0, 1] * k[:, 2, 3] + k[:, 0, 2] * k[:, 1, 3] + k[:, 0, 3] * k[:, 1, 2]
    assert value.shape == error.shape == (3,)
    np.testing.assert_allclose(value, wick, atol=1e-12)
    k2 = random_cov(rng, 2, (2, 3))
    value, error = gauss.lowdim_expectation(lambda z: z[..., 0] ** 2 * z[..., 1] ** 2, k2)
    assert value.shape == (2, 3)
    np.testing.assert_allclose(value, k2[..., 0, 0] * k2[..., 1, 1] + 2 * k2[..., 0, 1] ** 2, atol=1e-12)
    assert np.all(error <= 1e-10)


@pytest.mark.parametrize("dim", [1, 2, 3, 4])
def test_lowdim_smooth_to_1e10(dim):
    rng = np.random.default_rng(10 + dim)
    k = random_cov(rng, dim, (2,))
    coef = rng.normal(size=dim)
    value, error = gauss.lowdim_expectation(lambda z: jnp.cos(z @ coef), k)  # JAX fn works too
    truth = np.exp(-np.einsum("i,...ij,j->...", coef, k, coef) / 2)
    np.testing.assert_allclose(value, truth, rtol=0, atol=1e-10)
    assert np.all(error <= 1e-10)


def test_lowdim_erf_pair_and_gates():
    rng = np.random.default_rng(6)
    k = random_cov(rng, 2, (5,))

    def erf_erf(z):
        return special.erf(z[..., 0]) * special.erf(z[..., 1])

    value, error = gauss.lowdim_expectation(erf_erf, 0.2 * k)  # variances <= 0.7: converges
    np.testing.assert_allclose(value, erf_pair(*(0.2 * k[:, i, j] for i, j in ((0, 0), (1, 1), (0, 1)))),
                               rtol=0, atol=1e-10)
    assert np.all(error <= 1e-10)
    # variances up to 3.3: erf saturates on a scale << sd, order 48 is not enough, and error says so
    value, error = gauss.lowdim_expectation(erf_erf, k)
    assert error.max() > 1e-6
    np.testing.assert_array_less(np.abs(value - erf_pair(k[:, 0, 0], k[:, 1, 1], k[:, 0, 1])), error)
    k3 = random_cov(rng, 3, (2,))
    value, _ = gauss.lowdim_expectation(gate_fn([1, -1, 1]), k3)
    closed, _ = gauss.erf_gate_product(k3, [1, -1, 1])
    np.testing.assert_allclose(value, closed, atol=1e-10)


def test_lowdim_kink_error_estimate_is_visible():
    k = np.array([[1.0, 0.6], [0.6, 2.0]])
    value, error = gauss.lowdim_expectation(lambda z: np.maximum(z, 0).prod(axis=-1), k)
    exact = relu_pair(1.0, 2.0, 0.6)
    assert error > 1e-6  # not converged to tol: the estimate says so
    assert abs(value - exact) < 10 * error


def test_lowdim_errors():
    with pytest.raises(ValueError, match="D <= 4.*D = 5.*use qmc_expectation"):
        gauss.lowdim_expectation(lambda z: z[..., 0], np.eye(5))
    with pytest.raises(ValueError, match="orders must hold at least two increasing"):
        gauss.lowdim_expectation(lambda z: z[..., 0], np.eye(2), orders=(8, 8))
    with pytest.raises(ValueError, match="tol must be a finite number > 0"):
        gauss.lowdim_expectation(lambda z: z[..., 0], np.eye(2), tol=0.0)
    with pytest.raises(ValueError, match="fn must map samples"):
        gauss.lowdim_expectation(lambda z: z, np.eye(2))
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        gauss.lowdim_expectation(lambda z: z[..., 0], np.stack([np.eye(2), -np.eye(2)]))


# ---------------------------------------------------------------------------------- gate products


def test_gate_product_pair_formula_and_signs():
    rng = np.random.default_rng(7)
    k = random_cov(rng, 2, (6,))
    ee = erf_pair(k[:, 0, 0], k[:, 1, 1], k[:, 0, 1])
    for signs, sign in (([1, 1], 1), ([-1, -1], 1), ([1, -1], -1), ([-1, 1], -1)):
        value, error = gauss.erf_gate_product(k, signs)
        np.testing.assert_allclose(value, 0.25 + sign * ee / 4, atol=1e-14)
        assert np.all(error <= 1e-14)
    value, _ = gauss.erf_gate_product(k[:, :1, :1], [1])
    np.testing.assert_array_equal(value, 0.5)
    # per-entry signs broadcast over the batch
    signs = np.array([[1, 1], [1, -1], [-1, 1], [-1, -1], [1, 1], [1, -1]])
    value, _ = gauss.erf_gate_product(k, signs)
    expected = 0.25 + signs[:, 0] * signs[:, 1] * ee / 4
    np.testing.assert_allclose(value, expected, atol=1e-14)


@pytest.mark.parametrize("dim", [1, 2, 3, 4, 5])
def test_gate_product_against_qmc(dim):
    rng = np.random.default_rng(20 + dim)
    k = random_cov(rng, dim)
    signs = rng.choice([-1.0, 1.0], size=dim)
    value, error = gauss.erf_gate_product(k, signs, abseps=1e-6)
    mean, stderr = gauss.qmc_expectation(gate_fn(signs), k, seed=dim)
    assert stderr < 1e-4
    assert abs(value - mean) < 5 * stderr + error, (value, mean, stderr, error)


def test_gate_product_genz_against_block_closed_forms():
    # W block-diagonal -> the orthant probability factorises into closed forms (exact reference)
    rng = np.random.default_rng(8)
    a, b = random_cov(rng, 2), random_cov(rng, 3)
    k5 = np.zeros((5, 5))
    k5[:2, :2], k5[2:, 2:] = a, b
    signs = np.array([1, -1, 1, 1, -1])
    exact = gauss.erf_gate_product(a, signs[:2])[0] * gauss.erf_gate_product(b, signs[2:])[0]
    value, error = gauss.erf_gate_product(k5, signs, abseps=1e-7)
    assert 1e-7 <= error < 1e-5
    assert abs(value - exact) < error
    c = random_cov(rng, 2)
    k4 = np.zeros((2, 4, 4))
    k4[:, :2, :2], k4[:, 2:, 2:] = a, c
    k4[1] = k4[1][[2, 0, 3, 1]][:, [2, 0, 3, 1]]  # permuted copy: same orthant probability
    signs4 = np.array([[1, 1, -1, 1], [-1, 1, 1, 1]])
    value, error = gauss.erf_gate_product(k4, signs4, abseps=1e-7)
    exact = gauss.erf_gate_product(a, [1, 1])[0] * gauss.erf_gate_product(c, [-1, 1])[0]
    assert value.shape == error.shape == (2,)
    np.testing.assert_array_less(np.abs(value - exact), error)


def test_gate_product_errors():
    k = np.eye(3)
    with pytest.raises(ValueError, match=r"signs must hold \+1 / -1 entries.*D = 3"):
        gauss.erf_gate_product(k, [1, 0, 1])
    with pytest.raises(ValueError, match="signs must hold"):
        gauss.erf_gate_product(k, [1, 1])
    with pytest.raises(ValueError, match="does not broadcast"):
        gauss.erf_gate_product(np.stack([k, k]), np.ones((3, 3)))
    with pytest.raises(ValueError, match="cov must be positive semi-definite"):
        gauss.erf_gate_product(-k, [1, 1, 1])
    with pytest.raises(ValueError, match="abseps must be a finite number > 0"):
        gauss.erf_gate_product(np.eye(4), [1, 1, 1, 1], abseps=0.0)
    assert math.isclose(gauss.erf_gate_product(np.zeros((3, 3)), [1, -1, 1])[0], 1 / 8)
