"""The feature-learning transition of endpoint-supervised RNNs (docs/feature.md F9-F10).

With an odd activation, no bias and the input at step 1 only, C(t, s) = 0 for t != s (the symmetric
solution) solves the RNN's saddle point at every signal strength, and then equals the DNN's solution
(the estimator is exactly sign-symmetric, so this holds to rounding). Its stability in the RNN's
cross-time sector is the leading eigenvalue lambda(signal) of the Jacobian of the saddle-point map
restricted to the cross-time blocks of C and Ct (F9); the transition is where lambda crosses 1.
Above it, iterating the map from the symmetric solution plus a small cross-time perturbation
along the unstable eigenvector reaches the broken solution with C(t, s) != 0 (F10): correlated
representations across time, in the RNN only (the DNN has no cross-time blocks).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int
from .._runtime.progress import check_progress, progress_bar
from ..program.shape import chain_of, require_chain
from .theory import (
    FeatureResult,
    _free_index,
    _pack,
    _sector_jacobian,
    _unpack,
    build_problem,
    continuation,
    refine,
    solve,
    stability_spectrum,
)


@dataclass(frozen=True)
class TransitionScan:
    """Leading cross-time eigenvalue vs signal and the located transition.

    Attributes:
        signals: signal strengths scanned.
        eigenvalue: largest real part of the cross-time Jacobian spectrum at the symmetric solution.
        critical_signal: where it crosses 1 (log-linear interpolation between the bracketing
            signals, refined by bisection), or None if it does not cross in the scanned range.
        architecture: "rnn" ("dnn": no cross-time sector, eigenvalue 0, no transition).
    """

    signals: tuple
    eigenvalue: tuple
    critical_signal: float | None
    architecture: str

    def to_dict(self) -> dict:
        return {"signals": list(self.signals), "eigenvalue": list(self.eigenvalue),
                "critical_signal": self.critical_signal, "architecture": self.architecture}


def _leading(prob, result: FeatureResult) -> float:
    spec = stability_spectrum(prob, (result.base, result.conjugate, result.readout_conjugate), sector="cross")
    return float(np.max(spec.real)) if spec.size else 0.0


def cross_time_eigenvalue(net, x, y, *, kappa, signal, points=2**13, seed=0, **kw):
    """(leading cross-time eigenvalue, symmetric solution) at one signal strength."""
    result = continuation(lambda s: build_problem(net, x, y, kappa=kappa, signal=s, points=points, seed=seed, **kw),
                          signal, spectrum=False)
    return _leading(result.problem, result), result


def transition(net, x, y, *, kappa: float, signals=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6), refine: int = 4,
               points: int = 2**13, seed: int = 0, eigenvalues=None, progress=True, **kw) -> TransitionScan:
    """Scan the cross-time stability of the symmetric solution and locate the transition (F9).

    ``eigenvalues``: the leading eigenvalues at ``signals`` if already known (e.g. from
    :func:`broken_branch`); only the ``refine`` regula-falsi steps are then computed.

    Cost: one symmetric solution and its cross-time Jacobian per signal, plus ``refine`` more at the
    crossing (~45 s for the defaults on 2 cores, 3 steps, 2**13 points); ``points``, the number of
    ``signals`` and ``refine`` are the levers. ``progress`` (default True: a bar on stderr over the
    solutions; False: quiet; or a callable ``progress(k)``: :mod:`netfield._runtime.progress`).
    """
    signals = tuple(float(s) for s in signals)
    chain = require_chain(net, "the feature-learning transition", "sampling the posterior of finite networks")
    if not signals or not all(math.isfinite(s) and s > 0 for s in signals):
        raise ValueError(f"signals must be a non-empty sequence of finite numbers > 0, got {signals!r}")
    refine = check_positive_int("refine", refine, minimum=0)
    check_progress(progress)
    # x, y, kappa and the options: checked here also where no solution is computed (the DNN)
    build_problem(net, x, y, kappa=kappa, signal=signals[0], points=points, seed=seed, **kw)
    if not chain.shared:  # no cross-time sector (docs/feature.md F9)
        return TransitionScan(signals, tuple(0.0 for _ in signals), None, chain.kind)
    if eigenvalues is not None and len(eigenvalues) != len(signals):
        raise ValueError(f"eigenvalues must have one value per signal ({len(signals)}), got {len(eigenvalues)}")
    total = (0 if eigenvalues is not None else len(signals)) + int(refine)
    with progress_bar(progress, total, "transition: solutions") as bar:

        def eigenvalue(signal):
            value = cross_time_eigenvalue(net, x, y, kappa=kappa, signal=signal, points=points, seed=seed, **kw)[0]
            bar(1)
            return value

        lam = list(eigenvalues) if eigenvalues is not None else [eigenvalue(s) for s in signals]
        critical = None
        for i in range(len(signals) - 1):
            if lam[i] < 1.0 <= lam[i + 1]:
                lo, hi, flo, fhi = np.log(signals[i]), np.log(signals[i + 1]), lam[i] - 1, lam[i + 1] - 1
                for _ in range(refine):
                    mid = lo - flo * (hi - lo) / (fhi - flo)  # regula falsi in log signal
                    fmid = eigenvalue(float(np.exp(mid))) - 1
                    if fmid < 0:
                        lo, flo = mid, fmid
                    else:
                        hi, fhi = mid, fmid
                critical = float(np.exp(lo - flo * (hi - lo) / (fhi - flo)))
                break
        if critical is None:
            bar(refine)  # no crossing: no refinement to wait for
    return TransitionScan(signals, tuple(lam), critical, chain.kind)


def order_parameter(kernel, kernel_sq=None, *, train_patterns: int, free=None) -> float:
    """Cross-time order parameter q: root mean square over the cross-time pairs t < s (t, s >= 2: the
    blocks the recurrent weights couple) and the training patterns mu of the correlation coefficient

        r_ts(mu) = K_ts(mu, mu) / sqrt(K_tt(mu, mu) K_ss(mu, mu))                                   (F11)

    of the pre-activation kernel K (theory: ``FeatureResult.kernel``; sampling: ``PosteriorSamples``,
    passing ``kernel_sq`` = E[K_ts^2] so that the sign the symmetry W -> -W leaves free does not cancel
    in the average: then q^2 uses E[K_ts(mu, mu)^2], which includes the O(1/n) fluctuations).
    """
    K = np.asarray(kernel)
    T = K.shape[0]
    vals = []
    for t in range(1, T):
        for s in range(t + 1, T):
            if free is not None and not free[t, s]:
                continue
            for mu in range(train_patterns):
                num = K[t, s, mu, mu] ** 2 if kernel_sq is None else np.asarray(kernel_sq)[t, s, mu, mu]
                vals.append(num / (K[t, t, mu, mu] * K[s, s, mu, mu]))
    return float(np.sqrt(np.mean(vals))) if vals else 0.0


@dataclass(frozen=True)
class BrokenBranch:
    """The cross-time order parameter q (F11) vs signal on the solution the RNN settles on.

    Attributes:
        signals: increasing signal strengths.
        order: q on the broken branch where it exists (above the transition), else 0 (the symmetric
            solution, the only one there; the DNN's only solution everywhere).
        eigenvalue: leading cross-time eigenvalue of the symmetric solution (F9; 0 for the DNN).
        results: the FeatureResult at each signal (broken where it exists, else symmetric).
        architecture: "rnn" or "dnn".
    """

    signals: tuple
    order: tuple
    eigenvalue: tuple
    results: tuple
    architecture: str

    def to_dict(self) -> dict:
        return {"signals": list(self.signals), "order": list(self.order), "eigenvalue": list(self.eigenvalue),
                "architecture": self.architecture}


def _leading_direction(prob, result: FeatureResult):
    """(eigenvalue, packed positions, real eigenvector) of the leading cross-time Jacobian mode (F9)."""
    v0 = _pack(prob, result.base, result.conjugate, result.readout_conjugate)
    idx = _free_index(prob, "cross")
    if idx.size == 0:  # no cross-time sector (T < 3)
        return 0.0, idx, np.zeros(0)
    jac = np.asarray(_sector_jacobian(prob, v0, jnp.asarray(idx)))
    w, vecs = np.linalg.eig(jac)
    i = int(np.argmax(w.real))
    return float(w[i].real), idx, np.real(vecs[:, i])


AMPLITUDES = (0.1, -0.1, 0.3)  # starting displacements along the unstable mode (x the equal-time kernel scale)
MIN_ORDER = 1e-4  # below this q a solution counts as the symmetric one
NEWTON_ITERATIONS = 40


def broken_solution(net, x, y, *, kappa: float, signal: float, points: int = 2**13, seed: int = 0,
                    init: FeatureResult | None = None, symmetric: FeatureResult | None = None,
                    direction=None, **kw) -> FeatureResult:
    """The RNN's broken-symmetry solution (C(t, s) != 0 for t != s) at ``signal`` (F10), or the symmetric
    solution where there is none (below the transition, and always for the DNN).

    Deflated Newton (:func:`netfield.feature.theory.solve` with ``deflate``; Newton because the broken
    branch may be unstable under plain iteration near the bifurcation, deflation so that it cannot fall
    back onto the symmetric root next to its start): from the symmetric solution displaced along the
    leading unstable cross-time mode by ``AMPLITUDES`` x the equal-time kernel scale, until a solution
    with q > MIN_ORDER is found (where the symmetric solution is stable, lambda <= 1, it is returned: the
    transition is a supercritical pitchfork, docs/feature.md F10); with ``init`` (a nearby broken
    solution, e.g. at a neighbouring signal) Newton starts there first. ``symmetric``: the symmetric solution at this signal if already known,
    ``direction``: its :func:`_leading_direction` if already known.
    """
    prob_at = lambda s: build_problem(net, x, y, kappa=kappa, signal=s, points=points, seed=seed, **kw)
    sym = continuation(prob_at, signal, spectrum=False) if symmetric is None else symmetric
    if not chain_of(net).shared or sym.problem.T < 3:
        return sym
    prob = sym.problem
    known = [(sym.base, sym.conjugate, sym.readout_conjugate)]
    lam, idx, vec = _leading_direction(prob, sym) if direction is None else direction
    if lam <= 1.0:  # stable symmetric solution: below the (supercritical) transition there is no other
        return sym
    T, P = prob.T, prob.P
    c_part = np.abs(vec[idx < T * T * P * P]).max()
    scale = float(np.mean([np.abs(np.diagonal(sym.base[t, t])).mean() for t in range(1, T)]))
    v0 = _pack(prob, sym.base, sym.conjugate, sym.readout_conjugate)
    starts = [] if init is None else [(init.base, init.conjugate, init.readout_conjugate)]
    starts += [_unpack(prob, v0.at[jnp.asarray(idx)].add(jnp.asarray(a * scale * vec / c_part)))
               for a in AMPLITUDES]
    for start in starts:
        result = solve(prob, method="newton", max_iter=NEWTON_ITERATIONS, init=start, spectrum=False,
                       raise_on_failure=False, deflate=known)
        if result.converged and _q(result) > MIN_ORDER:
            refined = refine(result, method="newton", raise_on_failure=False, deflate=known)
            if refined.converged and _q(refined) > MIN_ORDER:
                return refined
    return sym


def _q(result: FeatureResult) -> float:
    return order_parameter(result.kernel, train_patterns=result.problem.P_train, free=result.problem.free)


def broken_branch(net, x, y, *, kappa: float, signals, points: int = 2**13, seed: int = 0, progress=True,
                  **kw) -> BrokenBranch:
    """Trace the order parameter q (F11) vs signal: the broken solution is found at the largest signal
    and followed downwards by Newton continuation until it merges with the symmetric one (q -> 0 at the
    transition); below, and for the DNN, q = 0.

    Cost: per signal a symmetric solution, its Jacobian and a broken-solution search (several Newton
    solves from a few starts at the largest signal); ``points`` and the number of ``signals`` are the
    levers. ``progress``: as :func:`transition`, over the signals."""
    chain = require_chain(net, "the feature-learning transition", "sampling the posterior of finite networks")
    signals = tuple(sorted(float(s) for s in signals))
    if not signals or min(signals) <= 0:
        raise ValueError(f"signals must be a non-empty sequence of positive numbers, got {signals!r}")
    check_progress(progress)
    with progress_bar(progress, len(signals), "broken branch: signals") as bar:
        return _branch(net, x, y, chain, kappa, signals, points, seed, bar, kw)


def _branch(net, x, y, chain, kappa, signals, points, seed, bar, kw) -> BrokenBranch:
    results, order, lam = [None] * len(signals), [0.0] * len(signals), [0.0] * len(signals)
    prev = None
    for i in reversed(range(len(signals))):
        sym = direction = None
        if chain.shared:
            sym = continuation(lambda s: build_problem(net, x, y, kappa=kappa, signal=s, points=points, seed=seed, **kw),
                               signals[i], spectrum=False)
            direction = _leading_direction(sym.problem, sym)  # one Jacobian: the eigenvalue and the start
            lam[i] = direction[0]
        r = broken_solution(net, x, y, kappa=kappa, signal=signals[i], points=points, seed=seed, init=prev,
                            symmetric=sym, direction=direction, **kw)
        q = _q(r)
        prev = r if q > MIN_ORDER else None
        results[i], order[i] = r, (q if q > MIN_ORDER else 0.0)  # symmetric: 0 by symmetry (the rest is rounding)
        bar(1)
    return BrokenBranch(signals, tuple(order), tuple(lam), tuple(results), chain.kind)
