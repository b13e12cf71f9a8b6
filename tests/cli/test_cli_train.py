"""``netfield train`` (docs/training.md): options, the written prediction, one-line errors with exit 2.

Until ``netfield.kernel`` accepts ``kind="ntk"`` the runs use a stand-in kernel (NTK := 2 K + 1, a valid
kernel) patched into :mod:`netfield.training.network`; the options, the file written and the error
reporting do not depend on which NTK is used.
"""

from __future__ import annotations

import numpy as np
import pytest

import netfield
import netfield.training.network as training_network
from netfield.cli import build_parser, main

RNG = np.random.default_rng(0)
X, X_TEST = RNG.normal(size=(6, 3)), RNG.normal(size=(3, 3))
Y, Y_TEST = np.sin(X[:, 0]), np.sin(X_TEST[:, 0])


@pytest.fixture
def stand_in(monkeypatch):
    real = netfield.kernel

    def kernel(net, x1, x2=None, readout="last", *, kind="nngp", parameterization="ntk", width=None, **options):
        k = np.asarray(real(net, x1, x2, readout, **options))
        return k if kind == "nngp" else 2 * k + 1.0

    monkeypatch.setattr(training_network, "kernel", kernel)


@pytest.fixture
def data(tmp_path):
    path = tmp_path / "task.npz"
    np.savez(path, x=X, y=Y, x_test=X_TEST, y_test=Y_TEST)
    return path


def test_options_parse_with_their_defaults():
    args = build_parser().parse_args(["train", "--data", "d.npz"])
    assert (args.dynamics, args.parameterization, args.width, args.learning_rate) == ("flow", "ntk", None, None)
    assert args.times == (0.0, 1.0, 10.0, 100.0, float("inf")) and args.out == "train.npz"
    args = build_parser().parse_args(["train", "--data", "d.npz", "--times", "0,5,inf", "--dynamics", "discrete",
                                      "--learning-rate", "0.5", "--parameterization", "standard", "--width", "64"])
    assert args.times == (0.0, 5.0, float("inf")) and args.learning_rate == 0.5 and args.width == 64


def test_writes_the_prediction_and_prints_a_table(stand_in, data, tmp_path, capsys):
    out = tmp_path / "pred.npz"
    assert main(["train", "--data", str(data), "--times", "0,3,inf", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "E[train loss]" in text and "test RMSE" in text and f"wrote {out}" in text
    pred = netfield.load(out)
    assert isinstance(pred, netfield.TrainingPrediction)
    ref = netfield.train(netfield.dnn(3), X, Y, X_TEST, times=[0, 3, np.inf])   # the CLI's default network
    np.testing.assert_allclose(pred.mean, ref.mean, rtol=0, atol=1e-12)
    np.testing.assert_allclose(pred.cov, ref.cov, rtol=0, atol=1e-12)
    rows = [line.split() for line in text.splitlines() if line.split() and line.split()[0] in ("0", "3", "inf")]
    assert [r[0] for r in rows] == ["0", "3", "inf"]
    assert float(rows[-1][1]) < 1e-12 < float(rows[0][1])            # the expected loss falls to 0


def test_discrete_dynamics_and_quiet(stand_in, data, tmp_path, capsys):
    out = tmp_path / "d.npz"
    assert main(["train", "--data", str(data), "--dynamics", "discrete", "--times", "0,1,20", "--learning-rate",
                 "0.1", "--quiet", "--out", str(out)]) == 0
    assert capsys.readouterr().out.strip() == f"wrote {out}"
    pred = netfield.load(out)
    assert pred.dynamics == "discrete" and pred.learning_rate == 0.1 and pred.times.tolist() == [0, 1, 20]


@pytest.mark.parametrize("argv, message", [
    (["--times", "0,-1"], "--times must be >= 0 (inf allowed), got -1.0 at index 1"),
    (["--times", "0,1.5", "--dynamics", "discrete"], "--times must be whole numbers of steps (or inf)"),
    (["--times", "a,b"], "argument --times: expected comma-separated numbers, got 'a,b'"),
    (["--dynamics", "adam"], "argument --dynamics: invalid choice: 'adam'"),
    (["--parameterization", "mup"], "argument --parameterization: invalid choice: 'mup'"),
    (["--learning-rate", "-1"], "--learning-rate must be a finite number > 0, got -1.0"),
    (["--learning-rate", "1e9", "--dynamics", "discrete"],
     "--learning-rate must be < eta_max = 2 N / lambda_max(Theta(X, X)) = "),
    (["--width", "0"], "--width must be an integer >= 1, got 0"),
    (["--out", "{d}/pred.txt"], "--out must end in .npz, got"),
])
def test_bad_options_print_one_line_naming_the_option(stand_in, data, capsys, argv, message):
    d = data.parent
    assert main(["train", "--data", str(data), "--out", str(d / "p.npz"), *[a.format(d=d) for a in argv]]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netfield: error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_bad_data_files(stand_in, tmp_path, capsys):
    cases = {
        "missing.npz": "does not exist",
        "nox.npz": "must hold arrays x, y and x_test (optionally y_test); missing x_test",
        "shape.npz": "y must have shape (N,) or (N, K) with N = 6 rows of x, got (5,)",
        "dim.npz": "--data x_test must have the same input dimension d as --data x (3), got d = 2",
        "data.csv": "--data must be a .npz file with arrays x, y, x_test",
    }
    np.savez(tmp_path / "nox.npz", x=X, y=Y)
    np.savez(tmp_path / "shape.npz", x=X, y=Y[:5], x_test=X_TEST)
    np.savez(tmp_path / "dim.npz", x=X, y=Y, x_test=X_TEST[:, :2])
    (tmp_path / "data.csv").write_text("1,2\n")
    for name, message in cases.items():
        assert main(["train", "--data", str(tmp_path / name), "--out", str(tmp_path / "p.npz")]) == 2
        err = capsys.readouterr().err
        assert err.startswith("netfield: error: ") and err.count("\n") == 1 and message in err, (name, err)


def test_help_has_examples(capsys):
    assert main(["train", "--help"]) == 0
    out = capsys.readouterr().out
    assert "usage: netfield train" in out and "examples:" in out and "--learning-rate" in out
