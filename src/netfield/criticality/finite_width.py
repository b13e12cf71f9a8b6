"""Finite-width corrections to the Lyapunov exponent and the correlation length, DNN vs RNN
(docs/criticality.md, section 5).

Two routes to the O(1/n) shift (the spirit of Grosvenor & Jefferson's T/n expansion, docs/theory.md 5):

1. DNN Lyapunov exponent, analytically (C14). Per layer, given the previous one, the tangent's
   squared norm is multiplied by weight_var * R * chi^2_n / n with R = sum_i phi'(h_i)^2 delta_i^2 /
   sum_i delta_i^2 (fresh W: a chi-square with n degrees of freedom). Expanding E ln R to O(1/n)
   with the one-loop (PDLT, docs/theory.md 4.2) mean shift G1 and variance V of the layer kernel, the
   finite sample of n units, and the O(1/sqrt(n)) correlation rho of tangent and state:

       lambda_n = (1/2) ln chi_1 + kappa / n + O(1/n^2),
       kappa = (1/2) [ -1 - (3/2)(m - 1) + G1 L' + (1/2) V L'' + 2 q* L' R ]                (C14)

   with L = ln D, m = <phi'^4> / <phi'^2>^2, chi_q = dq'/dq at q*,
   V = weight_var^2 (<phi^4> - <phi^2>^2) / (1 - chi_q^2),  G1 = (1/2) weight_var P'' V / (1 - chi_q),
   R = n E[rho^2] = weight_var^2 <phi^2 phi'^2> / (q* chi_1 (1 - chi_q^2 / chi_1)).

2. Simulation-based extrapolation (DNN and RNN, any quantity): measure at several widths and fit
   a + b/n (:func:`~netfield.criticality.extrapolate.fit_inverse_width`, (C15)). :func:`width_study`
   does this for the Lyapunov exponent, for the per-layer convergence rate rho(n) of the mean
   correlation gap E[1 - c_t] (whose n -> inf limit is chi_c, and xi_c(n) = -1 / ln rho(n)), and
   for the relative correction of E[1 - c_t] at every depth t - the coefficient of 1/n grows with t
   (the T/n expansion parameter) and differently in the DNN and the RNN.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int
from .._runtime.progress import check_progress, progress_bar
from ..gauss import Activation, d2pair, dpair, pair
from ..meanfield.kernels import check_network
from ..program import Network
from ..program.shape import UnsupportedProgram, require_chain
from .extrapolate import WidthFit, fit_inverse_width
from .fixed_points import _resolve_arguments, criticality, depth_scale
from .lyapunov import _check_burn_in, mean_field_eps, probe, tap_names

# ---------------------------------------------------------------------------------------------
# (C14): the analytic 1/n coefficient of the DNN Lyapunov exponent

@dataclass(frozen=True)
class LyapunovCorrection:
    """lambda_n = lyapunov + kappa / n + O(1/n^2) for a DNN (C14).

    Attributes:
        lyapunov: mean-field (1/2) ln chi_1.
        kappa: the 1/n coefficient; ``terms`` its parts (already multiplied by 1/2):
            ``chi_square`` (finite norm of W delta), ``sampling`` (finite number of units),
            ``mean_shift`` (G1: O(1/n) shift of the layer kernel), ``kernel_variance`` (V),
            ``alignment`` (tangent-state correlation rho).
    """

    lyapunov: float
    kappa: float
    terms: dict = field(default_factory=dict)

    def at(self, width) -> np.ndarray:
        return self.lyapunov + self.kappa / np.asarray(width, float)


@lru_cache(maxsize=32)
def _derived(act: Activation):
    """phi^2, phi'^2 and phi phi' as activations (their ``pair`` on the diagonal gives <phi^4>,
    <phi'^4>, <phi^2 phi'^2>); phi' jumps where phi has kinks."""
    if act.jumps:
        raise ValueError(
            f"activation {act.name!r} jumps (phi' contains a delta function): chi_1 is infinite and the "
            f"Lyapunov exponent has no finite-width expansion"
        )
    fn = act.fn
    d1 = jnp.vectorize(jax.grad(fn))
    feats = act.features
    return (Activation(f"{act.name}^2", lambda x: fn(x) ** 2, kinks=act.kinks, features=feats),
            Activation(f"{act.name}'^2", lambda x: d1(x) ** 2, jumps=act.kinks, features=feats),
            Activation(f"{act.name}{act.name}'", lambda x: fn(x) * d1(x), jumps=act.kinks, features=feats))


def _first_derivative(f, q):
    """f'(q) by JAX autodiff, or a centred difference quotient where autodiff is not finite."""
    value = float(jax.grad(f)(float(q)))
    if math.isfinite(value):
        return value
    h = 1e-5 * q
    return (float(f(q + h)) - float(f(q - h))) / (2 * h)


def _second_derivative(f, q):
    """f''(q): a centred difference quotient of the autodiff first derivative (second-order
    autodiff through the quadrature rule is not finite on the diagonal)."""
    h = 1e-4 * q
    return (_first_derivative(f, q + h) - _first_derivative(f, q - h)) / (2 * h)


def dnn_lyapunov_correction(activation_or_net, weight_var=None, bias_var=None, *, input_var=None,
                            input_power: float = 0.0) -> LyapunovCorrection:
    """The 1/n coefficient kappa of the measured Lyapunov exponent of a DNN (C14).

    Args: as :func:`netfield.mean_field_criticality`. The network, if given, must be a DNN (the derivation
    uses a fresh weight matrix per layer; RNNs: use :func:`width_study`).

    Example:
        >>> from netfield.criticality import dnn_lyapunov_correction
        >>> corr = dnn_lyapunov_correction("tanh", 1.2, 0.05)
        >>> round(corr.lyapunov, 4), corr.kappa < 0
        (-0.0841, True)
    """
    if isinstance(activation_or_net, Network):
        chain = require_chain(activation_or_net, "dnn_lyapunov_correction", "netfield.criticality.width_study")
        if chain.shared:
            raise UnsupportedProgram(
                "dnn_lyapunov_correction needs a DNN (fresh weights per layer), got a program whose layers share "
                "their matrices (an RNN); for an RNN measure the correction with netfield.criticality.width_study"
            )
    r = criticality(activation_or_net, weight_var, bias_var, input_var=input_var, input_power=input_power)
    act, wv, _, _, _ = _resolve_arguments(activation_or_net, weight_var, bias_var, input_var, input_power)
    if r.phase == "unbounded" or not r.q_star > 0 or not math.isfinite(r.chi_1):
        raise ValueError(
            f"the 1/n expansion needs a finite, positive length fixed point and finite chi_1; got q* = {r.q_star!r}, "
            f"chi_1 = {r.chi_1!r} (phase {r.phase!r})"
        )
    q, chi_1, chi_q = r.q_star, r.chi_1, r.q_slope
    phi2, dphi2, phidphi = _derived(act)

    def P(s):
        return pair(act, s, s, s)

    def D(s):
        return dpair(act, s, s, s)

    def dP(s):  # Price: d<phi^2>/dq = <phi'^2> + <phi'' phi>
        return dpair(act, s, s, s) + d2pair(act, s, s, s)

    D0, P0 = float(D(q)), float(P(q))
    D1, D2 = _first_derivative(D, q), _second_derivative(D, q)
    P2 = _first_derivative(dP, q)
    L1, L2 = D1 / D0, D2 / D0 - (D1 / D0) ** 2
    m = float(pair(dphi2, q, q, q)) / D0**2
    V = wv**2 * (float(pair(phi2, q, q, q)) - P0**2) / (1.0 - chi_q**2)          # PDLT V*, docs/theory.md 4.2
    G1 = 0.5 * wv * P2 * V / (1.0 - chi_q)                                         # PDLT G1*
    R = wv**2 * float(pair(phidphi, q, q, q)) / (q * chi_1 * (1.0 - chi_q**2 / chi_1))
    terms = {
        "chi_square": -0.5,
        "sampling": -0.75 * (m - 1.0),
        "mean_shift": 0.5 * G1 * L1,
        "kernel_variance": 0.25 * V * L2,
        "alignment": q * L1 * R,
    }
    return LyapunovCorrection(r.lyapunov, float(sum(terms.values())), terms)


# ---------------------------------------------------------------------------------------------
# simulation-based study over widths

@dataclass(frozen=True, eq=False)
class WidthStudy:
    """Lyapunov exponent and correlation decay of sampled networks at several widths.

    Attributes:
        architecture, activation, weight_var, bias_var, input_power: the network studied (the network's
            name; activation / variances None where the network has none; input_power None for given inputs).
        widths: (W,) widths; networks: networks per width; steps, burn_in, window: layers used.
        lyapunov, lyapunov_sem: (W,) measured exponent (mean over networks, standard error).
        lyapunov_theory: (1/2) ln chi_1 (None without a mean-field map: given inputs, any program);
            ``lyapunov_fit``: a + b/n fit (C15);
        lyapunov_kappa: analytic 1/n coefficient (C14) for a DNN, None for an RNN.
        eps, eps_sem: (W, steps) E[1 - c_t] and standard errors ("annealed": the mean kernel, what
            the NLO theory computes); ``eps_theory`` (steps,) mean field (None without one); all None
            when only one input row was probed.
        log_eps, log_eps_sem: (W, steps) E[ln(1 - c_t)] ("typical" network).
        rate, rate_sem: (W,) per-layer convergence rate of E[1 - c_t] over ``window`` (jackknife
            errors); ``rate_theory`` = chi_c; ``rate_fit``: a + b/n; ``xi_c`` = -1/ln rate (W,).
        typical_rate, typical_rate_sem, typical_rate_fit, typical_xi_c: the same for exp E[ln(1 - c_t)].
        depth_a, depth_b, depth_b_sem: (steps,) fit of E[1 - c_t] / (1 - c_t)_MF = a_t + b_t / n at
            every depth t: b_t is the O(1/n) coefficient of the relative shift, growing with t (T/n).
        typical_depth_a, typical_depth_b, typical_depth_b_sem: the same for E[ln(1 - c_t)] - ln(1 - c_t)_MF.
        phase: mean-field phase (None without one); the rates are computed in the ordered phase only
            (always for given inputs: then read them against the measured E[1 - c_t]); the depth fits
            need the mean field.
    """

    architecture: str
    activation: str | None
    weight_var: float | None
    bias_var: float | None
    input_power: float | None
    widths: np.ndarray
    networks: int
    steps: int
    burn_in: int
    window: tuple
    lyapunov: np.ndarray
    lyapunov_sem: np.ndarray
    lyapunov_theory: float | None
    lyapunov_fit: WidthFit
    lyapunov_kappa: float | None
    eps: np.ndarray | None
    eps_sem: np.ndarray | None
    eps_theory: np.ndarray | None
    log_eps: np.ndarray | None
    log_eps_sem: np.ndarray | None
    rate: np.ndarray | None
    rate_sem: np.ndarray | None
    rate_theory: float | None
    rate_fit: WidthFit | None
    xi_c: np.ndarray | None
    typical_rate: np.ndarray | None
    typical_rate_sem: np.ndarray | None
    typical_rate_fit: WidthFit | None
    typical_xi_c: np.ndarray | None
    depth_a: np.ndarray | None
    depth_b: np.ndarray | None
    depth_b_sem: np.ndarray | None
    typical_depth_a: np.ndarray | None
    typical_depth_b: np.ndarray | None
    typical_depth_b_sem: np.ndarray | None
    phase: str | None

    def summary(self) -> dict:
        """JSON-serialisable key numbers."""
        out = {
            "architecture": self.architecture, "activation": self.activation, "weight_var": self.weight_var,
            "bias_var": self.bias_var, "phase": self.phase, "widths": self.widths.tolist(),
            "networks": self.networks, "steps": self.steps,
            "lyapunov_theory": self.lyapunov_theory, "lyapunov": self.lyapunov.tolist(),
            "lyapunov_sem": self.lyapunov_sem.tolist(), "lyapunov_fit": self.lyapunov_fit.as_dict(),
            "lyapunov_kappa_theory": self.lyapunov_kappa,
        }
        if self.rate is not None:
            out.update({"rate_theory": self.rate_theory, "rate": self.rate.tolist(), "rate_sem": self.rate_sem.tolist(),
                        "rate_fit": self.rate_fit.as_dict(),
                        "xi_c_theory": None if self.rate_theory is None else depth_scale(self.rate_theory),
                        "xi_c": self.xi_c.tolist(), "typical_rate": self.typical_rate.tolist(),
                        "typical_rate_sem": self.typical_rate_sem.tolist(),
                        "typical_rate_fit": self.typical_rate_fit.as_dict(), "typical_xi_c": self.typical_xi_c.tolist()})
        if self.depth_b is not None:
            out.update({"depth_b": self.depth_b.tolist(), "depth_b_sem": self.depth_b_sem.tolist(),
                        "typical_depth_b": self.typical_depth_b.tolist(),
                        "typical_depth_b_sem": self.typical_depth_b_sem.tolist()})
        return out


def _jackknife(samples: np.ndarray, statistic, groups: int = 16):
    """Statistic of the mean over axis 0 and its delete-one-group jackknife standard error."""
    k = samples.shape[0]
    groups = min(groups, k)
    full = statistic(samples.mean(axis=0))
    parts = np.array_split(np.arange(k), groups)
    reps = np.array([statistic(np.delete(samples, p, axis=0).mean(axis=0)) for p in parts])
    err = np.sqrt((groups - 1) / groups * np.sum((reps - reps.mean(axis=0)) ** 2, axis=0))
    return full, err


def _log_slope(window):
    t0, t1 = window

    def stat(mean_eps):
        t = np.arange(t0, t1 + 1)
        y = np.log(mean_eps[t0 - 1:t1])
        return math.exp(np.polyfit(t, y, 1)[0])

    return stat


def width_study(net: Network, widths=(32, 64, 128, 256), networks: int = 128, seed: int = 0, *, x=None,
                rows=(0, 1), tap: str = "h", burn_in: int | None = None, c0: float = 0.9, input_power: float = 0.0,
                window=None, dtype="float64", progress=True) -> WidthStudy:
    """Measure the Lyapunov exponent and the correlation decay at several widths; extrapolate in 1/n.

    Args:
        net: any network; the steps are its ``tap`` variables (a DNN's layers, an RNN's / GRU's time steps).
        widths: at least two widths.
        networks: sampled networks per width (width w uses seeds ``seed``; networks are independent
            across widths because their shapes differ).
        x, rows, tap: inputs and rows as in :func:`netfield.criticality.probe`. Default ``x=None``: a
            chain program (DNN / RNN) with inputs at the length fixed point, compared with the mean field
            (the theory fields); with given inputs the theory fields are None and the study is the
            measurement with its error bars and a + b/n fits (any program).
        burn_in: steps excluded from the Lyapunov average (default steps // 4).
        c0: correlation of the two built inputs at the first layer (length q*).
        input_power: common drive of the built inputs at every step >= 2 (C0).
        window: (t0, t1), the steps over which the rate of E[1 - c_t] is fitted (default: the
            second and last quarter boundaries, (steps // 4 + 1, steps)).
        progress: True (default): a bar on stderr over the widths; False: quiet; or a callable
            ``progress(k)`` told about finished widths (the convention of :mod:`netfield._runtime.progress`).

    Returns:
        :class:`WidthStudy`.

    Cost: one :func:`netfield.criticality.probe` per width (``networks`` networks, compiled once per
    width; seconds to minutes per width); ``widths`` (the largest dominates: O(n^2) per step) and
    ``networks`` are the levers.
    """
    widths = np.array([check_positive_int("widths[i]", int(w)) for w in widths])
    if len(widths) < 2:
        raise ValueError(f"widths must hold at least two widths for a 1/n fit, got {widths.tolist()}")
    networks = check_positive_int("networks", networks, minimum=4)
    if x is None:
        chain = require_chain(net, "width_study with inputs built at the mean-field fixed point (x=None)",
                              "netfield.criticality.width_study(net, widths, x=<two input rows>)")
        net = chain.network()
        steps = net.steps
        theory = criticality(net, input_power=input_power)
    else:
        check_network(net)
        chain, theory = None, None
        steps = len(tap_names(net.program(x), tap))
    burn_in = max(1, steps // 4) if burn_in is None else _check_burn_in(burn_in, steps)
    if window is None:
        window = (steps // 4 + 1, steps)
    t0, t1 = (int(v) for v in window)
    if not 1 <= t0 < t1 <= steps:
        raise ValueError(f"window must be (t0, t1) with 1 <= t0 < t1 <= steps = {steps}, got {window!r}")
    kappa = None
    if chain is not None and not chain.shared:
        kappa = dnn_lyapunov_correction(net, input_power=input_power).kappa

    check_progress(progress)
    lyap, lyap_sem, eps_all = [], [], []
    with progress_bar(progress, len(widths), f"widths ({networks} networks each)") as bar:
        for w in widths:
            p = probe(net, int(w), networks, seed, x=x, rows=rows, tap=tap, c0=c0, input_power=input_power,
                      dtype=dtype)
            per_net = p.lyapunov(burn_in)
            lyap.append(per_net.mean())
            lyap_sem.append(per_net.std(ddof=1) / math.sqrt(networks))
            if p.eps is not None:
                eps_all.append(np.maximum(p.eps, np.finfo(float).tiny))
            bar(1)
    lyap, lyap_sem = np.array(lyap), np.array(lyap_sem)
    lyap_fit = fit_inverse_width(widths, lyap, lyap_sem)
    root = math.sqrt(networks)
    eps = eps_sem = log_eps = log_eps_sem = eps_mf = None
    if eps_all:
        eps = np.array([e.mean(axis=0) for e in eps_all])
        eps_sem = np.array([e.std(axis=0, ddof=1) / root for e in eps_all])
        log_eps = np.array([np.log(e).mean(axis=0) for e in eps_all])
        log_eps_sem = np.array([np.log(e).std(axis=0, ddof=1) / root for e in eps_all])
    if theory is not None:
        eps_mf = mean_field_eps(net, steps, c0, input_power)

    rate = rate_sem = rate_fit = xi = depth_a = depth_b = depth_b_sem = None
    typ = typ_sem = typ_fit = typ_xi = typ_a = typ_b = typ_b_sem = None
    if eps_all and (theory is None or theory.phase == "ordered"):
        # annealed: slope of ln E[eps_t] over the window, jackknife errors
        stat = _log_slope((t0, t1))
        pairs = [_jackknife(e, stat) for e in eps_all]
        rate = np.array([r for r, _ in pairs])
        rate_sem = np.array([s for _, s in pairs])
        rate_fit = fit_inverse_width(widths, rate, rate_sem)
        xi = np.array([depth_scale(r) for r in rate])
        # typical: mean over networks of the per-network slope of ln eps_t (linear: plain errors)
        t = np.arange(t0, t1 + 1)
        slopes = [np.polyfit(t, np.log(e[:, t0 - 1:t1]).T, 1)[0] for e in eps_all]
        typ = np.array([math.exp(sl.mean()) for sl in slopes])
        typ_sem = np.array([math.exp(sl.mean()) * sl.std(ddof=1) / root for sl in slopes])
        typ_fit = fit_inverse_width(widths, typ, typ_sem)
        typ_xi = np.array([depth_scale(r) for r in typ])
        if eps_mf is not None:
            depth_a, depth_b, depth_b_sem = _depth_fits(widths, eps / eps_mf, eps_sem / eps_mf)
            typ_a, typ_b, typ_b_sem = _depth_fits(widths, log_eps - np.log(eps_mf), log_eps_sem)
    hyper = net.hyper_parameters
    activation = dict(net.options).get("activation")
    return WidthStudy(
        architecture=net.name, activation=getattr(activation, "name", activation),
        weight_var=hyper.get("weight_var"), bias_var=hyper.get("bias_var"),
        input_power=None if x is not None else float(input_power), widths=widths, networks=networks,
        steps=steps, burn_in=burn_in, window=(t0, t1), lyapunov=lyap, lyapunov_sem=lyap_sem,
        lyapunov_theory=None if theory is None else theory.lyapunov, lyapunov_fit=lyap_fit, lyapunov_kappa=kappa,
        eps=eps, eps_sem=eps_sem, eps_theory=eps_mf, log_eps=log_eps, log_eps_sem=log_eps_sem, rate=rate,
        rate_sem=rate_sem, rate_theory=None if theory is None else theory.chi_c, rate_fit=rate_fit, xi_c=xi,
        typical_rate=typ, typical_rate_sem=typ_sem, typical_rate_fit=typ_fit, typical_xi_c=typ_xi,
        depth_a=depth_a, depth_b=depth_b, depth_b_sem=depth_b_sem, typical_depth_a=typ_a, typical_depth_b=typ_b,
        typical_depth_b_sem=typ_b_sem, phase=None if theory is None else theory.phase,
    )


def _depth_fits(widths, values, sigmas):
    """Per depth t: fit values[:, t] = a_t + b_t / n; returns (a, b, b_err), each (steps,)."""
    steps = values.shape[1]
    a, b, b_err = np.zeros(steps), np.zeros(steps), np.zeros(steps)
    for t in range(steps):
        if np.all(sigmas[:, t] > 0):
            f = fit_inverse_width(widths, values[:, t], sigmas[:, t])
            a[t], b[t], b_err[t] = f.a, f.b, f.b_err
    return a, b, b_err
