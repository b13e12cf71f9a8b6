"""Analytic NTK of the program interpreter (netfield.meanfield.ntk, docs/ntk.md).

Independent checks here: the textbook DNN recursion written out in numpy (docs/ntk.md eq. N10), the
RNN = DNN identity for one input step and one readout, the standard parameterization of a linear
network by hand, cross kernels, hyper-parameter gradients and bad input. The comparison with
sampled finite networks of every architecture is tests/meanfield/test_ntk_sampled.py; with
neural-tangents, tests/meanfield/test_ntk_reference.py.
"""

from __future__ import annotations

import jax
import numpy as np
import pytest

import netfield
from netfield.gauss import dpair, pair

HYPER = {"weight_var": 2.0, "bias_var": 0.1, "input_var": 1.5, "readout_var": 1.2, "readout_bias_var": 0.3}


def dnn_recursion(x, depth, act, weight_var, bias_var, input_var, readout_var, readout_bias_var):
    """K_1 = Theta_1 = bias + input x.x'/d;  K_l = bias + w E[phi phi],  Theta_l = K_l + w E[phi' phi'] Theta_{l-1}."""
    k = bias_var + input_var * x @ x.T / x.shape[1]
    t = k.copy()

    def step(k, var):
        d = np.diag(k)
        return (var * np.asarray(pair(act, d[:, None], d[None, :], k)),
                var * np.asarray(dpair(act, d[:, None], d[None, :], k)))

    for _ in range(depth - 1):
        e, ed = step(k, weight_var)
        k, t = bias_var + e, bias_var + e + ed * t
    e, ed = step(k, readout_var)
    return readout_bias_var + e, readout_bias_var + e + ed * t


@pytest.mark.parametrize("act", ["erf", "relu", "tanh"])
@pytest.mark.parametrize("depth", [1, 4])
def test_dnn_ntk_equals_the_recursion(act, depth):
    x = np.random.default_rng(0).normal(size=(5, 3))
    k_ref, t_ref = dnn_recursion(x, depth, act, **HYPER)
    net = netfield.dnn(depth, act, **HYPER)
    # closed forms (erf, relu) to rounding; tanh's numerical rules meet 1e-10 per layer
    # (netfield.gauss.series.TOLERANCE), and the fused NNGP path and this recursion take different ones
    atol = 1e-12 if act != "tanh" else 1e-9
    np.testing.assert_allclose(netfield.kernel(net, x), k_ref, rtol=0, atol=atol)
    np.testing.assert_allclose(netfield.kernel(net, x, kind="ntk"), t_ref, rtol=0, atol=10 * atol)


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_rnn_ntk_equals_dnn_ntk_for_one_input_step(act):
    """(N11): input at step 1 only and one readout at the last step: the tied recurrent matrix
    contributes only equal-time terms, the same as the DNN's fresh matrices."""
    x = np.random.default_rng(1).normal(size=(4, 3))
    for steps in (1, 3):
        t_dnn = netfield.kernel(netfield.dnn(steps, act, **HYPER), x, kind="ntk")
        t_rnn = netfield.kernel(netfield.rnn(steps, act, **HYPER), x, kind="ntk")
        np.testing.assert_allclose(t_rnn, t_dnn, rtol=0, atol=1e-12)


def test_rnn_ntk_differs_from_dnn_with_inputs_at_every_step():
    x = np.random.default_rng(2).normal(size=(3, 4, 2))
    net = netfield.rnn(4, "erf", **HYPER)
    t_seq = np.asarray(netfield.kernel(net, x, kind="ntk"))
    t_first = np.asarray(netfield.kernel(net, x[:, :1], kind="ntk"))
    assert np.abs(t_seq - t_first).max() > 0.1


def test_standard_parameterization_of_a_linear_network():
    """f = V W U x / scales: every group's contribution divided by var / fan_in (docs/ntk.md 3).
    Linear depth-2 network: Theta_NTK = bo + 3 terms of size readout * weight * input x.x'/d;
    standard: 1 + x.x' (input) + 1 (bias) ... written out below."""
    x = np.random.default_rng(3).normal(size=(4, 3))
    d, n = x.shape[1], 50
    wv, bv, iv, rv, rbv = 2.0, 0.5, 1.5, 1.2, 0.3
    net = netfield.dnn(2, "linear", weight_var=wv, bias_var=bv, input_var=iv, readout_var=rv, readout_bias_var=rbv)
    g1 = iv * x @ x.T / d + bv  # Cov of layer-1 pre-activations = E[h1 h1'] (linear)
    g2 = wv * g1 + bv
    ntk = rbv + rv * g2 + rv * (wv * g1 + bv + wv * g1)  # V, then (W direct, b2, through h1: U and b1)
    standard = 1.0 + n * g2 + rv * (n * g1 + 1.0 + wv * (x @ x.T + 1.0))
    np.testing.assert_allclose(netfield.kernel(net, x, kind="ntk"), ntk, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(netfield.kernel(net, x, kind="ntk", parameterization="standard", width=n),
                               standard, rtol=1e-13, atol=1e-12)


def test_cross_kernel_is_a_block_of_the_joint_kernel():
    rng = np.random.default_rng(4)
    x1, x2 = rng.normal(size=(3, 2, 2)), rng.normal(size=(2, 2, 2))
    net = netfield.gru(2)
    joint = np.asarray(netfield.kernel(net, np.concatenate([x1, x2]), kind="ntk"))
    cross = np.asarray(netfield.kernel(net, x1, x2, kind="ntk"))
    np.testing.assert_allclose(cross, joint[:3, 3:], rtol=0, atol=1e-12)


def test_readout_all_holds_every_step():
    x = np.random.default_rng(5).normal(size=(2, 3, 2))
    net = netfield.rnn(3, "tanh", **HYPER)
    full = np.asarray(netfield.kernel(net, x, readout="all", kind="ntk"))
    last = np.asarray(netfield.kernel(net, x, kind="ntk"))
    assert full.shape == (6, 6)
    # "last" runs the fused chain path (Mehler series of tanh and tanh'), "all" the generic rules,
    # whose E[tanh'^2] at c = 1 (a 2-D panel rule) is off by ~1e-10: 1e-9, not 1e-12
    np.testing.assert_allclose(full[np.ix_([2, 5], [2, 5])], last, rtol=0, atol=1e-9)
    np.testing.assert_allclose(full, full.T, rtol=0, atol=1e-10)  # tanh: numerical rules, 1e-10
    assert np.linalg.eigvalsh(full).min() > -1e-10


def test_hyperparameter_gradient_matches_finite_differences():
    x = np.random.default_rng(6).normal(size=(3, 2))

    def total(w):
        net = netfield.dnn(3, "erf", weight_var=w, bias_var=0.1)
        return netfield.kernel(net, x, kind="ntk").sum()

    g = jax.grad(total)(1.7)
    fd = (total(1.7 + 1e-5) - total(1.7 - 1e-5)) / 2e-5
    assert np.isfinite(g) and abs(g - fd) < 1e-6 * max(1.0, abs(fd))


@pytest.mark.parametrize("kwargs, match", [
    ({"kind": "tangent"}, "kind must be one of"),
    ({"kind": "ntk", "parameterization": "mup"}, "parameterization must be one of"),
    ({"kind": "ntk", "parameterization": "standard"}, "width must be given"),
    ({"kind": "ntk", "width": 100}, "width is used only with parameterization='standard'"),
    ({"parameterization": "standard", "width": 10}, "apply to kind='ntk' only"),
    ({"kind": "ntk", "parameterization": "standard", "width": 0}, "width"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        netfield.kernel(netfield.dnn(2), np.eye(2), **kwargs)
