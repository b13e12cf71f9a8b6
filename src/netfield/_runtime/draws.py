"""Standard-normal draws that compile fast: :func:`normal` gives exactly ``jax.random.normal(key, shape,
dtype)`` (the same numbers, bit for bit) but draws them as one flat vector and reshapes it.

Why: with JAX's default counter-based threefry (``jax_threefry_partitionable``), XLA:CPU takes ~0.6 s
longer to compile a draw whose counters span three or more dimensions, which is what a (n, n) matrix
becomes under ``vmap`` over networks: measured 0.72 s for bits of shape (3, 16, 16) against 0.13 s for
(768,), one such draw per parameter of a sampled network. The flat draw keeps every sampled network of
netfield identical (tests/_runtime/test_draws.py checks the equality) and shortens the first call of
``netfield.sample`` (width 16, four layers, three networks: DNN 1.9 -> 1.4 s, RNN 1.6 -> 0.9 s).

:func:`folded_normals` / :func:`keyed_normals` go further: the draws of every parameter of a network (keys
``fold_in(key, k)``) come from one threefry hash, again the same numbers as one ``jax.random.normal`` per
parameter (the 4-step RNN sampler of the demo's architectures section: 1.6 -> 0.9 s of compilation).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax.extend.random import threefry2x32_p


def normal(key, shape, dtype=jnp.float64):
    """``jax.random.normal(key, shape, dtype)``, drawn flat (module docstring)."""
    shape = tuple(int(s) for s in shape)
    return jax.random.normal(key, (math.prod(shape),), dtype).reshape(shape)


def folded_normals(key, shapes, dtype=jnp.float64) -> list:
    """``[normal(jax.random.fold_in(key, k), shape_k, dtype) for k, shape_k in enumerate(shapes)]``, the same
    numbers bit for bit, from ONE threefry hash over all parameters together (:func:`keyed_normals`; a shape
    shared by LOOPED_GROUP or more parameters is drawn in a loop of its own, which compiles faster there).

    Why: XLA:CPU takes ~0.3 s to compile each threefry hash (and ~0.1 s each normal transform), whatever its
    size, and a network has one per parameter shape (RNN: input, recurrent, bias, readout). The hash is
    elementwise in (key, counter) pairs, so the draws of all parameters are one hash whose key is that of
    the element's parameter, fold_in(key, k), and whose counter is the element's position in it (what
    ``jax.random.normal`` of a flat draw hashes; tests/_runtime/test_draws.py checks the equality). The
    uniform -> normal transform is JAX's (52 random mantissa bits in [1, 2), shifted to (-1, 1),
    sqrt(2) erfinv), so the numbers are those of ``jax.random.normal``. Keys of another PRNG
    implementation than threefry fall back to one draw per parameter.
    """
    shapes = [tuple(int(s) for s in shape) for shape in shapes]
    if not shapes:
        return []
    key = jnp.asarray(key)
    if not _threefry(key):
        return [normal(jax.random.fold_in(key, k), shape, dtype) for k, shape in enumerate(shapes)]
    return keyed_normals(folded_keys(key, len(shapes)), shapes, dtype)


def folded_keys(key, count: int, first: int = 0):
    """(count, 2) array of ``jax.random.fold_in(key, k)``, k = first .. first + count - 1 (one vmapped
    fold_in)."""
    return jax.vmap(lambda k: jax.random.fold_in(key, k))(jnp.arange(first, first + count, dtype=jnp.uint32))


def _threefry(key) -> bool:
    return (key.dtype == jnp.uint32 and key.shape[-1:] == (2,) and jax.config.jax_default_prng_impl == "threefry2x32"
            and bool(jax.config.jax_threefry_partitionable))


def keyed_normals(keys, shapes, dtype=jnp.float64) -> list:
    """``[jax.random.normal(keys[k], shape_k, dtype) for k ...]`` (raw threefry keys, shape (K, 2)), the same
    numbers bit for bit, from one threefry hash (:func:`folded_normals`); a shape shared by LOOPED_GROUP
    or more parameters is drawn in a ``lax.map`` loop over them instead (compiles faster there)."""
    shapes = [tuple(int(s) for s in shape) for shape in shapes]
    dtype = jnp.dtype(dtype)
    keys = jnp.asarray(keys)
    sizes = [math.prod(shape) for shape in shapes]
    total = sum(sizes)
    if keys.shape != (len(shapes), 2):
        raise ValueError(f"keys must have shape ({len(shapes)}, 2) (one raw threefry key per shape), got {keys.shape}")
    if not _threefry(keys) or dtype not in (jnp.float32, jnp.float64) or total == 0 or total >= 2**32:
        return [normal(keys[k], shape, dtype) for k, shape in enumerate(shapes)]
    groups: dict = {}
    for k, shape in enumerate(shapes):
        groups.setdefault(shape, []).append(k)
    out = [None] * len(shapes)
    for shape, ks in groups.items():  # a shape shared by many parameters (deep DNNs): one lax.map loop
        if len(ks) >= LOOPED_GROUP:
            block = jax.lax.map(lambda kk, shape=shape: normal(kk, shape, dtype), keys[jnp.asarray(ks)])
            for row, k in enumerate(ks):
                out[k] = block[row]
    rest = [k for k in range(len(shapes)) if out[k] is None]
    if len(rest) < len(shapes):
        if rest:
            for k, value in zip(rest, keyed_normals(keys[jnp.asarray(rest)], [shapes[k] for k in rest], dtype)):
                out[k] = value
        return out
    offsets = np.cumsum([0] + sizes)
    bits_hi, bits_lo = _hash(keys, sizes)
    u = _uniform_in_minus_one_one(bits_hi, bits_lo, dtype)
    z = jnp.asarray(np.sqrt(2), dtype) * jax.lax.erf_inv(u)
    return [z[offsets[k]:offsets[k + 1]].reshape(shape) for k, shape in enumerate(shapes)]


# parameters of one shape from which keyed_normals loops over them (lax.map) instead of adding them to the
# single hash: for a 20-layer DNN (19 matrices and 20 vectors of two shapes, vmapped over 3 networks) the
# single hash compiled in 1.43 s, the loops in 1.00 s; for a 4-step RNN (four shapes) the single hash in
# 0.43 s, the loops in 0.55 s (XLA:CPU, 2026-12-06)
LOOPED_GROUP = 4


def _hash(keys, sizes):
    """threefry2x32 of (key k, counter i) for i < sizes[k], every k in one flat hash: the two 32-bit words."""
    offsets = np.cumsum([0] + list(sizes))
    position = jax.lax.iota(jnp.uint32, int(offsets[-1]))
    owner = jnp.searchsorted(jnp.asarray(offsets[1:], jnp.uint32), position, side="right")  # parameter k
    counter = position - jnp.asarray(offsets[:-1], jnp.uint32)[owner]  # the element's index in its parameter
    return threefry2x32_p.bind(keys[owner, 0], keys[owner, 1], jnp.zeros_like(counter), counter)


def box_muller_normals(keys, shape, dtype=jnp.float64) -> list:
    """K arrays of standard normals of shape ``shape``, array k from the raw threefry key ``keys[k]``
    (``keys``: (K, 2)), by the Box-Muller transform: NOT ``jax.random.normal``'s numbers (the same law), 1.4-1.7 ms
    per 262144 float64 normals against 2.2 ms for ``jax.random.normal`` and 3.4 ms for
    :func:`keyed_normals` (measured 2026-12-07 on 2 cores; XLA:CPU's erf_inv, sin and cos are scalar
    routines, and a hash whose key varies per element costs ~3x one whose key is fixed per slice).

    Array k hashes counters 0 .. 2h - 1 under key k (h = ceil(size / 2)), each 64-bit word a uniform
    number with the dtype's mantissa (float64: hi << 32 | lo; float32: hi ^ lo, as
    ``jax.random.uniform``); u_1 = 1 - (word i) in (0, 1] and u_2 = word h + i in [0, 1) give
    z = sqrt(-2 log u_1) (cos 2 pi u_2, sin 2 pi u_2): exactly standard normal and independent
    (Box and Muller 1958) up to the transform's rounding (|z| <= 8.5 in float64, 5.6 in float32: the
    smallest u_1). cos and sin of 2 pi u_2 are Taylor polynomials on |theta| <= pi/4 after an exact
    reduction by quarter turns (u_2 - k/4, k = round(4 u_2)), within 1e-15 of numpy's, and log u_1 by
    a vectorisable series (:func:`_log_positive`; XLA:CPU's float64 log, sin and cos are scalar). Used where no
    one needs ``jax.random.normal``'s numbers (the conditional sampler, :mod:`netfield.finite.conditional`).
    """
    shape = tuple(int(s) for s in shape)
    dtype = jnp.dtype(dtype)
    keys = jnp.asarray(keys)
    if keys.ndim != 2 or keys.shape[1] != 2 or keys.dtype != jnp.uint32:
        raise ValueError(f"keys must be raw threefry keys of shape (K, 2) and dtype uint32, got {keys.dtype}{keys.shape}")
    if dtype not in (jnp.float32, jnp.float64):
        raise ValueError(f"dtype must be float32 or float64, got {dtype}")
    size = math.prod(shape)
    half = (size + 1) // 2
    if size == 0 or keys.shape[0] == 0:
        return [jnp.zeros(shape, dtype) for _ in range(keys.shape[0])]
    if 2 * half >= 2**32:
        raise ValueError(f"shape must have fewer than 2^32 entries, got {shape}")
    counter = jax.lax.iota(jnp.uint32, 2 * half)
    bits = jax.vmap(lambda k: threefry2x32_p.bind(k[0], k[1], jnp.zeros_like(counter), counter))(keys)
    # the hash apart from the transform: fused together, XLA:CPU ran both at ~60 % of their separate speed
    bits_hi, bits_lo = jax.lax.optimization_barrier(bits)
    u = _unit_uniform(bits_hi, bits_lo, dtype).reshape(-1, 2, half)  # in [0, 1), multiples of 2^-52 (float64)
    radius = jnp.sqrt(-2.0 * _log_positive(1.0 - u[:, 0]))
    cos, sin = _cos_sin_turns(u[:, 1])
    # one array per key, each written by the transform itself (slicing a stacked array for every step
    # copied it once more: ~0.25 ms per 262144 normals)
    return [jnp.concatenate([radius[k] * cos[k], radius[k] * sin[k]])[:size].reshape(shape)
            for k in range(keys.shape[0])]


_SIN_TAYLOR = tuple((-1) ** j / math.factorial(2 * j + 1) for j in range(9))  # theta^17 term last: < 1e-19 at pi/4
_COS_TAYLOR = tuple((-1) ** j / math.factorial(2 * j) for j in range(9))  # theta^16 last: the next < 3e-18


def _cos_sin_turns(u):
    """(cos 2 pi u, sin 2 pi u) for u in [0, 1): k = round(4 u) quarter turns (exact), the rest
    theta = 2 pi (u - k / 4) in [-pi/4, pi/4] by Taylor polynomials, rotated by k quarter turns
    (q = k mod 4: odd q swaps cos and sin; the signs follow the quadrant)."""
    k = jnp.floor(4.0 * u + 0.5)
    theta = (2.0 * math.pi) * (u - 0.25 * k)
    t2 = theta * theta
    s, c = _SIN_TAYLOR[-1], _COS_TAYLOR[-1]
    for a, b in zip(_SIN_TAYLOR[-2::-1], _COS_TAYLOR[-2::-1]):
        s, c = s * t2 + a, c * t2 + b
    s = theta * s
    q = k - 4.0 * jnp.floor(0.25 * k)  # 0, 1, 2, 3
    odd = (q == 1.0) | (q == 3.0)
    cos = jnp.where((q == 1.0) | (q == 2.0), -1.0, 1.0) * jnp.where(odd, s, c)
    sin = jnp.where(q >= 2.0, -1.0, 1.0) * jnp.where(odd, c, s)
    return cos, sin


_LN2_HI, _LN2_LO = 6.93147180369123816490e-01, 1.90821492927058770002e-10  # ln 2 = hi + lo, hi with 32 bits
_ATANH_SERIES = tuple(1.0 / (2 * k + 1) for k in range(12))  # s^23 / 23 last: < 1e-17 at |s| <= 0.1716


def _log_positive(x):
    """log x for positive normal float64 / float32 x (no zero, inf, NaN or subnormal inputs), vectorisable
    (XLA:CPU's float64 log is a scalar routine: ~2x slower alone, ~4x inside the Box-Muller fusion),
    within 3 ulp of numpy's: x = 2^e m with m in [sqrt(1/2), sqrt(2)), log m = 2 atanh(s),
    s = (m - 1) / (m + 1), by its series; e ln 2 in two parts."""
    dtype = x.dtype
    finfo = jnp.finfo(dtype)
    uint = jnp.uint64 if dtype == jnp.float64 else jnp.uint32
    nmant, bias = finfo.nmant, finfo.maxexp - 1
    bits = jax.lax.bitcast_convert_type(x, uint)
    mant_mask = uint((1 << nmant) - 1)
    e = (bits >> uint(nmant)).astype(jnp.int32) - bias
    one = np.array(1.0, dtype).view(np.dtype(uint))
    m = jax.lax.bitcast_convert_type((bits & mant_mask) | uint(one), dtype)  # [1, 2)
    big = m > math.sqrt(2.0)
    m = jnp.where(big, 0.5 * m, m)
    e = (e + big.astype(jnp.int32)).astype(dtype)
    s = (m - 1.0) / (m + 1.0)
    s2 = s * s
    p = _ATANH_SERIES[-1]
    for c in _ATANH_SERIES[-2::-1]:
        p = p * s2 + c
    return e * _LN2_HI + (2.0 * s * p + e * _LN2_LO)


def _uniform_in_minus_one_one(bits_hi, bits_lo, dtype):
    """Uniform numbers in [nextafter(-1, 0), 1) from threefry's two 32-bit words, as ``jax.random.uniform``
    makes them (:func:`_unit_uniform`, shifted and scaled to the interval)."""
    floats = _unit_uniform(bits_hi, bits_lo, dtype)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    hi = np.array(1.0, dtype)
    return jax.lax.max(jnp.asarray(lo, dtype), floats * jnp.asarray(hi - lo, dtype) + jnp.asarray(lo, dtype))


def _unit_uniform(bits_hi, bits_lo, dtype):
    """Uniform numbers in [0, 1) on the grid of the dtype's mantissa, as ``jax.random.uniform`` makes them:
    float64 from the 64-bit word hi << 32 | lo, float32 from hi ^ lo; the top mantissa-many bits become
    a number in [1, 2), minus 1 (exact)."""
    finfo = jnp.finfo(dtype)
    if dtype == jnp.float64:
        bits = (bits_hi.astype(jnp.uint64) << jnp.uint64(32)) | bits_lo.astype(jnp.uint64)
        uint = jnp.uint64
    else:
        bits = bits_hi ^ bits_lo
        uint = jnp.uint32
    nbits, nmant = finfo.bits, finfo.nmant
    one = np.array(1.0, dtype).view(np.dtype(uint))
    return jax.lax.bitcast_convert_type((bits >> uint(nbits - nmant)) | uint(one), dtype) - jnp.asarray(1.0, dtype)


__all__ = ["box_muller_normals", "folded_keys", "folded_normals", "keyed_normals", "normal"]
