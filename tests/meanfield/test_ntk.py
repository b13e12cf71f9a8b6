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
def test_rnn_ntk_equals_dnn_ntk_at_one_readout_step(act):
    """(N10): one readout at the last step, the input at step 1 only or at every step: the tied recurrent
    matrix contributes only equal-time terms, the same as the DNN's fresh matrices."""
    rng = np.random.default_rng(1)
    for x in (rng.normal(size=(4, 3)), rng.normal(size=(3, 3, 2))):
        for steps in (1, 3) if x.ndim == 2 else (3, 4):
            t_dnn = netfield.kernel(netfield.dnn(steps, act, **HYPER), x, kind="ntk")
            t_rnn = netfield.kernel(netfield.rnn(steps, act, **HYPER), x, kind="ntk")
            np.testing.assert_allclose(t_rnn, t_dnn, rtol=0, atol=1e-12)


def test_rnn_and_dnn_ntks_differ_with_readouts_at_different_steps():
    """Variable lengths (each sequence read out at its own last step) and readouts at every step: the
    RNN's cross-time tangent kernels (N11) enter, the DNN's are zero."""
    rng = np.random.default_rng(2)
    seqs = [rng.normal(size=(2, 2)), rng.normal(size=(4, 2))]
    dnn, rnn = netfield.dnn(4, "erf", **HYPER), netfield.rnn(4, "erf", **HYPER)
    for kw in ({}, {"readout": "all"}):
        t_dnn = np.asarray(netfield.kernel(dnn, seqs, kind="ntk", **kw))
        t_rnn = np.asarray(netfield.kernel(rnn, seqs, kind="ntk", **kw))
        assert np.abs(t_rnn - t_dnn).max() > 0.05 * np.abs(t_rnn).max()


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
    ({"parameterization": "standard", "width": 10}, "width applies to kind='ntk'"),
    ({"parameterization": "standard"}, "parameterization applies to kind='ntk' only"),
    ({"kind": "ntk", "parameterization": "standard", "width": 0}, "width"),
])
def test_bad_input_names_the_argument(kwargs, match):
    with pytest.raises(ValueError, match=match):
        netfield.kernel(netfield.dnn(2), np.eye(2), **kwargs)


def test_batch_norm_ntk_radial_estimate_is_converged():
    """(N12): with the radial integration the quasi-Monte-Carlo estimate of batch norm's NTK is stable
    in the number of points (plain sampling of 1/|g - mean g|^2 moves by ~5 % between 2^12 and 2^15)."""
    x = np.random.default_rng(7).normal(size=(6, 8))
    net = netfield.batchnorm_mlp(2, "erf", bias_var=0.1)
    coarse = netfield.mean_field(net, x, qmc_points=2**11)
    fine = netfield.mean_field(net, x, qmc_points=2**14, seed=1)
    bound = 4 * np.hypot(coarse.ntk_error(), fine.ntk_error())
    assert np.all(np.abs(np.asarray(coarse.ntk()) - np.asarray(fine.ntk())) <= bound)
    assert fine.ntk_error().max() < 2e-3 * np.abs(np.asarray(fine.ntk())).max()  # the estimate is converged


def test_batch_norm_ntk_of_a_too_small_batch_is_unsupported():
    """Three patterns: the centred batch spans 2 dimensions and E[1/|g - mean g|^2] diverges."""
    from netfield.program.shape import UnsupportedProgram

    with pytest.raises(UnsupportedProgram, match="NTK of batch norm is infinite"):
        netfield.kernel(netfield.batchnorm_mlp(1, "erf"), np.random.default_rng(8).normal(size=(3, 4)), kind="ntk")


def test_discontinuous_activation_has_no_ntk():
    from netfield.program.shape import UnsupportedProgram

    with pytest.raises(UnsupportedProgram, match="NTK is not defined for the discontinuous activation 'sign'"):
        netfield.kernel(netfield.dnn(2, "sign"), np.eye(2), kind="ntk")


def test_mean_field_ntk_is_the_kernel_with_an_error_estimate(tmp_path):
    x = np.random.default_rng(9).normal(size=(3, 2, 2))
    net = netfield.gru(2)
    mf = netfield.mean_field(net, x)
    np.testing.assert_allclose(mf.ntk(), netfield.kernel(net, x, kind="ntk"), rtol=0, atol=1e-12)
    assert mf.ntk_error().shape == (3, 3) and 0 < mf.ntk_error().max() < 1e-2 * np.abs(np.asarray(mf.ntk())).max()
    standard = mf.ntk(parameterization="standard", width=64)
    assert np.all(np.diag(np.asarray(standard)) > np.diag(np.asarray(mf.ntk())))
    mf.save(tmp_path / "mf.npz")
    with pytest.raises(ValueError, match="keeps the NNGP kernels only"):
        netfield.MeanFieldResult.load(tmp_path / "mf.npz").ntk()


def test_variable_length_sequences_read_out_at_their_own_last_step():
    rng = np.random.default_rng(10)
    seqs = [rng.normal(size=(2, 2)), rng.normal(size=(4, 2))]
    net = netfield.rnn(4, "erf", **HYPER)
    last = np.asarray(netfield.kernel(net, seqs, kind="ntk"))
    full = np.asarray(netfield.kernel(net, seqs, readout="all", kind="ntk"))
    assert last.shape == (2, 2) and full.shape == (6, 6)
    np.testing.assert_allclose(full[np.ix_([1, 5], [1, 5])], last, rtol=0, atol=1e-12)
    # each sequence alone: its own last-step NTK (the batch does not couple an RNN's patterns)
    for i, s in enumerate(seqs):
        alone = np.asarray(netfield.kernel(net, s[None], kind="ntk"))
        np.testing.assert_allclose(alone[0, 0], last[i, i], rtol=1e-12)


@pytest.mark.parametrize("name", ["gru", "batchnorm_mlp"])
def test_hyperparameter_gradient_of_sampled_back_ends(name):
    """Quasi-Monte-Carlo back-ends (gated states; batch norm's radial rule) with fixed points are smooth
    in the hyper-parameters: jax.grad agrees with central differences."""
    rng = np.random.default_rng(11)
    build, x = {"gru": (netfield.gru, rng.normal(size=(2, 2, 2))),
                "batchnorm_mlp": (netfield.batchnorm_mlp, rng.normal(size=(5, 6)))}[name]

    def total(w):
        net = build(2, weight_var=w) if name == "gru" else build(2, "erf", weight_var=w, bias_var=0.1)
        return netfield.kernel(net, x, kind="ntk", qmc_points=2**9, qmc_replicates=2).sum()

    g = jax.grad(total)(1.3)
    fd = (total(1.3 + 1e-4) - total(1.3 - 1e-4)) / 2e-4
    assert np.isfinite(g) and abs(g - fd) < 1e-4 * max(1.0, abs(fd))


def test_gated_ntk_at_new_inputs_compiles_no_integrand_and_equals_a_fresh_one():
    """The moment integrands of a GRU's NTK are kept by what they compute (meanfield/netsor.py
    expression_key): a second NTK at other inputs of the same shape compiles none of them (it compiled
    all 12 again: 7.7 s of 8.2 s) and equals the NTK computed with every integrand compiled afresh."""
    from netfield.meanfield import netsor

    rng = np.random.default_rng(5)
    net, x1, x2 = netfield.gru(2), rng.normal(size=(2, 2, 2)), rng.normal(size=(2, 2, 2))
    np.asarray(netfield.kernel(net, x1, kind="ntk", qmc_points=2**9, qmc_replicates=2))
    compiled = []

    def listen(event, duration, **kw):
        if event.endswith("backend_compile_duration"):
            compiled.append(kw.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        again = np.asarray(netfield.kernel(net, x2, kind="ntk", qmc_points=2**9, qmc_replicates=2))
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert "jit(fn)" not in compiled, compiled
    netsor._COMPILED_INTEGRANDS.clear()
    fresh = np.asarray(netfield.kernel(net, x2, kind="ntk", qmc_points=2**9, qmc_replicates=2))
    np.testing.assert_array_equal(again, fresh)
    assert netsor._COMPILED_INTEGRANDS  # the fresh call kept its integrands again
