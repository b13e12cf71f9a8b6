"""Inputs so large that the Gram matrix x x^T / d overflows float64 are rejected with a clear error (they
gave NaN kernels for erf / relu / sample and a wrong finite value, 0, for tanh); large inputs below the
limit give finite kernels that agree with sampled networks."""

import numpy as np
import pytest

import netfield
from netfield.cli import main

HUGE = np.array([[1e155, 1.0], [2.0, -1e155]])
LARGE = np.array([[1e74, 1.0], [2.0, -1e74]])


@pytest.mark.parametrize("call", [
    lambda x: netfield.kernel(netfield.dnn(2, "erf"), x),
    lambda x: netfield.kernel(netfield.dnn(2, "relu"), x),
    lambda x: netfield.kernel(netfield.dnn(2, "tanh"), x),
    lambda x: netfield.kernel(netfield.rnn(2, "erf"), x[:, None, :]),
    lambda x: netfield.kernel(netfield.dnn(2, "erf"), np.ones((1, 2)), x),
    lambda x: netfield.sample(netfield.dnn(2), x, 8, 2),
], ids=["erf", "relu", "tanh", "sequence", "x2", "sample"])
def test_overflowing_inputs_are_rejected(call):
    with pytest.raises(ValueError, match=r"x\d? is too large: pattern 0 has \|x\|\^2 / d = 10\^309\.7 .*largest "
                                         r"entry 1e\+155.*<= 1e\+150.*rescale the inputs"):
        call(HUGE)


def test_cli_rejects_overflowing_inputs_in_one_line(tmp_path, capsys):
    np.save(tmp_path / "x.npy", HUGE)
    assert main(["kernel", "--inputs", str(tmp_path / "x.npy"), "--out", str(tmp_path / "k.npy")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("netfield: error:") and "too large" in err and "\n" not in err


@pytest.mark.parametrize("activation, arch", [("erf", "dnn"), ("tanh", "dnn"), ("erf", "rnn")])
def test_large_inputs_below_the_limit_agree_with_sampled_networks(activation, arch):
    """Also the conditional sampler (the default here): its jitter once took the scale of the huge first
    layer into later layers and saturated them (readout 1.0 against the theory's 0.46)."""
    net = getattr(netfield, arch)(2, activation)
    k = np.asarray(netfield.kernel(net, LARGE))
    assert np.isfinite(k).all()
    ens = netfield.sample(net, LARGE, 1000, 20, seed=0)
    mean = ens.readout.mean(0)
    sem = ens.readout.std(0, ddof=1) / np.sqrt(20)
    assert (np.abs(mean - k) <= 5 * sem + 1e-12).all(), (k, mean, sem)
