"""Newton-Krylov steps on the reweighted saddle-point map inside its trust region (docs/feature.md F8d).

The saddle-point map G has Jacobian eigenvalues above 1 and far below -1 (docs/feature.md section 3): a
step along the plain map direction G(v) - v, however short, moves *away* from the fixed point along the
former and overshoots along the latter. Where Anderson mixing of the reweighted map (F8c) leaves the
trust region before it converges (many patterns and steps: 50 digit sequences x 8 steps, where even its
first step leaves it), the round instead takes inexact Newton steps

    (J - I) d = -(G(v) - v),   J = dG/dv at v   (GMRES on Jacobian-vector products, JAX forward mode)   (F8d)

on the free variables. Each step is halved until C stays positive definite, the reweighting keeps
``floor`` of the draws and the residual's Euclidean norm falls (the Newton step is a descent direction
of |G(v) - v|_2); the steps go on while the share stays above ``keep`` (beyond it the draws no longer
describe the law well: the caller samples afresh there).

Cost per Newton step: up to ``krylov`` Jacobian-vector products, each ~2 evaluations of the map (draws
x 5 (T P)^2 multiply-adds in float32), ~1 s at 25,600 draws in 400 dimensions on 2 cores; the levers
are ``krylov`` and ``max_iter`` (and the draws).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from scipy.sparse.linalg import LinearOperator, gmres

from .theory import _jit_lean_residual, _matrix, whitening_factor

jax.config.update("jax_enable_x64", True)

KRYLOV = 30  # GMRES iterations per Newton step at most (one restart cycle): 8-25 reached KRYLOV_RTOL in 400 dims
KRYLOV_RTOL = 0.1  # relative residual of the Newton equation (inexact Newton: each step gains ~10x)
MIN_STEP = 1e-3  # shortest step along a Newton direction


@jax.jit
def _residual_tangent(prob, v, idx, d):
    """(J - I) d on the free variables ``idx`` of the map at ``v`` (forward mode)."""
    dv = jnp.zeros_like(v).at[idx].set(d)
    _, tangent = jax.jvp(lambda u: _jit_lean_residual.__wrapped__(prob, u)[1], (v,), (dv,))
    return tangent[idx]


def _positive(prob, v) -> bool:
    """Whether the state's C is positive definite (the map is not defined elsewhere: no evaluation)."""
    n = prob.T * prob.T * prob.P * prob.P
    cm = _matrix(jnp.asarray(v[:n]).reshape(prob.T, prob.T, prob.P, prob.P))
    return bool(jnp.all(jnp.isfinite(whitening_factor(prob, 0.5 * (cm + cm.T)))))


def _evaluate(prob, v, idx):
    """(residual on the free variables, Kish share of the draws) of the reweighted map at ``v``."""
    _, r, res, diag = _jit_lean_residual(prob, v)
    ess = float(diag["ess"])
    share = ess / prob.normals.shape[0] if np.isfinite(ess) and np.isfinite(float(res)) else 0.0
    return np.array(r)[idx], share


def newton_krylov(prob, v, idx, tol: float, *, floor: float = 0.0, keep: float = 0.0, max_iter: int = 6,
                  krylov: int = KRYLOV):
    """Inexact Newton steps (F8d) from ``v`` on the problem ``prob`` (module docstring).

    Args:
        prob: a reweighted problem (:func:`netfield.feature.sampled._surrogate`) or any other
            :class:`netfield.feature.theory.Problem`.
        v: packed state; idx: positions of its free variables.
        tol: stop where max |G(v) - v| over the free variables is below it.
        floor: least Kish share of the draws at an accepted state (the trust region); keep: stop after
            a step whose state keeps less (0, 0: no trust region, e.g. a deterministic node set).

    Returns:
        (v, residuals: max norm at the start and after every accepted step, converged, first step
        length: 1 for a full Newton step, 0 where no step was accepted).
    """
    idx = np.asarray(idx)
    jidx = jnp.asarray(idx)
    rf, _ = _evaluate(prob, v, idx)
    residuals, first = [float(np.abs(rf).max())], None
    for _ in range(max_iter):
        if residuals[-1] < tol or not np.isfinite(residuals[-1]):
            break
        op = LinearOperator((idx.size, idx.size), dtype=np.float64,
                            matvec=lambda d, base=v: np.array(_residual_tangent(prob, base, jidx, jnp.asarray(d)),
                                                              np.float64))
        d, _ = gmres(op, -rf, rtol=KRYLOV_RTOL, restart=krylov, maxiter=1)
        d = jnp.asarray(d)
        current, step = float(np.sqrt(rf @ rf)), 1.0
        while step >= MIN_STEP:
            trial = v.at[jidx].add(step * d)
            if _positive(prob, trial):
                rt, share = _evaluate(prob, trial, idx)
                if share >= floor and np.all(np.isfinite(rt)) and float(np.sqrt(rt @ rt)) < current:
                    break
            step /= 2
        else:
            break
        first = step if first is None else first
        v, rf = trial, rt
        residuals.append(float(np.abs(rf).max()))
        if share < keep:
            break
    return v, residuals, residuals[-1] < tol, (0.0 if first is None else first)
