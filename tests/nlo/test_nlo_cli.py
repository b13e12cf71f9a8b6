"""``netfield nlo``: the printed/written numbers are the library's, the simulation and figure options work,
bad input is one line with exit status 2."""

import json

import numpy as np
import pytest

import netfield
from netfield.cli import main

BASE = ["nlo", "--activation", "tanh", "--weight-var", "1.5", "--bias-var", "0.5", "--input-var", "0.5"]


def test_json_holds_the_theory_of_the_library(tmp_path, capsys):
    out = tmp_path / "n.json"
    assert main(BASE + ["--arch", "rnn", "--depth", "3", "--json", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "K(2,3|0,0)" in printed and "out(0,0)" in printed
    data = json.loads(out.read_text())
    ref = netfield.one_loop(netfield.rnn(3, "tanh", weight_var=1.5, bias_var=0.5, input_var=0.5), np.ones((1, 1)))
    assert np.allclose(data["theory"]["mean_shift"], ref.mean_shift, rtol=1e-12)
    assert np.allclose(data["theory"]["covariance"], ref.covariance, rtol=1e-12)
    assert data["simulation"] is None


def test_inputs_file_and_simulation(tmp_path, capsys):
    x = np.array([[1.0, 0.0], [0.3, -0.8]])
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "s.json"
    args = BASE + ["--arch", "dnn", "--depth", "2", "--inputs", str(tmp_path / "x.npy"), "--simulate", "--widths",
                   "16,32,64", "--networks", "300,200,100", "--out", str(tmp_path / "run"), "--json", str(out), "--quiet"]
    assert main(args) == 0
    assert "sampled n Var" in capsys.readouterr().out
    sim = json.loads(out.read_text())["simulation"]
    assert sim["widths"] == [16, 32, 64] and sim["networks"] == [300, 200, 100]
    assert (tmp_path / "run" / ".checkpoints").is_dir()
    assert main(args + ["--resume"]) == 0  # reuses the chunks: identical numbers
    assert json.loads(out.read_text())["simulation"] == sim


def test_figure_option_draws_the_fluctuation_comparison(tmp_path):
    fig = tmp_path / "f.png"
    assert main(BASE + ["--depth", "4", "--figure", str(fig), "--json", str(tmp_path / "f.json")]) == 0
    assert fig.stat().st_size > 10_000
    regimes = json.loads((tmp_path / "f.json").read_text())["figure"]["regimes"]
    assert [r["weight_var"] for r in regimes] == [1.5, 4.0]


@pytest.mark.parametrize("extra, message", [
    (["--activation", "relu"], "kinks"),
    (["--json", "n.txt"], "--json must end in"),
    (["--figure", "f.jpg"], "--figure must end in"),
    (["--resume", "--simulate"], "--resume needs --out"),
    (["--simulate", "--widths", "32"], "widths"),
    (["--simulate", "--networks", "1"], "networks"),
    (["--chaotic", "4", "--figure", "f.png"], "--chaotic must be weight_var,bias_var"),
    (["--inputs", "missing.npy"], "missing.npy"),
    (["--weight-var", "-1"], "--weight-var must be a finite number"),
])
def test_bad_input_is_one_line_and_exit_2(tmp_path, monkeypatch, capsys, extra, message):
    monkeypatch.chdir(tmp_path)
    assert main(BASE + ["--depth", "2"] + extra) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("netfield: error:") and "\n" not in err and message in err, err
