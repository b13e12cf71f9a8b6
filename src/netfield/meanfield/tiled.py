"""A kernel in tiles: N1 x N2 inputs as tasks, in memory or on disk (docs/distributed.md section 2).

``netfield.kernel(net, x1, x2, tile=..., client=..., workers=..., out=...)`` runs here. The patterns
are cut into blocks of ``tile``; tile (i, j) is ``kernel(net, x1[block i], x2[block j])``, one task,
computed where its rows' inputs live (the blocks are scattered to the workers once). A symmetric
kernel (no ``x2``) computes the tiles on and above the diagonal and mirrors them. Tiles are exact
blocks of the kernel: no interpreter couples patterns except batch norm, which is refused. Each tile
is a pure function of its two blocks, so the result is the same, bit for bit, in one process or on
any number of workers, in any order (for closed-form chain networks and a tile that is a multiple of
256 it is also bit for bit the untiled kernel; for others, equal within their numerical error).

- in memory: tiles come back to the caller and fill one (R1, R2) NumPy array;
- ``out="K.zarr"``: each worker writes its tile to a Zarr store (:class:`~netfield.distributed.
  tilestore.TileStore`); a restarted run with the same arguments computes only the missing tiles.

Cost: the tiles' evaluations (:func:`netfield.kernel`) plus, per task, about a millisecond of Dask
overhead and, with ``out``, a write of the tile (8 tile^2 bytes, twice off the diagonal of a
symmetric kernel); memory per worker: a few tile^2 x 8 bytes. ``tile`` is the lever: fewer, larger
tiles cost less overhead, smaller ones spread better over workers and lose less on interruption.
"""

from __future__ import annotations

import os
import time

import numpy as np

from .._checks import check_positive_int, is_traced
from .._runtime.checkpoint import array_digest
from .._runtime.progress import progress_bar
from ..distributed import executor
from ..distributed.tilestore import TileStore, tile_digest, write_block
from ..storage import describe_network
from .result import readout_rows

TILE = 2048  # patterns per tile: 32 MB of float64 per tile, a multiple of the fused path's 256


def count_patterns(x) -> int:
    return len(x) if isinstance(x, (list, tuple)) else int(np.shape(x)[0])


def take_patterns(x, start: int, stop: int):
    """Patterns start..stop of inputs given as an array or a list of sequences."""
    return list(x[start:stop]) if isinstance(x, (list, tuple)) else np.asarray(x)[start:stop]


def _rows_per_pattern(net, x, readout: str) -> np.ndarray:
    """Output rows of each pattern (1 with readout "last"; its steps with "all"), with one small program
    per distinct pattern shape."""
    n = count_patterns(x)
    if readout == "last":
        return np.ones(n, dtype=np.int64)
    if not isinstance(x, (list, tuple)):
        return np.full(n, len(readout_rows(net.program(take_patterns(x, 0, 1)), "all")), dtype=np.int64)
    by_shape: dict = {}
    counts = np.empty(n, dtype=np.int64)
    for a, seq in enumerate(x):
        shape = np.shape(seq)
        if shape not in by_shape:
            by_shape[shape] = len(readout_rows(net.program([seq]), "all"))
        counts[a] = by_shape[shape]
    return counts


def _check_not_coupled(net, x):
    """Batch norm couples all patterns of a batch: its kernel has no exact tiles."""
    program = net.program(take_patterns(x, 0, min(2, count_patterns(x))))
    if program.batch_coupled:
        raise ValueError(f"tile/client/workers/out: the kernel of {net!r} is batch-coupled (batch norm: every "
                         f"entry depends on the whole batch), so it has no exact tiles; compute it in one call "
                         f"without them")


def kernel_tile(net, xa, xb, options: dict, target):
    """One tile: ``kernel(net, xa, xb)`` (``xb`` None: the symmetric diagonal tile). Runs on a worker.
    ``target`` None: returns the block; else (path, name, rows, cols, mirror): writes it (and its
    transpose at (cols, rows) with ``mirror``) and returns the digests written."""
    from .kernels import kernel

    block = np.asarray(kernel(net, xa, xb, **options), dtype=np.float64)
    if target is None:
        return block
    path, name, rows, cols, mirror = target
    write_block(path, name, rows, cols, block)
    if mirror:
        write_block(path, name, cols, rows, block.T)
        return tile_digest(block), tile_digest(block.T)
    return (tile_digest(block),)


def tiled_kernel(net, x1, x2, options: dict, *, tile, client, workers, out, progress, verify: bool = True):
    """The kernel of :func:`netfield.kernel` (already validated, ``options`` its keyword arguments) in
    tiles (module docstring). Returns a NumPy array, or with ``out`` the Zarr array (read-only)."""
    tile = TILE if tile is None else check_positive_int("tile", tile)
    if out is not None and not (isinstance(out, (str, os.PathLike))
                                and os.fspath(out).rstrip("/\\").lower().endswith(".zarr")):
        raise ValueError(f"out must be the path of a Zarr store ending in '.zarr' (a folder of tiles), got {out!r}; "
                         f"for a .npy / .csv file save the returned array (numpy.save / numpy.savetxt)")
    if any(is_traced(v) for v in net.hyper_values):
        raise ValueError("tile/client/workers/out: a tiled kernel is not differentiable (its tiles are NumPy "
                         "arrays); call netfield.kernel without them inside jax.grad")
    symmetric = x2 is None
    _check_not_coupled(net, x1)
    rows1 = _rows_per_pattern(net, x1, options["readout"])
    rows2 = rows1 if symmetric else _rows_per_pattern(net, x2, options["readout"])
    n1, n2 = len(rows1), len(rows2)
    blocks1 = [(s, min(s + tile, n1)) for s in range(0, n1, tile)]
    blocks2 = blocks1 if symmetric else [(s, min(s + tile, n2)) for s in range(0, n2, tile)]
    off1 = np.concatenate([[0], np.cumsum(rows1)])
    off2 = off1 if symmetric else np.concatenate([[0], np.cumsum(rows2)])
    shape = (int(off1[-1]), int(off2[-1]))

    def bounds(i, j):
        (a0, a1), (b0, b1) = blocks1[i], blocks2[j]
        return slice(int(off1[a0]), int(off1[a1])), slice(int(off2[b0]), int(off2[b1]))

    plan = [(i, j) for i in range(len(blocks1)) for j in range(len(blocks2)) if not symmetric or j >= i]
    store = None
    if out is not None:
        store = _open_store(net, x1, x2, options, out, shape, tile, rows1, rows2)
    start = time.perf_counter()
    done = set() if store is None else store.finished(plan, verify=verify, note=_note)
    todo = [t for t in plan if t not in done]
    result = None if store is not None else np.empty(shape, dtype=np.float64)
    with executor(client, workers) as ex, progress_bar(progress, len(plan), "kernel tiles", unit="tiles") as bar:
        bar(len(done))
        shared1 = ex.share([take_patterns(x1, a, b) for a, b in blocks1])
        shared2 = shared1 if symmetric else ex.share([take_patterns(x2, a, b) for a, b in blocks2])
        tasks = []
        for i, j in todo:
            rows, cols = bounds(i, j)
            target = None if store is None else (store.path, store.name, rows, cols, symmetric and i != j)
            tasks.append((net, shared1[i], None if symmetric and i == j else shared2[j], options, target))

        def finished(k, value):
            i, j = todo[k]
            if store is None:
                rows, cols = bounds(i, j)
                result[rows, cols] = value
                if symmetric and i != j:
                    result[cols, rows] = value.T
            else:
                store.mark(i, j, value[0])
                if len(value) == 2:
                    store.mark(j, i, value[1])
            bar(1)

        ex.run(kernel_tile, tasks, on_result=finished, label="kernel-tile")
        if store is not None:
            store.log(computed=len(todo), reused=len(done), seconds=time.perf_counter() - start, workers=ex.workers)
    return result if store is None else store.array()


def _note(message: str) -> None:
    import warnings

    from .._runtime.checkpoint import ChunkWarning

    warnings.warn(message, ChunkWarning, stacklevel=3)


def _open_store(net, x1, x2, options, out, shape, tile, rows1, rows2) -> TileStore:
    """The Zarr store of this run; tiles of a readout="all" kernel must be whole chunks (equal row counts)."""
    if len(set(rows1.tolist()) | set(rows2.tolist())) > 1:
        raise ValueError("out: a Zarr kernel of sequences of different lengths with readout='all' has tiles of "
                         "unequal rows (not whole Zarr chunks); use readout='last', equal lengths, or no out")
    per_row = int(rows1[0])
    run = {"network": describe_network(net), "x1": array_digest(_as_array(x1)),
           "x2": None if x2 is None else array_digest(_as_array(x2)),
           **{k: v for k, v in options.items()}}
    return TileStore(out, "kernel", shape, tile * per_row, run)


def _as_array(x):
    if isinstance(x, (list, tuple)):
        return np.concatenate([np.asarray(s, dtype=float).ravel() for s in x] +
                              [np.asarray([np.shape(s)[0] for s in x], dtype=float)])
    return np.asarray(x, dtype=float)


__all__ = ["TILE", "count_patterns", "kernel_tile", "take_patterns", "tiled_kernel"]
