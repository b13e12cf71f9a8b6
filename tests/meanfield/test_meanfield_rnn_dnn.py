"""DNN and RNN are one program up to weight sharing (docs/theory.md 2.2, docs/design.md section 1).

At a single readout time their kernels coincide exactly; cross-layer blocks of a DNN are exactly zero
(independent matrices), cross-time blocks of an RNN are not.
"""

from __future__ import annotations

import numpy as np
import pytest

import netfield as nf

RNG = np.random.default_rng(11)
X_STATIC = RNG.normal(size=(5, 3))
X_SEQ = RNG.normal(size=(5, 4, 3))
HYPER = {"weight_var": 1.6, "bias_var": 0.3, "input_var": 1.2, "readout_var": 0.8, "readout_bias_var": 0.05}
STEPS = 4


@pytest.mark.parametrize("act", ["erf", "relu", "sign", "tanh", "elu"])
@pytest.mark.parametrize("x", [X_STATIC, X_SEQ], ids=["static", "sequence"])
def test_rnn_equal_time_kernels_equal_dnn(act, x):
    dnn, rnn = nf.dnn(STEPS, act, **HYPER), nf.rnn(STEPS, act, **HYPER)
    k_dnn, k_rnn = np.asarray(nf.kernel(dnn, x)), np.asarray(nf.kernel(rnn, x))
    assert np.abs(k_dnn - k_rnn).max() <= 1e-12
    mf_d, mf_r = nf.mean_field(dnn, x), nf.mean_field(rnn, x)
    for t in range(1, STEPS + 1):
        assert np.abs(np.asarray(mf_d.preactivation(t)) - np.asarray(mf_r.preactivation(t))).max() <= 1e-12
    # the comparison has teeth: another weight variance gives another kernel
    other = nf.kernel(nf.rnn(STEPS, act, **dict(HYPER, weight_var=1.8)), x)
    assert np.abs(np.asarray(other) - k_dnn).max() > 1e-4


@pytest.mark.parametrize("act", ["erf", "relu", "tanh"])
def test_rnn_equal_time_equals_dnn_without_bias(act):
    hyper = dict(HYPER, bias_var=0.0, readout_bias_var=0.0)
    for x in (X_STATIC, X_SEQ):
        k_dnn = np.asarray(nf.kernel(nf.dnn(STEPS, act, **hyper), x))
        k_rnn = np.asarray(nf.kernel(nf.rnn(STEPS, act, **hyper), x))
        assert np.abs(k_dnn - k_rnn).max() <= 1e-12


@pytest.mark.parametrize("act", ["erf", "relu", "tanh"])
@pytest.mark.parametrize("x", [X_STATIC, X_SEQ], ids=["static", "sequence"])
def test_dnn_cross_layer_blocks_are_exactly_zero_rnn_are_not(act, x):
    mf_d = nf.mean_field(nf.dnn(STEPS, act, **HYPER), x)
    mf_r = nf.mean_field(nf.rnn(STEPS, act, **HYPER), x)
    for t in range(1, STEPS + 1):
        for s in range(1, STEPS + 1):
            if t == s:
                continue
            block = np.asarray(mf_d.preactivation(t, s))
            assert block.shape == (5, 5)
            assert not block.any(), (t, s)  # exactly zero, not small
            rnn_block = np.asarray(mf_r.preactivation(t, s))
            assert np.abs(rnn_block).min() > 1e-6, (t, s)  # the shared bias alone gives bias_var
            np.testing.assert_allclose(rnn_block, np.asarray(mf_r.preactivation(s, t)).T, rtol=0, atol=1e-15)
    # all blocks at once (fused path for closed forms)
    blocks = mf_d.preactivations()
    for t in range(STEPS):
        for s in range(STEPS):
            if t != s:
                assert not blocks[t, s].any()


def test_rnn_cross_time_blocks_with_bias_static_input():
    """Input at step 1 only: C(1, s) = bias_var exactly for s > 1 (shared b; U x_1 meets no input)."""
    mf = nf.mean_field(nf.rnn(STEPS, "erf", **HYPER), X_STATIC)
    for s in range(2, STEPS + 1):
        np.testing.assert_array_equal(np.asarray(mf.preactivation(1, s)), np.full((5, 5), HYPER["bias_var"]))
    # no bias, odd phi, input at step 1 only: every cross-time block vanishes (E[erf(u) erf(v)] = 0 for
    # independent u, v); relu (E[relu] != 0) keeps them
    mf0 = nf.mean_field(nf.rnn(STEPS, "erf", **dict(HYPER, bias_var=0.0)), X_STATIC)
    mf_relu = nf.mean_field(nf.rnn(STEPS, "relu", **dict(HYPER, bias_var=0.0)), X_STATIC)
    for t in range(1, STEPS + 1):
        for s in range(t + 1, STEPS + 1):
            assert np.abs(np.asarray(mf0.preactivation(t, s))).max() <= 1e-15
            if t > 1:
                assert np.abs(np.asarray(mf_relu.preactivation(t, s))).min() > 1e-3


def test_readout_all_differs_between_dnn_and_rnn_only_off_the_equal_time_blocks():
    x = X_SEQ[:3]
    k_d = np.asarray(nf.kernel(nf.dnn(STEPS, "erf", **HYPER), x, readout="all"))
    k_r = np.asarray(nf.kernel(nf.rnn(STEPS, "erf", **HYPER), x, readout="all"))
    assert k_d.shape == k_r.shape == (3 * STEPS, 3 * STEPS)
    t = np.tile(np.arange(STEPS), 3)  # row ordering: sequence by sequence, step by step
    same_time = t[:, None] == t[None, :]
    assert np.abs(k_d - k_r)[same_time].max() <= 1e-12
    # DNN: outputs at different layers share only the readout bias b_o
    np.testing.assert_allclose(k_d[~same_time], HYPER["readout_bias_var"], rtol=0, atol=1e-15)
    assert np.abs(k_r - k_d)[~same_time].min() > 1e-6  # every cross-time entry is RNN-specific
    np.testing.assert_allclose(k_r, k_r.T, rtol=0, atol=1e-14)
    assert np.linalg.eigvalsh(k_r).min() > -1e-12  # a covariance matrix


def test_mean_field_result_accessors():
    mf = nf.mean_field(nf.rnn(STEPS, "erf", **HYPER), X_STATIC)
    assert mf.steps == STEPS
    tt = np.asarray(mf.two_time(1, 2))
    assert tt.shape == (STEPS, STEPS)
    for t in range(1, STEPS + 1):
        for s in range(1, STEPS + 1):
            assert tt[t - 1, s - 1] == np.asarray(mf.preactivation(t, s))[1, 2]
    np.testing.assert_allclose(np.asarray(mf.readout), np.asarray(nf.kernel(mf.net, X_STATIC)), rtol=0, atol=1e-13)
    with pytest.raises(ValueError, match=r"t must be an integer step in 1\.\.4 of the 'h' taps, got 0"):
        mf.preactivation(0)
    with pytest.raises(ValueError, match=r"s must be an integer step in 1\.\.4 of the 'h' taps, got 5"):
        mf.preactivation(1, 5)
    with pytest.raises(ValueError, match=r"readout must be one of 'last', 'all', got 'first'"):
        mf.readout_kernel("first")
