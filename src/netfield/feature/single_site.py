"""Hamiltonian Monte Carlo of the single-site law of the muP saddle point (docs/feature.md F4, F8b).

The single-site law p(h) ~ N(h; 0, C) exp(E(h)) of a whole trajectory h = (h_t(mu)) (T P dimensions) is
sampled in the whitened frame xi = L^-1 h (C = L L^T; defined also where C is singular), where

    log p(xi) = -|xi|^2 / 2 + E(L xi),   grad = -xi + L^T (phi'(h) * (B_s phi(h))),   B_s = B + B^T   (F8b)

and preconditioned by a lower-triangular R (xi = R eta; R R^T ~ the tilted law's covariance <xi xi^T>,
so eta is close to N(0, I)). Many chains run as one vectorised array (chains, T P); each transition is
ceil(TRAJECTORY / step) leapfrog steps of a step size jittered by +-20 % (no periodic orbits) and a
Metropolis test per chain. The step size is tuned during warm-up to an acceptance of TARGET_ACCEPTANCE.

Cost per transition: 3 (T P)^2 multiply-adds per chain and leapfrog step (two triangular products, one
with B_s); no (T P)^3 work inside the chains. The levers: chains x draws x thin x leapfrog.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .statistics import autocorr_time, split_rhat
from .theory import Problem, _matrix, _tilt, _unpack, tilt_field_energy, whitening_factor

jax.config.update("jax_enable_x64", True)

TARGET_ACCEPTANCE = 0.8
TRAJECTORY = 1.5  # leapfrog steps x step size per transition, in preconditioned units (~pi/2: a quarter period
#                   of N(0, I), the most independent next point; pi would return to the start)
STEP_JITTER = 0.2


def factors(prob: Problem, v):
    """(L, B_s): the whitening factor of C (:func:`~netfield.feature.theory.whitening_factor`) and the symmetrised tilt of the state ``v`` (F4)."""
    C, ct, qt = _unpack(prob, v)
    cm = _matrix(C)
    chol = whitening_factor(prob, 0.5 * (cm + cm.T))
    bm = _matrix(_tilt(prob, ct, qt))
    return chol, bm + bm.T


def tilt_energy(prob: Problem, v, xi):
    """E(L xi) of the state ``v`` at whitened points xi (N, T P) (F4)."""
    chol, bs = factors(prob, v)
    return tilt_field_energy(prob.net.activation.fn(xi @ chol.T), bs)[1]


_jit_tilt_energy = jax.jit(tilt_energy)


@partial(jax.jit, static_argnames=("draws", "thin"))
def _run(prob, v, precond, eta, step, leapfrog, key, *, draws, thin):
    """``draws`` x ``thin`` transitions of every chain from ``eta`` (chains, d); returns the kept points
    (draws, chains, d) in the xi frame, the tilt energies there (draws, chains), the last eta and the
    mean acceptance probability."""
    chol, bs = factors(prob, v)
    fn = prob.net.activation.fn
    d1 = jax.grad(lambda z: jnp.sum(fn(z)))

    def logp_grad(e):
        xi = e @ precond.T
        h = xi @ chol.T
        field, energy = tilt_field_energy(fn(h), bs)
        logp = -0.5 * jnp.sum(xi * xi, axis=1) + energy
        grad_xi = -xi + (d1(h) * field) @ chol
        return logp, grad_xi @ precond, energy

    def transition(state, k):
        e, logp, grad, energy = state
        k_mom, k_step, k_acc = jax.random.split(k, 3)
        p0 = jax.random.normal(k_mom, e.shape)
        eps = step * jax.random.uniform(k_step, (), minval=1 - STEP_JITTER, maxval=1 + STEP_JITTER)

        def leap(_, c):
            e1, p1, g1 = c
            p1 = p1 + 0.5 * eps * g1
            e1 = e1 + eps * p1
            _, g1, _ = logp_grad(e1)
            return e1, p1 + 0.5 * eps * g1, g1

        e1, p1, _ = jax.lax.fori_loop(0, leapfrog, leap, (e, p0, grad))
        logp1, grad1, energy1 = logp_grad(e1)
        log_ratio = logp1 - logp - 0.5 * jnp.sum(p1 * p1, axis=1) + 0.5 * jnp.sum(p0 * p0, axis=1)
        log_ratio = jnp.where(jnp.isfinite(log_ratio), log_ratio, -jnp.inf)
        accept = jnp.log(jax.random.uniform(k_acc, log_ratio.shape)) < log_ratio
        pick = lambda a, b: jnp.where(accept.reshape((-1,) + (1,) * (a.ndim - 1)), a, b)
        state = (pick(e1, e), pick(logp1, logp), pick(grad1, grad), pick(energy1, energy))
        return state, jnp.minimum(1.0, jnp.exp(log_ratio))

    def keep(state, k):
        state, acc = jax.lax.scan(transition, state, jax.random.split(k, thin))
        return state, (state[0] @ precond.T, state[3], acc.mean())

    logp, grad, energy = logp_grad(eta)
    state, (xi, energies, acc) = jax.lax.scan(keep, (eta, logp, grad, energy), jax.random.split(key, draws))
    return xi, energies, state[0], acc.mean()


@dataclass(frozen=True)
class ChainState:
    """Where the chains are (``xi``: (chains, T P) in the whitened frame), the tuned step size and the
    preconditioner R (xi = R eta); what a later call warm-starts from."""

    xi: np.ndarray
    step: float
    precond: np.ndarray


@dataclass(frozen=True)
class SingleSiteDraws:
    """Draws of the single-site law (F8b) and their diagnostics.

    Attributes:
        xi: (draws, chains, T P) points in the whitened frame (h = L xi).
        energy: (draws, chains) the tilt E(h) at the points.
        acceptance: mean Metropolis acceptance probability after warm-up.
        rhat: split-R-hat of the tilt energy and of |xi|^2 over the chains (worst of the two).
        ess: effective sample size of the tilt energy (chains x draws / its integrated autocorrelation
            time); the smaller of that for E and for |xi|^2.
        state: the chains' final :class:`ChainState` (warm start of the next call).
    """

    xi: np.ndarray
    energy: np.ndarray
    acceptance: float
    rhat: float
    ess: float
    state: ChainState


def _leapfrog(step: float) -> int:
    return max(1, int(np.ceil(TRAJECTORY / step)))


def sample_single_site(prob: Problem, v, *, chains: int = 128, draws: int = 64, thin: int = 1, warmup: int = 100,
                       key=None, start: ChainState | None = None, precond=None) -> SingleSiteDraws:
    """Draw from the single-site law of the state ``v`` (packed (C, Ct, Qt), docs/feature.md F8b).

    ``start``: chains to continue from (their step size and preconditioner too); otherwise the chains start
    from N(0, I) (exact where the tilt vanishes) with step size 0.5. ``precond``: R (lower triangular,
    xi = R eta), e.g. the Cholesky factor of <xi xi^T> of the previous solution; identity by default.
    ``warmup`` transitions tune the step size (in blocks of 10, towards TARGET_ACCEPTANCE) and are
    discarded. Cost: (warmup + draws x thin) x TRAJECTORY / step x 3 (T P)^2 multiply-adds per chain (the
    step ~0.5 in 100 dimensions, smaller where the law is far from Gaussian).
    """
    d = prob.T * prob.P
    key = jax.random.PRNGKey(0) if key is None else key
    if start is not None:
        xi0, step = np.asarray(start.xi), float(start.step)
        precond = start.precond if precond is None else precond
    else:
        key, k0 = jax.random.split(key)
        xi0, step = np.asarray(jax.random.normal(k0, (chains, d))), 0.5
    precond = jnp.eye(d) if precond is None else jnp.asarray(precond)
    eta = jax.scipy.linalg.solve_triangular(precond, jnp.asarray(xi0).T, lower=True).T
    v = jnp.asarray(v)
    block = 10
    for _ in range(-(-warmup // block)):
        key, k = jax.random.split(key)
        _, _, eta, acc = _run(prob, v, precond, eta, step, _leapfrog(step), k, draws=1, thin=block)
        step *= float(np.exp(np.clip(2.0 * (float(acc) - TARGET_ACCEPTANCE), -1.0, 1.0)))
    key, k = jax.random.split(key)
    xi, energy, eta, acc = _run(prob, v, precond, eta, step, _leapfrog(step), k, draws=draws, thin=thin)
    xi, energy = np.asarray(xi), np.asarray(energy)
    norm2 = np.sum(xi * xi, axis=2)
    rhat = max(split_rhat(energy.T), split_rhat(norm2.T))
    n = energy.size
    taus = [autocorr_time(energy.T), autocorr_time(norm2.T)]
    ess = min(n / max(t, 1.0) if np.isfinite(t) else np.nan for t in taus)
    state = ChainState(np.asarray(eta @ precond.T), step, np.asarray(precond))
    return SingleSiteDraws(xi, energy, float(acc), float(rhat), float(ess), state)
