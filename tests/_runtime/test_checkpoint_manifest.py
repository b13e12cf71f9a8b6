"""Checkpoints that cannot lie: every chunk carries a manifest and is verified on resume.

A chunk that lost an array, holds NaN, has the wrong shape, a wrong checksum, is truncated or has no
manifest is recomputed with a one-line note; a chunk of another run (other parameters, renamed) is
rejected naming the file. The resumed result equals the uninterrupted one bit for bit.
"""

import gc
import io
import json
import os
import warnings
import zipfile

import numpy as np
import pytest

from netfield._runtime.checkpoint import MANIFEST, ChunkError, ChunkStore, ChunkWarning, run_chunks, run_key


def _compute(calls):
    def compute(first, count, tick):
        calls.append(first)
        idx = np.arange(first, first + count, dtype=float)
        return {"a": idx, "b": np.outer(idx, [1.0, 2.0])}
    return compute


KEY = run_key(kind="test", width=8, seed=1)


def _full():
    return run_chunks(6, 2, _compute([]))


def _rewrite(path, edit):
    """Rewrite a chunk's arrays (``edit(arrays)``), keeping its old manifest: what a fault or a hand edit does."""
    with np.load(path, allow_pickle=False) as data:
        arrays = {k: data[k] for k in data.files}
    edit(arrays)
    with open(path, "wb") as fh:
        np.savez(fh, **arrays)


def _set_nan(arrays):
    arrays["b"] = arrays["b"].copy()
    arrays["b"][0, 1] = np.nan


def _wrong_shape(arrays):
    arrays["b"] = arrays["b"][:, :1]


def _changed_value(arrays):
    arrays["a"] = arrays["a"] + 1.0


def _no_manifest(arrays):
    del arrays[MANIFEST]


CORRUPTIONS = {
    "missing array": lambda p: _rewrite(p, lambda a: a.pop("b")),
    "NaN": lambda p: _rewrite(p, _set_nan),
    "wrong shape": lambda p: _rewrite(p, _wrong_shape),
    "changed value": lambda p: _rewrite(p, _changed_value),
    "no manifest": lambda p: _rewrite(p, _no_manifest),
    "truncated": lambda p: p.write_bytes(p.read_bytes()[: len(p.read_bytes()) // 2]),
    "garbage": lambda p: p.write_bytes(b"PK\x03\x04 not a chunk"),
}
REASONS = {"missing array": "lost arrays ['b']", "NaN": "does not match its checksum",
           "wrong shape": "has shape (2, 1)", "changed value": "does not match its checksum",
           "no manifest": "has no manifest", "truncated": "cannot be read", "garbage": "cannot be read"}


@pytest.mark.parametrize("kind", sorted(CORRUPTIONS))
def test_a_corrupt_chunk_is_recomputed_with_a_note(tmp_path, kind):
    store = ChunkStore(tmp_path)
    run_chunks(6, 2, _compute([]), store=store, key=KEY)
    bad = store.path(KEY, 2, 2)
    CORRUPTIONS[kind](bad)
    calls, notes = [], []
    out = run_chunks(6, 2, _compute(calls), store=store, key=KEY, resume=True, note=notes.append)
    assert calls == [2]  # only the corrupt chunk is recomputed
    assert len(notes) == 1 and str(bad) in notes[0] and REASONS[kind] in notes[0], notes
    for name, value in _full().items():
        np.testing.assert_array_equal(out[name], value)
    assert store.verify(KEY, 2, 2, KEY.params)[1] is None  # rewritten sound


def test_nan_is_never_reused_even_with_a_matching_checksum(tmp_path):
    store = ChunkStore(tmp_path)
    store.save(KEY, 0, 2, {"a": np.array([0.0, np.nan])})
    calls, notes = [], []
    out = run_chunks(2, 2, lambda f, c, t: calls.append(f) or {"a": np.zeros(c)}, store=store, key=KEY,
                     resume=True, note=notes.append)
    assert calls == [0] and "holds NaN or inf" in notes[0]
    np.testing.assert_array_equal(out["a"], [0.0, 0.0])


def test_default_note_is_a_chunk_warning(tmp_path):
    store = ChunkStore(tmp_path)
    store.path(KEY, 0, 2).write_bytes(b"garbage")
    with pytest.warns(ChunkWarning, match=r"k?.*-0000000-00002\.npz cannot be read.*recomputing it"):
        run_chunks(2, 2, _compute([]), store=store, key=KEY, resume=True)


def test_a_chunk_of_other_parameters_is_rejected_naming_the_file(tmp_path):
    store = ChunkStore(tmp_path)
    other = run_key(kind="test", width=16, seed=1)
    store.save(KEY, 0, 2, {"a": np.zeros(2)}, params=other.params)  # same name, another run's manifest
    before = store.path(KEY, 0, 2).read_bytes()
    with pytest.raises(ChunkError, match=r"chunk .*-0000000-00002\.npz was written with other run parameters "
                                         r"\(width differ\)"):
        run_chunks(2, 2, _compute([]), store=store, key=KEY, resume=True)
    assert store.path(KEY, 0, 2).read_bytes() == before  # nothing overwritten


def test_a_renamed_chunk_is_rejected_naming_the_file(tmp_path):
    store = ChunkStore(tmp_path)
    run_chunks(4, 2, _compute([]), store=store, key=KEY)
    os.replace(store.path(KEY, 2, 2), store.path(KEY, 0, 2))  # chunk 2..3 under the name of 0..1
    with pytest.raises(ChunkError, match=r"-0000000-00002\.npz belongs to another run .*networks 2\.\.3"):
        run_chunks(4, 2, _compute([]), store=store, key=KEY, resume=True)


def test_manifest_records_shapes_dtypes_keys_checksums_and_parameters(tmp_path):
    store = ChunkStore(tmp_path)
    path = store.save(KEY, 0, 2, {"a": np.arange(2.0), "n": np.arange(2, dtype=np.int32)})
    with zipfile.ZipFile(path) as z:
        manifest = json.loads(str(np.load(io.BytesIO(z.read(MANIFEST + ".npy")))))
    assert manifest["key"] == KEY and (manifest["first"], manifest["count"]) == (0, 2)
    assert manifest["params"] == {"kind": "test", "width": 8, "seed": 1}
    assert manifest["arrays"]["a"]["shape"] == [2] and manifest["arrays"]["n"]["dtype"] == "<i4"
    assert len(manifest["arrays"]["a"]["sha256"]) == 64
    assert sorted(store.load(KEY, 0, 2)) == ["a", "n"]  # the manifest is not returned as an array


def test_truncated_chunk_leaves_no_file_open(tmp_path):
    store = ChunkStore(tmp_path)
    path = store.save(KEY, 0, 2, {"a": np.zeros(2), "b": np.ones((2, 3))})
    full = path.read_bytes()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        for n in range(0, len(full), 97):  # truncated at many points: every one unreadable, none left open
            path.write_bytes(full[:n])
            assert store.load(KEY, 0, 2) is None
            gc.collect()
    assert not [w for w in seen if issubclass(w.category, ResourceWarning)]
