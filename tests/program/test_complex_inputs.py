"""Complex inputs are rejected with a clear error (they were cut to their real part with a ComplexWarning)."""

import warnings

import numpy as np
import pytest

import netfield
from netfield.cli import main

X = np.ones((2, 3)) + 0.5j


@pytest.mark.parametrize("call", [
    lambda: netfield.kernel(netfield.dnn(2), X),
    lambda: netfield.kernel(netfield.dnn(2), np.ones((2, 3)), X),
    lambda: netfield.kernel(netfield.rnn(2), [X[:1], X]),
    lambda: netfield.sample(netfield.dnn(2), X, 8, 2),
    lambda: netfield.mean_field(netfield.dnn(2), X.tolist()),
], ids=["kernel", "kernel-x2", "sequences", "sample", "nested-list"])
def test_complex_inputs_are_rejected_in_the_api(call):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no ComplexWarning, a TypeError
        with pytest.raises(TypeError, match=r"must be a real array, got complex values of dtype complex128"):
            call()


def test_complex_inputs_are_rejected_by_the_cli(tmp_path, capsys):
    np.save(tmp_path / "x.npy", X)
    assert main(["kernel", "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "k.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("netfield: error: --inputs: inputs in") and "complex" in err and "\n" not in err
    assert not (tmp_path / "k.npy").exists()
