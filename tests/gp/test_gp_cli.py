"""``netfield gp``: DNN = RNN on digits at a single readout, outputs equal the library, one-line errors."""

import csv
import json
import subprocess
import sys

import numpy as np
import pytest

import netfield
from netfield import gp
from netfield.cli import main

DIGITS = ["gp", "--data", "digits", "--train-size", "200", "--depth", "2", "--readout", "last"]


def _regression_file(path, features=6, n=60, m=15):
    rng = np.random.default_rng(1)
    x, x_test = rng.normal(size=(n, features)), rng.normal(size=(m, features))
    f = lambda a: np.sin(a[:, 0]) + 0.5 * a[:, 1] * a[:, 2]
    np.savez(path, x=x, y=f(x) + 0.05 * rng.normal(size=n), x_test=x_test, y_test=f(x_test))
    return x, x_test


def _summary(path):
    return json.loads(path.read_text())


def test_help_lists_options_and_examples(capsys):
    assert main(["gp", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: netfield gp" in out and "examples:" in out and "--optimize" in out
    assert main(["--help"]) == 0
    assert "netfield gp --data digits" in capsys.readouterr().out


def test_digits_dnn_and_rnn_give_identical_accuracy_and_predictions(tmp_path, capsys):
    """The seed's claim: readout at one layer / the last time step, identical NNGP kernels."""
    outs = {}
    for arch in ("dnn", "rnn"):
        rc = main(DIGITS + ["--arch", arch, "--out", str(tmp_path / f"{arch}.npz"),
                            "--json", str(tmp_path / f"{arch}.json")])
        assert rc == 0
        outs[arch] = capsys.readouterr().out
    s_dnn, s_rnn = _summary(tmp_path / "dnn.json"), _summary(tmp_path / "rnn.json")
    assert s_dnn["accuracy"] == s_rnn["accuracy"] > 0.8  # chance: 0.1
    assert s_dnn["log_evidence"] == s_rnn["log_evidence"]
    assert s_dnn["n_train"] == 200 and s_dnn["n_test"] == 450 and s_dnn["task"] == "classify"
    with np.load(tmp_path / "dnn.npz") as a, np.load(tmp_path / "rnn.npz") as b:
        assert sorted(a.files) == sorted(b.files) == ["classes", "mean", "var", "y_pred", "y_true"]
        for key in a.files:
            np.testing.assert_array_equal(a[key], b[key])
        assert a["mean"].shape == (450, 10) and np.mean(a["y_pred"] == a["y_true"]) == s_dnn["accuracy"]
    def table(text):
        return [line for line in text.splitlines() if not line.startswith(("arch", "wrote"))]

    assert table(outs["dnn"]) == table(outs["rnn"])
    assert "accuracy" in outs["dnn"] and "log evidence" in outs["dnn"]


def test_regression_on_npz_equals_fit_network(tmp_path, capsys):
    data = tmp_path / "reg.npz"
    x, x_test = _regression_file(data)
    with np.load(data) as f:
        y, y_test = f["y"], f["y_test"]
    prior = ["--depth", "3", "--weight-var", "1.5", "--bias-var", "0.1", "--noise", "0.05"]
    for arch, extra, inputs in (("dnn", [], (x, x_test)),
                                ("rnn", ["--time-steps", "3", "--readout", "mean"],
                                 (x.reshape(60, 3, 2), x_test.reshape(15, 3, 2)))):
        out, js = tmp_path / f"{arch}.npz", tmp_path / f"{arch}.json"
        assert main(["gp", "--data", str(data), "--arch", arch, *prior, *extra, "--no-standardize", "--out",
                     str(out), "--json", str(js)]) == 0
        build = netfield.dnn if arch == "dnn" else netfield.rnn
        fit = gp.fit_network(build(3, "erf", weight_var=1.5, bias_var=0.1), inputs[0], y, noise=0.05,
                             readout="mean" if extra else "last")
        ref = fit.predict(inputs[1], return_var=True)
        s = _summary(js)
        assert s["task"] == "regress" and s["n_train"] == 60 and s["n_test"] == 15
        assert s["log_evidence"] == pytest.approx(fit.log_marginal_likelihood, rel=1e-12)
        with np.load(out) as pred:
            np.testing.assert_allclose(pred["mean"], ref.mean, rtol=0, atol=1e-10)
            np.testing.assert_allclose(pred["var"], ref.var, rtol=0, atol=1e-10)
            np.testing.assert_array_equal(pred["y_true"], y_test)
        assert s["rmse"] == pytest.approx(np.sqrt(np.mean((ref.mean - y_test) ** 2)), rel=1e-9)
    assert "RMSE" in capsys.readouterr().out


def test_optimize_increases_the_log_evidence(tmp_path, capsys):
    data = tmp_path / "reg.npz"
    _regression_file(data, n=40)
    base = ["gp", "--data", str(data), "--depth", "2", "--noise", "0.1"]
    assert main(base + ["--json", str(tmp_path / "a.json")]) == 0
    assert main(base + ["--optimize", "--json", str(tmp_path / "b.json")]) == 0
    start, best = _summary(tmp_path / "a.json"), _summary(tmp_path / "b.json")
    opt = best["optimize"]
    assert opt["initial_log_evidence"] == pytest.approx(start["log_evidence"], rel=1e-9)
    assert best["log_evidence"] > start["log_evidence"] + 1.0
    assert opt["params"] == ["weight_var", "input_var", "readout_var", "noise"]  # bias_var = 0 stays fixed
    assert best["hyper_parameters"]["noise"] != 0.1
    assert "(optimised)" in capsys.readouterr().out


def test_csv_with_header_and_text_labels(tmp_path, capsys):
    rng = np.random.default_rng(2)
    x = rng.normal(size=(80, 3))
    labels = np.where(x[:, 0] + x[:, 1] > 0, "yes", "no")
    path = tmp_path / "data.csv"
    with open(path, "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["a", "b", "c", "label"])
        w.writerows([[*(repr(float(v)) for v in row), lab] for row, lab in zip(x, labels)])
    out = tmp_path / "pred.csv"
    rc = main(["gp", "--data", str(path), "--depth", "2", "--method", "laplace", "--readout-var", "10",
               "--out", str(out)])
    assert rc == 0
    text = capsys.readouterr().out
    assert "classify, 2 classes, softmax Laplace" in text and "Laplace approximation" in text
    accuracy = float(next(line.split()[1] for line in text.splitlines() if line.startswith("accuracy")))
    assert accuracy > 0.8
    with open(out, newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 20 and set(rows[0]) == {"y_true", "y_pred", "proba_no", "proba_yes"}
    for row in rows:
        assert row["y_pred"] in ("yes", "no")
        assert float(row["proba_no"]) + float(row["proba_yes"]) == pytest.approx(1.0, abs=1e-12)


# ---------------------------------------------------------------------------------------- errors

@pytest.fixture
def bad(tmp_path):
    x = np.random.default_rng(0).normal(size=(10, 5))
    nan = x.copy()
    nan[3, 1] = np.nan
    np.savez(tmp_path / "nan.npz", x=nan, y=np.arange(10) % 2)
    np.savez(tmp_path / "one.npz", x=x, y=np.zeros(10, int))
    np.savez(tmp_path / "short.npz", x=x, y=np.arange(9) % 2)
    np.savez(tmp_path / "ok.npz", x=x, y=np.arange(10) % 2)
    (tmp_path / "x.txt").write_text("1,2\n")
    return tmp_path


BAD = [
    (["--data", "{d}/missing.npz"], "--data", "does not exist"),
    (["--data", "{d}/x.txt"], "--data", "must be 'digits' or a file ending in .npz or .csv"),
    (["--data", "{d}/nan.npz"], "--data", "must contain only finite numbers, got nan at index (3, 1)"),
    (["--data", "{d}/one.npz"], "--data", "one class only"),
    (["--data", "{d}/short.npz"], "--data", "one label / target per pattern (10), got shape (9,)"),
    (["--noise", "0"], "--noise", "must be a finite number > 0, got 0.0"),
    (["--noise", "-1"], "--noise", "must be a finite number > 0, got -1.0"),
    (["--optimize", "weight_var,foo"], "--optimize", "names among weight_var"),
    (["--test-fraction", "1.5"], "--test-fraction", "between 0 and 1"),
    (["--train-size", "5000"], "--train-size", "from 2 to the 1347 training patterns"),
    (["--time-steps", "5"], "--time-steps", "dividing the number of features"),
    (["--data", "{d}/ok.npz", "--rows-as-sequence", "--task", "regress"], "--rows-as-sequence", "square"),
    (["--out", "{d}/p.txt"], "--out", "must end in one of .npz, .csv"),
    (["--rows-as-sequence", "--depth", "3"], "--depth", "must be >= the 8 input steps"),
    (["--task", "guess"], "--task", "invalid choice"),
    (["--method", "onehot-ish"], "--method", "invalid choice: 'onehot-ish' (choose from regression, laplace)"),
]


@pytest.mark.parametrize("argv, option, message", BAD, ids=[" ".join(a[:2]) for a, _, _ in BAD])
def test_bad_input_is_one_line_naming_the_option(bad, capsys, argv, option, message):
    rc = main(["gp", *(a.format(d=bad) for a in argv)])
    err = capsys.readouterr().err.strip()
    assert rc == 2
    assert len(err.splitlines()) == 1, err
    assert err.startswith("netfield: error: ") and option in err and message in err


def test_console_script_exit_status_and_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "netfield", "gp", "--data", str(tmp_path / "none.csv")],
                          capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("netfield: error: --data") and len(proc.stderr.strip().splitlines()) == 1
