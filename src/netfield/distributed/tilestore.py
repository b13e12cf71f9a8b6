"""A matrix on disk, written tile by tile, resumable and verifiable: a Zarr group (docs/distributed.md 2).

Layout of the group at ``path`` (Zarr format 3, a directory; readable by any Zarr client)::

    path/zarr.json          attributes["netfield"]: the run (what was computed, for which inputs), shape,
                            tile, netfield version, and a log of the runs that wrote it
    path/<name>/            the (N1, N2) float64 matrix, one Zarr chunk per tile, uncompressed
    path/tile_digest/       (tiles1, tiles2) uint64: 0 for a tile not yet finished, else the first
                            64 bits of the SHA-256 of its bytes (top bit set, so never 0)

A worker computes a tile and writes its chunk; only after that is its digest written, by the caller
(one writer), so a tile whose digest is set has all its bytes on disk. A restarted run reads the
digests and, with ``verify``, reads each finished tile back and checks it against its digest: a tile
that fails (a chunk damaged or removed by hand) is computed again, with a note. A group that holds
another run (other network, inputs, shape or tile) is refused with an error naming the path: nothing
is overwritten.
"""

from __future__ import annotations

import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from .._version import __version__

FORMAT = 1
DIGEST = "tile_digest"


def _zarr():
    try:
        import zarr
    except ImportError:  # pragma: no cover - the test extra installs it
        raise ImportError("out= (a Zarr store) needs zarr: pip install 'netfield[dask]'") from None
    return zarr


def tile_digest(block: np.ndarray) -> int:
    """64-bit digest of a tile's bytes (C order, float64), never 0."""
    data = np.ascontiguousarray(block, dtype=np.float64).tobytes()
    return int.from_bytes(hashlib.sha256(data).digest()[:8], "little") | (1 << 63)


def write_block(path: str, name: str, rows: slice, cols: slice, block: np.ndarray) -> None:
    """Write ``block`` at (rows, cols) of the matrix ``name`` of the group at ``path`` (runs on a worker;
    the rows and columns cover whole chunks, so no two tasks write the same chunk)."""
    array = _zarr().open_array(os.path.join(path, name), mode="r+")
    array[rows, cols] = np.asarray(block, dtype=np.float64)


class TileStore:
    """The Zarr group of one tiled matrix (module docstring).

    Args:
        path: the group's directory (``.zarr`` by convention).
        name: the matrix's name inside the group (``"kernel"``).
        shape: (N1, N2).
        tile: rows and columns per tile (the Zarr chunk).
        run: JSON-ready description of what is computed; a group holding another run is refused.
    """

    def __init__(self, path, name: str, shape: tuple, tile: int, run: dict):
        self.path = str(Path(path))
        self.name, self.shape, self.tile = name, tuple(int(s) for s in shape), int(tile)
        self.tiles = tuple(-(-s // self.tile) for s in self.shape)
        self.run = json.loads(json.dumps(run))  # as it reads back from the file
        zarr = _zarr()
        exists = Path(self.path).exists()
        if exists and not (Path(self.path) / "zarr.json").is_file():
            raise ValueError(f"out: {self.path} exists and is not a Zarr group; choose another path")
        group = zarr.open_group(self.path, mode="a")
        meta = dict(group.attrs).get("netfield") if exists else None
        if exists and meta is None and list(group.keys()):
            raise ValueError(f"out: the Zarr group {self.path} was not written by netfield; choose another path")
        if meta is not None:
            self._check(meta)
        else:
            group.create_array(name, shape=self.shape, chunks=(self.tile, self.tile), dtype="f8",
                               fill_value=np.nan, compressors=None, overwrite=True)
            group.create_array(DIGEST, shape=self.tiles, chunks=(1, 1), dtype="u8", fill_value=0,
                               compressors=None, overwrite=True)
            group.attrs["netfield"] = {"format": FORMAT, "name": name, "shape": list(self.shape), "tile": self.tile,
                                       "run": self.run, "version": __version__, "runs": []}
        self.group = group

    def _check(self, meta: dict) -> None:
        mine = {"name": self.name, "shape": list(self.shape), "tile": self.tile}
        for key, value in mine.items():
            if meta.get(key) != value:
                raise ValueError(f"out: the Zarr store {self.path} holds a matrix with {key}={meta.get(key)!r}, this "
                                 f"run needs {key}={value!r}; choose another path or delete it")
        if meta.get("run") != self.run:
            theirs, ours = meta.get("run") or {}, self.run
            differ = sorted(k for k in set(theirs) | set(ours) if theirs.get(k) != ours.get(k))
            raise ValueError(f"out: the Zarr store {self.path} holds another run (it differs in "
                             f"{', '.join(differ) or 'its description'}); choose another path or delete it")

    # -- tiles -------------------------------------------------------------------------------------
    def bounds(self, i: int, j: int) -> tuple[slice, slice]:
        t = self.tile
        return slice(i * t, min((i + 1) * t, self.shape[0])), slice(j * t, min((j + 1) * t, self.shape[1]))

    def digests(self) -> np.ndarray:
        return np.asarray(self.group[DIGEST][...])

    def finished(self, tiles, *, verify: bool = True, note=None) -> set:
        """The tiles of ``tiles`` whose digest is set (and, with ``verify``, whose bytes match it).

        Cost of ``verify``: one read of every finished tile (the whole matrix once, at disk speed)."""
        digests = self.digests()
        done = set()
        for i, j in tiles:
            if digests[i, j] == 0:
                continue
            if verify:
                rows, cols = self.bounds(i, j)
                block = np.asarray(self.group[self.name][rows, cols])
                if tile_digest(block) != int(digests[i, j]):
                    if note is not None:
                        note(f"tile ({i}, {j}) of {self.path} does not match its digest; computing it again")
                    continue
            done.add((i, j))
        return done

    def mark(self, i: int, j: int, digest: int) -> None:
        """Record tile (i, j) as finished (after its bytes are written)."""
        self.group[DIGEST][i:i + 1, j:j + 1] = np.array([[digest]], dtype=np.uint64)

    def log(self, computed: int, reused: int, seconds: float, workers: int) -> None:
        """Append this run to the group's log (what a resumed run did: tiles computed and reused)."""
        meta = dict(self.group.attrs["netfield"])
        meta["runs"] = list(meta.get("runs", [])) + [{"computed": computed, "reused": reused, "workers": workers,
                                                     "seconds": round(seconds, 3), "finished": time.time()}]
        self.group.attrs["netfield"] = meta

    def array(self):
        """The matrix, opened read-only."""
        return _zarr().open_array(os.path.join(self.path, self.name), mode="r")


__all__ = ["TileStore", "tile_digest", "write_block"]
