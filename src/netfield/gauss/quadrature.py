"""Numerical Gaussian expectations for any JAX-traceable activation.

Two rules for E[f(u) g(v)], (u, v) ~ N(0, [[cuu, cuv], [cuv, cvv]]), written with
u = sqrt(cuu) z1 and v = mu(z1) + sigma z2, mu = sqrt(cvv) c z1, sigma = sqrt(cvv (1 - c^2)),
z1, z2 iid standard normal (docs/theory.md 2.1):

``"panels"`` (default, accurate for smooth AND kinked phi)
    Composite Gauss-Legendre on [-R, R] in each of z1, z2. Panel boundaries: a uniform grid, the
    activation's feature points and kinks/jumps mapped into z-space (u = k  <=>  z1 = k / sqrt(cuu);
    v = k  <=>  z2 = (k - mu) / sigma), and the points where the inner average m(z1) = E[g(v)|z1]
    becomes kinked as sigma -> 0. Every panel holds a piecewise-analytic integrand, so the rule
    converges exponentially (<= 1e-8 relative, typically 1e-10, for tanh/gelu/softplus and for relu/hard-tanh with
    declared kinks, checked in tests against closed forms and adaptive scipy quadrature).

``"hermite"``
    Tensor Gauss-Hermite rule: fast and exact for polynomials, accurate for smooth phi at moderate
    variances only (off by 1-30% at kinks, docs/theory.md 2.1 numerical note).

Derivative expectations follow from Price's theorem (docs/theory.md eq. 4.1c):
E[phi'(u) phi'(v)] = d E[phi phi] / d cuv and E[phi''(u) phi(v)] = 2 d E[phi phi] / d cuu. For
continuous phi they are integrated directly (phi' via autodiff; each kink of phi contributes the
delta term  J_k N(k; 0, cuu) E[phi(v) | u = k]  with J_k the jump of phi' at k). For phi with jumps
they come from autodiff of the rule itself (valid off |c| = 1, where they are infinite anyway).
"""

from __future__ import annotations

import math
from functools import cache, lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import is_traced
from .activations import Activation, correlation, safe_sqrt

RADIUS = 10.0          # z-range [-R, R]; the Gaussian tail beyond holds < 2e-23
UNIFORM_PANELS = 8     # uniform panels on [-R, R] in each variable
NODES_PER_PANEL = 8    # Gauss-Legendre nodes per panel
HERMITE_DEGREE = 64
BATCH = 64             # entries evaluated together (memory ~ BATCH * nodes^2)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)


@cache
def _legendre(n: int):
    x, w = np.polynomial.legendre.leggauss(n)
    return x, w


@cache
def _hermite(n: int):
    x, w = np.polynomial.hermite_e.hermegauss(n)
    return x, w / math.sqrt(2.0 * math.pi)


def _gauss_density(z):
    return _INV_SQRT_2PI * jnp.exp(-0.5 * z * z)


def _panel_rule(extra_breaks, nodes_per_panel: int):
    """Nodes and Gaussian-weighted weights of a composite Gauss-Legendre rule on [-R, R].

    ``extra_breaks`` (any shape (..., k)) are clipped into [-R, R] and merged with the uniform grid.
    Returns nodes and weights of shape (..., panels * nodes_per_panel), weights include N(z; 0, 1).
    """
    uniform = jnp.linspace(-RADIUS, RADIUS, UNIFORM_PANELS + 1)
    extra = jnp.clip(extra_breaks, -RADIUS, RADIUS)
    uniform = jnp.broadcast_to(uniform, extra.shape[:-1] + uniform.shape)
    breaks = jnp.sort(jnp.concatenate([uniform, extra], axis=-1), axis=-1)
    lo, hi = breaks[..., :-1, None], breaks[..., 1:, None]
    x, w = _legendre(nodes_per_panel)
    half = 0.5 * (hi - lo)
    nodes = (0.5 * (hi + lo) + half * x).reshape(*breaks.shape[:-1], -1)
    weights = (half * w).reshape(*breaks.shape[:-1], -1) * _gauss_density(nodes)
    return nodes, weights


def _map_points(points, shift, scale):
    """z-space images (p - shift) / scale of points p, pushed out of range where scale is ~0."""
    if len(points) == 0:
        return jnp.zeros(jnp.shape(shift) + (0,))
    p = jnp.asarray(points)
    tiny = 1e-300
    s = jnp.where(jnp.abs(scale) > tiny, scale, tiny)
    out = (p - shift[..., None]) / s[..., None]
    # an overflowed image is inf: replace it, never add it (0 * inf = NaN: sigma = 0 at |p - shift| > ~1e8)
    return jnp.where(jnp.isfinite(out), out, jnp.sign(p - shift[..., None]) * 2 * RADIUS)


_SMOOTHING_ZONE = (-8.0, -3.0, -1.0, 1.0, 3.0, 8.0)


def _map_points_array(points, scale):
    """z = p / scale for a traced array of points p (pushed out of range where scale is ~0)."""
    tiny = 1e-300
    s = jnp.where(jnp.abs(scale) > tiny, scale, tiny)
    out = points / s
    return jnp.where(jnp.isfinite(out), out, jnp.sign(points) * 2 * RADIUS)


def _panels_one(f, g, points_u, points_v, breaks_v, npp, cuu, cvv, cuv):
    """E[f(u) g(v)] for one covariance entry (scalars) with the panel rule."""
    c = correlation(cuu, cvv, cuv)
    su, sv = safe_sqrt(cuu), safe_sqrt(cvv)
    sigma = sv * safe_sqrt(1.0 - c * c)
    # outer breaks: features/kinks of f(u), and where m(z1) kinks as sigma -> 0 (v-points at sigma = 0)
    # around a kink/jump k of g, m(z1) is smooth only on the scale sigma / (sqrt(cvv) c): resolve it
    zone = jnp.asarray(_SMOOTHING_ZONE)
    v_outer = [_map_points(points_v, jnp.zeros(()), sv * c)]
    if breaks_v:
        near = (jnp.asarray(breaks_v)[:, None] + sigma * zone[None, :]).reshape(-1)
        v_outer.append(_map_points_array(near, sv * c))
    outer_extra = jnp.concatenate([_map_points(points_u, jnp.zeros(()), su)] + v_outer)
    z1, w1 = _panel_rule(outer_extra, npp)
    mu = sv * c * z1
    z2, w2 = _panel_rule(_map_points(points_v, mu, jnp.broadcast_to(sigma, mu.shape)), npp)
    inner = jnp.sum(w2 * g(mu[:, None] + sigma * z2), axis=-1)
    return jnp.sum(w1 * f(su * z1) * inner)


def _hermite_one(f, g, degree, cuu, cvv, cuv):
    c = correlation(cuu, cvv, cuv)
    su, sv = safe_sqrt(cuu), safe_sqrt(cvv)
    s = safe_sqrt(1.0 - c * c)
    z, w = _hermite(degree)
    inner = (g(sv * (c * z[:, None] + s * z[None, :])) @ w)
    return jnp.sum(w * f(su * z) * inner)


@lru_cache(maxsize=256)
def _compiled_square_mean(f, points, nodes_per_panel):
    @jax.jit
    def run(var):
        sd = safe_sqrt(var)
        z, w = _panel_rule(_map_points(points, jnp.zeros_like(sd), sd), nodes_per_panel)
        vals = f(sd[:, None] * z)
        return jnp.sum(w * vals * vals, axis=-1)

    return run


def square_mean(act: Activation, var, *, nodes_per_panel=NODES_PER_PANEL):
    """E[phi(u)^2], u ~ N(0, var): the c = 1 case of the pair rule as a 1-D panel rule."""
    var = jnp.asarray(var, dtype=jnp.result_type(float))
    run = _compiled_square_mean(act.fn, _points(act, "panels"), nodes_per_panel)
    return run(var.reshape(-1)).reshape(var.shape)


def _floats(*arrays):
    return jnp.broadcast_arrays(*(jnp.asarray(a, dtype=jnp.result_type(float)) for a in arrays))


def _elementwise(run, cuu, cvv, cuv):
    """Apply a compiled scalar rule over broadcast covariance arrays (flattened, batched)."""
    cuu, cvv, cuv = _floats(cuu, cvv, cuv)
    shape = cuu.shape
    if cuu.size == 0:
        return jnp.zeros(shape)
    if any(is_traced(a) for a in (cuu, cvv, cuv)):
        return run(cuu.reshape(-1), cvv.reshape(-1), cuv.reshape(-1)).reshape(shape)
    # concrete values: padded to a power of two (with the covariance (1, 1, 0)) so that arrays of nearby
    # sizes share one compiled rule (a new size compiled one of ~0.2 s; at most 2x the entries)
    n = cuu.size
    m = max(8, 1 << (n - 1).bit_length())
    flat = [np.concatenate([np.asarray(a, np.float64).reshape(-1), np.full(m - n, fill)])
            for a, fill in ((cuu, 1.0), (cvv, 1.0), (cuv, 0.0))]
    return jnp.asarray(np.asarray(run(*(jnp.asarray(a) for a in flat)))[:n].reshape(shape))


@lru_cache(maxsize=512)
def _compiled_rule(f, g, points_u, points_v, breaks_v, nodes_per_panel, method, degree):
    """One jitted, memory-bounded (lax.map in batches) evaluation of a rule per (f, g, rule) key."""
    if method == "panels":
        one = partial(_panels_one, f, g, points_u, points_v, breaks_v, nodes_per_panel)
    elif method == "hermite":
        one = partial(_hermite_one, f, g, degree)
    else:
        raise ValueError(f"method must be 'panels' or 'hermite', got {method!r}")

    @jax.jit
    def run(cuu, cvv, cuv):
        return jax.lax.map(lambda t: one(*t), (cuu, cvv, cuv), batch_size=min(BATCH, cuu.shape[0]))

    return run


def _points(act: Activation, method: str):
    return tuple(act.features) + act.breakpoints if method == "panels" else ()


def expect_product(f, g, cuu, cvv, cuv, *, points_u=(), points_v=(), breaks_v=(), method="panels",
                   nodes_per_panel=NODES_PER_PANEL, degree=HERMITE_DEGREE):
    """E[f(u) g(v)] elementwise over broadcast covariance arrays, for JAX-traceable f and g."""
    run = _compiled_rule(f, g, tuple(points_u), tuple(points_v), tuple(breaks_v), nodes_per_panel, method, degree)
    return _elementwise(run, cuu, cvv, cuv)


@lru_cache(maxsize=256)
def _derivative(fn, order: int):
    d = fn
    for _ in range(order):
        d = jax.grad(d)
    return jnp.vectorize(d)


def _kink_jumps(act: Activation):
    """Jumps J_k = phi'(k+) - phi'(k-) of the derivative at the declared kinks."""
    d1 = jax.grad(act.fn)
    eps = 1e-7
    return tuple(float(d1(k + eps) - d1(k - eps)) for k in act.kinks)


def numerical_pair(act: Activation, cuu, cvv, cuv, *, method="panels", **kw):
    """E[phi(u) phi(v)] by quadrature."""
    cuu, cvv, cuv = _floats(cuu, cvv, cuv)
    pts = _points(act, method)
    return expect_product(act.fn, act.fn, cuu, cvv, cuv, points_u=pts, points_v=pts,
                          breaks_v=act.breakpoints, method=method, **kw)


def numerical_dpair(act: Activation, cuu, cvv, cuv, *, method="panels", **kw):
    """E[phi'(u) phi'(v)]: direct quadrature of phi' (continuous phi) or Price autodiff (jumps)."""
    cuu, cvv, cuv = _floats(cuu, cvv, cuv)
    if act.jumps:
        grad = jax.grad(lambda a, b, c: numerical_pair(act, a, b, c, method=method, **kw), argnums=2)
        return jnp.vectorize(grad)(cuu, cvv, cuv)
    d1 = _derivative(act.fn, 1)
    pts = _points(act, method)
    return expect_product(d1, d1, cuu, cvv, cuv, points_u=pts, points_v=pts,
                          breaks_v=act.breakpoints, method=method, **kw)


def numerical_d2pair(act: Activation, cuu, cvv, cuv, *, method="panels", **kw):
    """E[phi''(u) phi(v)] = absolutely continuous part + delta terms of the kinks (module docstring)."""
    cuu, cvv, cuv = _floats(cuu, cvv, cuv)
    if act.jumps:
        grad = jax.grad(lambda a, b, c: numerical_pair(act, a, b, c, method=method, **kw), argnums=0)
        return 2.0 * jnp.vectorize(grad)(cuu, cvv, cuv)
    pts = _points(act, method)
    d2 = _derivative(act.fn, 2)
    total = expect_product(d2, act.fn, cuu, cvv, cuv, points_u=pts, points_v=pts,
                          breaks_v=act.breakpoints, method=method, **kw)
    for k, jump in zip(act.kinks, _kink_jumps(act)):
        total = total + jump * _kink_term(act, k, cuu, cvv, cuv, method, **kw)
    return total


def _kink_term(act: Activation, k: float, cuu, cvv, cuv, method, **kw):
    """N(k; 0, cuu) E[phi(v) | u = k]  with  v | u=k ~ N(cuv k / cuu, cvv - cuv^2 / cuu)."""
    ok = cuu > 0
    cuu_s = jnp.where(ok, cuu, 1.0)
    density = jnp.where(ok, jnp.exp(-0.5 * k * k / cuu_s) / jnp.sqrt(2 * math.pi * cuu_s), 0.0)
    mean = jnp.where(ok, cuv * k / cuu_s, 0.0)
    var = jnp.maximum(cvv - jnp.where(ok, cuv * cuv / cuu_s, 0.0), 0.0)
    pts = _points(act, method)
    cond = jax.vmap(lambda m, s2: _shifted_mean(act, m, s2, pts, method, kw))(mean.reshape(-1), var.reshape(-1))
    return density * cond.reshape(density.shape)


def _shifted_mean(act, m, s2, pts, method, kw):
    """E[phi(m + sqrt(s2) z)], z ~ N(0, 1); the activation's points p map to z = (p - m) / sqrt(s2)."""
    sv = safe_sqrt(s2)
    if method == "panels":
        z, w = _panel_rule(_map_points(pts, m * jnp.ones(()), sv), kw.get("nodes_per_panel", NODES_PER_PANEL))
    else:
        z, w = _hermite(kw.get("degree", HERMITE_DEGREE))
    return jnp.sum(w * act.fn(m + sv * z))
