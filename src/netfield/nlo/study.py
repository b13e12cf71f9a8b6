"""The seed's comparison (Segadlo et al.): kernel fluctuations of DNNs saturate with depth, RNNs' keep growing.

For a single input, the relative fluctuation of the equal-time conditional kernel, n Var(K^_tt) / K_tt^2
(docs/nlo.md N3), against the step t, for DNN and RNN, in an ordered and a chaotic setting: one-loop theory
(lines) and sampled finite networks (Richardson limits with error bars). Because the theory is causal, one
network of T steps gives every t <= T. The RNN - DNN difference is exactly the cross-time noise term
sum_{t' != s'} R_(tt),(t't') R_(tt),(s's') N_(t't'),(s's') of docs/theory.md eq. 4.1d (docs/nlo.md N7).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._checks import check_positive_int
from ..program import dnn, rnn
from .oneloop import NLOResult, nlo
from .simulate import simulate

X_SINGLE = np.ones((1, 1))  # x = 1, d = 1; with input_var = 0.5 and bias_var b: K_1 = b + 0.5


@dataclass(frozen=True)
class Regime:
    """One (weight_var, bias_var) setting: theory and simulation per architecture, steps t = 2..T."""

    name: str
    weight_var: float
    bias_var: float
    chi1: float
    steps: list
    theory: dict  # arch -> n Var(K_tt) / K_tt^2
    cross_time_term: list  # (RNN - DNN) from the cross-time noise, same normalisation
    simulation: dict  # arch -> {"limit", "limit_se", "largest", "largest_se"}


@dataclass(frozen=True)
class FluctuationStudy:
    activation: str
    input_var: float
    widths: list
    networks: list
    seed: int
    regimes: list

    def to_dict(self) -> dict:
        return asdict(self)


def _equal_time(result: NLOResult, steps: int):
    o = result.observables
    idx = [o.index("hidden", t, t) for t in range(2, steps + 1)]
    return idx, result.variance[idx] / result.kernel[idx] ** 2


def _cross_time_term(result: NLOResult, steps: int):
    o = result.observables
    eq = [o.index("hidden", t, t) for t in range(2, steps + 1)]
    R, N = result.response, result.noise
    out = []
    for i in eq:
        extra = sum(R[i, a] * R[i, b] * N[a, b] for a in eq for b in eq if a != b)
        out.append(extra / result.kernel[i] ** 2)
    return out


def fluctuation_study(activation="tanh", settings=(("ordered", 1.5, 0.5), ("chaotic", 3.0, 0.05)), steps=8,
                      widths=(32, 64, 128), networks=(3000, 1500, 750), seed=0, input_var=0.5, progress=None,
                      simulate_networks=True) -> FluctuationStudy:
    """Theory and simulation of n Var(K^_tt) / K_tt^2 vs t for DNN and RNN (module docstring).

    Args:
        activation: a smooth activation.
        settings: (name, weight_var, bias_var) per regime.
        steps: T (>= 2): the curves cover t = 2..T.
        widths, networks: simulation widths and networks per width (see :func:`netfield.nlo.simulate`).
        seed: simulation seed.
        input_var: input weight variance (x = 1, d = 1 at step 1).
        progress: optional callable progress(k) advanced by sampled networks.
        simulate_networks: False for theory only.
    """
    from ..criticality import criticality

    steps = check_positive_int("steps", steps, minimum=2)
    regimes = []
    for r, (name, wv, bv) in enumerate(settings):
        theory, sim, cross = {}, {}, None
        for arch, build in (("dnn", dnn), ("rnn", rnn)):
            net = build(steps, activation, weight_var=wv, bias_var=bv, input_var=input_var)
            res = nlo(net, X_SINGLE)
            idx, rel = _equal_time(res, steps)
            theory[arch] = rel.tolist()
            if arch == "rnn":
                cross = _cross_time_term(res, steps)
            if simulate_networks:
                s = simulate(net, X_SINGLE, widths=widths, networks=networks, seed=seed + 101 * r + (arch == "rnn"),
                             progress=progress)
                k2 = res.kernel[idx] ** 2
                largest, largest_se = (np.array([s.n_variance(i)[j][-1] for i in idx]) / k2 for j in (0, 1))
                sim[arch] = {"limit": (s.variance_limit[idx] / k2).tolist(),
                             "limit_se": (s.variance_limit_se[idx] / k2).tolist(),
                             "largest": largest.tolist(), "largest_se": largest_se.tolist()}
        chi1 = float(criticality(activation, wv, bv).chi_1)  # of the step-1-free fixed point (input only at t = 1)
        regimes.append(Regime(name, float(wv), float(bv), chi1, list(range(2, steps + 1)), theory, cross, sim))
    counts = np.broadcast_to(np.asarray(networks, int), (len(widths),)).tolist()
    return FluctuationStudy(str(activation), float(input_var), [int(w) for w in widths], counts, int(seed), regimes)


__all__ = ["FluctuationStudy", "Regime", "fluctuation_study"]
