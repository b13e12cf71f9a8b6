"""The ``netfield`` command line: outputs equal the public API, one-line errors, resumable runs."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import netfield
from netfield.cli import main


def _command():
    exe = shutil.which("netfield")
    return [exe] if exe else [sys.executable, "-m", "netfield"]


def _run(args, **kw):
    return subprocess.run(_command() + args, capture_output=True, text=True, timeout=300, check=False, **kw)


@pytest.fixture
def files(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x.npy", rng.normal(size=(4, 3)))
    np.save(tmp_path / "seq.npy", rng.normal(size=(3, 5, 3)))
    np.savetxt(tmp_path / "x.csv", rng.normal(size=(2, 3)), delimiter=",")
    np.save(tmp_path / "flat.npy", np.ones(6))
    bad = np.ones((3, 3))
    bad[2, 1] = np.nan
    np.save(tmp_path / "nan.npy", bad)
    return tmp_path


@pytest.mark.parametrize("command", [[], ["kernel"], ["sample"], ["converge"], ["demo"]])
def test_help_everywhere_with_examples(command, capsys):
    assert main(command + ["--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: netfield" in out and "examples:" in out


def test_kernel_command_equals_library(files, capsys):
    out = files / "k.npy"
    rc = main(["kernel", "--arch", "rnn", "--depth", "5", "--activation", "tanh", "--weight-var", "1.5",
               "--bias-var", "0.5", "--inputs", str(files / "seq.npy"), "--readout", "all", "--out", str(out)])
    assert rc == 0
    net = netfield.rnn(5, "tanh", weight_var=1.5, bias_var=0.5)
    np.testing.assert_array_equal(np.load(out), np.asarray(netfield.kernel(net, np.load(files / "seq.npy"),
                                                                            readout="all")))
    assert np.load(out).shape == (15, 15)
    rc = main(["kernel", "--inputs", str(files / "x.csv"), "--inputs2", str(files / "x.npy"), "--out", str(out)])
    assert rc == 0 and np.load(out).shape == (2, 4)
    assert "wrote" in capsys.readouterr().out


def test_kernel_command_ntk_equals_library(files, capsys):
    out = files / "ntk.npy"
    x = np.load(files / "seq.npy")
    rc = main(["kernel", "--kind", "ntk", "--arch", "rnn", "--depth", "5", "--activation", "tanh", "--inputs",
               str(files / "seq.npy"), "--parameterization", "standard", "--width", "64", "--out", str(out)])
    assert rc == 0 and "NTK (standard parameterization)" in capsys.readouterr().out
    ref = netfield.kernel(netfield.rnn(5, "tanh"), x, kind="ntk", parameterization="standard", width=64)
    np.testing.assert_array_equal(np.load(out), np.asarray(ref))
    for bad, option in ((["--width", "64"], "--width"), (["--kind", "ntk", "--parameterization", "standard"], "--width"),
                        (["--parameterization", "standard"], "--parameterization")):
        rc = main(["kernel", "--inputs", str(files / "x.npy"), "--out", str(out), *bad])
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith(f"netfield: error: {option}") and err.count("\n") == 1


def test_sample_command_equals_library(files):
    out = files / "s.npz"
    rc = main(["sample", "--arch", "rnn", "--depth", "3", "--width", "16", "--networks", "5", "--seed", "7",
               "--chunk-size", "2", "--preactivations", "all", "--inputs", str(files / "x.npy"), "--out", str(out),
               "--quiet"])
    assert rc == 0
    ref = netfield.sample(netfield.rnn(3, "erf"), np.load(files / "x.npy"), 16, 5, seed=7, preactivations="all")
    with np.load(out) as data:
        # chunk size 2 vs the default: the same networks; batched matmuls may round differently (~1e-17)
        np.testing.assert_allclose(data["readout"], ref.readout, rtol=0, atol=1e-13)
        np.testing.assert_allclose(data["preactivation_1_3"], ref.preactivation(1, 3), rtol=0, atol=1e-13)
        np.testing.assert_allclose(data["readout_mean"], ref.readout_stats()[0], rtol=0, atol=1e-13)
        assert json.loads(str(data["meta"]))["seed"] == 7
    assert not (files / "s.npz.checkpoints").exists()  # chunk files removed after success


def test_converge_command_writes_study(files, capsys):
    out = files / "conv"
    rc = main(["converge", "--depth", "2", "--weight-vars", "1.0,2.0", "--widths", "8,16", "--networks", "3",
               "--digits", "3", "--out", str(out), "--quiet"])
    assert rc == 0
    summary = json.loads((out / "convergence.json").read_text())
    assert summary["settings"]["weight_vars"] == [1.0, 2.0]
    assert len(summary["comparisons"]) == 2 * 2 * 2
    assert {p.name for p in out.glob("*.png")} == {"convergence_wv1.png", "convergence_wv2.png", "depth.png",
                                                   "weight_var.png"}
    assert "A_RNN/A_DNN" in capsys.readouterr().out


# ---------------------------------------------------------------------------------------- error paths

BAD_INPUTS = [
    (["kernel", "--inputs", "{d}/missing.npy"], "does not exist"),
    (["kernel", "--inputs", "{d}/flat.npy"], "must have shape (N, d) or (N, T, d)"),
    (["kernel", "--inputs", "{d}/nan.npy"], "finite numbers, got nan"),
    (["kernel", "--activation", "foo"], "activation must be one of"),
    (["kernel", "--weight-var", "-1"], "--weight-var must be a finite number > 0, got -1.0"),
    (["kernel", "--bias-var", "-0.5"], "--bias-var must be a finite number >= 0"),
    (["kernel", "--readout-var", "nan"], "--readout-var must be a finite number > 0, got nan"),
    (["kernel", "--inputs", "{d}/seq.npy", "--depth", "2"], "network has only 2 steps"),
    (["kernel", "--out", "{d}/k.txt"], "--out must end in .npy"),
    (["kernel", "--depth", "three"], "invalid int value"),
    (["sample", "--inputs", "{d}/missing.csv"], "does not exist"),
    (["sample", "--width", "0", "--quiet"], "--width must be an integer >= 1"),
    (["sample", "--seed", "-1", "--quiet"], "--seed must be an integer"),
    (["converge", "--inputs", "{d}/nan.npy"], "finite numbers, got nan"),
    (["converge", "--widths", "16,x"], "expected comma-separated integers"),
    (["converge", "--weight-vars", "1.5,-2", "--quiet"], "--weight-vars must be a finite number > 0"),
    (["converge", "--activation", "nope"], "activation must be one of"),
    (["demo", "--networks", "1", "--quiet", "--out", "{d}/rep"], "--networks must be an integer >= 2"),
    (["nosuchcommand"], "invalid choice"),
]


@pytest.mark.parametrize("argv, message", BAD_INPUTS, ids=[" ".join(a[:2]) for a, _ in BAD_INPUTS])
def test_bad_input_is_one_line_and_status_2(files, capsys, argv, message):
    rc = main([a.format(d=files) for a in argv])
    err = capsys.readouterr().err
    assert rc == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("netfield: error: ")
    assert message in lines[0]


def test_console_script_exit_status_and_no_traceback(files):
    for argv in (["kernel", "--inputs", str(files / "nan.npy")], ["kernel", "--activation", "foo"]):
        proc = _run(argv)
        assert proc.returncode == 2
        assert "Traceback" not in proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and proc.stderr.startswith("netfield: error:")


# ---------------------------------------------------------------------------------------- interrupt / resume

def _wait_for_chunks(directory, count, proc, timeout=240.0):
    start = time.monotonic()
    while time.monotonic() - start < timeout:
        if directory.is_dir() and len(list(directory.glob("*.npz"))) >= count:
            return
        if proc.poll() is not None:
            raise AssertionError(f"run ended before {count} chunks were written: {proc.stderr.read()}")
        time.sleep(0.02)
    raise AssertionError("timed out waiting for chunks")


@pytest.mark.slow
def test_killed_sample_run_resumes_to_the_uninterrupted_result(files):
    """Ctrl-C after 2 chunks, SIGKILL after 4 more, then --resume: same numbers as one uninterrupted run."""
    x = np.random.default_rng(3).normal(size=(4, 5))
    np.save(files / "x5.npy", x)
    out, ckpt = files / "big.npz", files / "ck"
    argv = ["sample", "--depth", "4", "--width", "1024", "--networks", "30", "--chunk-size", "2", "--seed", "11",
            "--inputs", str(files / "x5.npy"), "--out", str(out), "--checkpoint", str(ckpt), "--quiet"]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}

    # a shell that starts the test suite in the background makes children ignore SIGINT (and Python then
    # installs no KeyboardInterrupt handler); a handled (not ignored) SIGINT in this process is reset to
    # the default at exec, so the child reacts to Ctrl-C as it would for a user
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        proc = subprocess.Popen(_command() + argv, stderr=subprocess.PIPE, text=True, env=env)
    finally:
        signal.signal(signal.SIGINT, previous)
    _wait_for_chunks(ckpt, 2, proc)
    proc.send_signal(signal.SIGINT)
    _, err = proc.communicate(timeout=120)
    assert proc.returncode == 130, err
    assert "--resume" in err and "Traceback" not in err
    assert not out.exists()
    first = {p.name: p.stat().st_mtime_ns for p in ckpt.glob("*.npz")}
    assert 2 <= len(first) < 15

    proc = subprocess.Popen(_command() + argv + ["--resume"], stderr=subprocess.PIPE, text=True, env=env)
    _wait_for_chunks(ckpt, len(first) + 4, proc)
    proc.kill()  # SIGKILL: no chance to clean up
    proc.communicate(timeout=60)
    assert not out.exists()
    for chunk in ckpt.glob("*.npz"):  # a killed writer may leave a hidden .tmp file, never a bad chunk
        with np.load(chunk) as data:
            assert data["readout"].shape == (2, 4, 4)
    second = {p.name: p.stat().st_mtime_ns for p in ckpt.glob("*.npz")}
    assert all(second[name] == mtime for name, mtime in first.items())  # finished chunks were not redone

    proc = subprocess.run(_command() + argv + ["--resume", "--keep-checkpoints"], capture_output=True, text=True,
                          timeout=300, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    third = {p.name: p.stat().st_mtime_ns for p in ckpt.glob("*.npz")}
    assert len(third) == 15 and all(third[name] == mtime for name, mtime in second.items())

    # the uninterrupted run of the same command: chunks of 2 networks (other chunkings agree to ~1e-16,
    # the rounding of batched products; a resumed run must agree bit for bit with its own chunking)
    ref = netfield.sample(netfield.dnn(4, "erf"), x, 1024, 30, seed=11, chunk_size=2)
    with np.load(out) as data:
        np.testing.assert_array_equal(data["readout"], ref.readout)
        np.testing.assert_array_equal(data["preactivation_4_4"], ref.preactivation(4))
