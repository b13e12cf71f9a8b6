"""Ensembles on Dask (issue 22, part 3): sampled networks and checkpointed chunks as tasks give the
single-process bits; a killed worker or an interrupted run loses no finished chunk."""

import os
import signal

import numpy as np
import pytest

import netfield as nf
from netfield._runtime.checkpoint import ChunkStore, run_chunks, run_key
from netfield.cli import main

X = np.random.default_rng(0).normal(size=(5, 4))


@pytest.mark.parametrize("net, options", [
    (nf.rnn(3, "erf", bias_var=0.1), {"chunk_size": 3}),          # the chain sampler
    (nf.gru(2), {"chunk_size": 4, "preactivations": "all"}),     # the program sampler
    (nf.dnn(2, "relu"), {"ntk": True}),                          # empirical NTKs, default chunk
])
def test_sample_on_workers_is_the_single_process_ensemble(dask_client, net, options):
    here = nf.sample(net, X, width=32, networks=10, seed=3, **options)
    there = nf.sample(net, X, width=32, networks=10, seed=3, client=dask_client, **options)
    assert np.array_equal(here.readout, there.readout)
    assert here.preactivations.keys() == there.preactivations.keys()
    for key in here.preactivations:
        assert np.array_equal(here.preactivations[key], there.preactivations[key])
    assert (here.ntk is None and there.ntk is None) or np.array_equal(here.ntk, there.ntk)
    assert (there.width, there.seed, there.steps, there.networks) == (here.width, here.seed, here.steps, 10)


def test_nlo_simulation_on_workers_is_the_single_process_one(dask_client):
    from netfield.nlo.simulate import simulate

    net = nf.dnn(2, "erf", weight_var=1.5, bias_var=0.1)
    kwargs = {"widths": (8, 16, 32), "networks": 40, "seed": 5, "chunk_size": 10, "progress": False}
    here = simulate(net, X[:2], **kwargs)
    there = simulate(net, X[:2], client=dask_client, **kwargs)
    for name in ("mean", "mean_se", "cov", "cov_se"):
        assert np.array_equal(getattr(here, name), getattr(there, name)), name


def _counting_compute(log_dir):
    """A chunk computation that leaves one file per evaluation (it runs on a worker; the folder is shared)."""

    def compute(first, count, tick):
        import time

        import numpy as np

        path = os.path.join(log_dir, f"{first}-{time.monotonic_ns()}-{os.getpid()}")
        open(path, "w").close()
        rng = np.random.default_rng(first)
        time.sleep(0.05)
        return {"values": rng.normal(size=(count, 3))}

    return compute


def _evaluations(log_dir) -> dict:
    counts: dict = {}
    for name in os.listdir(log_dir):
        first = int(name.split("-")[0])
        counts[first] = counts.get(first, 0) + 1
    return counts


def test_interrupted_run_on_workers_resumes_without_recomputing(tmp_path, dask_client):
    log = tmp_path / "log"
    log.mkdir()
    store, key = ChunkStore(tmp_path / "chunks"), run_key(kind="test-chunks", n=1)
    (tmp_path / "plain").mkdir()
    expected = run_chunks(40, 4, _counting_compute(str(tmp_path / "plain")))["values"]
    seen = []

    class Stop(Exception):
        pass

    def stop_after_three_chunks(k):
        seen.append(k)
        if len(seen) == 3:
            raise Stop

    with pytest.raises(Stop):
        run_chunks(40, 4, _counting_compute(str(log)), store=store, key=key, client=dask_client,
                   progress=stop_after_three_chunks)
    saved = {int(p.stem.split("-")[-2]) for p in store.finished(key)}
    assert len(saved) == 3
    before = _evaluations(log)
    values = run_chunks(40, 4, _counting_compute(str(log)), store=store, key=key, resume=True,
                        client=dask_client)["values"]
    assert np.array_equal(values, expected)
    after = _evaluations(log)
    for first in saved:  # a chunk saved before the interruption is never evaluated again
        assert after[first] == before[first] == 1
    assert sorted(after) == list(range(0, 40, 4))


def test_a_killed_worker_loses_no_finished_chunk(tmp_path, dask_client):
    log = tmp_path / "log"
    log.mkdir()
    (tmp_path / "plain").mkdir()
    expected = run_chunks(40, 4, _counting_compute(str(tmp_path / "plain")))["values"]
    store, key = ChunkStore(tmp_path / "chunks"), run_key(kind="test-chunks", n=2)
    killed = []

    def kill_once(k):
        if not killed:
            pid = next(iter(dask_client.run(os.getpid).values()))
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    values = run_chunks(40, 4, _counting_compute(str(log)), store=store, key=key, client=dask_client,
                        progress=kill_once)["values"]
    assert killed and np.array_equal(values, expected)
    assert len(store.finished(key)) == 10
    _wait_for_workers(dask_client)


def _wait_for_workers(client, count=2, seconds=60):
    import time

    deadline = time.monotonic() + seconds
    while len(client.scheduler_info()["workers"]) < count and time.monotonic() < deadline:
        time.sleep(0.2)


def test_sample_command_on_a_scheduler_writes_the_single_process_file(tmp_path, dask_client, capsys):
    address = dask_client.scheduler.address
    common = ["sample", "--arch", "rnn", "--depth", "2", "--width", "16", "--networks", "6", "--chunk-size", "2",
              "--digits", "4", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "a.npz")]) == 0
    assert main(common + ["--out", str(tmp_path / "b.npz"), "--scheduler", address]) == 0
    a, b = np.load(tmp_path / "a.npz"), np.load(tmp_path / "b.npz")
    assert np.array_equal(a["readout"], b["readout"])
    capsys.readouterr()
    assert main(common + ["--out", str(tmp_path / "c.npz"), "--workers", "0"]) == 2
    err = capsys.readouterr().err
    assert "--workers" in err and err.count("\n") == 1
    assert main(common + ["--out", str(tmp_path / "c.npz"), "--workers", "2", "--scheduler", address]) == 2
    assert "not both" in capsys.readouterr().err
