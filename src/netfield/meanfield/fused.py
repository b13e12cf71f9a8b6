"""Fast path for the readout kernel of a chain program (DNN, or RNN read out at one time).

DESIGN.md section 1 allows a specialised path behind the same interface; this one is tested against
the generic :class:`~netfield.meanfield.interpreter.CovarianceEngine`. For a chain of single-argument
nonlinearities the equal-time recursion (THEORY.md 2.1)

    K_1(a, b) = bias_var + input_var x_1a . x_1b / d
    K_t(a, b) = bias_var + input_var x_ta . x_tb / d + weight_var E[phi phi](D_{t-1}(a), D_{t-1}(b), K_{t-1}(a, b))
    K_out     = readout_var E[phi phi](D_T(a), D_T(b), K_T(a, b)) + readout_bias_var

is a scalar recursion per entry once the diagonals D_t are known. So: (1) compute all diagonals
(O(N L)); (2) run each tile of entries through all layers while it stays in cache; (3) for a
symmetric kernel, only tiles on or above the diagonal; (4) tiles are spread over CPU cores with
threads (JAX releases the GIL while a compiled function runs). Per-row factors of the closed forms
(e.g. 1/sqrt(1 + 2 D) for erf) are computed once per row and layer, not once per entry.
"""

from __future__ import annotations

import math
import os
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from ..gauss import fastmath, pair
from ..gauss.activations import Activation

TILE = 256
TILES_PER_CALL = 32
_PI = math.pi


# ---- per-activation factorisation: pair(d1, d2, K) = entry(K, prep(d1), prep(d2)) --------------

def _erf_prep(d):
    return (jnp.sqrt(2.0 / (1.0 + 2.0 * d)),)


def _erf_entry(k, p1, p2):
    return (2.0 / _PI) * fastmath.arcsin(k * p1[0] * p2[0])


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


def _linear_prep(d):
    return ()


def _linear_entry(k, p1, p2):
    return k


def _factorisation(act: Activation):
    if act.name == "erf" and act.params == ():
        return _erf_prep, _erf_entry
    if act.name in ("relu", "leaky_relu") and act.pair is not None:
        slope = act.params[0] if act.params else 0.0
        return _relu_prep, _leaky_entry(slope)
    if act.name == "linear":
        return _linear_prep, _linear_entry
    return (lambda d: (d,)), (lambda k, p1, p2: pair(act, p1[0], p2[0], k))


def supports(act: Activation) -> bool:
    """Closed-form activations run on the fused path; numerical ones use the generic interpreter."""
    return act.has_closed_form


# ---- diagonals ------------------------------------------------------------------------------------

def diagonals(act: Activation, hyper, x: np.ndarray, steps: int):
    """D_t(a) = Var h_t(a), t = 1..steps, shape (steps, N) (THEORY.md 2.1 on the diagonal)."""
    wv, bv, iv = hyper[0], hyper[1], hyper[2]
    d = x.shape[2]
    sq = np.einsum("atd,atd->ta", x, x) / d  # (T_in, N)
    out = [bv + iv * sq[0]]
    for t in range(2, steps + 1):
        prev = jnp.asarray(out[-1])
        drive = iv * sq[t - 1] if t <= x.shape[1] else 0.0
        out.append(bv + drive + wv * pair(act, prev, prev, prev))
    return jnp.stack([jnp.asarray(o) for o in out])


# ---- tiles ----------------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _tile_program(act: Activation, steps: int, t_in: int, tile: int, symmetric: bool):
    prep, entry = _factorisation(act)

    eye = jnp.eye(tile, dtype=bool)

    @jax.jit
    def run(hyper, x1, x2, d1, d2, rows, cols):
        wv, bv, iv, rv, rbv = hyper
        dim = x1.shape[2]

        def one(rc):
            r, c = rc
            xa = jax.lax.dynamic_slice_in_dim(x1, r, tile, 0)
            xb = jax.lax.dynamic_slice_in_dim(x2, c, tile, 0)
            da = jax.lax.dynamic_slice_in_dim(d1, r, tile, 1)
            db = jax.lax.dynamic_slice_in_dim(d2, c, tile, 1)
            pa, pb = prep(da), prep(db)  # (steps, tile) each
            # on tiles of the diagonal, pin K_t(a, a) to D_t(a): roundoff must not move c off 1,
            # where maps like sign's have infinite slope
            pin = eye & (r == c) if symmetric else jnp.zeros((tile, tile), bool)
            k = bv + iv * (xa[:, 0] @ xb[:, 0].T) / dim
            k = jnp.where(pin, da[0][:, None], k)

            def layer(t, k):
                at = tuple(p[t - 1][:, None] for p in pa)
                bt = tuple(p[t - 1][None, :] for p in pb)
                new = bv + wv * entry(k, at, bt)
                if t_in > 1:
                    gram = jnp.einsum("ad,bd->ab", jax.lax.dynamic_index_in_dim(xa, t, 1, False),
                                      jax.lax.dynamic_index_in_dim(xb, t, 1, False))
                    new = new + jnp.where(t < t_in, iv * gram / dim, 0.0)
                return jnp.where(pin, jax.lax.dynamic_index_in_dim(da, t, 0, False)[:, None], new)

            k = jax.lax.fori_loop(1, steps, layer, k)
            last_a = tuple(p[steps - 1][:, None] for p in pa)
            last_b = tuple(p[steps - 1][None, :] for p in pb)
            return rv * entry(k, last_a, last_b) + rbv

        return jax.lax.map(one, (rows, cols))

    return run


def _pad(a: np.ndarray, axis: int, size: int):
    pad = size - a.shape[axis]
    if pad == 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, pad)
    return np.pad(a, widths)


def readout_kernel(net, x1: np.ndarray, x2: np.ndarray | None, steps: int | None = None,
                   threads: int | None = None):
    """Readout kernel at step ``steps`` (default: the network's last) of a chain program for inputs
    x1, x2 of shape (N, T_in, d); returns numpy float64 (N1, N2)."""
    act = net.activation
    steps = net.steps if steps is None else steps
    hyper = tuple(float(net.hyper(k)) for k in
                  ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var"))
    symmetric = x2 is None
    x2 = x1 if symmetric else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    tile = min(TILE, max(n1, n2))
    m1, m2 = -(-n1 // tile) * tile, -(-n2 // tile) * tile
    d1 = diagonals(act, hyper, x1, steps)
    d2 = d1 if symmetric else diagonals(act, hyper, x2, steps)
    xp1, xp2 = _pad(x1, 0, m1), _pad(x2, 0, m2)
    # padded rows get variance 1 (harmless finite values, discarded)
    dp1 = _pad(np.array(d1), 1, m1)
    dp2 = _pad(np.array(d2), 1, m2)
    dp1[:, n1:] = 1.0
    dp2[:, n2:] = 1.0
    pairs = [(i, j) for i in range(0, m1, tile) for j in range(0, m2, tile) if not symmetric or j >= i]
    run = _tile_program(act, steps, x1.shape[1], tile, symmetric)
    out = np.empty((n1, n2))
    args = tuple(jnp.asarray(a) for a in (xp1, xp2, dp1, dp2))
    hyper_j = jnp.asarray(hyper)

    def work(batch):
        rows = jnp.asarray([p[0] for p in batch], dtype=jnp.int32)
        cols = jnp.asarray([p[1] for p in batch], dtype=jnp.int32)
        if len(batch) < TILES_PER_CALL:  # fixed batch shape: one compilation
            rows = jnp.concatenate([rows, jnp.zeros(TILES_PER_CALL - len(batch), jnp.int32)])
            cols = jnp.concatenate([cols, jnp.zeros(TILES_PER_CALL - len(batch), jnp.int32)])
        blocks = np.asarray(run(hyper_j, *args, rows, cols))
        for (i, j), blk in zip(batch, blocks):
            r, c = min(tile, n1 - i), min(tile, n2 - j)
            out[i:i + r, j:j + c] = blk[:r, :c]
            if symmetric and j != i:
                out[j:j + c, i:i + r] = blk[:r, :c].T

    batches = [pairs[k:k + TILES_PER_CALL] for k in range(0, len(pairs), TILES_PER_CALL)]
    threads = threads or min(os.cpu_count() or 1, len(batches))
    if threads <= 1:
        for b in batches:
            work(b)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, batches))
    if symmetric:  # the readout variances, with the arithmetic of the generic interpreter
        last = d1[steps - 1]
        np.fill_diagonal(out, np.asarray(hyper[3] * pair(act, last, last, last) + hyper[4]))
    return out


__all__ = ["diagonals", "readout_kernel", "supports", "two_time_kernels"]


# ---- all two-time blocks of an RNN (or DNN) -------------------------------------------------------

@lru_cache(maxsize=32)
def _offset_chains(act: Activation, steps: int, t_in: int):
    """Jitted map over offsets delta of the chain C(t, t + delta), t = 1..steps (THEORY.md 2.2).

    C(1, 1 + delta) = bias_var + input_var x_1 . x_{1+delta} / d
    C(t, t + delta) = bias_var + input_var x_t . x_{t+delta} / d
                      + weight_var E[phi phi](D_{t-1}, D_{t-1+delta}, C(t-1, t-1+delta))
    For a DNN the W / U / b of different layers differ, so only delta = 0 is non-zero; the caller
    passes ``shared=False`` to zero the rest.
    """
    prep, entry = _factorisation(act)

    @jax.jit
    def run(hyper, x, diag, shared):
        wv, bv, iv = hyper[0], hyper[1], hyper[2]
        n, dim = x.shape[0], x.shape[2]
        pad = jnp.concatenate([diag, jnp.ones_like(diag)])  # steps beyond the end: harmless values
        xpad = jnp.concatenate([x, jnp.zeros_like(x)], axis=1)
        preps = prep(pad)
        eye = jnp.eye(n, dtype=bool)

        def chain(delta):
            def gram(t):
                xa = jax.lax.dynamic_index_in_dim(xpad, t, 1, False)
                xb = jax.lax.dynamic_index_in_dim(xpad, t + delta, 1, False)
                return xa @ xb.T / dim

            first = bv + iv * gram(0)
            first = jnp.where(eye & (delta == 0), pad[0][:, None], first)

            def step(k, t):
                pa = tuple(jax.lax.dynamic_index_in_dim(p, t - 1, 0, False)[:, None] for p in preps)
                pb = tuple(jax.lax.dynamic_index_in_dim(p, t - 1 + delta, 0, False)[None, :] for p in preps)
                new = bv + wv * entry(k, pa, pb)
                if t_in > 1:  # static: inputs beyond step 1 exist
                    new = new + iv * gram(t)
                new = jnp.where(eye & (delta == 0), jax.lax.dynamic_index_in_dim(pad, t, 0, False)[:, None], new)
                return new, new

            _, rest = jax.lax.scan(step, first, jnp.arange(1, steps))
            out = jnp.concatenate([first[None], rest])
            return jnp.where((delta == 0) | shared, out, 0.0)

        return jax.lax.map(chain, jnp.arange(steps))

    return run


def two_time_kernels(net, x: np.ndarray, steps: int | None = None) -> np.ndarray:
    """All pre-activation blocks C(t, s) = Cov(h_t(a), h_s(b)), shape (steps, steps, N, N), numpy.

    x: (N, T_in, d) inputs of one length (zero-padded after T_in: no input).
    """
    act = net.activation
    steps = net.steps if steps is None else steps
    hyper = tuple(float(net.hyper(k)) for k in
                  ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var"))
    diag = diagonals(act, hyper, x, steps)
    xin = np.zeros((x.shape[0], steps, x.shape[2]))
    xin[:, : min(steps, x.shape[1])] = x[:, :steps]
    run = _offset_chains(act, steps, min(steps, x.shape[1]))
    by_offset = np.asarray(run(jnp.asarray(hyper), jnp.asarray(xin), diag, net.architecture == "rnn"))
    out = np.empty((steps, steps) + by_offset.shape[2:])
    t = np.arange(steps)
    for delta in range(steps):
        rows = t[: steps - delta]
        out[rows, rows + delta] = by_offset[delta, : steps - delta]
        if delta:
            out[rows + delta, rows] = np.swapaxes(by_offset[delta, : steps - delta], 1, 2)
    return out
