"""Per-activation factorisations of the fused chain path (:mod:`.fused`).

The tiles of the fused recursion evaluate, per entry (a, b) and layer,

    E[phi phi](D_a, D_b, K)   = entry(K, prep(D_a), prep(D_b))
    E[phi' phi'](D_a, D_b, K) = dentry(K, prep(D_a), prep(D_b))     (the NTK, docs/ntk.md)

with ``prep`` a tuple of per-row factors computed once per row and layer (e.g. sqrt(2 / (1 + 2 D))
for erf), so an entry costs a few multiply-adds and one arcsin / sqrt. Both maps share one ``prep``:
the NTK needs no tables beyond the NNGP's.

Closed forms (gauss/activations.py):

    erf:    entry = (2/pi) arcsin(K p_a p_b),   dentry = (2/pi) p_a p_b / sqrt(1 - (K p_a p_b)^2),
            p = sqrt(2 / (1 + 2 D))
    leaky relu (slope s, relu: s = 0), c = K / sqrt(D_a D_b):
            entry  = (1 - s)^2 sqrt(D_a D_b) (sqrt(1 - c^2) + c (pi/2 + arcsin c)) / (2 pi) + s K
            dentry = (1 - s)^2 (pi/2 + arcsin c) / (2 pi) + s
    linear: entry = K, dentry = 1

Other closed forms (sin, cos) call the activation's pair / dpair per entry. Smooth activations without
one use the Mehler series (gauss/series.py, S1) with prep = (1 / sqrt(D), a_k(D)):

    entry  = sum_k a_k(D_a) a_k(D_b) c^k,
    dentry = d entry / d K = (1 / sqrt(D_a D_b)) sum_{k >= 1} k a_k(D_a) a_k(D_b) c^(k - 1)

whose truncation after K terms is bounded by the Parseval tails of phi (S2) and of phi'
(sum_k k a_k(q)^2 = q E[phi'(sqrt q z)^2], Stein's lemma), see :func:`series_tables`.
"""

from __future__ import annotations

import math
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..gauss import dpair, fastmath, pair, series
from ..gauss.activations import Activation

_PI = math.pi


def _erf_prep(d):
    return (jnp.sqrt(2.0 / (1.0 + 2.0 * d)),)


def _erf_entry(k, p1, p2):
    return (2.0 / _PI) * fastmath.arcsin(k * p1[0] * p2[0])


def _erf_dentry(k, p1, p2):
    s = p1[0] * p2[0]
    u = k * s
    return (2.0 / _PI) * s / jnp.sqrt(1.0 - u * u)


def _relu_prep(d):
    r = jnp.sqrt(d)
    return r, jnp.where(r > 0, 1.0 / jnp.where(r > 0, r, 1.0), 0.0)


def _leaky_entry(slope):
    k2 = (1.0 - slope) ** 2

    def entry(k, p1, p2):
        c = jnp.clip(k * p1[1] * p2[1], -1.0, 1.0)
        s = jnp.sqrt(jnp.maximum(1.0 - c * c, 0.0))
        arc = p1[0] * p2[0] * (s + c * (0.5 * _PI + fastmath.arcsin(c))) / (2.0 * _PI)
        return k2 * arc + slope * k

    return entry


def _leaky_dentry(slope):
    k2 = (1.0 - slope) ** 2

    def dentry(k, p1, p2):
        c = jnp.clip(k * p1[1] * p2[1], -1.0, 1.0)
        return k2 * (0.5 * _PI + fastmath.arcsin(c)) / (2.0 * _PI) + slope

    return dentry


def _linear_prep(d):
    return ()


def _linear_entry(k, p1, p2):
    return k


def _linear_dentry(k, p1, p2):
    return jnp.ones_like(k)


@lru_cache(maxsize=64)
def factorisation(act: Activation):
    """(prep, entry, dentry) with pair(d1, d2, K) = entry(K, prep(d1), prep(d2)) and dpair likewise
    (dentry None where E[phi' phi'] is not finite: jumps); cached per activation so the compiled
    tile programs (keyed by ``entry``, ``dentry``) are reused."""
    if act.name == "erf" and act.params == ():
        return _erf_prep, _erf_entry, _erf_dentry
    if act.name in ("relu", "leaky_relu") and act.pair is not None:
        slope = act.params[0] if act.params else 0.0
        return _relu_prep, _leaky_entry(slope), _leaky_dentry(slope)
    if act.name == "linear":
        return _linear_prep, _linear_entry, _linear_dentry
    dentry = None if act.jumps else (lambda k, p1, p2: dpair(act, p1[0], p2[0], k))
    return (lambda d: (d,)), (lambda k, p1, p2: pair(act, p1[0], p2[0], k)), dentry


@lru_cache(maxsize=64)
def series_factorisation(order: int, parity: str):
    """Mehler series (gauss/series.py, S1) as a factorisation: prep(d) = (1 / sqrt(d), a_k(d)), the
    coefficient table of each row computed once per layer, and per entry the Horner sum
    sum_k a_k(D_a) a_k(D_b) c^k with c = K_ab / sqrt(D_a D_b). For odd (even) phi only odd (even)
    k contribute: c sum_j A_j (c^2)^j with half the terms."""

    def entry(k, p1, p2):
        c = k * p1[0] * p2[0]
        ks = [j for j in range(order + 1) if parity == "all" or (j % 2 == 1) == (parity == "odd")]
        var = c if parity == "all" else c * c
        acc = p1[1][..., ks[-1]] * p2[1][..., ks[-1]]
        for j in ks[-2::-1]:
            acc = acc * var + p1[1][..., j] * p2[1][..., j]
        return acc * c if parity == "odd" else acc

    return entry


@lru_cache(maxsize=64)
def series_derivative(order: int, parity: str):
    """d entry / d K of :func:`series_factorisation`: (1 / sqrt(D_a D_b)) sum_{k >= 1} k a_k a_k
    c^(k - 1). phi odd (even): phi' even (odd), only odd (even) k contribute, in powers of c^2
    (times c for even phi)."""

    def dentry(k, p1, p2):
        scale = p1[0] * p2[0]
        c = k * scale
        ks = [j for j in range(1, order + 1) if parity == "all" or (j % 2 == 1) == (parity == "odd")]
        var = c if parity == "all" else c * c
        acc = ks[-1] * p1[1][..., ks[-1]] * p2[1][..., ks[-1]]
        for j in ks[-2::-1]:
            acc = acc * var + j * p1[1][..., j] * p2[1][..., j]
        return scale * (acc * c if parity == "even" else acc)

    return dentry


def series_tables(act: Activation, diag: np.ndarray, order: int, valid: int, derivative: bool = False):
    """Per-row factors of the Mehler series at ``order`` for variances ``diag`` (steps, M):
    (1 / sqrt(D), a_k(D)), the largest relative Parseval tail (S2) T_K(D) / E[phi^2] of any row,
    and the parity of phi read off the coefficients ("odd", "even" or "all"). With ``derivative``
    the tail is the larger of that and the tail of phi', (q E[phi'^2] - sum_{k<=K} k a_k^2) /
    (q E[phi'^2]), which bounds the truncation of E[phi' phi'] by tail c_max^K. Padding rows
    (index >= ``valid``) and zero-variance rows get 1 / sqrt(D) = 0, so they are evaluated at c = 0 and never count in
    the largest |c| the tile program reports."""
    flat = np.asarray(diag, dtype=np.float64).reshape(-1)
    coef, second = _chunked(lambda q: series.coefficients(act, q, order), flat)
    tail = series.relative_tail(coef, second)
    if derivative:
        dsecond = flat * derivative_square_mean(act, flat)
        k = np.arange(order + 1)
        dtail = np.maximum(dsecond - np.sum(k * coef * coef, axis=1), 0.0) / np.maximum(dsecond, 1e-300)
        tail = np.maximum(tail, dtail)
    scale = np.abs(coef).max()
    parity = "all"
    if np.abs(coef[:, 0::2]).max() <= 1e-14 * scale:
        parity = "odd"
    elif np.abs(coef[:, 1::2]).max() <= 1e-14 * scale:
        parity = "even"
    positive = diag > 0  # a zero variance (a zero input without bias): c = 0 gives a_0(0) a_0(D') = phi(0) E phi
    inv = np.where(positive, 1.0 / np.sqrt(np.where(positive, diag, 1.0)), 0.0)
    inv[:, valid:] = 0.0
    return (inv, coef.reshape(*diag.shape, order + 1)), tail.max(), parity


@lru_cache(maxsize=64)
def _derivative_square_program(act: Activation):
    grad = jax.vmap(jax.grad(act.fn))

    @jax.jit
    def run(q):
        z, w = series.hermite_rule()
        u = jnp.sqrt(jnp.maximum(q, 0.0))[:, None] * z[None, :]
        g = grad(u.reshape(-1)).reshape(u.shape)
        return jnp.sum(w[None, :] * g * g, axis=1)

    return run


_CHUNK = 2048


def _chunked(fn, q):
    """fn over a vector of variances in chunks of _CHUNK (padded with 1: one compilation): the
    quadrature nodes of a chunk take ~10 MB instead of steps x N x nodes (~250 MB at N = 5000, ten
    layers). Returns numpy arrays (a tuple if fn returns one)."""
    size = max(1, -(-q.size // _CHUNK)) * _CHUNK
    padded = np.ones(size)
    padded[:q.size] = q
    parts = [fn(jnp.asarray(padded[i:i + _CHUNK])) for i in range(0, size, _CHUNK)]
    if isinstance(parts[0], tuple):
        return tuple(np.concatenate([np.asarray(p[j]) for p in parts])[:q.size] for j in range(len(parts[0])))
    return np.concatenate([np.asarray(p) for p in parts])[:q.size]


def derivative_square_mean(act: Activation, q):
    """E[phi'(u)^2], u ~ N(0, q), by the series' Gauss-Hermite rule (smooth phi), for variances q."""
    return _chunked(_derivative_square_program(act), np.asarray(q, dtype=np.float64).reshape(-1))


def diagonal_dpair(act: Activation, var):
    """E[phi'(u)^2], u ~ N(0, var), at c = 1 exactly: the closed form with K = D (whose correlation
    the generic interpreter also evaluates at exactly 1: sqrt(fl(D^2)) = D), or the Hermite rule."""
    if act.has_closed_form:
        return dpair(act, var, var, var)
    return derivative_square_mean(act, var).reshape(np.shape(var))


__all__ = ["diagonal_dpair", "factorisation", "series_derivative", "series_factorisation", "series_tables"]
