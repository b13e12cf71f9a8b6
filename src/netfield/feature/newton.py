"""Newton's method with deflation for the muP saddle point (docs/feature.md F10, F10a): the solver behind
``solve(..., method="newton")`` of :mod:`netfield.feature.theory`, which converges to unstable solutions
as well (the broken branch near its bifurcation) and, with deflation, away from known ones."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .theory import Problem, _free_index, _pack, _unpack, saddle_map

jax.config.update("jax_enable_x64", True)


@jax.jit
def _residual_and_jacobian(prob, v, idx):
    def f(u):
        c2, ct2, qt2, _ = saddle_map(prob, *_unpack(prob, v.at[idx].set(u)))
        return _pack(prob, c2, ct2, qt2)[idx] - u

    u = v[idx]
    return f(u), jax.jacfwd(f)(u)


DEFLATION_POWER, DEFLATION_SHIFT = 2, 1.0


def _deflation(u, deflate):
    """Deflation factor m(u) = prod_k (|u - u_k|^-p + shift) of the known roots u_k and its gradient
    (Farrell, Birkisson and Funke 2015): the roots of m(u) F(u) are those of F without the u_k."""
    m, grad = 1.0, np.zeros_like(u)
    for uk in deflate:
        d = u - uk
        r2 = max(float(d @ d), 1e-300)
        mk = r2 ** (-DEFLATION_POWER / 2) + DEFLATION_SHIFT
        gk = -DEFLATION_POWER * r2 ** (-DEFLATION_POWER / 2 - 1) * d
        grad = grad * mk + m * gk
        m *= mk
    return m, grad


def newton(prob: Problem, v, tol: float, max_iter: int, deflate=()):
    """Newton's method on the free variables of F(v) = G(v) - v = 0 with backtracking (:func:`netfield.feature.theory.solve`).

    ``deflate``: packed states of known solutions to steer away from. Newton then solves the deflated
    system m(u) F(u) = 0 (:func:`_deflation`), whose step is the plain Newton step d scaled by
    1 / (1 - grad(m) . d / m) (Sherman-Morrison); the backtracking monitors m |F|, convergence |F|.
    """
    idx_np = _free_index(prob)
    idx = jnp.asarray(idx_np)
    known = [np.asarray(k)[idx_np] for k in deflate]

    def norm(r):
        r = np.asarray(r)
        return float(np.abs(r).max()) if np.all(np.isfinite(r)) else np.inf

    def merit(v, r):  # Euclidean: the Newton step is a descent direction of |F|_2 (and of m |F|_2)
        r = np.asarray(r)
        size = float(np.sqrt(r @ r)) if np.all(np.isfinite(r)) else np.inf
        return size * (_deflation(np.asarray(v)[idx_np], known)[0] if known else 1.0)

    r, J = _residual_and_jacobian(prob, v, idx)
    res, residuals = norm(r), []
    for _ in range(max_iter):
        residuals.append(res)
        if res < tol:
            return v, residuals, True
        if not np.isfinite(res):
            break
        try:
            du = np.linalg.solve(np.asarray(J), -np.asarray(r))
        except np.linalg.LinAlgError:
            break
        if known:
            m, grad = _deflation(np.asarray(v)[idx_np], known)
            denom = 1.0 - float(grad @ du) / m  # negative: the plain step heads for a known root; reversed
            if abs(denom) > 1e-12:
                du = du / denom
        du = jnp.asarray(du)
        step, current = 1.0, merit(v, r)
        while step > 1e-3:
            trial = v.at[idx].add(step * du)
            r_t, J_t = _residual_and_jacobian(prob, trial, idx)
            if merit(trial, r_t) < current:
                break
            step /= 2
        else:
            break
        v, r, J, res = trial, r_t, J_t, norm(r_t)
    residuals.append(res)
    return v, residuals, res < tol
