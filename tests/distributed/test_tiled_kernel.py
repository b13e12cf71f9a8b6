"""Kernels in tiles (issue 22, part 2): in memory or to Zarr, in this process or on 2 Dask workers,
the same bits; resumable Zarr stores; a killed worker changes nothing; bad input refused."""

import os
import time
import warnings

import numpy as np
import pytest

import netfield as nf
from netfield._runtime.checkpoint import ChunkWarning

X = np.random.default_rng(0).normal(size=(600, 8))
ERF = nf.dnn(4, "erf", weight_var=1.5, bias_var=0.1)


def test_tiles_in_process_are_the_untiled_kernel_bit_for_bit():
    # closed-form chain and a tile that is a multiple of the fused recursion's 256: the same tile programs
    for kind in ("nngp", "ntk"):
        full = np.asarray(nf.kernel(ERF, X, kind=kind))
        tiled = nf.kernel(ERF, X, tile=256, kind=kind, progress=False)
        assert isinstance(tiled, np.ndarray) and tiled.shape == (600, 600)
        assert np.array_equal(tiled, full)
    cross = nf.kernel(ERF, X, X[:250], tile=256, progress=False)
    assert np.array_equal(cross, np.asarray(nf.kernel(ERF, X, X[:250])))


def test_tiles_of_a_generic_program_agree_with_the_untiled_kernel():
    # a tanh RNN read out at every step runs the generic interpreter: tiles are exact blocks of the same
    # numbers up to the quadrature's roundoff (a wrong block assembly would be O(1) off)
    seqs = np.random.default_rng(1).normal(size=(40, 3, 4))
    net = nf.rnn(3, "tanh", bias_var=0.2)
    tiled = nf.kernel(net, seqs, readout="all", tile=15, progress=False)
    full = np.asarray(nf.kernel(net, seqs, readout="all"))
    assert tiled.shape == (120, 120)
    np.testing.assert_allclose(tiled, full, rtol=0, atol=1e-9)


def test_dask_workers_give_the_same_bits_as_one_process(dask_client):
    cases = [
        (ERF, X, None, {"kind": "nngp"}, 256),
        (ERF, X, None, {"kind": "ntk"}, 256),
        (ERF, X, X[:130], {}, 200),
        (nf.rnn(3, "tanh", bias_var=0.2), np.random.default_rng(1).normal(size=(40, 3, 4)), None,
         {"readout": "all"}, 15),
        (nf.gru(3), np.random.default_rng(2).normal(size=(24, 3, 4)), None, {"qmc_points": 256}, 10),
    ]
    for net, x1, x2, options, tile in cases:
        here = nf.kernel(net, x1, x2, tile=tile, progress=False, **options)
        there = nf.kernel(net, x1, x2, tile=tile, client=dask_client, progress=False, **options)
        assert np.array_equal(here, there), (net, options)


def test_zarr_store_equals_memory_and_resumes_only_missing_tiles(tmp_path, dask_client):
    path = str(tmp_path / "K.zarr")
    memory = nf.kernel(ERF, X, tile=128, progress=False)
    total = 5 * 6 // 2  # tiles on and above the diagonal of a 5 x 5 tiling

    class Interrupt(Exception):
        pass

    finished = []

    def stop_after_four(k):
        finished.append(k)
        if sum(finished) >= 4:
            raise Interrupt

    with pytest.raises(Interrupt):
        nf.kernel(ERF, X, tile=128, out=path, progress=stop_after_four)
    digests = np.asarray(__import__("zarr").open_array(os.path.join(path, "tile_digest"))[...])
    done_upper = int(np.count_nonzero(np.triu(digests)))
    assert done_upper == 4  # the tiles whose digest is written are exactly those reported finished
    array = nf.kernel(ERF, X, tile=128, out=path, client=dask_client, progress=False)
    assert np.array_equal(array[...], memory)
    runs = __import__("zarr").open_group(path).attrs["netfield"]["runs"]
    assert runs[-1]["computed"] == total - 4 and runs[-1]["reused"] == 4
    again = nf.kernel(ERF, X, tile=128, out=path, progress=False)
    assert np.array_equal(again[...], memory)
    assert __import__("zarr").open_group(path).attrs["netfield"]["runs"][-1]["computed"] == 0


def test_a_damaged_tile_is_found_and_computed_again(tmp_path):
    path = str(tmp_path / "K.zarr")
    memory = nf.kernel(ERF, X[:300], tile=128, progress=False)
    nf.kernel(ERF, X[:300], tile=128, out=path, progress=False)
    import zarr

    zarr.open_array(os.path.join(path, "kernel"), mode="r+")[0:128, 128:256] = 0.5
    with pytest.warns(ChunkWarning, match=r"tile \(0, 1\)"):
        array = nf.kernel(ERF, X[:300], tile=128, out=path, progress=False)
    assert np.array_equal(array[...], memory)
    assert zarr.open_group(path).attrs["netfield"]["runs"][-1]["computed"] == 1


def test_a_zarr_store_of_another_run_is_refused(tmp_path):
    path = str(tmp_path / "K.zarr")
    nf.kernel(ERF, X[:200], tile=100, out=path, progress=False)
    with pytest.raises(ValueError, match=r"K\.zarr holds a matrix with shape=\[200, 200\]"):
        nf.kernel(ERF, X[:300], tile=100, out=path, progress=False)
    with pytest.raises(ValueError, match=r"K\.zarr holds a matrix with tile=100"):
        nf.kernel(ERF, X[:200], tile=50, out=path, progress=False)
    with pytest.raises(ValueError, match=r"K\.zarr holds another run \(it differs in network\)"):
        nf.kernel(ERF.replace(weight_var=2.0), X[:200], tile=100, out=path, progress=False)
    with pytest.raises(ValueError, match=r"differs in x1"):
        nf.kernel(ERF, X[200:400], tile=100, out=path, progress=False)
    (tmp_path / "plain.zarr").mkdir()  # a folder named like a store that is none
    with pytest.raises(ValueError, match="is not a Zarr group"):
        nf.kernel(ERF, X[:200], tile=100, out=str(tmp_path / "plain.zarr"), progress=False)
    with pytest.raises(ValueError, match=r"out must be the path of a Zarr store ending in '\.zarr'"):
        nf.kernel(ERF, X[:200], tile=100, out=str(tmp_path / "plain"), progress=False)


def test_a_killed_worker_changes_nothing(tmp_path, dask_client):
    import signal

    memory = nf.kernel(ERF, X, tile=100, progress=False)
    killed = []

    def kill_once(k):  # after the first finished tile, SIGKILL one worker process (its tiles are lost)
        if k and not killed:
            pid = next(iter(dask_client.run(os.getpid).values()))
            killed.append(pid)
            os.kill(pid, signal.SIGKILL)

    result = nf.kernel(ERF, X, tile=100, client=dask_client, progress=kill_once)
    assert killed and np.array_equal(result, memory)
    path = str(tmp_path / "K.zarr")
    killed.clear()
    array = nf.kernel(ERF, X, tile=100, out=path, client=dask_client, progress=kill_once)
    assert killed and np.array_equal(array[...], memory)
    deadline = time.monotonic() + 60
    while len(dask_client.scheduler_info()["workers"]) < 2 and time.monotonic() < deadline:
        time.sleep(0.2)  # the nanny restarts the worker for the tests after this one


def test_bad_input_is_refused_with_the_argument_named(tmp_path, monkeypatch):
    import importlib

    executor_module = importlib.import_module("netfield.distributed.executor")
    # a 1 s connection timeout instead of the default 10 s (the message states whichever is in force)
    monkeypatch.setattr(executor_module.executor.__wrapped__, "__kwdefaults__", {"timeout": 1.0})
    with pytest.raises(ValueError, match="workers must be an integer >= 1, got 0"):
        nf.kernel(ERF, X[:10], workers=0)
    with pytest.raises(ValueError, match="tile must be"):
        nf.kernel(ERF, X[:10], tile=0)
    with pytest.raises(ValueError, match="not both"):
        nf.kernel(ERF, X[:10], client="tcp://127.0.0.1:1", workers=2)
    with pytest.raises(TypeError, match="client must be a distributed.Client or a scheduler address"):
        nf.kernel(ERF, X[:10], client=3)
    with pytest.raises(ValueError, match="batch-coupled"):
        nf.kernel(nf.batchnorm_mlp(2), X[:10], tile=5)
    start = time.monotonic()
    with pytest.raises(ConnectionError, match=r"client: cannot reach a Dask scheduler at 'tcp://127.0.0.1:9' within 1 s"):
        nf.kernel(ERF, X[:10], client="tcp://127.0.0.1:9")
    assert time.monotonic() - start < 21  # the stated timeout (1 s) plus Dask's own retries, not forever


def test_no_dask_import_without_client_or_workers():
    import subprocess
    import sys

    code = ("import sys, numpy as np, netfield as nf; nf.kernel(nf.dnn(2), np.eye(3), tile=2, progress=False); "
            "print(any(m == 'dask' or m.startswith(('dask.', 'distributed')) for m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"


def test_inside_jax_grad_tiles_are_refused():
    import jax

    def f(w):
        return nf.kernel(ERF.replace(weight_var=w), X[:4], tile=2).sum()

    with warnings.catch_warnings(), pytest.raises(ValueError, match="not differentiable"):
        jax.grad(f)(1.5)


def test_kernel_command_writes_zarr_tiles_on_a_scheduler(tmp_path, dask_client, capsys):
    from netfield.cli import main

    x = np.random.default_rng(3).normal(size=(90, 5))
    np.save(tmp_path / "x.npy", x)
    common = ["kernel", "--inputs", str(tmp_path / "x.npy"), "--tile", "32", "--quiet"]
    assert main(common + ["--out", str(tmp_path / "K.zarr"), "--scheduler", dask_client.scheduler.address]) == 0
    import zarr

    assert np.array_equal(zarr.open_array(str(tmp_path / "K.zarr" / "kernel"))[...],
                          nf.kernel(nf.dnn(3, "erf"), x, tile=32, progress=False))
    capsys.readouterr()
    assert main(common + ["--out", str(tmp_path / "K.zarr"), "--depth", "4"]) == 2  # another run in the store
    err = capsys.readouterr().err
    assert err.startswith("netfield: error: --out: the Zarr store") and "another run" in err
    assert main(common + ["--out", str(tmp_path / "k.npy"), "--workers", "0"]) == 2
    assert "--workers" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "k.npy"), "--tile", "0"]) == 2
    assert "--tile must be an integer >= 1" in capsys.readouterr().err
    assert main(common + ["--out", str(tmp_path / "k.npy"), "--scheduler", "tcp://127.0.0.1:9"]) == 2
    assert capsys.readouterr().err.startswith("netfield: error: --scheduler: cannot reach a Dask scheduler")
