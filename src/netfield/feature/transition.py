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
import warnings
from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int
from .._runtime.accuracy import AccuracyWarning
from .._runtime.progress import check_progress, progress_bar
from ..program.shape import chain_of, require_chain
from .theory import (
    MAX_QUADRATURE_DIM,
    FeatureResult,
    _free_index,
    _pack,
    _sector_jacobian,
    _unpack,
    build_problem,
    continuation,
    refine,
    resolve_rule,
    solve,
    stability_spectrum,
)


@dataclass(frozen=True)
class TransitionScan:
    """Leading cross-time eigenvalue vs signal and the located transition, with their numerical errors.

    Attributes:
        signals: signal strengths scanned.
        eigenvalue: largest real part of the cross-time Jacobian spectrum at the symmetric solution (the
            mean over the QMC replicates; the finer Gauss-Hermite grid's value).
        critical_signal: where it crosses 1 (log-linear interpolation between the bracketing
            signals, refined by regula falsi), or None if it does not cross in the scanned range.
        architecture: "rnn" ("dnn": no cross-time sector, eigenvalue 0, no transition).
        eigenvalue_error, critical_signal_error: their estimated numerical errors (QMC: the standard
            error over ``replicates`` independently scrambled node sets; Gauss-Hermite: the change from
            m - 1 to m nodes per dimension); None where not computed (the DNN, no crossing). The critical
            signal's error adds (in quadrature) ``interpolation_error``, the error of the straight-line
            crossing on the final bracket (its distance from the parabola's crossing through the bracket
            and the nearest other evaluated signal; half the bracket if there is none), so that a coarser
            grid or fewer ``refine`` steps move the critical signal by no more than its stated error.
        rule, points, replicates: the node rule and the number of points that gave these numbers
            (after any increase to meet ``rtol``), and the replicates behind the error.
        replicate_eigenvalues: each replicate's (Gauss-Hermite: each grid's) leading eigenvalue at
            ``signals``, shape (replicates, signals): what ``transition(..., eigenvalues=...)`` reuses.
    """

    signals: tuple
    eigenvalue: tuple
    critical_signal: float | None
    architecture: str
    eigenvalue_error: tuple | None = None
    critical_signal_error: float | None = None
    rule: str | None = None
    points: int | None = None
    replicates: int | None = None
    replicate_eigenvalues: tuple | None = None
    interpolation_error: float | None = None

    def to_dict(self) -> dict:
        return {"signals": list(self.signals), "eigenvalue": list(self.eigenvalue),
                "critical_signal": self.critical_signal, "architecture": self.architecture,
                "eigenvalue_error": None if self.eigenvalue_error is None else list(self.eigenvalue_error),
                "critical_signal_error": self.critical_signal_error, "rule": self.rule, "points": self.points,
                "replicates": self.replicates, "interpolation_error": self.interpolation_error,
                "replicate_eigenvalues": None if self.replicate_eigenvalues is None
                else [list(r) for r in self.replicate_eigenvalues]}


def _leading(prob, result: FeatureResult) -> float:
    spec = stability_spectrum(prob, (result.base, result.conjugate, result.readout_conjugate), sector="cross")
    return float(np.max(spec.real)) if spec.size else 0.0


def cross_time_eigenvalue(net, x, y, *, kappa, signal, points=2**13, seed=0, **kw):
    """(leading cross-time eigenvalue, symmetric solution) at one signal strength."""
    result = continuation(lambda s: build_problem(net, x, y, kappa=kappa, signal=s, points=points, seed=seed, **kw),
                          signal, spectrum=False)
    return _leading(result.problem, result), result


REPLICATES = 4  # independently scrambled QMC node sets behind the transition's error estimate
RTOL = 0.01  # default relative tolerance of the critical signal
MAX_POINTS = 2**17  # the most points the transition raises its node count to while meeting rtol


def _variants(rule: str, m: int, points: int, seed: int, replicates: int, T: int, P: int) -> list:
    """(points, seed) of the node sets whose spread is the error estimate: QMC, ``replicates``
    scramblings (seeds seed, seed + 1, ...); Gauss-Hermite, the grid of m and of m - 1 nodes per
    dimension (an embedded pair: the estimate is the finer grid's, the error their difference)."""
    if rule == "qmc":
        return [(points, seed + r) for r in range(replicates)]
    return [(m ** (T * P), seed), ((m - 1) ** (T * P), seed)]


def _combine(rule: str, values: np.ndarray):
    """(estimate, error) over the variants' values (axis 0), as :func:`_variants` describes."""
    values = np.asarray(values, float)
    if rule == "qmc":
        return values.mean(axis=0), values.std(axis=0, ddof=1) / np.sqrt(values.shape[0])
    return values[0], np.abs(values[0] - values[1])


def _crossing(lo, hi, flo, fhi) -> float:
    """Zero of the line through (lo, flo), (hi, fhi) (log signal, eigenvalue - 1), as a signal."""
    return float(np.exp(lo - flo * (hi - lo) / (fhi - flo)))


def _scan(eigenvalue, signals, lam, refine: int, rule: str):
    """Eigenvalues of every variant at ``signals`` (``lam``: (variants, signals) if already known), the
    crossing of their estimate refined by ``refine`` regula-falsi steps, and each variant's own crossing
    on the final bracket. Returns (estimate curve, its errors, critical signal, its quadrature error,
    its interpolation error (:func:`_interpolation_error`))."""
    values = np.array(lam, float)  # (variants, signals)
    est, err = _combine(rule, values)
    for i in range(len(signals) - 1):
        if est[i] < 1.0 <= est[i + 1]:
            seen = [(float(np.log(s)), float(e) - 1.0) for s, e in zip(signals, est)]  # (log signal, estimate - 1)
            lo, hi = np.log(signals[i]), np.log(signals[i + 1])
            vlo, vhi = values[:, i] - 1, values[:, i + 1] - 1
            for _ in range(refine):
                flo, fhi = _combine(rule, vlo)[0], _combine(rule, vhi)[0]
                mid = lo - flo * (hi - lo) / (fhi - flo)  # regula falsi in log signal, on the estimate
                vmid = np.array([eigenvalue(v, float(np.exp(mid))) for v in range(values.shape[0])]) - 1
                seen.append((float(mid), float(_combine(rule, vmid)[0])))
                if _combine(rule, vmid)[0] < 0:
                    lo, vlo = mid, vmid
                else:
                    hi, vhi = mid, vmid
            flo, fhi = _combine(rule, vlo)[0], _combine(rule, vhi)[0]
            critical = _crossing(lo, hi, flo, fhi)
            each = np.array([_crossing(lo, hi, a, b) for a, b in zip(vlo, vhi)])
            return (est, err, critical, float(_combine(rule, each[:, None])[1][0]),
                    _interpolation_error(seen, lo, hi, critical))
    return est, err, None, None, None


def _interpolation_error(seen, lo: float, hi: float, critical: float) -> float:
    """Error of the straight-line crossing ``critical`` on the final bracket [lo, hi] (log signals): its
    distance from the crossing of the parabola through the bracket's ends and the evaluated point
    nearest to them (``seen``: (log signal, estimate - 1) of every evaluated signal), the leading term
    of linear interpolation's error. With no third point (two signals, ``refine=0``) only the bracket
    is known: half its width."""
    ends = {float(lo), float(hi)}
    others = [p for p in seen if p[0] not in ends]
    if not others:
        return float(np.exp(hi) - np.exp(lo)) / 2
    third = min(others, key=lambda p: min(abs(p[0] - lo), abs(p[0] - hi)))
    by_x = dict(seen)
    xs = np.array([lo, hi, third[0]])
    coef = np.polyfit(xs, [by_x[float(lo)], by_x[float(hi)], third[1]], 2)
    roots = [r.real for r in np.roots(coef) if abs(r.imag) < 1e-12 and lo <= r.real <= hi]
    if not roots:  # rounding at a bracket end: the bracket is all that is known
        return float(np.exp(hi) - np.exp(lo)) / 2
    return float(abs(np.exp(min(roots, key=lambda r: abs(np.exp(r) - critical))) - critical))


def transition(net, x, y, *, kappa: float, signals=(0.05, 0.1, 0.2, 0.4, 0.8, 1.6), refine: int = 4,
               points: int = 2**13, seed: int = 0, eigenvalues=None, progress=True, replicates: int = REPLICATES,
               rtol: float | None = RTOL, max_points: int = MAX_POINTS, **kw) -> TransitionScan:
    """Scan the cross-time stability of the symmetric solution and locate the transition (F9), with the
    numerical error of both (docs/accuracy.md).

    The error comes from the spread of independent estimates: with QMC nodes, ``replicates``
    independently scrambled node sets (seeds ``seed``, ``seed + 1``, ...; the estimate is their mean,
    the error its standard error); with Gauss-Hermite nodes (``rule="hermite"``, or ``"auto"`` where it
    picks them), the grids of m and m - 1 nodes per dimension (the estimate is the finer one's, the error
    their difference). The regula-falsi steps refine the estimate's crossing; each replicate's own
    crossing on the final bracket gives the critical signal's error. While that error is above
    ``rtol`` x the critical signal, the node count is raised (x4 for QMC, m + 1 for Gauss-Hermite; the
    rule is kept) up to ``max_points``; if the tolerance is still not met, the result comes with an
    :class:`~netfield._runtime.accuracy.AccuracyWarning` giving the achieved error (``rtol=None``: one
    pass at ``points``, no check).

    ``signals`` are scanned in increasing order (the result's ``signals`` are sorted).
    ``eigenvalues``: the leading eigenvalues at ``signals`` if already known, shape (replicates,
    signals) for QMC (seeds seed, seed + 1, ...; e.g. from :func:`broken_branch`), (2, signals) for
    Gauss-Hermite (m, m - 1 nodes); only the ``refine`` regula-falsi steps are then computed (on the
    first pass).

    Cost: one symmetric solution and its cross-time Jacobian per signal and replicate, plus ``refine``
    more per replicate at the crossing (the toy task of docs/feature.md: ~2-3 minutes on 2 cores for
    the defaults, which end at 2**15 points); ``points``, ``replicates``, the number of ``signals``,
    ``refine`` and ``rtol`` are the levers. ``progress`` (default True: a bar on stderr over the
    solutions; False: quiet; or a callable ``progress(k)``: :mod:`netfield._runtime.progress`).
    """
    signals = tuple(float(s) for s in signals)
    chain = require_chain(net, "the feature-learning transition", "sampling the posterior of finite networks")
    if not signals or not all(math.isfinite(s) and s > 0 for s in signals):
        raise ValueError(f"signals must be a non-empty sequence of finite numbers > 0, got {signals!r}")
    if len(set(signals)) != len(signals):
        raise ValueError(f"signals must be distinct, got {signals!r}")
    order = np.argsort(signals)  # the scan runs in increasing signal (eigenvalues' columns follow)
    signals = tuple(signals[i] for i in order)
    refine = check_positive_int("refine", refine, minimum=0)
    replicates = check_positive_int("replicates", replicates, minimum=2)
    max_points = check_positive_int("max_points", max_points)
    if rtol is not None and (isinstance(rtol, bool) or not isinstance(rtol, (int, float, np.integer, np.floating))
                             or not (math.isfinite(rtol) and rtol > 0)):
        raise ValueError(f"rtol must be a finite number > 0 or None (no tolerance), got {rtol!r}")
    check_progress(progress)
    # x, y, kappa and the options: checked here also where no solution is computed (the DNN)
    prob = build_problem(net, x, y, kappa=kappa, signal=signals[0], points=points, seed=seed, **kw)
    if not chain.shared:  # no cross-time sector (docs/feature.md F9)
        return TransitionScan(signals, tuple(0.0 for _ in signals), None, chain.kind)
    rule, m = resolve_rule(kw.pop("rule", "auto"), points, prob.T, prob.P)
    if rule == "mcmc":
        raise ValueError(f"transition needs a quadrature rule ('qmc' or 'hermite') for the Jacobian of the "
                         f"saddle-point map; T P = {prob.T * prob.P} dimensions resolve to 'mcmc' (rule='mcmc' or "
                         f"'auto' above {MAX_QUADRATURE_DIM}): pass rule='qmc'")
    n_var = replicates if rule == "qmc" else 2
    if rule == "hermite" and m < 3:
        raise ValueError(f"points must give at least 3 Gauss-Hermite nodes per dimension (3**{prob.T * prob.P} = "
                         f"{3 ** (prob.T * prob.P)}) for the embedded error estimate, got points={points!r}")
    if eigenvalues is not None:
        eigenvalues = np.asarray(eigenvalues, float)
        if eigenvalues.shape != (n_var, len(signals)):
            raise ValueError(f"eigenvalues must have shape ({n_var}, {len(signals)}) (one row per "
                             f"{'replicate' if rule == 'qmc' else 'grid'}, one value per signal), got "
                             f"{eigenvalues.shape}")
        eigenvalues = eigenvalues[:, order]
    while True:
        variants = _variants(rule, m, points, seed, replicates, prob.T, prob.P)
        total = n_var * ((0 if eigenvalues is not None else len(signals)) + int(refine))
        with progress_bar(progress, total, f"transition: solutions at {variants[0][0]} points") as bar:

            def eigenvalue(v, signal, variants=variants, bar=bar):
                pts, sd = variants[v]
                value = cross_time_eigenvalue(net, x, y, kappa=kappa, signal=signal, points=pts, seed=sd, rule=rule,
                                              **kw)[0]
                bar(1)
                return value

            lam = eigenvalues if eigenvalues is not None else [[eigenvalue(v, s) for s in signals]
                                                               for v in range(n_var)]
            est, err, critical, critical_err, interpolation_err = _scan(eigenvalue, signals, lam, refine, rule)
            if critical is None:
                bar(n_var * refine)  # no crossing: no refinement to wait for
        # more points reduce the quadrature part of the error only (the interpolation part needs refine)
        done = critical is None or rtol is None or critical_err <= rtol * critical
        following = points * 4 if rule == "qmc" else (m + 1) ** (prob.T * prob.P)
        if done or following > max_points:
            break
        points, m, eigenvalues = following, m + 1, None
    if not done:
        warnings.warn(f"the critical signal {critical:.4g} has an estimated error {critical_err:.2g} "
                      f"({critical_err / critical:.1%}) above rtol={rtol:g} at {variants[0][0]} points ({rule}); raise "
                      f"max_points (now {max_points}) or replicates, or loosen rtol", AccuracyWarning, stacklevel=2)
    if critical is not None:
        if rtol is not None and interpolation_err > rtol * critical:
            warnings.warn(f"the critical signal {critical:.4g} is interpolated between signals with an estimated "
                          f"error {interpolation_err:.2g} ({interpolation_err / critical:.1%}) above rtol={rtol:g}; "
                          f"raise refine (now {refine}) or scan signals closer to it", AccuracyWarning, stacklevel=2)
        critical_err = float(np.hypot(critical_err, interpolation_err))
    return TransitionScan(signals, tuple(float(v) for v in est), critical, chain.kind, tuple(float(e) for e in err),
                          critical_err, rule, int(variants[0][0]), n_var,
                          tuple(tuple(float(v) for v in row) for row in np.asarray(lam, float)), interpolation_err)


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
