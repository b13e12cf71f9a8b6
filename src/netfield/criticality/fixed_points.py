"""Fixed points of the mean-field length and correlation maps, their slopes, depth scales and the
largest Lyapunov exponent (docs/theory.md 3.1-3.3; equations (C1)-(C9) of docs/criticality.md).

With sigma^2 = bias_var + input_var * input_power (the variance added at every layer / step,
(C0)), and P(q) = <phi(sqrt(q) z)^2>, D(q) = <phi'(sqrt(q) z)^2>:

    length map       q'  = weight_var P(q) + sigma^2                                        (C1)
    correlation map  c'  = (weight_var <phi(u1) phi(u2)>_{q, c} + sigma^2) / q'             (C2)
    chi_1            = weight_var D(q*)           (slope of (C2) at c = 1)                (C4)
    chi_c            = weight_var <phi'(u1) phi'(u2)>_{q*, c*}   (slope of (C2) at c*)     (C5)
    xi_q = -1 / ln|dq'/dq (q*)|,   xi_c = -1 / ln|chi_c|                                 (C6, C7)
    lambda_max = (1/2) ln chi_1                                                           (C8)

Every expectation is a call of :func:`netfield.gauss.pair` / :func:`~netfield.gauss.dpair` /
:func:`~netfield.gauss.d2pair`; the slopes of the maps are JAX derivatives of those calls.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_variance
from ..gauss import Activation, d2pair, dpair, get_activation, pair
from ..program import Network
from ..program.shape import require_chain

PHASES = ("ordered", "critical", "chaotic", "unbounded")
Q_TINY = 1e-14          # below this the length fixed point is reported as q* = 0
Q_MAX = 1e12            # above this the length map is reported as having no finite fixed point
Q_DEGENERATE = 1e-8     # length at which the correlation map's q -> 0 limit is evaluated (q* = 0)
Q_LARGE = 1e8           # length at which the correlation map's q -> inf limit is evaluated (q* = inf)
C_GRID = 129            # scan points of the correlation map on [-1, 1)
Q_TABLE = np.geomspace(Q_DEGENERATE, 1e8, 401)   # lengths at which P, D are tabulated (one array shape)
CRITICAL_TOL = 1e-6     # |chi_1 - 1| below this: phase "critical"


# ---------------------------------------------------------------------------------------------
# the maps (C1), (C2) and their ingredients, as JAX functions of the variances

def second_moment(act: Activation, q, method: str = "auto"):
    """P(q) = <phi(sqrt(q) z)^2>, elementwise (the c = 1 case of ``pair``)."""
    q = jnp.asarray(q, dtype=float)
    return pair(act, q, q, q, method=method)


def derivative_moment(act: Activation, q, method: str = "auto"):
    """D(q) = <phi'(sqrt(q) z)^2>, elementwise."""
    q = jnp.asarray(q, dtype=float)
    return dpair(act, q, q, q, method=method)


def curvature_moment(act: Activation, q, method: str = "auto"):
    """S(q) = <phi''(sqrt(q) z) phi(sqrt(q) z)>, elementwise."""
    q = jnp.asarray(q, dtype=float)
    return d2pair(act, q, q, q, method=method)


def length_map(act: Activation, q, weight_var, sigma2, method: str = "auto"):
    """q' = weight_var P(q) + sigma2  (C1)."""
    return weight_var * second_moment(act, q, method) + sigma2


def correlation_map(act: Activation, c, q, weight_var, sigma2, method: str = "auto"):
    """c' = (weight_var <phi(u1) phi(u2)> + sigma2) / q'  for two inputs of length q and correlation c (C2).

    Normalised by the next length q' = (C1)(q), so that at q = q* it is the usual c-map and at the
    degenerate lengths q -> 0 / q -> inf it is the limit of the normalised map.
    """
    q = jnp.asarray(q, dtype=float)
    c = jnp.asarray(c, dtype=float)
    cov = weight_var * pair(act, q, q, c * q, method=method) + sigma2
    return cov / length_map(act, q, weight_var, sigma2, method)


# ---------------------------------------------------------------------------------------------
# the result object

@dataclass(frozen=True)
class CorrelationFixedPoint:
    """A fixed point c of the correlation map (C2) with its slope and stability (|slope| < 1)."""

    c: float
    slope: float
    stable: bool


@dataclass(frozen=True)
class Criticality:
    """Mean-field criticality of a deep or recurrent network (docs/criticality.md).

    Attributes:
        activation: name of the activation.
        weight_var, bias_var, input_var, input_power: the hyper-parameters; ``sigma2`` =
            bias_var + input_var * input_power is the variance added at every layer / step (C0).
        architecture: ``None`` (from an activation), ``"dnn"`` or ``"rnn"`` (from a network). The
            mean-field maps of both architectures are identical (docs/theory.md 2.2); they differ at 1/n.
        q_star: attracting length fixed point of (C1) (``inf`` when the length grows without bound,
            phase ``"unbounded"``; ``0.0`` when every input is contracted to zero).
        q_slope: slope dq'/dq of the length map at q* (C6); ``q_stable`` is |q_slope| < 1.
        xi_q: depth scale of the length, -1 / ln|q_slope| (C6).
        chi_1: weight_var <phi'(sqrt(q*) z)^2> (C4), the slope of the correlation map at c = 1.
        c_star: the attracting correlation fixed point (1 in the ordered phase, < 1 in the chaotic).
        c_fixed_points: every fixed point of (C2) in [-1, 1] found, with slopes and stability.
        chi_c: slope of the correlation map at c* (C5); ``xi_c`` = -1 / ln|chi_c| (C7).
        lyapunov: largest Lyapunov exponent per layer / step, (1/2) ln chi_1 (C8).
        phase: ``"ordered"`` (chi_1 < 1), ``"critical"`` (|chi_1 - 1| <= critical_tol),
            ``"chaotic"`` (chi_1 > 1) or ``"unbounded"`` (no finite q*).
        notes: remarks on degenerate cases (q* = 0, q* = inf, a correlation map equal to identity).
    """

    activation: str
    weight_var: float
    bias_var: float
    input_var: float
    input_power: float
    sigma2: float
    architecture: str | None
    q_star: float
    q_slope: float
    q_stable: bool
    xi_q: float
    chi_1: float
    c_star: float
    c_fixed_points: tuple[CorrelationFixedPoint, ...]
    chi_c: float
    xi_c: float
    lyapunov: float
    phase: str
    notes: tuple[str, ...] = field(default=())

    def as_dict(self) -> dict:
        """Plain JSON-serialisable dict (infinities as the strings "inf" / "-inf")."""
        def clean(v):
            if isinstance(v, float) and math.isinf(v):
                return "inf" if v > 0 else "-inf"
            if isinstance(v, (list, tuple)):
                return [clean(x) for x in v]
            if isinstance(v, dict):
                return {k: clean(x) for k, x in v.items()}
            return v
        return clean(asdict(self))

    def __str__(self) -> str:
        rows = [
            ("activation", self.activation), ("weight_var", self.weight_var), ("bias_var", self.bias_var),
            ("sigma2 (bias + input drive)", self.sigma2), ("q*", self.q_star), ("dq'/dq at q*", self.q_slope),
            ("xi_q", self.xi_q), ("chi_1", self.chi_1), ("c*", self.c_star), ("chi_c", self.chi_c),
            ("xi_c", self.xi_c), ("lambda_max", self.lyapunov), ("phase", self.phase),
        ]
        width = max(len(k) for k, _ in rows)
        lines = [f"{k:<{width}}  {v:.6g}" if isinstance(v, float) else f"{k:<{width}}  {v}" for k, v in rows]
        return "\n".join(lines + [f"note: {n}" for n in self.notes])


# ---------------------------------------------------------------------------------------------
# argument handling

def _resolve_arguments(activation_or_net, weight_var, bias_var, input_var, input_power):
    if isinstance(activation_or_net, Network):
        chain = require_chain(activation_or_net, "the criticality fixed-point maps",
                              "netfield.criticality.width_study (measured Lyapunov exponents and correlation decay)")
        for name, value in (("weight_var", weight_var), ("bias_var", bias_var), ("input_var", input_var)):
            if value is not None:
                raise ValueError(
                    f"{name} must not be given together with a network (it is taken from the network), "
                    f"got {name}={value!r}; use net.replace({name}=...) instead"
                )
        return (chain.activation, float(chain.weight_var), float(chain.bias_var), float(chain.input_var),
                chain.kind)
    act = get_activation(activation_or_net)
    if weight_var is None:
        raise TypeError("weight_var is required when the first argument is an activation, got None")
    check_variance("weight_var", weight_var, allow_zero=False)
    bias_var = 0.0 if bias_var is None else bias_var
    check_variance("bias_var", bias_var)
    input_var = 1.0 if input_var is None else input_var
    check_variance("input_var", input_var)
    return act, float(weight_var), float(bias_var), float(input_var), None


def _check_positive_finite(name, value):
    check_variance(name, value, allow_zero=False)
    return float(value)


# ---------------------------------------------------------------------------------------------
# the length fixed point

def _scalar(f):
    return lambda q: float(f(q))


def find_length_fixed_point(act: Activation, weight_var: float, sigma2: float, q0: float = 1.0,
                            method: str = "auto") -> float:
    """The fixed point of (C1) reached from q0: the nearest root of G(q) = q' - q in the direction
    of G(q0) (for a monotone length map this is the limit of the iteration q -> q' from q0).

    Returns 0.0 when the length contracts to zero and ``inf`` when it grows beyond Q_MAX.
    """
    G = _scalar(lambda q: length_map(act, q, weight_var, sigma2, method) - q)
    g0 = G(q0)
    if g0 == 0.0:
        return q0
    if g0 > 0:
        lo, hi = q0, 2.0 * q0
        while G(hi) > 0:
            lo, hi = hi, 2.0 * hi
            if hi > Q_MAX:
                return math.inf
    else:
        lo, hi = 0.5 * q0, q0
        while G(lo) < 0:
            lo, hi = 0.5 * lo, lo
            if lo < Q_TINY:
                if G(0.0) <= 0.0:
                    return 0.0
                lo = 0.0
                break
    from scipy.optimize import brentq  # scipy.optimize (~0.1 s at import) loads on first use

    return float(brentq(G, lo, hi, xtol=1e-15, rtol=4 * np.finfo(float).eps, maxiter=200))


def length_slope(act: Activation, q: float, weight_var: float, method: str = "auto") -> float:
    """dq'/dq of the length map at q (C6): a JAX derivative of ``pair(q, q, q)``.

    At q = 0 (where the quadrature's derivative is not defined) and for activations whose Price
    derivatives are infinite on the diagonal (jumps: sign, step), it falls back to
    weight_var (D + S) (C6') and then to a centred difference quotient.
    """
    if q > 0:
        slope = float(weight_var * jax.grad(lambda s: second_moment(act, s, method))(float(q)))
        if math.isfinite(slope):
            return slope
    formula = float(weight_var * (derivative_moment(act, q, method) + curvature_moment(act, q, method)))
    if math.isfinite(formula):
        return formula
    h = 1e-5 * max(q, 1e-8)
    lo = max(q - h, 0.0)
    return float(weight_var * (second_moment(act, q + h, method) - second_moment(act, lo, method)) / (q + h - lo))


def depth_scale(slope: float) -> float:
    """-1 / ln|slope|: the number of layers over which a deviation shrinks by e (C6, C7)."""
    a = abs(slope)
    if a >= 1.0 or not math.isfinite(a):
        return math.inf
    if a == 0.0:
        return 0.0
    return -1.0 / math.log(a)


# ---------------------------------------------------------------------------------------------
# the correlation fixed points

def correlation_fixed_points(act: Activation, q: float, weight_var: float, sigma2: float,
                             method: str = "auto", grid: int = C_GRID):
    """All fixed points of the correlation map (C2) at length q, robustly (C9).

    c = 1 is always a fixed point at q = q*. The others are the roots of the deflated function
    k(c) = (c' - c) / (c - 1), continuous on [-1, 1] with k(1) = slope(1) - 1: a scan on a grid of
    [-1, 1) plus that end value brackets every root where k changes sign, also roots arbitrarily
    close to 1 (near the critical line); each bracket is refined by Brent's method.

    Returns:
        (fixed points sorted by c, slope at c = 1, identity flag: True if the map is c' = c).
    """
    q_next = float(length_map(act, q, weight_var, sigma2, method))
    slope_one = float(weight_var * derivative_moment(act, q, method)) * q / q_next
    cs = np.linspace(-1.0, 1.0, grid)[:-1]
    values = np.asarray(correlation_map(act, cs, q, weight_var, sigma2, method))
    k = (values - cs) / (cs - 1.0)
    k_end = slope_one - 1.0
    scale = max(1.0, float(np.max(np.abs(values))))
    if np.max(np.abs(values - cs)) < 1e-12 * scale and abs(k_end) < 1e-9:
        return (CorrelationFixedPoint(1.0, 1.0, False),), slope_one, True

    from scipy.optimize import brentq

    def f(c):
        return float(correlation_map(act, c, q, weight_var, sigma2, method))

    def kfun(c):
        return k_end if c >= 1.0 else (f(c) - c) / (c - 1.0)

    ks = np.append(k, k_end)
    xs = np.append(cs, 1.0)
    roots = []
    for i in range(len(xs) - 1):
        a, b, ka, kb = xs[i], xs[i + 1], ks[i], ks[i + 1]
        if ka == 0.0:
            roots.append(a)
        elif ka * kb < 0:
            # Brent's method with the scan's values at the bracket ends (their signs define the
            # bracket; a re-evaluation through another code path of ``pair`` may round differently)
            ends = {a: ka, b: kb}
            roots.append(brentq(lambda c, ends=ends: ends[c] if c in ends else kfun(c), a, b,
                                xtol=1e-14, rtol=4 * np.finfo(float).eps, maxiter=200))
    points = [CorrelationFixedPoint(1.0, slope_one, abs(slope_one) < 1.0)]
    for i, r in enumerate(roots):
        if r >= 1.0 - 1e-12 or (i > 0 and r - roots[i - 1] < 1e-12):
            continue
        s = correlation_slope(act, r, q, weight_var, sigma2, method)
        points.append(CorrelationFixedPoint(float(r), s, abs(s) < 1.0))
    return tuple(sorted(points, key=lambda p: p.c)), slope_one, False


def correlation_slope(act: Activation, c: float, q: float, weight_var: float, sigma2: float,
                      method: str = "auto") -> float:
    """dc'/dc of (C2) at c < 1: a JAX derivative (equal to weight_var q <phi' phi'> / q' by Price)."""
    slope = float(jax.grad(lambda s: correlation_map(act, s, q, weight_var, sigma2, method))(float(c)))
    if math.isfinite(slope):
        return slope
    q_next = float(length_map(act, q, weight_var, sigma2, method))
    return float(weight_var * dpair(act, q, q, c * q, method=method)) * q / q_next


def select_correlation_fixed_point(points, slope_one: float, identity: bool, critical_tol: float = CRITICAL_TOL):
    """(c*, chi_c): c* = 1 when it attracts (slope at 1 <= 1; chi_c = 1 within critical_tol of 1); otherwise
    the largest stable fixed point below 1 - where the iteration from c just below 1 ends for a
    monotone map - or, failing that, the largest fixed point below 1."""
    if identity or abs(slope_one - 1.0) <= critical_tol:   # critical: xi_c = inf
        return 1.0, 1.0
    if slope_one <= 1.0:
        return 1.0, slope_one
    below = [p for p in points if p.c < 1.0]
    stable = [p for p in below if p.stable]
    if not below:
        return 1.0, slope_one
    chosen = max(stable or below, key=lambda p: p.c)
    return chosen.c, chosen.slope


# ---------------------------------------------------------------------------------------------
# the public function

def mean_field_criticality(activation_or_net, weight_var=None, bias_var=None, *, input_var=None,
                           input_power=0.0, q0: float = 1.0, critical_tol: float = CRITICAL_TOL,
                           method: str = "auto") -> Criticality:
    """Mean-field criticality: fixed points, slopes, depth scales, Lyapunov exponent and phase.

    Args:
        activation_or_net: an activation (name, :class:`netfield.Activation` or callable) - then
            ``weight_var`` (and optionally ``bias_var``, ``input_var``) are given - or a network from
            :func:`netfield.dnn` / :func:`netfield.rnn`, whose hyper-parameters are used.
        weight_var, bias_var: variances of the weights and biases (docs/theory.md section 1).
        input_var: variance of the input weights (default 1.0, or the network's).
        input_power: |x_t|^2 / d of an input fed at EVERY layer / step (sequence input, the "input
            drive"); 0 (default) when the input enters at the first layer / step only. The two
            trajectories compared by the correlation map receive the same drive, so the drive
            adds input_var * input_power to both the length and the covariance (C0).
        q0: length from which the length map is followed to its fixed point (e.g. the first
            layer's variance input_var |x|^2 / d + bias_var); matters only with several fixed points.
        critical_tol: |chi_1 - 1| at or below which the phase is "critical".
        method: Gaussian-expectation method of :func:`netfield.gauss.pair`.

    Returns:
        A :class:`Criticality`.

    Example:
        >>> import netfield
        >>> r = netfield.mean_field_criticality("tanh", weight_var=3.0, bias_var=0.05)
        >>> r.phase, round(r.c_star, 4), round(r.xi_c, 3)
        ('chaotic', 0.2993, 9.051)
        >>> netfield.mean_field_criticality("relu", 1.5, 0.1).phase
        'ordered'
        >>> netfield.mean_field_criticality(netfield.rnn(10, "erf", weight_var=3.0), input_power=1.0).phase
        'chaotic'
    """
    act, wv, bv, iv, arch = _resolve_arguments(activation_or_net, weight_var, bias_var, input_var, input_power)
    check_variance("input_power", input_power)
    q0 = _check_positive_finite("q0", q0)
    critical_tol = float(check_variance("critical_tol", critical_tol))
    sigma2 = bv + iv * float(input_power)
    notes = []

    q_star = find_length_fixed_point(act, wv, sigma2, q0, method)
    sigma2_eval = sigma2
    if math.isinf(q_star):
        # q -> inf: sigma2 / q -> 0, so the limits of the normalised maps are those without sigma2
        q_eval, sigma2_eval = Q_LARGE, 0.0
        notes.append(f"the length map has no finite fixed point (q grows beyond {Q_MAX:g}); chi_1, chi_c and "
                     f"the correlation map are their large-q limits, evaluated at q = {Q_LARGE:g} without sigma2")
        q_slope, q_stable = math.inf, False
    else:
        q_eval = max(Q_DEGENERATE, q_star)
        q_slope = length_slope(act, q_star, wv, method)
        q_stable = abs(q_slope) < 1.0
    chi_1 = float(wv * derivative_moment(act, q_eval, method))
    if q_star <= Q_DEGENERATE and chi_1 > 0:
        # q -> 0 (sigma2 = 0, phi(0) = 0): phi is linear there and c' = c for every c
        notes.append(f"q* = {q_star:.3g} <= {Q_DEGENERATE:g}: every input is contracted to zero, where phi is linear: "
                     "the correlation map is the identity, every c is a marginal fixed point (c* = 1 by convention); "
                     f"chi_1 is the q -> 0 limit, evaluated at q = {Q_DEGENERATE:g}")
        points, slope_one, identity = (CorrelationFixedPoint(1.0, 1.0, False),), 1.0, True
    else:
        if q_star <= Q_DEGENERATE:
            notes.append(f"q* = {q_star:.3g}: the correlation map is its q -> 0 limit, evaluated at q = {Q_DEGENERATE:g}")
        points, slope_one, identity = correlation_fixed_points(act, q_eval, wv, sigma2_eval, method)
    if identity and q_star > Q_DEGENERATE:
        notes.append("the correlation map is the identity: every c is a marginal fixed point (c* = 1 by convention)")
    c_star, chi_c = select_correlation_fixed_point(points, slope_one, identity, critical_tol)

    if math.isinf(q_star):
        phase = "unbounded"
    elif abs(chi_1 - 1.0) <= critical_tol:
        phase = "critical"
    else:
        phase = "ordered" if chi_1 < 1.0 else "chaotic"
    lyap = 0.5 * math.log(chi_1) if chi_1 > 0 else -math.inf
    return Criticality(
        activation=act.name, weight_var=wv, bias_var=bv, input_var=iv, input_power=float(input_power),
        sigma2=sigma2, architecture=arch, q_star=float(q_star), q_slope=float(q_slope), q_stable=bool(q_stable),
        xi_q=depth_scale(q_slope), chi_1=chi_1, c_star=float(c_star), c_fixed_points=points,
        chi_c=float(chi_c), xi_c=depth_scale(chi_c), lyapunov=float(lyap), phase=phase, notes=tuple(notes),
    )


criticality = mean_field_criticality  # the original name (netfield.criticality.criticality), kept as an alias
