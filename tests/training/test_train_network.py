"""``netfield.train`` end to end: kernel blocks of a network -> trained outputs (docs/training.md).

The argument checks come before any kernel call.
"""

from __future__ import annotations

import numpy as np
import pytest

import netfield
from netfield.training import kernel_blocks, predict_from_kernels

X = np.random.default_rng(0).normal(size=(7, 3))
Y = np.sin(X[:, 0])
X_TEST = np.random.default_rng(1).normal(size=(3, 3))
NET = netfield.dnn(2, "relu", weight_var=2.0, bias_var=0.1)


def test_train_is_the_theory_on_the_networks_kernel_blocks():
    p = netfield.train(NET, X, Y, X_TEST, times=[0, 10, np.inf])
    k = {kind: (np.asarray(netfield.kernel(NET, X, kind=kind)), np.asarray(netfield.kernel(NET, X_TEST, X, kind=kind)),
                np.asarray(netfield.kernel(NET, X_TEST, kind=kind))) for kind in ("nngp", "ntk")}
    ref = predict_from_kernels(*k["nngp"], k["ntk"][0], k["ntk"][1], Y, [0, 10, np.inf])
    for field in ("mean", "cov", "train_mean", "train_cov"):
        np.testing.assert_allclose(getattr(p, field), getattr(ref, field), rtol=1e-9, atol=1e-12, err_msg=field)
    assert p.mean.shape == (3, 3, 1) and p.cov.shape == (3, 3, 3) and p.targets_1d
    np.testing.assert_allclose(p.cov[0], k["nngp"][2], rtol=1e-12)      # t = 0: the NNGP prior
    np.testing.assert_allclose(p.train_mean[-1, :, 0], Y, atol=1e-8)   # t = inf: the data are fitted
    assert p.parameterization == "ntk" and p.learning_rate == pytest.approx(p.max_learning_rate / 2)


@pytest.mark.parametrize("arch", [netfield.rnn(3, "erf", weight_var=1.5, bias_var=0.2),
                                  netfield.dnn(3, "tanh", weight_var=1.5, bias_var=0.2)])
def test_train_on_chains_discrete_and_flow(arch):
    flow = netfield.train(arch, X, Y, X_TEST, times=[5.0], learning_rate=1.0)
    disc = netfield.train(arch, X, Y, X_TEST, times=[500], learning_rate=0.01, dynamics="discrete")
    assert np.abs(flow.mean - disc.mean).max() < 0.05 * np.abs(flow.mean).max() + 1e-12


def test_train_errors_after_the_kernels():
    with pytest.raises(ValueError, match=r"learning_rate must be < eta_max = "):
        netfield.train(NET, X, Y, X_TEST, times=[1], learning_rate=1e9, dynamics="discrete")
    with pytest.raises(ValueError, match=r"y_train must have shape \(7,\) or \(7, K\)"):
        netfield.train(NET, X, Y[:5], X_TEST, times=[1])
    with pytest.raises(ValueError, match=r"times must be >= 0"):
        netfield.train(NET, X, Y, X_TEST, times=[-2.0])


@pytest.mark.parametrize("kwargs, error, message", [
    ({"readout": "all"}, ValueError, r"readout must be 'last' for netfield.train \(one output per pattern\), got 'all'"),
    ({"batch": "x1"}, ValueError, r"batch must be 'joint' for netfield.train .* got 'x1'"),
    ({"noise": 0.1}, TypeError, r"unknown keyword argument\(s\) noise; netfield.train passes on the kernel options"),
    ({"parameterization": "mup"}, ValueError, r"parameterization must be one of 'ntk', 'standard', got 'mup'"),
    ({"dynamics": "adam"}, ValueError, r"dynamics must be one of 'flow', 'discrete', got 'adam'"),
])
def test_train_argument_errors_before_any_kernel(kwargs, error, message):
    with pytest.raises(error, match=message):
        netfield.train(NET, X, Y, X_TEST, times=[1], **kwargs)


def test_inputs_are_checked_with_their_names():
    with pytest.raises(TypeError, match=r"x_test must be test inputs like x_train"):
        kernel_blocks(NET, X, None)
    with pytest.raises(ValueError, match=r"x_test must have the same input dimension d as x_train \(3\), got d = 4"):
        kernel_blocks(NET, X, np.ones((2, 4)))
    with pytest.raises(TypeError, match=r"net must be a network built by netfield.dnn"):
        netfield.train("dnn", X, Y, X_TEST, times=[1])


def test_kernel_calls_and_block_split_with_a_stand_in_kernel(monkeypatch):
    """netfield.kernel replaced by a stand-in (NTK := 2 K + 1, a valid kernel): the calls train makes
    (the specified keywords passed on) and how the joint kernel is split."""
    import netfield.training.network as module

    real = netfield.kernel
    calls = []

    def stand_in(net, x1, x2=None, readout="last", *, kind="nngp", parameterization="ntk", width=None, **options):
        k = np.asarray(real(net, x1, x2, readout, **options))
        calls.append({"kind": kind, "parameterization": parameterization, "width": width, "rows": k.shape[0],
                      "x2": x2, **options})
        return k if kind == "nngp" else 2 * k + 1.0

    monkeypatch.setattr(module, "kernel", stand_in)
    p = netfield.train(NET, X, Y, X_TEST, times=[0, 3, np.inf], parameterization="standard", width=128,
                       method="closed")
    assert [c["kind"] for c in calls] == ["nngp", "ntk"]
    assert calls[1]["parameterization"] == "standard" and calls[1]["width"] == 128
    assert all(c["rows"] == len(X) + len(X_TEST) and c["x2"] is None and c["method"] == "closed" for c in calls)
    k = {name: np.asarray(real(NET, a, b)) for name, a, b in (("train", X, None), ("cross", X_TEST, X),
                                                               ("test", X_TEST, None))}
    ref = predict_from_kernels(k["train"], k["cross"], k["test"], 2 * k["train"] + 1, 2 * k["cross"] + 1, Y,
                               [0, 3, np.inf])
    for field in ("mean", "cov", "train_mean", "train_cov"):
        np.testing.assert_allclose(getattr(p, field), getattr(ref, field), rtol=1e-10, atol=1e-12, err_msg=field)
    assert (p.parameterization, p.width, p.kernel_error) == ("standard", 128, None)
