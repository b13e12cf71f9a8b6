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
    position = jax.lax.iota(jnp.uint32, total)
    owner = jnp.searchsorted(jnp.asarray(offsets[1:], jnp.uint32), position, side="right")  # parameter k
    counter = position - jnp.asarray(offsets[:-1], jnp.uint32)[owner]  # the element's index in its parameter
    bits_hi, bits_lo = threefry2x32_p.bind(keys[owner, 0], keys[owner, 1], jnp.zeros_like(counter), counter)
    u = _uniform_in_minus_one_one(bits_hi, bits_lo, dtype)
    z = jnp.asarray(np.sqrt(2), dtype) * jax.lax.erf_inv(u)
    return [z[offsets[k]:offsets[k + 1]].reshape(shape) for k, shape in enumerate(shapes)]


# parameters of one shape from which keyed_normals loops over them (lax.map) instead of adding them to the
# single hash: for a 20-layer DNN (19 matrices and 20 vectors of two shapes, vmapped over 3 networks) the
# single hash compiled in 1.43 s, the loops in 1.00 s; for a 4-step RNN (four shapes) the single hash in
# 0.43 s, the loops in 0.55 s (XLA:CPU, 2026-12-06)
LOOPED_GROUP = 4


def _uniform_in_minus_one_one(bits_hi, bits_lo, dtype):
    """Uniform numbers in [nextafter(-1, 0), 1) from threefry's two 32-bit words, as ``jax.random.uniform``
    makes them: float64 from the 64-bit word hi << 32 | lo, float32 from hi ^ lo; the top mantissa-many
    bits become a number in [1, 2), shifted and scaled to the interval."""
    finfo = jnp.finfo(dtype)
    if dtype == jnp.float64:
        bits = (bits_hi.astype(jnp.uint64) << jnp.uint64(32)) | bits_lo.astype(jnp.uint64)
        uint = jnp.uint64
    else:
        bits = bits_hi ^ bits_lo
        uint = jnp.uint32
    nbits, nmant = finfo.bits, finfo.nmant
    one = np.array(1.0, dtype).view(np.dtype(uint))
    floats = jax.lax.bitcast_convert_type((bits >> uint(nbits - nmant)) | uint(one), dtype) - jnp.asarray(1.0, dtype)
    lo = np.nextafter(np.array(-1.0, dtype), np.array(0.0, dtype), dtype=dtype)
    hi = np.array(1.0, dtype)
    return jax.lax.max(jnp.asarray(lo, dtype), floats * jnp.asarray(hi - lo, dtype) + jnp.asarray(lo, dtype))


__all__ = ["folded_keys", "folded_normals", "keyed_normals", "normal"]
