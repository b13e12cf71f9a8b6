"""DNN kernels against neural-tangents 0.6.5 reference values, and an independent two-time recursion.

tests/data/neural_tangents_kernels.json: stax.serial([Dense(W_std, b_std), Act()] * L + [Dense]) with
inputs divided by d; mapping_to_netfield: depth=L, weight_var=input_var=readout_var=W_std**2,
bias_var=readout_bias_var=b_std**2 (docs/theory.md section 1).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special

import netfield as nf

REFERENCE = json.loads((Path(__file__).parent.parent / "data" / "neural_tangents_kernels.json").read_text())
X = np.array(REFERENCE["inputs_x"])
W_VAR, B_VAR = REFERENCE["W_std"] ** 2, REFERENCE["b_std"] ** 2
CASES = sorted(REFERENCE["cases"])


def _net(case, **changes):
    act, depth = case.split("_L")
    kw = {"weight_var": W_VAR, "bias_var": B_VAR, "input_var": W_VAR, "readout_var": W_VAR, "readout_bias_var": B_VAR}
    kw.update(changes)
    return nf.dnn(int(depth), act, **kw)


def test_reference_file_is_what_the_tests_assume():
    assert set(CASES) == {"erf_L1", "erf_L3", "relu_L1", "relu_L3"}
    assert X.shape == (4, 2)
    for case in CASES:
        depth = int(case.split("_L")[1])
        assert len(REFERENCE["cases"][case]["per_layer_preactivation"]) == depth + 1


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("method", ["auto", "closed"])
def test_readout_kernel_matches_neural_tangents(case, method):
    ref = np.array(REFERENCE["cases"][case]["nngp_output"])
    got = np.asarray(nf.kernel(_net(case), X, method=method))
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)
    mf = nf.mean_field(_net(case), X, method=method)
    np.testing.assert_allclose(np.asarray(mf.readout), ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_every_layer_matches_neural_tangents(case):
    per_layer = REFERENCE["cases"][case]["per_layer_preactivation"]
    mf = nf.mean_field(_net(case), X)
    for layer, ref in enumerate(per_layer[:-1], start=1):
        np.testing.assert_allclose(np.asarray(mf.preactivation(layer)), np.array(ref), rtol=0, atol=1e-12,
                                   err_msg=f"{case} layer {layer}")
    # the last entry is the readout Dense layer, i.e. the NNGP output kernel
    np.testing.assert_allclose(np.asarray(nf.kernel(_net(case), X)), np.array(per_layer[-1]), rtol=0, atol=1e-12)
    blocks = mf.preactivations()
    for layer, ref in enumerate(per_layer[:-1], start=1):
        np.testing.assert_allclose(blocks[layer - 1, layer - 1], np.array(ref), rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_post_activation_kernel_matches_neural_tangents(case):
    """readout_var = 1, readout_bias_var = 0: the readout kernel is E[phi(h_L) phi(h_L)] itself."""
    ref = np.array(REFERENCE["cases"][case]["post_activation_last_hidden"])
    got = np.asarray(nf.kernel(_net(case, readout_var=1.0, readout_bias_var=0.0), X))
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-12)


@pytest.mark.parametrize("case", CASES)
def test_panels_rule_reproduces_neural_tangents(case):
    """The numerical path alone (no closed forms) lands on the same kernels to quadrature accuracy."""
    ref = np.array(REFERENCE["cases"][case]["nngp_output"])
    got = np.asarray(nf.kernel(_net(case), X, method="panels"))
    np.testing.assert_allclose(got, ref, rtol=1e-8, atol=0)


def test_reference_distinguishes_hyper_parameters():
    """The comparison has teeth: a 1% change of any hyper-parameter moves the kernel by >> 1e-12."""
    ref = np.array(REFERENCE["cases"]["erf_L3"]["nngp_output"])
    for name in ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var"):
        base = {"weight_var": W_VAR, "bias_var": B_VAR, "input_var": W_VAR, "readout_var": W_VAR,
                "readout_bias_var": B_VAR}[name]
        got = np.asarray(nf.kernel(_net("erf_L3", **{name: base * 1.01}), X))
        assert np.abs(got - ref).max() > 1e-5, name


# ---------------------------------------------------------------------------------------------
# an independent (numpy, closed-form) implementation of the RNN two-time recursion, docs/theory.md 2.2

def _erf_pair(cuu, cvv, cuv):
    return 2 / math.pi * np.arcsin(2 * cuv / np.sqrt((1 + 2 * cuu) * (1 + 2 * cvv)))


def _relu_pair(cuu, cvv, cuv):
    root = np.sqrt(cuu * cvv)
    c = np.clip(cuv / root, -1.0, 1.0)
    theta = np.arccos(c)
    return root * (np.sin(theta) + (math.pi - theta) * c) / (2 * math.pi)


PAIRS = {"erf": _erf_pair, "relu": _relu_pair}


def reference_two_time(act, x, steps, wv, bv, iv, shared):
    """C[t, s, a, b] for x of shape (N, T_in, d): inputs at steps 1..T_in, bias / U / W shared if
    ``shared`` (RNN) and independent per step otherwise (DNN, cross-step blocks zero)."""
    n, t_in, d = x.shape
    xin = np.zeros((n, steps, d))
    xin[:, :t_in] = x
    C = np.zeros((steps, steps, n, n))
    order = sorted(((t, s) for t in range(steps) for s in range(steps)), key=max)  # causal order
    for t, s in order:
        if t != s and not shared:
            continue
        val = bv + iv * xin[:, t] @ xin[:, s].T / d
        if t > 0 and s > 0:
            dt, ds = np.diag(C[t - 1, t - 1]), np.diag(C[s - 1, s - 1])
            val = val + wv * PAIRS[act](dt[:, None], ds[None, :], C[t - 1, s - 1])
        C[t, s] = val
    return C


@pytest.mark.parametrize("act", ["erf", "relu"])
@pytest.mark.parametrize("sequential", [False, True])
@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_two_time_kernels_match_independent_recursion(act, sequential, builder):
    rng = np.random.default_rng(5)
    x = rng.normal(size=(4, 3, 2)) if sequential else rng.normal(size=(4, 1, 2))
    wv, bv, iv = 1.7, 0.25, 1.3
    net = builder(5, act, weight_var=wv, bias_var=bv, input_var=iv)
    ref = reference_two_time(act, x, 5, wv, bv, iv, shared=builder is nf.rnn)
    mf = nf.mean_field(net, x if sequential else x[:, 0])
    for t in range(1, 6):
        for s in range(1, 6):
            np.testing.assert_allclose(np.asarray(mf.preactivation(t, s)), ref[t - 1, s - 1], rtol=0,
                                       atol=1e-12, err_msg=f"C({t}, {s})")
    np.testing.assert_allclose(mf.preactivations(), ref, rtol=0, atol=1e-12)
    # the all-blocks recursion pairs lag k with lag T - 1 - k (meanfield/two_time.py): an even T, and
    # inputs that end before the last step, place every block as well
    for steps in (1, 2, 6, 7):
        longer = builder(steps, act, weight_var=wv, bias_var=bv, input_var=iv)
        xs = x[:, :min(steps, x.shape[1])]
        expected = reference_two_time(act, xs, steps, wv, bv, iv, shared=builder is nf.rnn)
        got = nf.mean_field(longer, xs if sequential else xs[:, 0]).preactivations()
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=f"T = {steps}")
    # readout='all': K[(a, t), (b, s)] = readout_var E[phi(h_t a) phi(h_s b)] + readout_bias_var
    if builder is nf.rnn:
        rv, rbv = 0.9, 0.1
        net = net.replace(readout_var=rv, readout_bias_var=rbv)
        k_all = np.asarray(nf.kernel(net, x if sequential else x[:, 0], readout="all"))
        T = 5 if not sequential else 3
        expected = np.zeros((4 * T, 4 * T))
        for a in range(4):
            for b in range(4):
                for t in range(T):
                    for s in range(T):
                        cov = ref[t, s, a, b]
                        expected[a * T + t, b * T + s] = rv * PAIRS[act](ref[t, t, a, a], ref[s, s, b, b], cov) + rbv
        np.testing.assert_allclose(k_all, expected, rtol=0, atol=1e-12)


def test_special_erf_matches_closed_form_used_in_reference():
    """Guard for the reference implementation above: its erf map is E[erf(u) erf(v)] (scipy MC-free
    check at c = 1: E[erf(u)^2] = (2/pi) arcsin(2q / (1 + 2q)))."""
    q = 0.7
    z, w = np.polynomial.hermite_e.hermegauss(80)
    direct = np.sum(w * special.erf(math.sqrt(q) * z) ** 2) / math.sqrt(2 * math.pi)
    assert _erf_pair(q, q, q) == pytest.approx(direct, rel=1e-12)
