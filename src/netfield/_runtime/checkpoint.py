"""Resumable runs: one verified .npz per finished chunk of networks, written atomically.

A long run (a ``netfield sample`` ensemble, the convergence study of every width and architecture, the
simulation of ``netfield nlo --simulate``) is split into chunks of networks. Network i of a run always
uses the key fold_in(PRNGKey(seed), i) (see :func:`netfield.sample`), so a chunk's result does not
depend on what ran before it. Each finished chunk is saved as ``<key>-<first>-<count>.npz`` in a
checkpoint directory, written to a temporary file, then ``os.replace``: a killed run never leaves a
half-written chunk under the final name. The ``key`` hashes everything that determines a chunk's
numbers (:func:`run_key`), so chunks of another configuration are never picked up by mistake.

Checkpoints that cannot lie (docs/design.md): every chunk carries a manifest (its run key, first
network and count, the run's parameters, and for each array its shape, dtype and SHA-256 checksum).
With ``resume=True`` each chunk is verified before it is used:

- a chunk that cannot be read (truncated, not a zip file), has no manifest, lost an array, holds an
  array whose shape, dtype or checksum differs from the manifest, holds NaN / inf, or whose arrays
  differ from those of the run's other chunks is recomputed, with a one-line note (a
  :class:`ChunkWarning`, printed by the CLI as ``netfield: note: ...``);
- a chunk whose manifest names another run (other parameters, key, first network or count: a file
  copied or renamed by hand) is rejected with a :class:`ChunkError` naming the file; nothing is
  overwritten.

An interrupted run continued with the same arguments therefore gives exactly the numbers of an
uninterrupted one. Final result files are written with :func:`atomic_write`. A checkpoint that is one
file rather than chunks (the posterior sampler's state, :mod:`netfield.feature.checkpoint`) uses the same
manifest through :func:`write_manifest_file`, :func:`read_manifest_file` and :func:`check_manifest_arrays`.
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import warnings
import zipfile
import zlib
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._checks import check_positive_int
from .limits import check_memory

MANIFEST = "__manifest__"
CHUNK_BYTES = 256  # bookkeeping of one chunk in run_chunks (its (first, count) tuple, list slots, ...)
FORMAT = 1


class ChunkError(ValueError):
    """A checkpoint chunk that belongs to another run (rejected, naming the file)."""


class ChunkWarning(UserWarning):
    """A checkpoint chunk that failed verification and is recomputed."""


def array_digest(x) -> str:
    """A short content hash of an array (shape, dtype-normalised values)."""
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    h = hashlib.sha256(repr(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


def _checksum(arr: np.ndarray) -> str:
    arr = np.ascontiguousarray(arr)
    h = hashlib.sha256(f"{arr.dtype.str}{arr.shape}".encode())
    h.update(arr.tobytes())
    return h.hexdigest()


def _canonical(params) -> object:
    """Parameters as they read back from the JSON manifest."""
    return json.loads(json.dumps(params, sort_keys=True, default=str))


class RunKey(str):
    """A run key (a string) that remembers the description it hashes (``.params``)."""

    params: dict

    def __new__(cls, text: str, params: dict):
        self = super().__new__(cls, text)
        self.params = params
        return self


def run_key(**description) -> RunKey:
    """A stable 20-character key of a run description (JSON-serialisable values); the description is
    kept as ``.params`` and written to every chunk's manifest."""
    text = json.dumps(description, sort_keys=True, default=str)
    return RunKey(hashlib.sha256(text.encode()).hexdigest()[:20], _canonical(description))


def atomic_write(path, write: Callable, *, mode: str = "wb") -> Path:
    """Write ``path`` atomically: ``write(fh)`` into a temporary file of the same folder, fsync, then
    ``os.replace`` (an interrupted write never leaves a partial file under ``path``)."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, mode) as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def write_manifest_file(path, arrays: dict, **fields) -> Path:
    """Write ``arrays`` and their manifest (``fields``, e.g. the run key and parameters, and for each array
    its shape, dtype and SHA-256 checksum) to the .npz ``path`` atomically (:func:`atomic_write`)."""
    arrays = {k: np.asarray(v) for k, v in arrays.items()}
    if MANIFEST in arrays:
        raise ValueError(f"a checkpoint array must not be called {MANIFEST!r}")
    manifest = {"format": FORMAT, **{k: (_canonical(v) if k == "params" else v) for k, v in fields.items()},
                "arrays": {k: {"shape": list(v.shape), "dtype": v.dtype.str, "sha256": _checksum(v)}
                           for k, v in arrays.items()}}
    payload = {**arrays, MANIFEST: np.array(json.dumps(manifest, sort_keys=True))}
    return atomic_write(path, lambda fh: np.savez(fh, **payload))


def read_manifest_file(path) -> tuple[dict | None, dict | None, str | None]:
    """Read a file of :func:`write_manifest_file`: ``(arrays, manifest, None)``, or ``(None, None, reason)``
    when it cannot be read or has no readable manifest. The arrays are not checked yet
    (:func:`check_manifest_arrays`)."""
    try:
        raw = Path(path).read_bytes()  # read whole: no file handle stays open whatever the content
        with np.load(io.BytesIO(raw), allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error, KeyError) as err:
        return None, None, f"cannot be read ({type(err).__name__}: {' '.join(str(err).split())[:80]})"
    if MANIFEST not in arrays:
        return None, None, "has no manifest (written by an older netfield or by hand)"
    try:
        manifest = json.loads(str(arrays.pop(MANIFEST)))
        if not isinstance(manifest, dict) or not isinstance(manifest["arrays"], dict):
            raise TypeError("not a manifest")
    except (ValueError, KeyError, TypeError):
        return None, None, "has an unreadable manifest"
    return arrays, manifest, None


def check_manifest_arrays(arrays: dict, manifest: dict) -> str | None:
    """Why ``arrays`` differ from their ``manifest`` (lost or unexpected arrays, another shape or dtype, a
    checksum that does not match), or None when they agree."""
    entries = manifest["arrays"]
    if sorted(arrays) != sorted(entries):
        missing = sorted(set(entries) - set(arrays))
        extra = sorted(set(arrays) - set(entries))
        return f"lost arrays {missing}" if missing else f"holds unexpected arrays {extra}"
    for name, arr in arrays.items():
        want = entries[name] if isinstance(entries[name], dict) else {}
        if list(arr.shape) != want.get("shape") or arr.dtype.str != want.get("dtype"):
            return (f"array {name!r} has shape {arr.shape} and dtype {arr.dtype}, the manifest says "
                    f"{tuple(want.get('shape', ()))} and {want.get('dtype')}")
        if _checksum(arr) != want.get("sha256"):
            return f"array {name!r} does not match its checksum"
    return None


class ChunkStore:
    """A checkpoint directory holding one ``.npz`` file (arrays + manifest) per finished chunk.

    Example:
        >>> import numpy as np, tempfile
        >>> store = ChunkStore(tempfile.mkdtemp())
        >>> path = store.save("k", 0, 2, {"a": np.ones(2)})
        >>> store.load("k", 0, 2)["a"].tolist()
        [1.0, 1.0]
    """

    def __init__(self, directory):
        self.directory = Path(directory)
        if self.directory.exists() and not self.directory.is_dir():
            raise ValueError(f"checkpoint directory {str(self.directory)!r} exists and is not a directory")

    def path(self, key: str, first: int, count: int) -> Path:
        return self.directory / f"{key}-{first:07d}-{count:05d}.npz"

    def load(self, key: str, first: int, count: int) -> dict | None:
        """The arrays of a finished chunk that passes :meth:`verify`, or None (absent or failing;
        a chunk of another run raises :class:`ChunkError`)."""
        arrays, _ = self.verify(key, first, count)
        return arrays

    def verify(self, key: str, first: int, count: int, params=None) -> tuple[dict | None, str | None]:
        """Check a chunk against its manifest: ``(arrays, None)`` when it is sound, ``(None, reason)``
        when it must be recomputed (absent: reason None). Raises :class:`ChunkError` naming the file
        when the manifest names another run (``params`` given and different, or another key, first
        network or count)."""
        path = self.path(key, first, count)
        if not path.is_file():
            return None, None
        arrays, manifest, reason = read_manifest_file(path)
        if reason is not None:
            return None, reason
        try:
            owner = (manifest["key"], manifest["first"], manifest["count"])
        except (KeyError, TypeError):
            return None, "has an unreadable manifest"
        if owner != (str(key), first, count):
            raise ChunkError(f"checkpoint chunk {path} belongs to another run (its manifest says key {owner[0]}, "
                             f"networks {owner[1]}..{owner[1] + owner[2] - 1}); delete it or use another "
                             f"checkpoint directory")
        if params is not None and manifest.get("params") != _canonical(params):
            theirs, ours = manifest.get("params") or {}, _canonical(params)
            diff = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k)) \
                if isinstance(theirs, dict) and isinstance(ours, dict) else ["params"]
            raise ChunkError(f"checkpoint chunk {path} was written with other run parameters "
                             f"({', '.join(diff)} differ); delete it or use another checkpoint directory")
        reason = check_manifest_arrays(arrays, manifest)
        if reason is not None:
            return None, reason
        for name, arr in arrays.items():
            if arr.shape[:1] != (count,):
                return None, f"array {name!r} has {arr.shape[:1]} networks, expected {count}"
            if np.issubdtype(arr.dtype, np.inexact) and not np.isfinite(arr).all():
                return None, f"array {name!r} holds NaN or inf"
        return arrays, None

    def save(self, key: str, first: int, count: int, arrays: dict, params=None) -> Path:
        """Write a chunk and its manifest atomically (:func:`atomic_write`)."""
        self.directory.mkdir(parents=True, exist_ok=True)
        params = getattr(key, "params", None) if params is None else params
        return write_manifest_file(self.path(key, first, count), arrays, key=str(key), first=first, count=count,
                                   params=params)

    def finished(self, key: str) -> list[Path]:
        """Chunk files of run ``key`` that exist."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"{key}-*.npz"))


def _warn(message: str) -> None:
    warnings.warn(message, ChunkWarning, stacklevel=3)


def run_chunks(networks: int, chunk_size: int, compute: Callable, *, store: ChunkStore | None = None,
               key: str | None = None, resume: bool = False, progress: Callable | None = None,
               params: dict | None = None, note: Callable | None = None, client=None, workers=None) -> dict:
    """Run ``compute`` over chunks of networks, saving/restoring verified chunks.

    Args:
        networks: total number of networks of the run.
        chunk_size: networks per chunk (the chunk layout must be the same to resume).
        compute: ``compute(first, count, tick) -> {name: array with leading axis count}``; it calls
            ``tick()`` after each network (for progress bars). A pure function of its arguments (network
            i keyed by its index): on Dask it runs on a worker (pickled with its closure).
        store: checkpoint directory (None: nothing saved).
        key: run key (:func:`run_key`); required with ``store``.
        resume: load finished chunks from ``store`` instead of recomputing them; each is verified
            against its manifest (see the module docstring).
        progress: callable ``progress(k)`` told about k more finished networks.
        params: the run's parameters written to (and checked against) every manifest; default: the
            description of a :func:`run_key` key.
        note: callable told one line about each chunk that failed verification and is recomputed
            (default: a :class:`ChunkWarning`).
        client, workers: where the chunks run (:func:`netfield.distributed.executor`): each missing
            chunk is a task, saved here as soon as it arrives (a lost worker loses no finished chunk);
            progress then advances a chunk at a time. The result is the same bits as in one process.

    Returns:
        {name: array} concatenated over chunks, in network order.

    Raises:
        ChunkError: a chunk of the checkpoint directory belongs to another run (named in the message).
    """
    from ..distributed import executor

    networks = check_positive_int("networks", networks)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    # the chunk list and at least one float64 per network, before either is built (networks=10**12 would
    # fill the memory with bookkeeping alone)
    check_memory("networks", networks, CHUNK_BYTES * -(-networks // chunk_size) + 8 * networks,
                 f"the results of {networks} networks in chunks of {chunk_size}")
    if store is not None and not key:
        raise ValueError("key must be given with a checkpoint store")
    params = getattr(key, "params", None) if params is None else params
    note = _warn if note is None else note
    chunks = [(first, min(chunk_size, networks - first)) for first in range(0, networks, chunk_size)]
    parts: list = [None] * len(chunks)
    layout = None
    for k, (first, count) in enumerate(chunks):
        arrays, reason = store.verify(key, first, count, params) if (store is not None and resume) else (None, None)
        if arrays is not None and layout is not None and _layout(arrays) != layout:
            arrays, reason = None, "holds other arrays than the run's other chunks"
        if reason is not None:
            note(f"checkpoint chunk {store.path(key, first, count)} {reason}; recomputing it")
        if arrays is not None:
            layout = _layout(arrays) if layout is None else layout
            parts[k] = arrays
            if progress is not None:
                progress(count)
    todo = [k for k, part in enumerate(parts) if part is None]
    with executor(client, workers) as ex:
        tick = (lambda: progress(1)) if progress is not None and not ex.distributed else None
        tasks = [(compute, *chunks[k], tick) for k in todo]

        def finished(i, arrays):
            k = todo[i]
            first, count = chunks[k]
            if store is not None:
                store.save(key, first, count, arrays, params)
            parts[k] = arrays
            if progress is not None and ex.distributed:
                progress(count)

        ex.run(_compute_chunk, tasks, on_result=finished, label="chunk")
    layouts = {str(_layout(p)) for p in parts}
    if len(layouts) > 1:  # pragma: no cover - compute returned different arrays for different chunks
        raise RuntimeError(f"compute returned different arrays for different chunks: {sorted(layouts)}")
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}


def _compute_chunk(compute: Callable, first: int, count: int, tick: Callable | None):
    """One chunk (a task): ``compute(first, count, tick)``; no progress ticks on a worker."""
    return compute(first, count, tick if tick is not None else _no_tick)


def _no_tick() -> None:
    return None


def _layout(arrays: dict) -> dict:
    """Names, per-network shapes and dtypes of a chunk's arrays."""
    return {k: (np.shape(v)[1:], np.asarray(v).dtype.str) for k, v in arrays.items()}
