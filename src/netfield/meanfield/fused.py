"""Fast path for the readout kernel of a chain program (DNN, or RNN read out at one time).

docs/design.md allows a specialised path behind the same interface; it is chosen when the program is
recognised as a chain (:func:`netfield.program.shape.recognise_chain`) and is tested against the
generic :class:`~netfield.meanfield.netsor.ProgramEngine`. For a chain of single-argument
nonlinearities the equal-time recursion (docs/theory.md 2.1)

    K_1(a, b) = bias_var + input_var x_1a . x_1b / d
    K_t(a, b) = bias_var + input_var x_ta . x_tb / d + weight_var E[phi phi](D_{t-1}(a), D_{t-1}(b), K_{t-1}(a, b))
    K_out     = readout_var E[phi phi](D_T(a), D_T(b), K_T(a, b)) + readout_bias_var

is a scalar recursion per entry once the diagonals D_t are known. So: (1) compute all diagonals
(O(N L)); (2) run each tile of entries through all layers while it stays in cache; (3) for a
symmetric kernel, only tiles on or above the diagonal; (4) tiles are spread over CPU cores with
threads (JAX releases the GIL while a compiled function runs). Per-row factors of the closed forms
(e.g. 1/sqrt(1 + 2 D) for erf) are computed once per row and layer, not once per entry
(factorisations.py).

The NTK (``kind="ntk"``, docs/meanfield.md D2) runs the same tiles with Theta carried along with K
per entry: Theta_1 = c_b + c_U x_1 . x_1', Theta_t = c_b + c_U x_t . x_t' + c_W E[phi phi](K_{t-1})
+ weight_var E[phi' phi'](K_{t-1}) Theta_{t-1}, Theta_out = c_bo + c_V E[phi phi](K_T) + readout_var
E[phi' phi'](K_T) Theta_T, the direct terms c_* those of the parameterization (meanfield/ntk.py).
For the RNN read out at one step only equal-time terms enter, so the recursion is the DNN's.
"""

from __future__ import annotations

import ctypes
import ctypes.util
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .._runtime.vector_width import wide_vector_options
from ..distributed import thread_budget
from ..gauss import pair, series
from ..gauss.activations import Activation
from ..gauss.quadrature import square_mean
from .factorisations import (
    diagonal_dpair,
    factorisation,
    series_derivative,
    series_factorisation,
    series_tables,
)

# Tile edge of every fused program, whatever the number of inputs: one compiled tile program serves every
# N, so the first kernel at a new N after any earlier call costs about a warm call (issue 20; measured
# 2026-12-07, erf DNN of depth 10, after calls at N = 5000 and 100: a first call at N = 4999 / 3000 / 700 /
# 40 / 3 took 1.02 / 1.04 / 1.28 / 1.36 / 1.22x a warm call there, where power-of-two tiles from 8 took up
# to 0.43 s (150x) below 256). The price: a kernel of a few inputs computes a whole 256 x 256 tile and
# discards the padding, ~1 ms more per call (erf depth 10: 2.1 -> 3.1 ms warm at N = 3; tanh depth 3:
# 7.6 -> 11 ms). Tests set TILE smaller to exercise several tiles.
TILE = 256
TILES_PER_CALL = 1


def _by_tiles(fn, a: np.ndarray, axis: int, fill: float):
    """fn applied to ``a`` in slices of TILE along ``axis`` (padded with ``fill`` to a multiple of TILE),
    the results (arrays or tuples of arrays, TILE long along ``axis``) concatenated and cut back to the
    length of ``a``: a program compiled for one slice shape serves every number of inputs (one compiled
    per N before: the first kernel at a new N > TILE paid for its diagonal recursion, tables and
    readout variances)."""
    a = np.asarray(a)
    n = a.shape[axis]
    padded = _pad(a, axis, -(-n // TILE) * TILE, fill)
    parts = [fn(np.take(padded, np.arange(i, i + TILE), axis=axis)) for i in range(0, padded.shape[axis], TILE)]

    def join(pieces):
        return np.take(np.concatenate([np.asarray(p) for p in pieces], axis=axis), np.arange(n), axis=axis)

    if isinstance(parts[0], tuple):
        return tuple(join([p[k] for p in parts]) for k in range(len(parts[0])))
    return join(parts)


def supports(act: Activation) -> bool:
    """Closed-form activations run every fused path; numerical ones use the generic interpreter for
    two-time blocks (the readout kernel takes them through the Mehler series, see readout_kernel)."""
    return act.has_closed_form


def supports_readout(act: Activation) -> bool:
    """Activations the fused readout kernel handles: closed forms, and smooth ones by their Mehler
    series (when its order meets the tolerance; readout_kernel returns None otherwise)."""
    return act.has_closed_form or series.applies(act)


def _diagonal_pair(act: Activation, var):
    """E[phi(u)^2], u ~ N(0, var): the closed form at c = 1, or the 1-D panel rule the generic
    interpreter uses on the diagonal for activations without one."""
    return pair(act, var, var, var) if act.has_closed_form else square_mean(act, var)


# ---- diagonals ------------------------------------------------------------------------------------

def diagonals(act: Activation, hyper, x: np.ndarray, steps: int):
    """D_t(a) = Var h_t(a), t = 1..steps, shape (steps, N), numpy (docs/theory.md 2.1 on the diagonal).
    NumPy, not JAX arrays: an eager JAX copy or index of an array of a new shape compiles a small program
    (~20 ms each; three of them were most of the 50 ms a first kernel at a new N cost above a warm one)."""
    d = x.shape[2]
    sq = np.zeros((steps, x.shape[0]))
    sq[: min(steps, x.shape[1])] = (np.einsum("atd,atd->ta", x, x) / d)[:steps]
    if act.jumps:  # sign-like closed forms are arcsin(c) at c = 1: keep the concrete call (exact c = 1)
        out = [hyper[1] + hyper[2] * sq[0]]
        for t in range(1, steps):
            prev = jnp.asarray(out[-1])
            out.append(hyper[1] + hyper[2] * sq[t] + hyper[0] * pair(act, prev, prev, prev))
        return np.stack([np.asarray(o, np.float64) for o in out])
    chain = _diagonal_chain(act)
    hyper3 = np.asarray(hyper[:3], np.float64)  # NumPy: an eager JAX conversion compiles a program
    # TILE inputs at a time (padded with zero input power): one compiled scan for every N
    return _by_tiles(lambda part: chain(hyper3, part), sq, 1, 0.0)


@lru_cache(maxsize=64)
def _diagonal_chain(act: Activation):
    """One jitted scan for the diagonal recursion (one dispatch instead of one per step)."""

    @jax.jit
    def run(hyper, sq):
        wv, bv, iv = hyper[0], hyper[1], hyper[2]

        def step(prev, drive):
            new = bv + iv * drive + wv * _diagonal_pair(act, prev)
            return new, new

        first = bv + iv * sq[0]
        _, rest = jax.lax.scan(step, first, sq[1:])
        return jnp.concatenate([first[None], rest])

    return run


# ---- tiles ----------------------------------------------------------------------------------------

@lru_cache(maxsize=64)
def _tile_program(entry, steps: int, t_in: int, tile: int, dim: int, track: bool = False, dentry=None):
    """Jitted map over a batch of tiles. Its arguments are the tiles themselves, gathered on the host
    (xa, xb: (B, tile, t_in, d); da: (B, steps, tile), the row diagonals; pa, pb: tuples of per-row factors
    (B, steps, tile, ...) from the activation's ``prep``; pins: (B,) True on diagonal tiles of a
    symmetric kernel), so the compiled program depends on (entry, steps, t_in, tile, d) only and is
    reused for every number of inputs. Returns the (B, tile, tile) blocks, and with ``track`` also
    the largest |c| = |K_ab| / sqrt(D_a D_b) that ``entry`` was evaluated at off the pinned diagonal,
    per tile (B,); then pa[0], pb[0] must be 1 / sqrt(D).

    With ``dentry`` (E[phi' phi'], the NTK) each entry carries Theta_t along with K_t (module
    docstring) and the blocks are Theta_out. ``hyper`` then holds five more numbers, the direct terms
    of the parameter groups (cw, cb, ci, cr, crb): Theta_t = cb + ci x_t.x_t' [+ cw E[phi phi] +
    weight_var E[phi' phi'] Theta_{t-1}], Theta_out = crb + cr E[phi phi] + readout_var
    E[phi' phi'] Theta_T; and dd (B, steps, tile) holds the rows' E[phi'(h_t)^2], which replaces
    dentry on the pinned diagonal (c = 1 exactly: relu's E[phi' phi'] has infinite slope there)."""
    eye = np.eye(tile, dtype=bool)  # a constant of the program (jnp.eye: three eager compilations)
    ntk = dentry is not None

    @partial(jax.jit, compiler_options=wide_vector_options())
    def run(hyper, xa_all, xb_all, da_all, pa_all, pb_all, pins, dd_all=None):
        wv, bv, iv, rv, rbv = hyper[0], hyper[1], hyper[2], hyper[3], hyper[4]
        cw, cb, ci, cr, crb = (hyper[5], hyper[6], hyper[7], hyper[8], hyper[9]) if ntk else (None,) * 5

        def one(args):
            xa, xb, da, pa, pb, on_diagonal, dd = args
            # on tiles of the diagonal, pin K_t(a, a) to D_t(a): roundoff must not move c off 1,
            # where maps like sign's have infinite slope
            pin = eye & on_diagonal

            def largest(cmax, k, at, bt):
                if not track:
                    return cmax
                return jnp.maximum(cmax, jnp.max(jnp.where(pin, 0.0, jnp.abs(k * at[0] * bt[0]))))

            def through(k, at, bt, t):  # E[phi' phi'] at the pre-activations of step t
                return jnp.where(pin, jax.lax.dynamic_index_in_dim(dd, t - 1, 0, False)[:, None], dentry(k, at, bt))

            gram = xa[:, 0] @ xb[:, 0].T
            k = bv + iv * gram / dim
            k = jnp.where(pin, da[0][:, None], k)
            theta = cb + ci * gram if ntk else None

            # the NTK's loop carries K and Theta packed as one complex array: then one fused loop
            # writes both, and entry(K) (used by both) is evaluated once per entry and layer; as
            # two arrays XLA fuses entry into each consumer and evaluates it twice (its arcsin
            # polynomial is "cheap" to duplicate), ~2x slower
            def pack(k, theta):
                return jax.lax.complex(k, theta) if ntk else k

            def unpack(state):
                return (jnp.real(state), jnp.imag(state)) if ntk else (state, None)

            def layer(t, carry):
                state, cmax = carry
                k, theta = unpack(state)
                at = tuple(p[t - 1][:, None] for p in pa)
                bt = tuple(p[t - 1][None, :] for p in pb)
                cmax = largest(cmax, k, at, bt)
                e = entry(k, at, bt)
                if ntk:
                    theta = cb + cw * e + wv * through(k, at, bt, t) * theta
                new = bv + wv * e
                if t_in > 1:
                    gram = jnp.einsum("ad,bd->ab", jax.lax.dynamic_index_in_dim(xa, t, 1, False),
                                      jax.lax.dynamic_index_in_dim(xb, t, 1, False))
                    new = new + jnp.where(t < t_in, iv * gram / dim, 0.0)
                    if ntk:
                        theta = theta + jnp.where(t < t_in, ci * gram, 0.0)
                new = jnp.where(pin, jax.lax.dynamic_index_in_dim(da, t, 0, False)[:, None], new)
                return pack(new, theta), cmax

            state, cmax = jax.lax.fori_loop(1, steps, layer, (pack(k, theta), jnp.zeros((), k.dtype)))
            k, theta = unpack(state)
            last_a = tuple(p[steps - 1][:, None] for p in pa)
            last_b = tuple(p[steps - 1][None, :] for p in pb)
            e = entry(k, last_a, last_b)
            if ntk:
                out = crb + cr * e + rv * through(k, last_a, last_b, steps) * theta
            else:
                out = rv * e + rbv
            return out, largest(cmax, k, last_a, last_b)

        blocks, cmax = jax.lax.map(one, (xa_all, xb_all, da_all, pa_all, pb_all, pins, dd_all))
        return (blocks, cmax) if track else blocks

    return run


@lru_cache(maxsize=64)
def _prep_program(prep):
    return jax.jit(lambda d: tuple(jnp.asarray(p, jnp.float64) for p in prep(d)))


def _libc_trim():
    """glibc's ``malloc_trim(0)`` (None elsewhere): hands memory freed by compilation and by the
    worker threads' tile buffers back to the operating system. glibc keeps freed blocks of a few MB
    in its per-thread heaps; without the trim they stay resident (~40-80 MB measured after a first
    call at N = 5000), on top of the next call's output."""
    try:
        name = ctypes.util.find_library("c")
        trim = ctypes.CDLL(name).malloc_trim if name else None
    except (OSError, AttributeError):
        return None
    return trim


_TRIM = _libc_trim()


def release_freed_memory():
    if _TRIM is not None:
        _TRIM(0)


def aligned_empty(shape) -> np.ndarray:
    """Uninitialised float64 array whose data start on a 64-byte boundary: ``jax.device_put`` wraps
    such an array without copying it (measured with jax 0.10 on CPU; ``jnp.asarray`` copies), so a
    kernel filled here is returned as a JAX array at no extra N x N of memory."""
    count = int(np.prod(shape))
    buf = np.empty(count + 8)
    start = (-buf.ctypes.data % 64) // 8
    return buf[start:start + count].reshape(shape)


def as_jax(a: np.ndarray):
    """JAX array of a freshly filled numpy array, sharing its memory where the alignment allows
    (the caller must not write to ``a`` afterwards)."""
    return jax.device_put(a)


def _pad(a: np.ndarray, axis: int, size: int, fill: float = 0.0):
    pad = size - a.shape[axis]
    if pad == 0:
        return a
    widths = [(0, 0)] * a.ndim
    widths[axis] = (0, pad)
    return np.pad(a, widths, constant_values=fill)


class _Tiles:
    """Runs a tile program over every tile of an (N1, N2) kernel (upper triangle only when
    symmetric), TILES_PER_CALL tiles per call, batches spread over threads, into ``out``."""

    def __init__(self, x_shape, steps: int, tile: int, symmetric: bool, threads: int | None):
        self.x_shape, self.steps, self.tile, self.symmetric, self.threads = x_shape, steps, tile, symmetric, threads

    def _split(self, a, axis):  # (count, ...) with tile i of the rows at [i // tile]
        count = a.shape[axis] // self.tile
        a = a.reshape(*a.shape[:axis], count, self.tile, *a.shape[axis + 1:])
        return np.moveaxis(a, axis, 0)

    def run(self, entry, hyper, side1, side2, out, track: bool = False, dentry=None, ddiag=None) -> float:
        """side = (x padded (M, T_in, d), diagonals (steps, M), per-row tables (steps, M, ...)).
        With ``dentry`` the NTK (:func:`_tile_program`): ``hyper`` has the ten numbers and ``ddiag``
        (steps, M1) is E[phi'(h_t)^2] of the rows. Returns the largest |c| the entries were
        evaluated at (with ``track``), else 0."""
        tile, symmetric = self.tile, self.symmetric
        (xp1, dp1, pt1), (xp2, _, pt2) = side1, side2
        n1, n2 = out.shape
        m1, m2 = xp1.shape[0], xp2.shape[0]
        run = _tile_program(entry, self.steps, self.x_shape[0], tile, self.x_shape[1], track, dentry)
        xt1, xt2 = self._split(xp1, 0), self._split(xp2, 0)
        dt1 = self._split(dp1, 1)  # only the rows' diagonals are read (pinning on diagonal tiles)
        ddt = None if dentry is None else self._split(np.asarray(ddiag), 1)
        pt1 = tuple(self._split(p, 1) for p in pt1)
        pt2 = pt1 if symmetric else tuple(self._split(p, 1) for p in pt2)
        hyper_j = np.asarray(hyper, np.float64)
        pairs = [(i, j) for i in range(0, m1, tile) for j in range(0, m2, tile) if not symmetric or j >= i]
        largest = []

        def work(batch):
            padded = batch + [batch[0]] * (TILES_PER_CALL - len(batch))  # fixed batch shape: one compilation
            rows = np.array([p[0] // tile for p in padded])
            cols = np.array([p[1] // tile for p in padded])
            pins = np.array([symmetric and p[0] == p[1] for p in padded])
            res = run(hyper_j, xt1[rows], xt2[cols], dt1[rows],
                      tuple(p[rows] for p in pt1), tuple(p[cols] for p in pt2), pins,
                      None if ddt is None else ddt[rows])
            if track:
                res, cmax = res
                largest.append(float(np.max(cmax)))
            for (i, j), blk in zip(batch, np.asarray(res)):
                r, c = min(tile, n1 - i), min(tile, n2 - j)
                out[i:i + r, j:j + c] = blk[:r, :c]
                if symmetric and j != i:
                    out[j:j + c, i:i + r] = blk[:r, :c].T

        batches = [pairs[k:k + TILES_PER_CALL] for k in range(0, len(pairs), TILES_PER_CALL)]
        threads = self.threads or min(thread_budget(), len(batches))
        release_freed_memory()  # what the diagonals' and tables' compilation left behind
        work(batches[0])  # alone first: a first call compiles once, not once per thread
        release_freed_memory()
        if threads <= 1:
            for b in batches[1:]:
                work(b)
        else:
            with ThreadPoolExecutor(threads) as pool:
                list(pool.map(work, batches[1:]))
        return max(largest, default=0.0)


def _series_kernel(act: Activation, hyper, tiles: _Tiles, side1, side2, out, ntk: bool = False) -> bool:
    """Fill ``out`` by the Mehler series with the smallest order of series.ORDERS that meets
    series.TOLERANCE at the correlations actually met: the remainder after K terms is at most
    sqrt(T_K(D_a) T_K(D_b)) |c|^(K+1) (S2), so with t_K the largest relative Parseval tail of any row
    and c_max the largest |c| off the diagonal (measured by the tile program) the relative error per
    layer is at most t_K c_max^(K+1). An order whose bound fails is replaced by the next one (c_max
    from the attempt is kept to skip orders that cannot pass); False if even the largest fails
    (e.g. very large variances). At c_max = 1 (duplicate inputs) this is the generic path's rule.
    The NTK (``ntk``) also needs E[phi' phi'], whose remainder is bounded by the tail of phi' times
    c_max^K (factorisations.series_tables)."""
    (xp1, dp1), (xp2, dp2) = side1, side2
    power = 0 if ntk else 1
    ddiag = np.asarray(diagonal_dpair(act, jnp.asarray(dp1))) if ntk else None
    cmax = 0.0
    for order in series.ORDERS:
        tab1, tail1, parity = series_tables(act, dp1, order, out.shape[0], ntk)
        tab2, tail2, _ = (tab1, tail1, parity) if tiles.symmetric else series_tables(act, dp2, order, out.shape[1], ntk)
        tail = max(tail1, tail2)
        if tail * cmax ** (order + power) > series.TOLERANCE:
            continue
        dentry = series_derivative(order, parity) if ntk else None
        cmax = tiles.run(series_factorisation(order, parity), hyper, (xp1, dp1, tab1), (xp2, dp2, tab2), out,
                         track=True, dentry=dentry, ddiag=ddiag)
        if tail * cmax ** (order + power) <= series.TOLERANCE:
            return True
    return False


def supports_ntk(act: Activation) -> bool:
    """Activations the fused NTK handles: closed forms with a finite E[phi' phi'] (not sign / step,
    whose derivative is a delta), and smooth ones by the Mehler series of phi and phi'."""
    if act.has_closed_form:
        return factorisation(act)[2] is not None
    return series.applies(act)


def readout_kernel(chain, x1: np.ndarray, x2: np.ndarray | None, steps: int | None = None,
                   threads: int | None = None, *, kind: str = "nngp", parameterization: str = "ntk",
                   width: int | None = None):
    """Readout kernel at step ``steps`` (default: the chain's last) of a chain program
    (:class:`~netfield.program.shape.Chain`) for inputs x1, x2 of shape (N, T_in, d); returns numpy
    float64 (N1, N2), or None for an activation without a closed form whose Mehler series cannot
    meet its tolerance at these variances (the caller then uses the generic interpreter).

    ``kind="ntk"``: the neural tangent kernel instead (for :func:`supports_ntk` activations), in
    ``parameterization`` "ntk" or "standard" (hidden ``width``): each parameter group's direct
    term divided by var / fan_in (meanfield/ntk.py), so input x.x' instead of input_var x.x' / d,
    bias and readout bias 1, hidden and readout matrices width E[phi phi]."""
    act = chain.activation
    steps = chain.steps if steps is None else steps
    hyper = tuple(float(chain.hyper(k)) for k in
                  ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var"))
    ntk = kind == "ntk"
    if ntk:
        wv, bv, iv, rv, rbv = hyper
        n = float(width) if parameterization == "standard" else None
        direct = (wv, bv, iv / x1.shape[2], rv, rbv) if n is None else (n, 1.0, 1.0, n, 1.0)
        hyper = hyper + direct
    symmetric = x2 is None
    x2 = x1 if symmetric else x2
    n1, n2 = x1.shape[0], x2.shape[0]
    tile = TILE
    m1, m2 = -(-n1 // tile) * tile, -(-n2 // tile) * tile
    d1 = diagonals(act, hyper, x1, steps)
    d2 = d1 if symmetric else diagonals(act, hyper, x2, steps)
    xp1, xp2 = _pad(x1, 0, m1), _pad(x2, 0, m2)
    # padded rows get variance 1 (harmless finite values, discarded)
    dp1 = _pad(np.array(d1), 1, m1)
    dp2 = _pad(np.array(d2), 1, m2)
    dp1[:, n1:] = 1.0
    dp2[:, n2:] = 1.0
    out = aligned_empty((n1, n2))
    tiles = _Tiles(x1.shape[1:], steps, tile, symmetric, threads)
    if act.has_closed_form:
        prep, entry, dentry = factorisation(act)
        tables = _by_tiles(_prep_program(prep), dp1, 1, 1.0)  # per-row tables, TILE rows per call
        tables2 = tables if symmetric else _by_tiles(_prep_program(prep), dp2, 1, 1.0)
        ddiag = np.asarray(diagonal_dpair(act, jnp.asarray(dp1))) if ntk else None
        tiles.run(entry, hyper, (xp1, dp1, tables), (xp2, dp2, tables2), out,
                  dentry=dentry if ntk else None, ddiag=ddiag)
    elif not _series_kernel(act, hyper, tiles, (xp1, dp1), (xp2, dp2), out, ntk):
        return None
    if symmetric and not ntk:  # the readout variances
        np.fill_diagonal(out, np.asarray(_readout_variances(act, d1[steps - 1], hyper[3], hyper[4])))
    release_freed_memory()
    return out


def _readout_variances(act: Activation, last, readout_var: float, readout_bias_var: float):
    """readout_var E[phi(h)^2] + readout_bias_var on the diagonal, h ~ N(0, D_T(a)): one compiled
    call for smooth closed forms (not one small compilation per operation)."""
    if act.jumps:  # keep the concrete call (exact c = 1)
        return readout_var * pair(act, last, last, last) + readout_bias_var
    program = _readout_variance_program(act)
    return _by_tiles(lambda part: program(part, readout_var, readout_bias_var), np.asarray(last), 0, 1.0)


@lru_cache(maxsize=64)
def _readout_variance_program(act: Activation):
    return jax.jit(lambda last, rv, rbv: rv * _diagonal_pair(act, last) + rbv)


__all__ = ["diagonals", "readout_kernel", "supports", "supports_ntk"]
