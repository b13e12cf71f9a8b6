"""Activation functions and their closed-form Gaussian expectations.

For (u, v) ~ N(0, [[cuu, cuv], [cuv, cvv]]) every activation may provide, elementwise over broadcast
arrays (whole kernel matrices at once):

- ``pair``   E[phi(u) phi(v)]                                   (docs/theory.md 2.1)
- ``dpair``  E[phi'(u) phi'(v)]      = d pair / d cuv          (Price's theorem)
- ``d2pair`` E[phi''(u) phi(v)]      = 2 d pair / d cuu        (Price's theorem)

Closed forms exist for linear, relu / leaky relu, erf, sign, step, sin and cos. Other activations
(tanh, sigmoid, softplus, gelu, swish, elu, ... or any JAX-traceable callable) go through the
numerical rules of :mod:`netfield.gauss.quadrature`. Piecewise activations declare their ``kinks``
(points where phi' jumps) or ``jumps`` (points where phi itself jumps) so that the numerical rules
put panel boundaries there.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field

import jax
import jax.numpy as jnp
import numpy as np

from . import fastmath

_PI = math.pi


# ---------------------------------------------------------------------------------------------
# numerically safe elementary pieces (finite values and finite gradients at |c| = 1, zero variance)

def safe_sqrt(x):
    """sqrt(max(x, 0)) with a zero (not infinite) derivative at x <= 0."""
    positive = x > 0
    return jnp.where(positive, jnp.sqrt(jnp.where(positive, x, 1.0)), 0.0)


def correlation(cuu, cvv, cuv):
    """c = cuv / sqrt(cuu cvv), clipped to [-1, 1]; 0 where a variance vanishes. Where the product cuu cvv
    over- or underflows float64 (variances beyond 1e+-154) the square roots are taken apart; elsewhere the
    product's form is kept: it gives c = 1 exactly on the diagonal, where sign-like maps have infinite slope."""
    ok = (cuu > 0) & (cvv > 0)
    su, sv = jnp.where(ok, cuu, 1.0), jnp.where(ok, cvv, 1.0)
    prod = su * sv
    normal = jnp.isfinite(prod) & (prod > 1e-300)
    den = jnp.where(normal, jnp.sqrt(jnp.where(normal, prod, 1.0)), jnp.sqrt(su) * jnp.sqrt(sv))
    c = jnp.where(ok, cuv / den, 0.0)
    return jnp.clip(c, -1.0, 1.0)


def _det(cuu, cvv, cuv):
    return jnp.maximum(cuu * cvv - cuv * cuv, 0.0)


def _safe_div(num, den):
    ok = den > 0
    return jnp.where(ok, num / jnp.where(ok, den, 1.0), 0.0)


# ---------------------------------------------------------------------------------------------
# closed forms

def linear_pair(cuu, cvv, cuv):
    return cuv + 0.0 * (cuu + cvv)


def linear_dpair(cuu, cvv, cuv):
    return jnp.ones_like(cuv + 0.0 * (cuu + cvv))


def linear_d2pair(cuu, cvv, cuv):
    return jnp.zeros_like(cuv + 0.0 * (cuu + cvv))


def _arccos_kernel(cuu, cvv, cuv):
    """E[relu(u) relu(v)] = (sqrt(det) + cuv (pi - arccos c)) / (2 pi)  (Cho & Saul, order 1)."""
    c = correlation(cuu, cvv, cuv)
    root = jnp.sqrt(cuu * cvv)
    return root * (safe_sqrt(1.0 - c * c) + c * (_PI - fastmath.arccos(c))) / (2 * _PI)


def _step_step(cuu, cvv, cuv):
    """E[step(u) step(v)] = (pi - arccos c) / (2 pi)."""
    c = correlation(cuu, cvv, cuv)
    return (_PI - fastmath.arccos(c)) / (2 * _PI)


def leaky_relu_closed_forms(slope: float):
    """Closed forms for phi(u) = max(u, slope * u) = (1 - a) relu(u) + a u, a = slope."""
    a = float(slope)
    k = (1.0 - a) ** 2

    def pair(cuu, cvv, cuv):
        # E[relu(u) v] = cuv / 2, so the cross terms sum to a (1 - a) cuv.
        return k * _arccos_kernel(cuu, cvv, cuv) + a * cuv

    def dpair(cuu, cvv, cuv):
        return k * _step_step(cuu, cvv, cuv) + a

    def d2pair(cuu, cvv, cuv):
        # phi'' = (1 - a) delta(u):  E[delta(u) relu(v)] = sqrt(det) / (2 pi cuu)
        return k * _safe_div(jnp.sqrt(_det(cuu, cvv, cuv)), 2 * _PI * cuu)

    return pair, dpair, d2pair


def erf_pair(cuu, cvv, cuv):
    """E[erf(u) erf(v)] = (2/pi) arcsin(2 cuv / sqrt((1 + 2 cuu)(1 + 2 cvv)))."""
    # the product's square root gives |arg| = 1 exactly at c = +-1 (fixed points of the correlation map);
    # the square roots apart where the product overflows float64 (variances beyond ~1e154)
    a, b = 1 + 2 * cuu, 1 + 2 * cvv
    prod = a * b
    finite = jnp.isfinite(prod)
    den = jnp.where(finite, jnp.sqrt(jnp.where(finite, prod, 1.0)), jnp.sqrt(a) * jnp.sqrt(b))
    return (2 / _PI) * fastmath.arcsin(2 * cuv / den)


def erf_dpair(cuu, cvv, cuv):
    """E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 cuu)(1 + 2 cvv) - 4 cuv^2)."""
    return (4 / _PI) / jnp.sqrt((1 + 2 * cuu) * (1 + 2 * cvv) - 4 * cuv * cuv)


def erf_d2pair(cuu, cvv, cuv):
    """E[erf''(u) erf(v)] = -8 cuv / (pi (1 + 2 cuu) sqrt((1 + 2 cuu)(1 + 2 cvv) - 4 cuv^2))."""
    delta = (1 + 2 * cuu) * (1 + 2 * cvv) - 4 * cuv * cuv
    return -8 * cuv / (_PI * (1 + 2 * cuu) * jnp.sqrt(delta))


def sign_pair(cuu, cvv, cuv):
    return (2 / _PI) * fastmath.arcsin(correlation(cuu, cvv, cuv))


def sign_dpair(cuu, cvv, cuv):
    """sign' = 2 delta: E = 4 p(0, 0) = 2 / (pi sqrt(det)); infinite at |c| = 1."""
    return 2 / (_PI * jnp.sqrt(_det(cuu, cvv, cuv)))


def sign_d2pair(cuu, cvv, cuv):
    c = correlation(cuu, cvv, cuv)
    return -2 * c / (_PI * cuu * jnp.sqrt(1 - c * c))


def step_pair(cuu, cvv, cuv):
    return _step_step(cuu, cvv, cuv)


def step_dpair(cuu, cvv, cuv):
    return 1 / (2 * _PI * jnp.sqrt(_det(cuu, cvv, cuv)))


def step_d2pair(cuu, cvv, cuv):
    c = correlation(cuu, cvv, cuv)
    return -c / (2 * _PI * cuu * jnp.sqrt(1 - c * c))


def _sincos(cuu, cvv, cuv, sign):
    """exp(-(cuu + cvv)/2) (exp(cuv) + sign exp(-cuv)) / 2, finite at every scale: the product of the
    envelope and sinh / cosh overflows (0 * inf) once cuv > ~710, so large variances use the form
    (exp(cuv - s) + sign exp(-cuv - s)) / 2, s = (cuu + cvv)/2 >= |cuv|, whose exponents are <= 0. Small
    ones keep the product (no cancellation at small cuv); the unused branch sees safe arguments, so
    gradients stay finite."""
    s = 0.5 * (cuu + cvv)
    small = s < 300.0
    s1, c1 = jnp.where(small, s, 0.0), jnp.where(small, cuv, 0.0)
    hyper = jnp.sinh(c1) if sign < 0 else jnp.cosh(c1)
    near = jnp.exp(-s1) * hyper
    s2, c2 = jnp.where(small, 1.0, s), jnp.where(small, 0.0, cuv)
    far = 0.5 * (jnp.exp(c2 - s2) + sign * jnp.exp(-c2 - s2))
    return jnp.where(small, near, far)


def sin_pair(cuu, cvv, cuv):
    """E[sin u sin v] = exp(-(cuu + cvv)/2) sinh(cuv) (evaluated stably, :func:`_sincos`)."""
    return _sincos(cuu, cvv, cuv, -1.0)


def cos_pair(cuu, cvv, cuv):
    """E[cos u cos v] = exp(-(cuu + cvv)/2) cosh(cuv) (evaluated stably, :func:`_sincos`)."""
    return _sincos(cuu, cvv, cuv, 1.0)


def _neg(f):
    return lambda cuu, cvv, cuv: -f(cuu, cvv, cuv)


# ---------------------------------------------------------------------------------------------
# the Activation object

@dataclass(frozen=True, eq=False)
class Activation:
    """A coordinatewise nonlinearity and what is known about its Gaussian expectations.

    Attributes:
        name: short name used in reprs, the CLI and reports.
        fn: JAX-traceable scalar function (applied elementwise).
        pair, dpair, d2pair: closed forms (see module docstring) or None (numerical integration).
        kinks: points where phi' jumps (phi continuous); panel boundaries for the numerical rules.
        jumps: points where phi itself jumps.
        features: points (in units of the pre-activation) where phi changes shape; extra panel
            boundaries that keep the numerical rules accurate when the variance is large.
    """

    name: str
    fn: Callable
    pair: Callable | None = None
    dpair: Callable | None = None
    d2pair: Callable | None = None
    kinks: tuple[float, ...] = ()
    jumps: tuple[float, ...] = ()
    features: tuple[float, ...] = (-8.0, -4.0, -2.0, -1.0, 0.0, 1.0, 2.0, 4.0, 8.0)
    params: tuple = field(default=())

    @property
    def has_closed_form(self) -> bool:
        return self.pair is not None

    @property
    def breakpoints(self) -> tuple[float, ...]:
        return tuple(sorted(set(self.kinks) | set(self.jumps)))

    def __call__(self, x):
        return self.fn(x)

    def __repr__(self) -> str:
        extra = f", {self.params}" if self.params else ""
        return f"Activation({self.name!r}{extra})"

    def __hash__(self):
        return hash((self.name, self.fn, self.params))

    def __eq__(self, other):
        return (
            isinstance(other, Activation)
            and (self.name, self.fn, self.params) == (other.name, other.fn, other.params)
        )


def _relu(x):
    return jnp.maximum(x, 0.0)


def _step(x):
    return jnp.where(x > 0, 1.0, 0.0).astype(jnp.result_type(x, 1.0))


def _sign(x):
    return jnp.sign(x)


def _gelu(x):
    return 0.5 * x * (1.0 + fastmath.erf(x / math.sqrt(2.0)))


def _swish(x):
    return x * jax.nn.sigmoid(x)


def _elu(x):
    return jnp.where(x > 0, x, jnp.expm1(jnp.minimum(x, 0.0)))


def _hard_tanh(x):
    return jnp.clip(x, -1.0, 1.0)


def _identity(x):
    return x


def leaky_relu(slope: float = 0.01) -> Activation:
    """phi(u) = max(u, slope * u) for 0 <= slope <= 1, with closed-form expectations."""
    if not (isinstance(slope, (int, float)) and math.isfinite(slope) and 0.0 <= slope <= 1.0):
        raise ValueError(f"slope must be a number in [0, 1], got {slope!r}")
    slope = float(slope)
    pair, dpair, d2pair = leaky_relu_closed_forms(slope)
    name = "relu" if slope == 0.0 else "leaky_relu"
    fn = _relu if slope == 0.0 else _leaky_fn(slope)
    return Activation(name, fn, pair, dpair, d2pair, kinks=(0.0,), params=() if slope == 0.0 else (slope,))


_LEAKY_CACHE: dict[float, Callable] = {}


def _leaky_fn(slope: float) -> Callable:
    if slope not in _LEAKY_CACHE:
        _LEAKY_CACHE[slope] = lambda x: jnp.where(x > 0, x, slope * x)
    return _LEAKY_CACHE[slope]


ACTIVATIONS: dict[str, Activation] = {
    "linear": Activation("linear", _identity, linear_pair, linear_dpair, linear_d2pair, features=()),
    "relu": leaky_relu(0.0),
    "leaky_relu": leaky_relu(0.01),
    "erf": Activation("erf", fastmath.erf, erf_pair, erf_dpair, erf_d2pair),
    "sign": Activation("sign", _sign, sign_pair, sign_dpair, sign_d2pair, jumps=(0.0,)),
    "step": Activation("step", _step, step_pair, step_dpair, step_d2pair, jumps=(0.0,)),
    "sin": Activation("sin", jnp.sin, sin_pair, cos_pair, _neg(sin_pair)),
    "cos": Activation("cos", jnp.cos, cos_pair, sin_pair, _neg(cos_pair)),
    "tanh": Activation("tanh", jnp.tanh),
    "sigmoid": Activation("sigmoid", jax.nn.sigmoid),
    "softplus": Activation("softplus", jax.nn.softplus),
    "gelu": Activation("gelu", _gelu),
    "swish": Activation("swish", _swish),
    "silu": Activation("silu", _swish),
    "elu": Activation("elu", _elu, kinks=(0.0,)),
    "hard_tanh": Activation("hard_tanh", _hard_tanh, kinks=(-1.0, 1.0)),
    "abs": Activation("abs", jnp.abs, kinks=(0.0,)),
}

_CALLABLE_CACHE: dict[int, Activation] = {}


def _check_kinks(kinks) -> tuple:
    """``kinks`` of a callable activation: finite real numbers."""
    if kinks is None:
        return ()
    try:
        values = tuple(float(k) for k in kinks)
    except (TypeError, ValueError):
        raise TypeError(f"kinks must be a sequence of finite real numbers, got {kinks!r}") from None
    bad = [k for k in values if not math.isfinite(k)]
    if bad:
        raise ValueError(f"kinks must be finite real numbers, got {bad[0]!r} in {kinks!r}")
    return values


_PROBE = np.linspace(-4.0, 4.0, 12).reshape(3, 4)


def _probe(fn) -> None:
    """A callable activation must map an array elementwise to a real, finite array of the same shape
    (probed once on 12 points in [-4, 4])."""
    name = getattr(fn, "__name__", repr(fn))
    try:
        out = fn(jnp.asarray(_PROBE))
        if isinstance(out, jax.core.Tracer):  # built inside jit: only the shape can be checked
            out = jax.ShapeDtypeStruct(jnp.shape(out), out.dtype)
        else:
            out = np.asarray(out)
    except Exception as err:
        raise TypeError(f"activation {name} must be a JAX-traceable function applied elementwise; calling it on "
                        f"an array of shape {_PROBE.shape} failed: {type(err).__name__}: {err}") from err
    if out.shape != _PROBE.shape:
        raise ValueError(f"activation {name} must act elementwise (output shape = input shape): on an input of "
                         f"shape {_PROBE.shape} it returned shape {out.shape}")
    if np.issubdtype(out.dtype, np.complexfloating) or not np.issubdtype(out.dtype, np.number):
        raise TypeError(f"activation {name} must return real numbers, got dtype {out.dtype}")
    if not isinstance(out, np.ndarray):
        return
    bad = ~np.isfinite(out)
    if bad.any():
        u = float(_PROBE[bad][0])
        raise ValueError(f"activation {name} must be finite at ordinary pre-activations, got {out[bad][0]} at "
                         f"u = {u:.3g}")


def get_activation(activation, *, kinks=None) -> Activation:
    """Resolve an activation given by name, as an :class:`Activation`, or as any JAX-traceable callable.

    Args:
        activation: a name from :data:`ACTIVATIONS`, an :class:`Activation`, or a callable.
        kinks: for a callable, the points where its derivative jumps (e.g. ``(0.0,)`` for a
            relu-like function); needed for accurate numerical integration of kinked functions.
    """
    kink_tuple = _check_kinks(kinks)
    if isinstance(activation, Activation):
        return activation
    if isinstance(activation, str):
        key = activation.strip().lower()
        if key not in ACTIVATIONS:
            accepted = ", ".join(sorted(ACTIVATIONS))
            raise ValueError(
                f"activation must be one of {accepted} or a JAX-traceable callable, got {activation!r}"
            )
        return ACTIVATIONS[key]
    if callable(activation):
        cache_key = (id(activation), kink_tuple)
        if cache_key not in _CALLABLE_CACHE:
            _probe(activation)
            name = getattr(activation, "__name__", "custom")
            _CALLABLE_CACHE[cache_key] = Activation(name, activation, kinks=kink_tuple, params=("callable",))
        return _CALLABLE_CACHE[cache_key]
    raise TypeError(
        f"activation must be a name (str), an Activation or a callable, got {activation!r} "
        f"of type {type(activation).__name__}"
    )
