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

from dataclasses import dataclass

import numpy as np

from .theory import FeatureResult, build_problem, continuation, solve, stability_spectrum


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
               points: int = 2**13, seed: int = 0, **kw) -> TransitionScan:
    """Scan the cross-time stability of the symmetric solution and locate the transition (F9)."""
    signals = tuple(float(s) for s in signals)
    if net.architecture != "rnn":
        return TransitionScan(signals, tuple(0.0 for _ in signals), None, net.architecture)
    lam = [cross_time_eigenvalue(net, x, y, kappa=kappa, signal=s, points=points, seed=seed, **kw)[0] for s in signals]
    critical = None
    for i in range(len(signals) - 1):
        if lam[i] < 1.0 <= lam[i + 1]:
            lo, hi, flo, fhi = np.log(signals[i]), np.log(signals[i + 1]), lam[i] - 1, lam[i + 1] - 1
            for _ in range(refine):
                mid = lo - flo * (hi - lo) / (fhi - flo)  # regula falsi in log signal
                fmid = cross_time_eigenvalue(net, x, y, kappa=kappa, signal=float(np.exp(mid)), points=points,
                                             seed=seed, **kw)[0] - 1
                if fmid < 0:
                    lo, flo = mid, fmid
                else:
                    hi, fhi = mid, fmid
            critical = float(np.exp(lo - flo * (hi - lo) / (fhi - flo)))
            break
    return TransitionScan(signals, tuple(lam), critical, net.architecture)


def broken_solution(net, x, y, *, kappa: float, signal: float, points: int = 2**13, seed: int = 0,
                    perturbation: float = 0.05, max_iter: int = 3000, **kw) -> FeatureResult:
    """The solution reached from the symmetric one plus a cross-time perturbation (F10).

    Below the transition this returns to the symmetric solution (cross-time overlaps ~ 0); above it
    the RNN settles on the broken solution.
    """
    prob_at = lambda s: build_problem(net, x, y, kappa=kappa, signal=s, points=points, seed=seed, **kw)
    sym = continuation(prob_at, signal, spectrum=False)
    prob = sym.problem
    base = sym.base.copy()
    T = prob.T
    rng = np.random.default_rng(seed)
    for t in range(1, T):
        for s in range(t + 1, T):  # free cross-time blocks (t, s >= 2): indices >= 1
            if prob.free[t, s]:
                scale = np.sqrt(np.abs(np.diagonal(base[t, t])).mean() * np.abs(np.diagonal(base[s, s])).mean())
                block = perturbation * scale * np.eye(prob.P) * np.sign(rng.normal())
                base[t, s] += block
                base[s, t] += block.T
    result = solve(prob, method="iterate", damping=0.5, tol=1e-9, max_iter=max_iter,
                   init=(base, sym.conjugate, sym.readout_conjugate), spectrum=False, raise_on_failure=False)
    if result.converged:
        result = solve(prob, init=(result.base, result.conjugate, result.readout_conjugate), spectrum=False)
    return result
