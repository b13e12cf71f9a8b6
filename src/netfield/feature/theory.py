"""Feature learning: the muP Bayesian saddle point of trained DNNs and RNNs (docs/feature.md).

Posterior over the weights of a width-n network (docs/theory.md section 6): the prior of section 1, a
muP readout f_t = (1/n) sum_j v_j phi(h_tj) shared over the supervised steps S, and targets
y_{t mu} ~ N(f_t(x_mu), kappa / n). Integrating v out and introducing the kernels with their
conjugate fields gives n * (an action of O(1) order parameters), so at large n the posterior
concentrates on the saddle point (docs/feature.md F1-F9):

    single-site law    p(h) ~ N(h; 0, C) exp(E(h)),  h = (h_t(mu))_{t <= T, mu}             (F4)
                       E(h) = weight_var sum_{(t,s) free} phi(h_{t-1})^T Ct(t,s) phi(h_{s-1})
                              + sum_{t,s in S} phi(h_t)^T Qt(t,s) phi(h_s)
    forward            C(t,s) = C_in(t,s) + weight_var <phi(h_{t-1}) phi(h_{s-1})^T>    (free)   (F5)
    backward           Ct(t,s) = [ d ln Z / dC ](t,s) = [ (C^-1 <h h^T> C^-1 - C^-1) / 2 ](t,s)
                               = [ <grad grad^T E + grad E grad E^T> / 2 ](t,s)  (Stein) (free)   (F6)
    readout            Q = <phi(h_S) phi(h_S)^T>,  M = readout_var Q + kappa I,
                       Qt = (readout_var / 2) (M^-1 y y^T M^-1 - M^-1 / n)                    (F7)

"free" blocks are those a weight matrix contributes to: for the RNN every time pair (t, s) with
t, s >= 2 (one shared W couples all times), for the DNN only t = s (fresh W per layer): the RNN and
DNN saddle points differ *only* in which blocks are free. Below the transition the RNN's cross-time
blocks vanish and both coincide; :func:`cross_time_stability` gives the linear stability of that
solution in the cross-time sector (F9).

Averages <.> under the tilted law are computed by importance sampling from N(0, C) with fixed
scrambled-Sobol normals (a deterministic, differentiable map, so its Jacobian is exact), or in
closed form for linear networks (the tilted law is then Gaussian).
"""

from __future__ import annotations

from dataclasses import dataclass, replace

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int
from ..gauss import pair
from ..program import Network
from ..storage import Storable
from .problem import MAX_QUADRATURE_DIM, Problem, build_problem, resolve_rule  # noqa: F401 (re-exported)

jax.config.update("jax_enable_x64", True)



# -- the map -------------------------------------------------------------------------------------------
def _matrix(blocks):
    """(T, T, P, P) blocks -> (T P, T P) matrix with rows (t, mu)."""
    T, _, P, _ = blocks.shape
    return jnp.transpose(blocks, (0, 2, 1, 3)).reshape(T * P, T * P)


def _blocks(matrix, T, P):
    return jnp.transpose(matrix.reshape(T, P, T, P), (0, 2, 1, 3))


def _tilt(prob: Problem, ct, qt):
    """B (T, T, P, P): E(h) = sum_{t,s} phi(h_t)^T B(t,s) phi(h_s) (F4)."""
    T, P, Ptr = prob.T, prob.P, prob.P_train
    b = jnp.zeros((T, T, P, P))
    b = b.at[:-1, :-1].add(prob.net.weight_var * (ct * jnp.asarray(prob.free)[:, :, None, None])[1:, 1:])
    S = [s - 1 for s in prob.supervised]
    k = len(S)
    q4 = qt.reshape(k, Ptr, k, Ptr).transpose(0, 2, 1, 3)
    for i, t in enumerate(S):
        for j, s in enumerate(S):
            b = b.at[t, s, :Ptr, :Ptr].add(q4[i, j])
    return b


def tilt_field_energy(phi, bs):
    """(field, E) per point: field = phi B_s and the tilt E(h) = phi^T B phi = phi^T B_s phi / 2 (F4), for
    activations ``phi`` (S, T P) and the symmetrised tilt B_s = B + B^T (T P, T P); grad E = phi' * field."""
    field = phi @ bs
    return field, 0.5 * jnp.sum(field * phi, axis=1)


def whitening_factor(prob: Problem, cm):
    """L with L L^T = cm (rows (t, mu)): h = L xi maps whitened points xi ~ N(0, I) to the field.

    The Cholesky factor of cm with the training patterns' coordinates (every step) ordered before the test
    patterns', relabelled back to (t, mu) order (L = Pi^T chol(Pi cm Pi^T) Pi): the training field then
    depends on the training block of cm only, so moving the test rows of C (which the tilt does not see)
    leaves the energy of every fixed point xi unchanged (the reweighting of F8c keeps its draws), and a
    step's sign flip of xi still flips that step's field where cm is block diagonal in time. Without
    test patterns this is the plain Cholesky factor."""
    d = cm.shape[0]
    jitter = 1e-12 * jnp.trace(cm) / d * jnp.eye(d)
    if prob.P == prob.P_train:
        return jnp.linalg.cholesky(cm + jitter)
    T, P, Ptr = prob.T, prob.P, prob.P_train
    order = np.array([t * P + mu for t in range(T) for mu in range(Ptr)]
                     + [t * P + mu for t in range(T) for mu in range(Ptr, P)])
    back = np.argsort(order)
    chol = jnp.linalg.cholesky((cm + jitter)[order][:, order])
    return chol[back][:, back]


def _tilted_moments(prob: Problem, C, B):
    """<phi phi^T>, <h h^T> (as (T,T,P,P) blocks) under N(0, C) exp(E), and the effective sample size."""
    T, P = prob.T, prob.P
    cm = _matrix(C)
    cm = 0.5 * (cm + cm.T)
    if prob.linear:  # Gaussian tilt: precision C^-1 - (B + B^T)
        bm = _matrix(B)
        prec = jnp.linalg.inv(cm) - (bm + bm.T)
        post = jnp.linalg.inv(prec)
        post = 0.5 * (post + post.T)
        blocks = _blocks(post, T, P)
        cinv = jnp.linalg.inv(cm)
        grad = 0.5 * (cinv @ post @ cinv - cinv)
        return blocks, blocks, jnp.asarray(jnp.inf), jnp.linalg.eigvalsh(prec).min(), grad, jnp.eye(cm.shape[0])
    eye = jnp.eye(cm.shape[0])
    chol = whitening_factor(prob, cm)
    lw = jnp.asarray(prob.log_weights)
    xi = jnp.asarray(prob.normals)  # nodes of the whitened field xi = L^-1 h, h ~ N(0, C) <=> xi ~ N(0, I)
    if prob.proposal is not None:  # xi drawn from q (close to the tilted law), reweighted to N(0, I)   (F8a)
        chol_a = jnp.linalg.cholesky(jnp.asarray(prob.proposal))
        eta = xi
        logdet_a = jnp.sum(jnp.log(jnp.diagonal(chol_a)))
        if prob.defensive is None:  # q = N(0, A)
            xi = eta @ chol_a.T
            log_q = -0.5 * jnp.sum(eta * eta, axis=1) - logdet_a
        else:  # defensive mixture q = (1 - a) N(0, A) + a N(0, g I), nodes split in those proportions
            mask = jnp.asarray(prob.defensive)
            a, g, d = jnp.mean(mask), DEFENSIVE_WIDTH, cm.shape[0]
            xi = jnp.where(mask[:, None], jnp.sqrt(g) * eta, eta @ chol_a.T)
            za = jnp.sum(jax.scipy.linalg.solve_triangular(chol_a, xi.T, lower=True) ** 2, axis=0)
            log_q = jnp.logaddexp(jnp.log1p(-a) - 0.5 * za - logdet_a,
                                  jnp.log(a) - 0.5 * jnp.sum(xi * xi, axis=1) / g - 0.5 * d * jnp.log(g))
        lw = lw - 0.5 * jnp.sum(xi * xi, axis=1) - log_q
    bm = _matrix(B)
    bs = bm + bm.T  # E(h) = phi^T bm phi,  grad E = phi' * (bs phi)
    if prob.single_precision:  # the per-point work in float32 (Markov-chain draws: MC error >> 1e-6)
        xi, chol, bs = xi.astype(jnp.float32), chol.astype(jnp.float32), bs.astype(jnp.float32)
    h = xi @ chol.T  # (S, T P)
    fn = prob.net.activation.fn
    d1 = jax.grad(lambda z: jnp.sum(fn(z)))
    d2 = jax.grad(lambda z: jnp.sum(d1(z)))
    phi, dphi, ddphi = fn(h), d1(h), d2(h)
    field, energy = tilt_field_energy(phi, bs)  # (S, T P), (S,)
    w = jax.nn.softmax(energy.astype(lw.dtype) + lw).astype(h.dtype)
    # nodes that are not a sample of N(0, I) (Markov-chain draws of a tilted law, feature/sampled.py): no
    # control variate (its Gaussian term would be importance-weighted from far away, adding noise)
    w0 = jax.nn.softmax(lw) if prob.control_variate else jnp.zeros_like(w)
    # control variate: exact Gaussian <phi phi^T> (netfield.gauss.pair) + the tilt's effect estimated
    # with the same points (exact in the lazy limit; errors cancel where the tilt is weak)
    diag = jnp.diagonal(cm)
    exact = pair(prob.net.activation, diag[:, None], diag[None, :], cm) if prob.control_variate else 0.0
    wide = lambda a: a.astype(cm.dtype)  # sums back in the covariance's precision
    tilt_effect = wide(jnp.einsum("n,ni,nj->ij", w - w0, phi, phi))
    phph = _blocks(exact + tilt_effect, T, P)
    # Stein / Price: d ln Z / dC = <grad grad^T E + grad E grad E^T> / 2 (no C^-1: low variance), F6
    g = dphi * field
    stein = wide(jnp.einsum("n,ni,nj->ij", w, g, g) + jnp.diag(w @ (ddphi * field))
                 + bs * jnp.einsum("n,ni,nj->ij", w, dphi, dphi))
    cv = 1.0 if prob.control_variate else 0.0
    hh = cv * cm + wide(jnp.einsum("n,ni,nj->ij", w - w0, h, h))  # same control variate: <h h^T> = C + effect
    xixi = cv * eye + wide(jnp.einsum("n,ni,nj->ij", w - w0, xi, xi))  # <xi xi^T> of the tilted law (whitened)
    # Kish effective sample size 1 / sum w^2 (for Gauss-Hermite nodes already < N without a tilt)
    return phph, _blocks(hh, T, P), wide(1.0 / jnp.sum(w ** 2)), jnp.asarray(1.0), 0.5 * stein, xixi


def saddle_map(prob: Problem, C, ct, qt):
    """One application of F5-F7: (C, Ct, Qt) -> (C', Ct', Qt') and diagnostics."""
    T, P, Ptr = prob.T, prob.P, prob.P_train
    free = jnp.asarray(prob.free)[:, :, None, None]
    phph, hh, ess, min_prec, grad, xixi = _tilted_moments(prob, C, _tilt(prob, ct, qt))
    c_new = jnp.asarray(prob.c_in) + free * prob.net.weight_var * jnp.pad(phph[:-1, :-1], ((1, 0), (1, 0), (0, 0), (0, 0)))
    ct_new = free * _blocks(0.5 * (grad + grad.T), T, P)
    S = [s - 1 for s in prob.supervised]
    q = jnp.concatenate([jnp.concatenate([phph[t, s, :Ptr, :Ptr] for s in S], axis=1) for t in S], axis=0)
    gv = prob.net.readout_var
    minv = jnp.linalg.inv(gv * q + prob.kappa * jnp.eye(q.shape[0]))
    a = minv @ jnp.asarray(prob.targets)
    qt_new = 0.5 * gv * (jnp.outer(a, a) - prob.inv_width * minv)
    return c_new, ct_new, qt_new, {"ess": ess, "min_precision": min_prec, "phph": phph, "hh": hh, "q": q, "a": a,
                                   "xixi": xixi}


@jax.jit
def _jit_residual(prob, v):
    """G(v), the residual G(v) - v, its max norm (inf where it is not finite or the Gaussian tilt's
    precision is not positive) and the map's diagnostics: the one compiled program of :func:`solve`'s
    iterations, its final state and :func:`refine`."""
    c2, ct2, qt2, diag = saddle_map(prob, *_unpack(prob, v))
    gv = _pack(prob, c2, ct2, qt2)
    r = gv - v
    ok = jnp.all(jnp.isfinite(r)) & (diag["min_precision"] > 0)
    return gv, r, jnp.where(ok, jnp.abs(r).max(), jnp.inf), diag


@jax.jit
def _jit_lean_residual(prob, v):
    """:func:`_jit_residual` without the diagnostics the iteration does not read (<h h^T>, <xi xi^T>):
    a third less work per point; a second compiled program, so used only where the points dominate
    (``single_precision`` problems: Markov-chain draws, feature/sampled.py)."""
    gv, r, res, diag = _jit_residual.__wrapped__(prob, v)
    return gv, r, res, {"ess": diag["ess"]}


def _pack(prob, C, ct, qt):
    return jnp.concatenate([C.reshape(-1), ct.reshape(-1), qt.reshape(-1)])


def _unpack(prob, v):
    T, P = prob.T, prob.P
    n = T * T * P * P
    k = len(prob.supervised) * prob.P_train
    return v[:n].reshape(T, T, P, P), v[n:2 * n].reshape(T, T, P, P), v[2 * n:2 * n + k * k].reshape(k, k)


def lazy_point(prob: Problem):
    """The Gaussian-process (lazy, signal -> 0) kernels: F5 with E = 0, iterated step by step."""
    return _jit_lazy_point(prob)


@jax.jit
def _jit_lazy_point(prob: Problem):
    T, P = prob.T, prob.P
    free = jnp.asarray(prob.free)[:, :, None, None]
    c_in = jnp.asarray(prob.c_in, float)
    zero = jnp.zeros((T, T, P, P))

    def step(_, C):  # a loop, not unrolled: one copy of the tilted moments to compile whatever T
        phph = C if prob.linear else _tilted_moments(prob, C, zero)[0]
        return c_in + free * prob.net.weight_var * jnp.pad(phph[:-1, :-1], ((1, 0), (1, 0), (0, 0), (0, 0)))

    return jax.lax.fori_loop(0, T, step, c_in)


# -- result ---------------------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class FeatureResult(Storable):
    """Saddle point of the muP posterior (docs/feature.md).

    ``r.save(path)`` / ``FeatureResult.load(path)``: a portable .npz file with its problem and network
    (:mod:`netfield.storage`).

    Attributes:
        kernel: (T, T, P, P) posterior pre-activation kernels <h_t h_s^T> (train then test patterns): the
            posterior mean of (1/n) sum_j h_tj h_sj (F8).
        base: (T, T, P, P) the Gaussian base covariance C(t, s) of the single-site law (F4, F5).
        overlap: (T, T, P, P) <phi(h_t) phi(h_s)^T> (representational kernels, cross-time overlaps).
        conjugate: (T, T, P, P) conjugate fields Ct; readout_conjugate: Qt.
        gp_kernel: the lazy (Gaussian-process) kernels C for comparison.
        prediction: (T, P_test) posterior-mean outputs f_t at the test patterns (units of y).
        converged, iterations, residual, residuals: convergence diagnostics.
        ess: effective sample size of the importance weights (inf for linear networks).
        spectrum: eigenvalues of the Jacobian of the saddle-point map at the solution.
        kernel_error, overlap_error, prediction_error: numerical errors of ``kernel``, ``overlap`` and
            ``prediction`` (:func:`posterior_kernels` with ``replicates >= 2``: the standard deviation over
            independently scrambled QMC node sets, or the change from m - 1 to m Gauss-Hermite nodes per
            dimension; 0 for linear networks, exact; ``rule="mcmc"``: the standard error from groups of
            chains, docs/feature.md F8c); None where not estimated.
        sampling: ``rule="mcmc"`` only: the Markov chains' diagnostics per sampling round and at the end
            (acceptance, split-R-hat, effective sample size, the final move in errors ``z``;
            :func:`netfield.feature.sampled.solve_sampled`); None for quadrature rules.
    """

    problem: Problem
    kernel: np.ndarray
    base: np.ndarray
    overlap: np.ndarray
    conjugate: np.ndarray
    readout_conjugate: np.ndarray
    gp_kernel: np.ndarray
    prediction: np.ndarray
    converged: bool
    iterations: int
    residual: float
    residuals: tuple
    ess: float
    spectrum: np.ndarray | None = None
    kernel_error: np.ndarray | None = None
    overlap_error: np.ndarray | None = None
    prediction_error: np.ndarray | None = None
    sampling: dict | None = None

    _storage_types = (Problem,)
    _storage_network = "problem.net"

    def cross_time_overlap(self, t: int, s: int) -> float:
        """Mean correlation coefficient of phi(h_t), phi(h_s) over the training patterns."""
        P = self.problem.P_train
        o = self.overlap
        num = np.diagonal(o[t - 1, s - 1, :P, :P])
        den = np.sqrt(np.diagonal(o[t - 1, t - 1, :P, :P]) * np.diagonal(o[s - 1, s - 1, :P, :P]))
        return float(np.mean(num / den))

    def to_dict(self) -> dict:
        return {"converged": bool(self.converged), "iterations": int(self.iterations), "residual": float(self.residual),
                "ess": float(self.ess), "kernel": self.kernel.tolist(), "overlap": self.overlap.tolist(),
                "prediction": self.prediction.tolist(),
                "spectrum_max": None if self.spectrum is None else float(np.max(np.abs(self.spectrum))),
                "kernel_error": None if self.kernel_error is None else self.kernel_error.tolist(),
                "prediction_error": None if self.prediction_error is None else self.prediction_error.tolist()}


class NonConvergenceError(RuntimeError):
    """The saddle-point iteration did not converge; the message says what to change."""


ANDERSON = 6  # residual history of the Anderson mixing
METHODS = ("anderson", "iterate", "newton")


def solve(prob: Problem, *, method: str = "anderson", damping: float = 0.5, tol: float = 1e-10, max_iter: int = 500,
          init=None, spectrum: bool = True, raise_on_failure: bool = True, deflate=(), lazy=None,
          min_ess: float = 0.0, history: int | None = None) -> FeatureResult:
    """Solve F5-F7 from the lazy point (or ``init`` = (C, Ct, Qt)).

    ``method="anderson"``: Anderson mixing of the last 6 residuals G(v) - v (restarted after a bad
    extrapolation); ``"iterate"``: damped fixed-point iteration v <- v + damping (G(v) - v);
    ``"newton"``: Newton's method on the free variables, v <- v - (J - 1)^-1 (G(v) - v) with the exact
    Jacobian J of G (JAX forward mode), step halved while the residual does not decrease. Newton
    converges to unstable solutions as well (the broken branch near its bifurcation, F10), which the
    iterations cannot; ``deflate`` (Newton only): known solutions (C, Ct, Qt) it must not return to
    (deflation, :func:`netfield.feature.newton.newton`). Converged when max |G(v) - v| < tol. ``lazy``: the lazy point
    (:func:`lazy_point`) if already known (the result's ``gp_kernel``). ``min_ess`` (Anderson and
    damped iteration): states whose importance weights keep a smaller effective sample size count as
    failed (a trust region for reweighted draws, :mod:`netfield.feature.sampled`); the iteration then
    restarts from the last state inside, and stops there if that fails too. ``history``: residuals
    Anderson mixing combines (default ANDERSON).
    """
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if not 0 < damping <= 1:
        raise ValueError(f"damping must be in (0, 1], got {damping!r}")
    T, P = prob.T, prob.P
    k = len(prob.supervised) * prob.P_train
    gp = lazy_point(prob) if lazy is None else jnp.asarray(lazy)
    state = (gp, jnp.zeros((T, T, P, P)), jnp.zeros((k, k))) if init is None else tuple(jnp.asarray(a) for a in init)
    v = _pack(prob, *state)

    evaluate = _jit_lean_residual if prob.single_precision else _jit_residual

    def residual(v):
        gv, r, res, diag = evaluate(prob, v)
        return gv, r, float(res) if float(diag["ess"]) >= min_ess else np.inf

    if method == "newton":
        from .newton import newton  # imports this module

        v, residuals, converged = newton(prob, v, tol, max_iter, [_pack(prob, *d) for d in deflate])
    else:
        v, residuals, converged = _iterate(v, residual, method, damping, tol, max_iter,
                                           ANDERSON if history is None else history)
    C, ct, qt = _unpack(prob, v)
    diag = _jit_residual(prob, _pack(prob, C, ct, qt))[3]
    if not converged and raise_on_failure:
        raise NonConvergenceError(
            f"saddle-point solve did not converge in {len(residuals)} iterations (residual {residuals[-1]:.3g} > "
            f"tol {tol:g}); try a smaller damping, more iterations (max_iter), or a weaker "
            f"signal / larger kappa; solve(..., raise_on_failure=False) returns the last iterate with converged=False"
        )
    spec = stability_spectrum(prob, (C, ct, qt)) if spectrum else None
    pred = _prediction(prob, diag)
    return FeatureResult(prob, np.asarray(diag["hh"]), np.asarray(C), np.asarray(diag["phph"]), np.asarray(ct),
                         np.asarray(qt), np.asarray(gp), pred, converged, len(residuals), residuals[-1],
                         tuple(residuals), float(diag["ess"]), spec)


def _iterate(v, residual, method, damping, tol, max_iter, history=ANDERSON):
    """Anderson mixing or damped iteration of v <- G(v) (``solve``); where the residual is not finite,
    the iteration stops at the last state where it was."""
    residuals, converged = [], False
    _, r, res = residual(v)
    last_good = v
    history_v, history_r = [], []
    for _ in range(max_iter):
        residuals.append(res)
        if res < tol:
            converged = True
            break
        if not np.isfinite(res):
            return last_good, residuals, False
        last_good = v
        history_v.append(np.asarray(v))
        history_r.append(np.asarray(r))
        history_v, history_r = history_v[-history:], history_r[-history:]
        if method == "anderson" and len(history_r) > 1:
            # Anderson mixing (type II): minimise |sum_i c_i r_i| with sum_i c_i = 1
            dr = np.stack([history_r[-1] - h for h in history_r[:-1]], axis=1)
            dv = np.stack([history_v[-1] - h for h in history_v[:-1]], axis=1)
            gamma = np.linalg.lstsq(dr, history_r[-1], rcond=None)[0]
            trial = jnp.asarray(history_v[-1] + damping * history_r[-1] - (dv + damping * dr) @ gamma)
            _, r_t, res_t = residual(trial)
            if res_t < 10 * res:
                v, r, res = trial, r_t, res_t
                continue
            history_v, history_r = [], []  # a bad extrapolation: restart the history with a plain damped step
        v = v + damping * r
        _, r, res = residual(v)
    return v, residuals, converged


def _free_index(prob: Problem, sector: str = "all") -> np.ndarray:
    """Positions in the packed vector of the free variables: C and Ct on the free blocks (``"cross"``:
    only the RNN's cross-time blocks t != s), and (``"all"``) Qt."""
    T, P = prob.T, prob.P
    mask = np.zeros((T, T, P, P), bool)
    for t in range(T):
        for s in range(T):
            mask[t, s] = prob.free[t, s] and (sector == "all" or t != s)
    n = T * T * P * P
    idx = np.concatenate([np.flatnonzero(mask.reshape(-1)), n + np.flatnonzero(mask.reshape(-1))])
    if sector == "all":
        k = len(prob.supervised) * prob.P_train
        idx = np.concatenate([idx, 2 * n + np.arange(k * k)])
    return idx


DEFENSIVE_SHARE = 0.1  # share of the nodes drawn from N(0, g C) in the defensive mixture (F8a)
DEFENSIVE_WIDTH = 1.2  # g


def _equal_weights(prob: Problem) -> bool:
    """True for QMC node sets (equal weights), False for Gauss-Hermite grids."""
    lw = np.asarray(prob.log_weights)
    return bool(np.allclose(lw, lw[0]))


def _defensive_mask(prob: Problem):
    """Nodes of the defensive component: for QMC sets (equal weights, 2^T sign-flip groups of the base
    points, :func:`netfield.feature.problem._sign_symmetric`) the first DEFENSIVE_SHARE of the base points with all their flips
    (so both components stay sign-symmetric); None for Gauss-Hermite grids (weights not equal)."""
    lw = np.asarray(prob.log_weights)
    if lw.size < 2 ** prob.T * 10 or not _equal_weights(prob):
        return None
    n = lw.size
    base = n >> prob.T
    return (np.arange(n) % base) < max(1, round(DEFENSIVE_SHARE * base))


PROPOSAL_PASSES = 2  # re-solves with the nodes drawn from the tilted law's own covariance
PROPOSAL_INFLATION = 1.2  # proposal A = this x <xi xi^T> of the previous solution (heavier than the target)


def refine(result: FeatureResult, *, passes: int = PROPOSAL_PASSES, method: str = "anderson",
           spectrum: bool = False, raise_on_failure: bool = True, deflate=()) -> FeatureResult:
    """Re-solve with the averages' nodes drawn close to the tilted law (F8a): in the whitened frame
    xi = L^-1 h (C = L L^T), from the defensive mixture 0.9 N(0, A) + 0.1 N(0, 1.2 I) (QMC; N(0, A) for
    Gauss-Hermite grids), A = 1.2 <xi xi^T> of the current solution, reweighted to N(0, I) exp(E).
    The solution of the exact equations does not depend on A; only the estimator's noise does (the
    effective sample size grows ~5x at strong signal; the defensive part keeps the weights bounded
    where the tilted law is narrower than N(0, C), as the tilt of a bounded phi is bounded).
    ``deflate``: as in :func:`solve` (Newton only)."""
    for i in range(passes):
        prob0 = result.problem
        if prob0.linear or not _equal_weights(prob0):
            # Gauss-Hermite grids integrate the tilt against N(0, C) itself: moved onto N(0, A) and
            # reweighted, the integrand carries exp(-eta^T (A - I) eta / 2), far from a polynomial, and
            # the grid lost 2-5 digits (measured on the toy task, docs/accuracy.md)
            return result
        diag = _jit_residual(prob0, _pack(prob0, jnp.asarray(result.base), jnp.asarray(result.conjugate),
                                          jnp.asarray(result.readout_conjugate)))[3]
        xixi = np.asarray(diag["xixi"])
        xixi = 0.5 * (xixi + xixi.T)
        if not np.linalg.eigvalsh(xixi)[0] > 1e-3:
            return result
        prob = replace(prob0, proposal=PROPOSAL_INFLATION * xixi, defensive=_defensive_mask(prob0))
        last = i == passes - 1
        result = solve(prob, method=method, init=(result.base, result.conjugate, result.readout_conjugate),
                       spectrum=last and spectrum, raise_on_failure=raise_on_failure,
                       **({"deflate": deflate} if method == "newton" else {}))
    return result


RUNG_TOL = 1e-6  # residual of the continuation's intermediate solutions


def continuation(prob_at, signal: float, *, steps: int = 6, passes: int = PROPOSAL_PASSES, **kw) -> FeatureResult:
    """Solve at ``signal`` by continuation from a weak signal: geometric ramp of ``steps`` signals, each
    solved from the previous solution (robust where a direct solve from the lazy point fails); then
    ``passes`` re-solves with an adapted proposal (:func:`refine`)."""
    ladder = signal * np.geomspace(1.0 / 2 ** (steps - 1), 1.0, steps)
    result = None
    spectrum = kw.pop("spectrum", True)
    tol = kw.pop("tol", 1e-10)
    for i, s in enumerate(ladder):
        init = None if result is None else (result.base, result.conjugate, result.readout_conjugate)
        last = i == len(ladder) - 1
        # the rungs below the target only give the next one its start: solved to RUNG_TOL (about half the
        # iterations); the target to ``tol``, so the result is the same solution
        result = solve(prob_at(float(s)), init=init, raise_on_failure=last, spectrum=last and spectrum and not passes,
                       tol=tol if last else max(tol, RUNG_TOL), **kw)
    if passes:
        result = refine(result, passes=passes, spectrum=spectrum)
    return result


def posterior_kernels(net: Network, x, y, *, kappa: float, signal: float = 1.0, supervised_steps=None, x_test=None,
                      width=None, points: int = 2**14, seed: int = 0, rule: str = "auto",
                      spectrum: bool = False, replicates: int = 2, progress=True, checkpoint=None,
                      resume: bool = False, start=None) -> FeatureResult:
    """Posterior (feature-learning) kernels of a muP-trained DNN or RNN: the saddle point F4-F7.

    Args:
        net: ``netfield.dnn`` or ``netfield.rnn`` (weight_var, bias_var, input_var, readout_var).
        x: training inputs (P, d) (input at step 1) or (P, T_in, d).
        y: targets, shape (len(supervised_steps), P) (or (P,) for one supervised step).
        kappa: likelihood variance times n (temperature), > 0.
        signal: signal strength s > 0: the likelihood sees sqrt(s) * y; s -> 0 is the lazy (GP) limit.
        supervised_steps: steps with targets (default: the last step only).
        x_test: test inputs for the predictor (same shape convention as x).
        width: if given, keep the O(1/n) log-determinant of the exact marginal likelihood (F7).
        points: nodes of the tilted single-site averages (at most; see ``rule``); with ``"mcmc"`` the
            Markov-chain draws of the final rounds.
        rule: ``"hermite"`` (tensor Gauss-Hermite, floor(points^(1/(T P))) nodes per dimension),
            ``"qmc"`` (scrambled Sobol with all 2^T sign flips), ``"mcmc"`` (Hamiltonian Monte Carlo of
            the single-site law with reweighting, for tens of patterns and steps: docs/feature.md F8c,
            :func:`netfield.feature.sampled.solve_sampled`) or ``"auto"`` (Gauss-Hermite when that gives
            >= 6 nodes per dimension, else QMC up to T P = MAX_QUADRATURE_DIM (24) dimensions, else
            ``"mcmc"``).
        spectrum: also return the eigenvalues of the saddle-point map's Jacobian (stability; not with
            ``"mcmc"``, whose dimension makes the dense Jacobian the dominant cost).
        replicates: solutions behind the numerical error (``kernel_error``, ``overlap_error``,
            ``prediction_error``; docs/accuracy.md): QMC, the standard deviation over ``replicates``
            scramblings (seeds seed, seed + 1, ...); Gauss-Hermite, the change from m - 1 to m nodes per
            dimension (any ``replicates >= 2``). 1: no error estimate (None). The returned solution is
            always the one of ``seed`` (at m nodes), so its numbers do not depend on ``replicates``.
            The default 2 is a rough estimate (one degree of freedom); 4-8 for a reliable one.
            ``"mcmc"``: not used; the error comes from 16 independent groups of chains (F8c).
        progress: ``"mcmc"`` only: a bar counting the sampling rounds (True, False / None, or a callable).
        checkpoint, resume: ``"mcmc"`` only: a .npz file written after every sampling round; ``resume=True``
            continues an interrupted run from it with the numbers of an uninterrupted one.
        start: ``"mcmc"`` only: a solution of the same network and data at another signal; the continuation
            runs from it, so the solve follows its branch (:func:`netfield.feature.sampled.solve_sampled`).

    Returns:
        :class:`FeatureResult`; raises :class:`NonConvergenceError` if the solve fails.

    Cost: ``replicates`` saddle-point solves (the Gauss-Hermite pair: one on the coarser grid), each
    ~``points`` x (T P)^2 work per iteration; ``points`` and ``replicates`` are the levers. ``"mcmc"``:
    a few rounds of sampling and solving at growing numbers of draws up to ``points`` (P = 20, T = 5 at
    2^14 draws: about a minute on 2 cores, docs/feature.md F8c).

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.feature import posterior_kernels
        >>> net = netfield.rnn(3, "erf", weight_var=1.5)
        >>> x, y = np.array([[1.0, 0.5], [-0.3, 1.0]]), np.array([1.0, -1.0])
        >>> r = posterior_kernels(net, x, y, kappa=0.1, signal=0.2, points=2**11)
        >>> r.converged, r.kernel.shape, bool(r.kernel_error.max() < 0.1)  # 2**11 points: ~0.03
        (True, (3, 3, 2, 2), True)
    """
    replicates = check_positive_int("replicates", replicates)

    def problem_at(pts, sd, rl=rule):
        return lambda s: build_problem(net, x, y, kappa=kappa, signal=s, supervised_steps=supervised_steps,
                                       x_test=x_test, width=width, points=pts, seed=sd, rule=rl)

    def at(pts, sd, spec):
        return continuation(problem_at(pts, sd), signal, spectrum=spec)

    probe = problem_at(points, seed, "mcmc")(signal)  # validates the inputs; T, P; no nodes worth the name
    if not probe.linear and resolve_rule(rule, points, probe.T, probe.P)[0] == "mcmc":
        if spectrum:
            raise ValueError("spectrum=True is not available with rule='mcmc' (the dense Jacobian of T P x T P "
                             "blocks); use rule='qmc' for small problems, or spectrum=False")
        from .sampled import solve_sampled

        return solve_sampled(problem_at(points, seed, "mcmc"), signal, samples=points, seed=seed, progress=progress,
                             checkpoint=checkpoint, resume=resume, start=start)
    if start is not None:
        raise ValueError("start applies to rule='mcmc' (Markov chains) only; quadrature rules follow a branch with "
                         "netfield.feature.broken_branch")
    if checkpoint is not None or resume:
        raise ValueError("checkpoint / resume apply to rule='mcmc' (Markov chains) only; quadrature solves are not "
                         "checkpointed")

    result = at(points, seed, spectrum)
    if replicates < 2:
        return result
    prob = result.problem
    if prob.linear:  # closed form: exact
        return replace(result, kernel_error=np.zeros_like(result.kernel), overlap_error=np.zeros_like(result.overlap),
                       prediction_error=np.zeros_like(result.prediction))
    used, m = resolve_rule(rule, points, prob.T, prob.P)
    if used == "qmc":
        runs = [result] + [at(points, seed + r, False) for r in range(1, replicates)]
        spread = lambda name: np.std([getattr(r, name) for r in runs], axis=0, ddof=1)
    else:
        if m < 3:
            raise ValueError(f"points must give at least 3 Gauss-Hermite nodes per dimension (3**{prob.T * prob.P}) "
                             f"for the embedded error estimate, got points={points!r}; or replicates=1")
        coarse = at((m - 1) ** (prob.T * prob.P), seed, False)
        spread = lambda name: np.abs(getattr(result, name) - getattr(coarse, name))
    return replace(result, kernel_error=spread("kernel"), overlap_error=spread("overlap"),
                   prediction_error=spread("prediction"))


def _prediction(prob: Problem, diag) -> np.ndarray:
    """Posterior mean f_t(x*) = readout_var <phi(h_t(x*)) phi(h_S)^T> M^-1 y  (F8), in units of y."""
    Ptr, P = prob.P_train, prob.P
    if P == Ptr:
        return np.zeros((prob.T, 0))
    phph = np.asarray(diag["phph"])
    a = np.asarray(diag["a"])
    S = [s - 1 for s in prob.supervised]
    out = np.zeros((prob.T, P - Ptr))
    for t in range(prob.T):
        cross = np.concatenate([phph[t, s, Ptr:, :Ptr] for s in S], axis=1)  # (P_test, |S| Ptr)
        out[t] = prob.net.readout_var * cross @ a / np.sqrt(prob.signal)
    return out


@jax.jit
def _sector_jacobian(prob, v0, idx):
    def f(u):
        c2, ct2, qt2, _ = saddle_map(prob, *_unpack(prob, v0.at[idx].add(u)))
        return _pack(prob, c2, ct2, qt2)[idx]

    return jax.jacfwd(f)(jnp.zeros(idx.shape[0]))


def stability_spectrum(prob: Problem, state, *, sector: str = "all") -> np.ndarray:
    """Eigenvalues of the Jacobian of the (undamped) saddle-point map at ``state`` (F9).

    ``sector="all"``: all free variables (C and Ct on free blocks, Qt); ``"cross"``: only the RNN's
    cross-time blocks (t != s) of C and Ct. The Jacobian is exact (JAX forward mode) and is taken
    only along the chosen variables.
    """
    C, ct, qt = state
    v0 = _pack(prob, C, ct, qt)
    idx = _free_index(prob, sector)
    if idx.size == 0:
        return np.zeros(0)

    jac = np.asarray(_sector_jacobian(prob, v0, jnp.asarray(idx)))
    return np.linalg.eigvals(jac)
