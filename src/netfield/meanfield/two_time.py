"""All two-time blocks C(t, s) of a DNN / RNN chain, each distinct block computed once (docs/theory.md 2.2).

    C(t, 1) = bias_var + input_var x_t . x_1 / d
    C(t, s) = bias_var + input_var x_t . x_s / d + weight_var E[phi phi](D_{t-1}, D_{s-1}, C(t-1, s-1))

C(t, s) depends only on C(t-1, s-1): the blocks of one lag k = t - s form an independent chain
C(k+1, 1) -> C(k+2, 2) -> ... of T - k blocks, and C(s, t) = C(t, s)^T. So an RNN needs the T (T + 1) / 2
blocks of lags 0..T-1, not all T^2. They are computed lag by lag, vectorised over lags: lag k (T - k
blocks) and lag T - 1 - k (k + 1 blocks) share a slot of T + 1 steps, so one ``lax.scan`` of T + 1 steps
over ceil(T / 2) slots evaluates every distinct block once (T odd: the middle lag's slot repeats its
lag in its second half). A DNN (independent weights per layer) has only lag 0; the rest is zero. The
input Gram blocks x_t . x_s / d are computed in the step that needs them (the drive is fused: no
(N T)^2 token Gram matrix).

The recursion is entrywise in (a, b) once the per-row factors of the diagonals are known, so it runs on
fixed TILE x TILE tiles of (a, b), as the readout kernel does (fused.py): one compiled program serves
every number of inputs (the first call at a new N compiles nothing), tiles are spread over the CPU cores
with threads, and each tile's stacked blocks are copied by NumPy into an uninitialised (T, T, N, N)
array, the transposed copy C(s, t) = C(t, s)^T included. Writing the 800 MB result of T = 50, N = 200
inside XLA (a zero-filled carry updated in place) took 0.22 s of a 0.35 s call; NumPy's copies into
fresh memory take ~0.1 s.

Measured (2-core VM, erf, warm call / first call at N - 1 after calls at N and 100; docs/meanfield.md
section 2): T = 50, N = 200, d = 64: 0.43 / 0.46 s, where one program over all N rows (compiled per
N, the result written by XLA) took 0.29-0.31 / 0.65-0.71 s and numpy's recursion 0.48-0.51 s;
T = 10, N = 1000: 0.39 / 0.39 s against 0.36 / 0.63 s. Per tile, the Gram products (32 x d by d x 32,
one per lag slot and step) are about half the time; 64 x 64 tiles were slower (the scan's blocks
leave the cache).

The diagonal entries C(t, t)(a, a) are the exact variances D_t(a) (``fused.diagonals``), as everywhere
else.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .._runtime.vector_width import wide_vector_options
from ..distributed import thread_budget
from ..gauss.activations import Activation
from .factorisations import factorisation
from .fused import _by_tiles, _pad, _prep_program, diagonals, release_freed_memory

TILE = 32
TILES_PER_CALL = 1  # 2 per call: 0.40-0.43 s against 0.36-0.38 s (T = 50, N = 200, d = 64, 2 threads)


def schedule(steps: int, shared: bool):
    """(t, s): ``t[j, i]``, ``s[j, i]`` the block (0-based, t >= s) that slot i computes at scan step j.
    RNN: slot i runs lag i (steps j < T - i, s = j), then lag T - 1 - i (s = j - (T - i)); T odd: the
    middle slot's second half repeats its own lag (the same numbers, written again). DNN: lag 0."""
    T = steps
    if not shared:
        t = np.arange(T)[:, None]
        return t, t.copy()
    slots = (T + 1) // 2
    j = np.arange(T + 1)[:, None]
    i = np.arange(slots)[None, :]
    first = j < T - i
    lag = np.where(first, i, T - 1 - i)
    s = np.where(first, j, j - (T - i))
    return lag + s, s


@lru_cache(maxsize=32)
def lag_tile_program(act: Activation, steps: int, t_in: int, shared: bool, tile: int, dim: int):
    """Jitted ``run(hyper, xa, xb, da, pa, pb, pins) -> blocks`` over a batch of B tiles: xa, xb (B, steps,
    tile, d) the rows' / columns' inputs (zero after step ``t_in``), da (B, steps, tile) the rows'
    variances D_t, pa, pb tuples of per-row factors (B, steps, tile) from the activation's ``prep``,
    pins (B,) True on tiles of the kernel's diagonal (there C(t, t)(a, a) is set to D_t(a)). Returns
    (B, J, slots, tile, tile): block [b, j, i] is C(t[j, i], s[j, i]) of tile b (:func:`schedule`).
    Depends on (activation, steps, t_in, shared, tile, d) only, not on the number of inputs."""
    _, entry, _ = factorisation(act)
    t_of, s_of = schedule(steps, shared)  # NumPy constants of the program (no eager compilations)
    eye = np.eye(tile, dtype=bool)

    @partial(jax.jit, compiler_options=wide_vector_options())
    def run(hyper, xa_all, xb_all, da_all, pa_all, pb_all, pins):
        wv, bv, iv = hyper[0], hyper[1], hyper[2]

        def one(args):
            xa, xb, da, pa, pb, on_diagonal = args
            pin = eye & on_diagonal

            def step(carry, ts):
                t, s = ts  # (slots,) each
                at = tuple(p[jnp.maximum(t - 1, 0)][:, :, None] for p in pa)
                bt = tuple(p[jnp.maximum(s - 1, 0)][:, None, :] for p in pb)
                rec = jnp.where((s == 0)[:, None, None], 0.0, wv * entry(carry, at, bt))
                if t_in == 1:  # static inputs: only x_1 . x_1 is non-zero
                    gram = jnp.where(((t == 0) & (s == 0))[:, None, None], xa[0] @ xb[0].T / dim, 0.0)
                else:
                    gram = jnp.einsum("mad,mbd->mab", xa[t], xb[s]) / dim
                block = bv + iv * gram + rec
                block = jnp.where(pin & (t == s)[:, None, None], da[t][:, :, None], block)
                return block, block

            init = jnp.zeros((t_of.shape[1], tile, tile), xa.dtype)
            return jax.lax.scan(step, init, (t_of, s_of))[1]

        return jax.lax.map(one, (xa_all, xb_all, da_all, pa_all, pb_all, pins))

    return run


def two_time_kernels(chain, x: np.ndarray, steps: int | None = None, threads: int | None = None) -> np.ndarray:
    """All pre-activation blocks C(t, s) = Cov(h_t(a), h_s(b)) of a chain program, shape
    (steps, steps, N, N), numpy (module docstring).

    x: (N, T_in, d) inputs of one length (zero-padded after T_in: no input). Cost: T (T + 1) / 2 N^2
    closed-form expectations and as many Gram entries of length d (an RNN; a DNN T N^2), plus writing
    the T^2 N^2 result; memory: the result and TILES_PER_CALL tiles' blocks per thread (T^2 / 2 x 8 KB each).
    ``threads`` (default: the process's thread budget) is the lever; the result does not depend on it.
    """
    act = chain.activation
    steps = chain.steps if steps is None else steps
    hyper = tuple(float(chain.hyper(k)) for k in ("weight_var", "bias_var", "input_var"))
    n, dim = x.shape[0], x.shape[2]
    t_in = min(steps, x.shape[1])
    diag = diagonals(act, hyper + (1.0, 0.0), x, steps)  # (steps, N)
    m = -(-n // TILE) * TILE
    xin = np.zeros((m, steps, dim))
    xin[:n, :t_in] = x[:, :t_in]
    rows = np.ascontiguousarray(xin.transpose(1, 0, 2)).reshape(steps, m // TILE, TILE, dim).transpose(1, 0, 2, 3)
    dpad = _pad(np.asarray(diag), 1, m, 1.0)  # padded rows: variance 1 (finite values, discarded)
    prep, _, _ = factorisation(act)
    tables = _by_tiles(_prep_program(prep), dpad, 1, 1.0)
    per_tile = [np.ascontiguousarray(a.reshape(steps, m // TILE, TILE).transpose(1, 0, 2)) for a in (dpad, *tables)]
    run = lag_tile_program(act, steps, t_in, chain.shared, TILE, dim)
    t_of, s_of = schedule(steps, chain.shared)
    out = np.empty((steps, steps, n, n)) if chain.shared else np.zeros((steps, steps, n, n))
    hyper_j = np.asarray(hyper, np.float64)
    count = m // TILE
    pairs = [(i, j) for i in range(count) for j in range(count)]

    tt, ss = _rest_blocks(t_of, steps), _rest_blocks(s_of, steps)  # every block but C(t, t)
    diag_t = np.arange(steps)

    def work(batch):
        padded = batch + [batch[0]] * (TILES_PER_CALL - len(batch))  # fixed batch shape: one compilation
        ri = np.array([p[0] for p in padded])
        ci = np.array([p[1] for p in padded])
        res = np.asarray(run(hyper_j, rows[ri], rows[ci], per_tile[0][ri], tuple(p[ri] for p in per_tile[1:]),
                             tuple(p[ci] for p in per_tile[1:]), ri == ci))
        for (i, j), blk in zip(batch, res):
            a, b = slice(i * TILE, min(n, (i + 1) * TILE)), slice(j * TILE, min(n, (j + 1) * TILE))
            r, c = a.stop - a.start, b.stop - b.start
            for part, t, s in zip(_rest_blocks(blk, steps), tt, ss):
                out[t, s, a, b] = part[..., :r, :c]
                out[s, t, b, a] = part[..., :r, :c].swapaxes(-1, -2)
            # C(t, t): tile (i, j) and tile (j, i) both compute it; the one with i <= j writes both,
            # so that every C(t, t) is exactly symmetric whatever order the threads run in
            same = blk[:steps, 0, :r, :c]
            if i == j:
                same = np.triu(same) + np.triu(same, 1).swapaxes(-1, -2)
            if i <= j:
                out[diag_t, diag_t, a, b] = same
                out[diag_t, diag_t, b, a] = same.swapaxes(-1, -2)

    batches = [pairs[k:k + TILES_PER_CALL] for k in range(0, len(pairs), TILES_PER_CALL)]
    threads = threads or min(thread_budget(), len(batches))
    work(batches[0])  # alone first: a first call compiles once, not once per thread
    if threads <= 1:
        for b in batches[1:]:
            work(b)
    else:
        with ThreadPoolExecutor(threads) as pool:
            list(pool.map(work, batches[1:]))
    release_freed_memory()
    return out


def _rest_blocks(a, steps: int):
    """The parts of a tile's output (J, slots, ...) (or of the schedule's t / s, (J, slots)) other than
    C(t, t): every slot but the first (lags 1..T-1), and the first slot's step T (lag T - 1, present for
    an RNN with T >= 2). The first slot's steps 0..T-1 are lag 0, C(t, t) (:func:`schedule`)."""
    tail = steps >= 2 and a.shape[0] > steps
    return a[:, 1:], a[steps:, :1] if tail else a[:0, :1]


__all__ = ["lag_tile_program", "schedule", "two_time_kernels"]
