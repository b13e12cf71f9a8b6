"""Dispatch of Gaussian expectations: closed form where one exists, numerical rule otherwise.

All functions act elementwise on broadcast arrays (cuu, cvv, cuv), so a whole kernel matrix is one
call: ``pair(act, d[:, None], d[None, :], K)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from .._checks import is_traced
from . import quadrature, series
from .activations import Activation, get_activation

METHODS = ("auto", "closed", "panels", "hermite")


def _resolve(activation, method: str):
    act = get_activation(activation)
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}, got {method!r}")
    if method == "closed" and not act.has_closed_form:
        raise ValueError(
            f"method='closed' needs an activation with a closed form, got {act.name!r}; "
            f"use method='auto' or 'panels'"
        )
    use_closed = act.has_closed_form and method in ("auto", "closed")
    numeric = "panels" if method in ("auto", "closed") else method
    return act, use_closed, numeric


def _with_price_derivatives(act: Activation):
    """E[phi phi] whose JAX derivatives are the closed forms of Price's theorem (docs/theory.md eq. 4.1c):
    d/dcuv = E[phi' phi'], d/dcuu = E[phi'' phi]/2, d/dcvv = E[phi phi'']/2. This keeps gradients
    finite on the diagonal (|c| = 1), where differentiating arccos/arcsin formulas gives inf * 0."""

    @jax.custom_jvp
    def f(cuu, cvv, cuv):
        return act.pair(cuu, cvv, cuv)

    @f.defjvp
    def f_jvp(primals, tangents):
        cuu, cvv, cuv = primals
        duu, dvv, duv = tangents
        out = f(cuu, cvv, cuv)
        slope = (act.dpair(cuu, cvv, cuv) * duv + 0.5 * act.d2pair(cuu, cvv, cuv) * duu
                 + 0.5 * act.d2pair(cvv, cuu, cuv) * dvv)
        return out, slope

    return f


_PRICE_CACHE: dict = {}


def pair(activation, cuu, cvv, cuv, *, method: str = "auto"):
    """E[phi(u) phi(v)] for (u, v) ~ N(0, [[cuu, cuv], [cuv, cvv]]), elementwise (docs/theory.md 2.1)."""
    act, use_closed, numeric = _resolve(activation, method)
    if use_closed:
        if act not in _PRICE_CACHE:
            _PRICE_CACHE[act] = _with_price_derivatives(act)
        cuu, cvv, cuv = jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float)) for a in (cuu, cvv, cuv)))
        return _PRICE_CACHE[act](cuu, cvv, cuv)
    if method == "auto" and not any(is_traced(a) for a in (cuu, cvv, cuv)):
        if _is_diagonal(cuu, cvv, cuv):  # c = 1: a 1-D integral
            return quadrature.square_mean(act, cuu)
        if series.applies(act):
            fast = _series_pair(act, cuu, cvv, cuv)
            if fast is not None:
                return fast
    return quadrature.numerical_pair(act, cuu, cvv, cuv, method=numeric)


def _is_diagonal(cuu, cvv, cuv) -> bool:
    if not (jnp.shape(cuu) == jnp.shape(cvv) == jnp.shape(cuv)):
        return False
    return (cuu is cvv and cvv is cuv) or bool(jnp.array_equal(cuu, cvv) and jnp.array_equal(cvv, cuv))


def _series_pair(act: Activation, cuu, cvv, cuv):
    """Mehler series (gauss/series.py) for a kernel block given as (N1, 1), (1, N2), (N1, N2) arrays
    of concrete values; None where it does not apply or cannot meet its tolerance."""
    if any(is_traced(a) for a in (cuu, cvv, cuv)):
        return None
    shapes = [jnp.shape(a) for a in (cuu, cvv, cuv)]
    if not (len(shapes[0]) == 2 and len(shapes[1]) == 2 and shapes[0][1] == 1 and shapes[1][0] == 1
            and shapes[2] == (shapes[0][0], shapes[1][1])):
        return None
    q1, q2 = jnp.asarray(cuu, float)[:, 0], jnp.asarray(cvv, float)[0]
    order = series.choose_order(act, jnp.concatenate([q1, q2]))
    if order is None:
        return None
    return series.pair_matrix(act, q1, q2, jnp.asarray(cuv, float), order)


def dpair(activation, cuu, cvv, cuv, *, method: str = "auto"):
    """E[phi'(u) phi'(v)] = d E[phi phi] / d cuv (Price's theorem), elementwise."""
    act, use_closed, numeric = _resolve(activation, method)
    if use_closed:
        return act.dpair(*jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float)) for a in (cuu, cvv, cuv))))
    return quadrature.numerical_dpair(act, cuu, cvv, cuv, method=numeric)


def d2pair(activation, cuu, cvv, cuv, *, method: str = "auto"):
    """E[phi''(u) phi(v)] = 2 d E[phi phi] / d cuu (Price's theorem), elementwise."""
    act, use_closed, numeric = _resolve(activation, method)
    if use_closed:
        return act.d2pair(*jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float)) for a in (cuu, cvv, cuv))))
    return quadrature.numerical_d2pair(act, cuu, cvv, cuv, method=numeric)


def pair_kernel(activation, cov, diag1=None, diag2=None, *, method: str = "auto"):
    """Matrix of E[phi(u_a) phi(v_b)] from a covariance block and the variances of its rows/columns.

    Args:
        cov: (N1, N2) covariance block C_ab.
        diag1, diag2: variances of the row / column variables; default: the diagonal of a square
            ``cov`` (then ``cov`` is a kernel matrix of one set of inputs).
    """
    cov = jnp.asarray(cov)
    if diag1 is None:
        diag1 = jnp.diagonal(cov)
    if diag2 is None:
        diag2 = jnp.diagonal(cov)
    return pair(activation, jnp.asarray(diag1)[:, None], jnp.asarray(diag2)[None, :], cov, method=method)
