"""Resumable runs: one .npz per finished chunk of networks, written atomically.

A long run (a ``netfield sample`` ensemble, the convergence study of every width and architecture)
is split into chunks of networks. Network i of a run always uses the key fold_in(PRNGKey(seed), i)
(see :func:`netfield.sample`), so a chunk's result does not depend on what ran before it. Each
finished chunk is saved as ``<key>-<first>-<count>.npz`` in a checkpoint directory (written to a
temporary file, then ``os.replace``: a killed run never leaves a half-written chunk under the final
name). With ``resume=True`` finished chunks are loaded instead of recomputed, so an interrupted run
continued with the same arguments gives exactly the numbers of an uninterrupted one. The ``key``
hashes everything that determines a chunk's numbers (:func:`run_key`), so chunks of another
configuration are never picked up by mistake.
"""

from __future__ import annotations

import hashlib
import json
import os
import zipfile
from collections.abc import Callable
from pathlib import Path

import numpy as np

from .._checks import check_positive_int


def array_digest(x) -> str:
    """A short content hash of an array (shape, dtype-normalised values)."""
    arr = np.ascontiguousarray(np.asarray(x, dtype=np.float64))
    h = hashlib.sha256(repr(arr.shape).encode())
    h.update(arr.tobytes())
    return h.hexdigest()[:16]


def run_key(**description) -> str:
    """A stable 20-character key of a run description (JSON-serialisable values)."""
    text = json.dumps(description, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:20]


class ChunkStore:
    """A checkpoint directory holding one ``.npz`` file per finished chunk.

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
        """The arrays of a finished chunk, or None if it is absent or unreadable (then recomputed)."""
        path = self.path(key, first, count)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as data:
                return {name: data[name] for name in data.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None

    def save(self, key: str, first: int, count: int, arrays: dict) -> Path:
        """Write a chunk atomically: temporary file in the same directory, fsync, os.replace."""
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self.path(key, first, count)
        tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        try:
            with open(tmp, "wb") as fh:
                np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
                fh.flush()
                os.fsync(fh.fileno())
            os.replace(tmp, path)
        finally:
            if tmp.exists():
                tmp.unlink()
        return path

    def finished(self, key: str) -> list[Path]:
        """Chunk files of run ``key`` that exist."""
        if not self.directory.is_dir():
            return []
        return sorted(self.directory.glob(f"{key}-*.npz"))


def run_chunks(networks: int, chunk_size: int, compute: Callable, *, store: ChunkStore | None = None,
               key: str | None = None, resume: bool = False, progress: Callable | None = None) -> dict:
    """Run ``compute`` over chunks of networks, saving/restoring finished chunks.

    Args:
        networks: total number of networks of the run.
        chunk_size: networks per chunk (the chunk layout must be the same to resume).
        compute: ``compute(first, count, tick) -> {name: array with leading axis count}``; it calls
            ``tick()`` after each network (for progress bars).
        store: checkpoint directory (None: nothing saved).
        key: run key (:func:`run_key`); required with ``store``.
        resume: load finished chunks from ``store`` instead of recomputing them.
        progress: callable ``progress(k)`` told about k more finished networks.

    Returns:
        {name: array} concatenated over chunks, in network order.
    """
    networks = check_positive_int("networks", networks)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if store is not None and not key:
        raise ValueError("key must be given with a checkpoint store")
    tick = (lambda: progress(1)) if progress is not None else (lambda: None)
    parts = []
    for first in range(0, networks, chunk_size):
        count = min(chunk_size, networks - first)
        arrays = store.load(key, first, count) if (store is not None and resume) else None
        if arrays is not None and all(np.shape(v)[:1] == (count,) for v in arrays.values()):
            if progress is not None:
                progress(count)
        else:
            arrays = compute(first, count, tick)
            if store is not None:
                store.save(key, first, count, arrays)
        parts.append(arrays)
    return {name: np.concatenate([p[name] for p in parts]) for name in parts[0]}
