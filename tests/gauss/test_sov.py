"""Separation-of-variables orthant estimates (gauss/sov.py, docs/theory.md eqs. M7, M8).

- Phi^{-1} (Acklam) against scipy to its stated 1.2e-9 relative error, tails included;
- first-exceedance sums (M8) against Sheppard's closed forms (D <= 3) and scipy's Genz integration
  (D = 6, abseps 1e-9), within 4 replicate standard errors, the errors falling with points;
- padding positions (kind 0) change nothing, nor does splitting the batch into chunks that skip
  their trailing positions; the estimate is differentiable (central differences);
- the point set is the scrambled Sobol' set behind sobol_normals (Phi^{-1} of the same uniforms).
"""

from __future__ import annotations

import numpy as np
import pytest
from scipy import special
from scipy.stats import multivariate_normal

from netfield.gauss.differentiable import orthant_closed
from netfield.gauss.multivariate import sobol_normals
from netfield.gauss.sov import phi_inverse, sobol_uniforms, sov_accumulate


def _orthant(w):
    w = np.asarray(w)
    if w.shape[0] <= 3:
        return float(orthant_closed(w, xp=np))
    mvn = multivariate_normal(mean=np.zeros(w.shape[0]), cov=w, abseps=1e-9, releps=1e-9, seed=0)
    return float(mvn.cdf(np.zeros(w.shape[0])))


def _exceedance(w, kinds, weights):
    """sum over record positions i of weight_i P(W_j <= 0 for active j < i, W_i > 0), by inclusion-exclusion."""
    total = 0.0
    active = []
    for i, k in enumerate(kinds):
        if k == 2:
            prev = np.asarray(active, int)
            both = np.append(prev, i)
            p_prev = _orthant(w[np.ix_(prev, prev)]) if prev.size else 1.0
            total += weights[i] * (p_prev - _orthant(w[np.ix_(both, both)]))
        if k > 0:
            active.append(i)
    return total


def _cov(rng, d):
    a = rng.normal(size=(d, d)) / np.sqrt(d)
    return a @ a.T + np.eye(d)


def test_phi_inverse_matches_scipy():
    p = np.concatenate([np.logspace(-300, -1, 4000), np.linspace(1e-4, 1 - 1e-4, 4000), 1 - np.logspace(-16, -1, 500)])
    exact = special.ndtri(p)
    got = np.asarray(phi_inverse(p))
    assert np.max(np.abs(got - exact) / np.maximum(np.abs(exact), 1.0)) < 1.2e-9


def test_uniforms_are_the_points_behind_sobol_normals():
    u = sobol_uniforms(2**6, 5, 3, seed=7)
    assert u.shape == (3, 64, 5) and not u.flags.writeable
    np.testing.assert_allclose(special.ndtri(u), sobol_normals(2**6, 5, 3, seed=7), rtol=0, atol=1e-12)


@pytest.mark.parametrize("d, kinds", [(2, (1, 2)), (3, (2, 2, 2)), (3, (1, 0, 2)), (6, (1, 1, 2, 2, 2, 2))])
def test_first_exceedance_sums_match_closed_forms_and_genz(d, kinds):
    import jax

    rng = np.random.default_rng(d + len(kinds))
    w = _cov(rng, d)
    weights = rng.uniform(0.2, 1.0, size=d)
    kinds = np.asarray(kinds)
    keep = kinds > 0  # the padding position carries the identity
    w = np.where(np.outer(keep, keep), w, np.eye(d))
    expected = _exceedance(w, kinds, weights)
    chol = np.linalg.cholesky(w)
    errs = []
    for points in (2**8, 2**12):
        est = np.asarray(jax.jit(sov_accumulate)(chol[None, None].repeat(8, 0), kinds[None],
                                                  np.broadcast_to(weights, (8, 1, d)),
                                                  sobol_uniforms(points, d, 8, seed=3)))[:, 0]
        mean, err = est.mean(), est.std(ddof=1) / np.sqrt(est.size)
        assert abs(mean - expected) <= 4 * err + 1e-9, (mean, expected, err)
        errs.append(err)
    assert errs[1] < errs[0] / 8, errs


def test_padding_changes_nothing():
    rng = np.random.default_rng(1)
    w = _cov(rng, 4)
    chol = np.linalg.cholesky(w)
    kinds = np.array([1, 2, 2, 2])
    weights = rng.uniform(size=4)
    u = sobol_uniforms(2**8, 6, 2, seed=0)
    base = sov_accumulate(chol[None, None].repeat(2, 0), kinds[None], np.broadcast_to(weights, (2, 1, 4)), u[..., :4])
    padded = np.eye(6)
    padded[:4, :4] = chol
    out = sov_accumulate(padded[None, None].repeat(2, 0), np.append(kinds, [0, 0])[None],
                         np.broadcast_to(np.append(weights, [5.0, 5.0]), (2, 1, 6)), u)
    np.testing.assert_allclose(np.asarray(out), np.asarray(base), rtol=1e-13, atol=0)


def test_differentiable_in_the_covariance():
    import jax
    import jax.numpy as jnp

    rng = np.random.default_rng(2)
    w0, dw = _cov(rng, 4), _cov(rng, 4) - np.eye(4)
    kinds = np.array([1, 2, 2, 2])
    u = sobol_uniforms(2**8, 4, 1, seed=0)

    def f(eps):
        chol = jnp.linalg.cholesky(jnp.asarray(w0) + eps * dw)
        return sov_accumulate(chol[None, None], kinds[None], jnp.ones((1, 1, 4)), u)[0, 0]

    h = 1e-5
    numeric = (f(h) - f(-h)) / (2 * h)
    assert abs(float(jax.grad(f)(0.0)) - float(numeric)) < 1e-7 * max(1.0, abs(float(numeric)))


def test_chunks_sorted_by_length_give_the_same_estimates():
    """Several chunks (each skipping the positions after its longest element) = one chunk."""
    rng = np.random.default_rng(4)
    lengths = [2, 2, 3, 5, 6]
    chol = np.stack([np.eye(6)] * len(lengths))
    kinds = np.zeros((len(lengths), 6), int)
    for m, n in enumerate(lengths):
        chol[m, :n, :n] = np.linalg.cholesky(_cov(rng, n))
        kinds[m, :n] = [1] + [2] * (n - 1)
    weights = rng.uniform(size=(2, len(lengths), 6))
    u = sobol_uniforms(2**8, 6, 2, seed=1)
    one = sov_accumulate(chol[None].repeat(2, 0), kinds, weights, u)
    many = sov_accumulate(chol[None].repeat(2, 0), kinds, weights, u, chunk=2, block=64)
    np.testing.assert_allclose(np.asarray(many), np.asarray(one), rtol=1e-12, atol=0)
