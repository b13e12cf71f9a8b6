"""``netfield feature``: the theory's order parameter q and critical signal on the toy task (0 for the DNN,
0 below and > 0 above the RNN's transition), a tiny HMC sampling run with checkpoints and --resume,
bad input as one line with exit status 2."""

import json

import numpy as np
import pytest

from netfield.cli import main

TINY_SAMPLING = ["--width", "16", "--chains", "2", "--samples", "10", "--burn-in", "10", "--thin", "1"]


def test_help_lists_options_and_examples(capsys):
    assert main(["feature", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: netfield feature" in out and "examples:" in out and "--checkpoint-dir" in out
    assert main(["--help"]) == 0
    assert "netfield feature" in capsys.readouterr().out


def test_dnn_has_no_cross_time_order_and_samples_resume(tmp_path, capsys):
    out, ckpt = tmp_path / "f.json", tmp_path / "ckpt"
    args = ["feature", "--arch", "dnn", "--signal", "0.5", "--points", "4096", *TINY_SAMPLING,
            "--checkpoint-dir", str(ckpt), "--out", str(out)]
    assert main(args) == 0
    captured = capsys.readouterr()
    assert "no transition (no weight sharing" in captured.out and "q sampled" in captured.out
    assert "signal 0.5 |" in captured.err  # the sampler's progress bar, on stderr
    data = json.loads(out.read_text())
    assert data["theory"]["order"] == [0.0] and data["theory"]["architecture"] == "dnn"
    assert data["critical_signal"] is None and data["config"]["signals"] == [0.5]
    (entry,) = data["sampling"]
    assert entry["signal"] == 0.5 and entry["width"] == 16 and entry["samples"] == 10 and entry["chains"] == 2
    assert np.shape(entry["kernel"]) == (3, 3, 2, 2) and np.isfinite(entry["order"]) and entry["order"] >= 0
    assert (ckpt / "feature_0.5.npz").is_file()
    assert main(args + ["--resume", "--quiet"]) == 0  # the finished checkpoint: the same numbers
    again = json.loads(out.read_text())["sampling"][0]
    for key in ("order", "kernel", "kernel_sq", "tau", "acceptance"):
        assert again[key] == entry[key], key


def test_rnn_order_parameter_vanishes_below_and_grows_above_the_transition(tmp_path, capsys):
    out = tmp_path / "f.json"
    assert main(["feature", "--arch", "rnn", "--steps", "3", "--signal", "0.2", "1.0", "--points", "16384",
                 "--refine", "1", "--replicates", "2", "--rtol", "0", "--quiet", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    data = json.loads(out.read_text())
    theory = data["theory"]
    assert theory["signals"] == [0.2, 1.0] and theory["architecture"] == "rnn"
    assert theory["order"][0] < 1e-3 and theory["order"][1] > 0.1
    assert theory["eigenvalue"][0] < 1.0 <= theory["eigenvalue"][1]
    assert 0.2 < data["critical_signal"] < 1.0 and data["sampling"] is None
    assert f"critical signal (theory): {data['critical_signal']:.4g} ± {data['critical_signal_error']:.2g}" in printed
    # the replicates' spread and the interpolation error (one regula-falsi step: a third point), reported
    assert 0 < data["critical_signal_error"] < 0.1 * data["critical_signal"]


def test_mcmc_rule_states_its_errors_and_resumes_to_the_same_numbers(tmp_path, capsys):
    """--rule mcmc (the Markov-chain saddle point, F8c; the default above T P = 24): q with its noise floor,
    the kernel's error and R-hat; its checkpoint resumes to the same numbers."""
    out, ckpt = tmp_path / "f.json", tmp_path / "ck"
    args = ["feature", "--rule", "mcmc", "--signal", "0.3", "--points", "4096", "--checkpoint-dir", str(ckpt),
            "--out", str(out), "--quiet"]
    assert main(args) == 0
    printed = capsys.readouterr().out
    assert "q noise" in printed and "R-hat" in printed and "need --rule qmc or hermite" in printed
    data = json.loads(out.read_text())
    theory = data["theory"]
    assert data["config"]["rule"] == "mcmc" and theory["rule"] == "mcmc" and theory["draws"] == [4096]
    # below the transition (critical signal ~0.6) q = 0: what is reached is the size of its noise floor;
    # a spurious cross-time order (q ~ 0.1-0.5 above the transition) would fail this
    assert theory["order"][0] < 2 * theory["order_noise"][0] < 0.2
    assert 0 < theory["kernel_error"][0] < 0.1 and theory["rhat"][0] < 1.1
    assert (ckpt / "theory_0.3.npz").is_file()
    assert main(args + ["--resume"]) == 0
    again = json.loads(out.read_text())["theory"]
    assert {k: v for k, v in again.items() if k != "seconds"} == {k: v for k, v in theory.items() if k != "seconds"}


def _npz(path, x, **arrays):
    np.savez(path, x=x, **arrays)
    return str(path)


@pytest.mark.parametrize("extra, message", [
    (["--kappa", "0"], "--kappa must be a finite number > 0, got 0"),
    (["--signal", "0.5", "-1"], "--signal must be a finite number > 0, got -1"),
    (["--signal", "abc"], "argument --signal: invalid float value"),
    (["--width", "0"], "--width must be an integer >= 1, got 0"),
    (["--arch", "cnn"], "argument --arch: invalid choice: 'cnn'"),
    (["--rule", "grid"], "argument --rule: invalid choice: 'grid'"),
    (["--activation", "nope"], "nope"),
    (["--weight-var", "-1"], "--weight-var must be a finite number"),
    (["--supervised-steps", "4"], "--supervised-steps must be distinct steps in 1..3"),
    (["--data", "missing.npz"], "--data 'missing.npz' does not exist"),
    (["--data", "bad_y.npz"], "y must have shape"),
    (["--data", "no_y.npz"], "must hold arrays 'x' and 'y'"),
    (["--out", "f.txt"], "--out must end in one of .json"),
    (["--out", "nowhere/f.json"], "--out: the folder"),
    (["--resume", "--width", "4"], "--resume needs --checkpoint-dir"),
    (["--checkpoint-dir", "ckpt"], "--checkpoint-dir needs --width"),
    (["--chain-group", "5"], "--chain-group must be an integer between 1 and --chains (4), got 5"),
    (["--chain-group", "0"], "--chain-group must be an integer between 1 and --chains (4), got 0"),
    (["--workers", "0"], "argument --workers: must be an integer >= 1"),
    (["--workers", "2", "--scheduler", "tcp://127.0.0.1:1"], "give --scheduler or --workers, not both"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).normal(size=(2, 3))
    _npz(tmp_path / "bad_y.npz", x, y=np.ones(3))
    _npz(tmp_path / "no_y.npz", x)
    assert main(["feature", "--quiet"] + extra) == 2
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("netfield: error:") and "\n" not in err and message in err, err
    assert captured.out == ""
