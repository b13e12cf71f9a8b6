"""CLI errors name the options the user typed (--inputs2, --digits, --depth, --seed, ...), not the API's
argument names (x2, count, steps); one line, exit status 2; gp --method laplace with regression is an error."""

import numpy as np
import pytest

from netfield.cli import main, option_message


@pytest.fixture
def files(tmp_path):
    np.save(tmp_path / "x3.npy", np.ones((2, 3)))
    np.save(tmp_path / "x4.npy", np.ones((2, 4)))
    np.save(tmp_path / "seq.npy", np.ones((2, 5, 3)))
    return tmp_path


@pytest.mark.parametrize("argv, message", [
    (["kernel", "--inputs", "{d}/x3.npy", "--inputs2", "{d}/x4.npy", "--out", "{d}/k.npy"],
     "--inputs2 must have the same input dimension d as --inputs (3), got d = 4"),
    (["kernel", "--digits", "0", "--out", "{d}/k.npy"], "--digits must be an integer >= 1, got 0"),
    (["kernel", "--digits", "100000", "--out", "{d}/k.npy"], "--digits must be at most 1797"),
    (["kernel", "--depth", "0", "--out", "{d}/k.npy"], "--depth must be an integer >= 1, got 0"),
    (["kernel", "--arch", "rnn", "--depth", "2", "--inputs", "{d}/seq.npy", "--out", "{d}/k.npy"],
     "--inputs has sequences of length up to 5, but the network has only 2 steps; build it with --depth >= 5"),
    (["sample", "--chunk-size", "0", "--out", "{d}/s.npz"], "--chunk-size must be an integer >= 1, got 0"),
    (["sample", "--seed", "-1", "--out", "{d}/s.npz"], "--seed must be an integer in [0, 2**63), got -1"),
    (["sample", "--seed", str(2**70), "--out", "{d}/s.npz"], "--seed must be an integer in [0, 2**63)"),
])
def test_errors_name_the_option(files, capsys, argv, message):
    assert main([a.format(d=files) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netfield: error: ") and err.count("\n") == 1, err
    assert message in err, err


def test_option_message_leaves_unknown_names_alone():
    assert option_message("count must be >= 1", {"--width"}) == "count must be >= 1"  # no --digits option
    assert option_message("x1 has d = 3", {"--inputs"}) == "--inputs has d = 3"
    assert option_message("foo x12 bar", {"--inputs"}) == "foo x12 bar"


def test_gp_laplace_with_regression_is_an_error(tmp_path, capsys):
    rng = np.random.default_rng(0)
    data = tmp_path / "reg.npz"
    np.savez(data, x=rng.normal(size=(20, 3)), y=rng.normal(size=20))
    for task in (["--task", "regress"], []):
        assert main(["gp", "--data", str(data), "--method", "laplace", *task]) == 2
        err = capsys.readouterr().err
        assert err.startswith("netfield: error: --method laplace is a classifier") and err.count("\n") == 1, err
        assert "drop --method or use --task classify" in err
