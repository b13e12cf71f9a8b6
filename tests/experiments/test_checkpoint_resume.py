"""Resumable runs: atomic chunk files, and an interrupted run resumed equals an uninterrupted one."""

import numpy as np
import pytest

import netfield
from netfield.experiments import ChunkStore, run_chunks, run_key
from netfield.experiments.convergence import measure


def test_store_round_trip_and_atomic_names(tmp_path):
    store = ChunkStore(tmp_path / "ck")
    assert store.load("k", 0, 2) is None
    path = store.save("k", 0, 2, {"a": np.arange(2.0), "b": np.ones((2, 3))})
    assert path.name == "k-0000000-00002.npz"
    loaded = store.load("k", 0, 2)
    np.testing.assert_array_equal(loaded["a"], [0.0, 1.0])
    assert [p.name for p in store.finished("k")] == [path.name]
    assert not list((tmp_path / "ck").glob("*.tmp"))  # no temporary file left behind


def test_truncated_chunk_is_recomputed(tmp_path):
    store = ChunkStore(tmp_path)
    store.path("k", 0, 2).write_bytes(b"PK\x03\x04 truncated")  # what a killed non-atomic writer could leave
    calls = []

    def compute(first, count, tick):
        calls.append(first)
        return {"v": np.full(count, float(first))}

    with pytest.warns(UserWarning, match="cannot be read.*recomputing it"):
        out = run_chunks(4, 2, compute, store=store, key="k", resume=True)
    np.testing.assert_array_equal(out["v"], [0, 0, 2, 2])
    assert calls == [0, 2]


def test_run_key_depends_on_every_field():
    base = {"net": "rnn(...)", "width": 8, "seed": 1}
    assert run_key(**base) == run_key(**dict(base))
    assert run_key(**base) != run_key(**{**base, "width": 16})
    assert run_key(**base) != run_key(**{**base, "seed": 2})


class _Interrupt:
    """A progress callback that raises KeyboardInterrupt after ``after`` networks (like Ctrl-C)."""

    def __init__(self, after):
        self.after, self.seen = after, 0

    def __call__(self, k=1):
        self.seen += k
        if self.seen >= self.after:
            raise KeyboardInterrupt


def test_interrupted_study_resumes_to_identical_numbers(tmp_path):
    x = np.random.default_rng(0).normal(size=(3, 5))
    net = netfield.rnn(3, "erf", weight_var=1.5, bias_var=0.5)
    kwargs = {"widths": (8, 16), "networks": 6, "seed": 4, "chunk_size": 2}
    full = measure(net, x, **kwargs)

    store = ChunkStore(tmp_path / "ck")
    with pytest.raises(KeyboardInterrupt):
        measure(net, x, store=store, progress=_Interrupt(after=7), **kwargs)  # dies inside width 16's 1st chunk
    finished = sorted(p.name for p in (tmp_path / "ck").glob("*.npz"))
    assert len(finished) == 3  # the three chunks of width 8

    computed = []
    resumed = measure(net, x, store=store, resume=True, progress=computed.append, **kwargs)
    assert sum(computed) == 12  # every network accounted for, loaded or computed
    for a, b in zip(full.readout + full.preactivation, resumed.readout + resumed.preactivation):
        np.testing.assert_array_equal(a, b)
    assert len(list((tmp_path / "ck").glob("*.npz"))) == 6


def test_without_resume_chunks_are_recomputed(tmp_path):
    store = ChunkStore(tmp_path)
    store.save("k", 0, 2, {"v": np.array([7.0, 7.0])})
    out = run_chunks(2, 2, lambda f, c, t: {"v": np.zeros(c)}, store=store, key="k", resume=False)
    np.testing.assert_array_equal(out["v"], [0.0, 0.0])
    np.testing.assert_array_equal(store.load("k", 0, 2)["v"], [0.0, 0.0])


def test_results_do_not_depend_on_the_chunk_size():
    x = np.random.default_rng(1).normal(size=(2, 3))
    net = netfield.dnn(2, "erf", weight_var=1.5, bias_var=0.5)
    a = measure(net, x, widths=(8,), networks=5, seed=2, chunk_size=2)
    b = measure(net, x, widths=(8,), networks=5, seed=2, chunk_size=5)
    # netfield.sample's contract: independent of chunking up to the rounding of batched matrix
    # products (~1e-16; a chunk of 2 and one of 5 networks are differently batched products)
    np.testing.assert_allclose(a.readout[0], b.readout[0], rtol=1e-14, atol=0)
    np.testing.assert_allclose(a.preactivation[0], b.preactivation[0], rtol=1e-14, atol=0)
