"""Architectures written as NETSOR+ programs (program/architectures.py) against independent references.

- conv: neural-tangents' NNGP kernels (tests/program/data/nt_conv_kernels.json) to 1e-12;
- GRU: the independent GP4A-style kernel (gru_gp4a_reference.py) within the QMC error estimate;
- exact reductions: GRU / LSTM with fixed gates = simple RNN, 1-wide conv on one position = DNN, user
  programs writing a DNN / an RNN, transformers on one token (numpy LN / MLP kernel recursion);
- transformer attention: untied W_q, W_k = uniform token average, tied = softmax(scale Cov(q_i, q_j));
- masking of variable-length sequences (alone vs in a batch; finite-width sampler vs mean field);
- the Gauss-Hermite (lowdim) and QMC back-ends agree with each other and with qmc_expectation;
- QMC error estimates are honest across seeds.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import special

import netfield as nf
from netfield.gauss.multivariate import qmc_expectation
from netfield.program.architectures import erf_sigmoid
from netfield.program.netsor import Attention

HERE = Path(__file__).parent
_spec = importlib.util.spec_from_file_location("gru_gp4a_reference", HERE / "gru_gp4a_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

NT_CASES = json.loads((HERE / "data" / "nt_conv_kernels.json").read_text())["cases"]
KW = {"weight_var": 1.3, "bias_var": 0.2, "input_var": 0.8, "readout_var": 1.7, "readout_bias_var": 0.1}


def _np(a):
    return np.asarray(a, dtype=np.float64)


# -- convolutions vs neural-tangents ----------------------------------------------------------------
@pytest.mark.parametrize("case", NT_CASES, ids=[c["name"] for c in NT_CASES])
def test_conv_matches_neural_tangents(case):
    pool = None if case["pool_window"] is None else tuple(case["pool_window"])
    arch = nf.conv(case["depth"], case["activation"], case["weight_var"], case["bias_var"], case["input_var"],
                   case["readout_var"], case["readout_bias_var"], filter_shape=tuple(case["filter_shape"]),
                   padding=case["padding"], pool_window=pool, readout=case["readout"], skip=case["skip"])
    got = _np(nf.kernel(arch, np.asarray(case["x"])))
    np.testing.assert_allclose(got, np.asarray(case["nngp"]), rtol=0, atol=1e-12)


# -- GRU vs the independent GP4A-style reference --------------------------------------------------
def _check_against_reference(ours, expected):
    dev = np.abs(ours.readout - expected)
    assert ours.max_error < 1e-3, ours.max_error
    assert np.all(dev <= 5 * ours.error + 2e-6), (dev.max(), (dev / ours.error).max())


@pytest.mark.slow
def test_gru_matches_gp4a_reference_sequences():
    x = np.random.default_rng(0).normal(size=(3, 3, 2))
    ours = nf.mean_field(nf.gru(3), x, qmc_points=2**14)
    _check_against_reference(ours, ref.gru_readout_kernel(x))


@pytest.mark.slow
def test_gru_matches_gp4a_reference_static_input_other_variances():
    x = np.random.default_rng(5).normal(size=(2, 2))  # (N, d): input at step 1 only
    arch = nf.gru(3, weight_var=1.5, bias_var=0.3, readout_var=1.2, readout_bias_var=0.1)
    ours = nf.mean_field(arch, x, qmc_points=2**14)
    padded = np.zeros((2, 3, 2))
    padded[:, 0] = x  # the reference's input drive input_var x_t.x_s/d vanishes after step 1
    expected = ref.gru_readout_kernel(padded, 1.2, 0.1, weight_var=1.5, bias_var=0.3)
    _check_against_reference(ours, expected)


# -- exact reductions ---------------------------------------------------------------------------------
@pytest.mark.parametrize("activation", ["erf", "relu"])
@pytest.mark.parametrize("shape", [(3, 4, 2), (3, 2)], ids=["sequences", "static"])
def test_gated_networks_with_fixed_gates_are_the_simple_rnn(activation, shape):
    x = np.random.default_rng(1).normal(size=shape)
    simple = _np(nf.kernel(nf.rnn(4, activation, **KW), x))
    gru = nf.gru(4, activation, fixed_gates={"update": 1, "reset": 1}, **KW)
    lstm = nf.lstm(4, activation, fixed_gates={"input": 1, "forget": 0, "output": 1}, cell_activation="linear", **KW)
    np.testing.assert_allclose(_np(nf.kernel(gru, x)), simple, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(nf.kernel(lstm, x)), simple, rtol=0, atol=1e-12)


@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_one_wide_conv_on_one_position_is_the_dnn(activation):
    x = np.random.default_rng(2).normal(size=(4, 1, 3))
    got = _np(nf.kernel(nf.conv(3, activation, filter_shape=(1,), **KW), x))
    np.testing.assert_allclose(got, _np(nf.kernel(nf.dnn(3, activation, **KW), x[:, 0])), rtol=0, atol=1e-12)


def _user_feedforward(steps, activation, shared, hidden=None):
    """h_1 = U x_1 + b, h_t = W phi(h_{t-1}) [+ U x_t] + b; shared=False: fresh W_t, U_t, b_t (a DNN).
    ``hidden`` (a list) receives the names of the pre-activations h_1..h_steps."""

    def fn(p, x):
        seq = x[:, None, :] if x.ndim == 2 else x
        h = p.input("U", seq[:, 0], KW["input_var"]) + p.bias("b" if shared else "b1", KW["bias_var"])
        names = [h]
        for t in range(2, steps + 1):
            h = p.matmul("W" if shared else f"W{t}", p.nonlin(activation, h), KW["weight_var"])
            if t <= seq.shape[1]:
                h = h + p.input("U" if shared else f"U{t}", seq[:, t - 1], KW["input_var"])
            h = h + p.bias("b" if shared else f"b{t}", KW["bias_var"])
            names.append(h)
        out = p.readout(p.nonlin(activation, h), KW["readout_var"], KW["readout_bias_var"])
        if hidden is not None:
            hidden[:] = [v.name for v in names]
        return out

    return nf.architecture(fn, "shared" if shared else "fresh")


@pytest.mark.parametrize("activation", ["erf", "relu"])
def test_user_programs_writing_a_dnn_and_an_rnn(activation):
    rng = np.random.default_rng(3)
    x, seqs = rng.normal(size=(4, 3)), rng.normal(size=(3, 4, 2))
    dnn = _np(nf.kernel(nf.dnn(4, activation, **KW), x))
    np.testing.assert_allclose(_np(nf.kernel(_user_feedforward(4, activation, False), x)), dnn, rtol=0, atol=1e-12)
    np.testing.assert_allclose(_np(nf.kernel(_user_feedforward(4, activation, True), x)),
                               _np(nf.kernel(nf.rnn(4, activation, **KW), x)), rtol=0, atol=1e-12)
    rnn = _np(nf.kernel(nf.rnn(4, activation, **KW), seqs))
    np.testing.assert_allclose(_np(nf.kernel(_user_feedforward(4, activation, True), seqs)), rnn, rtol=0, atol=1e-12)
    # equal-time kernels do not see weight sharing; the two-time kernels C(t, s) do
    shared, fresh = [], []
    mf_shared = nf.mean_field(_user_feedforward(4, activation, True, shared), seqs)
    mf_fresh = nf.mean_field(_user_feedforward(4, activation, False, fresh), seqs)
    np.testing.assert_allclose(mf_fresh.readout, rnn, rtol=0, atol=1e-12)
    two_time = nf.mean_field(nf.rnn(4, activation, **KW), seqs)
    for t, s in ((2, 2), (4, 3), (4, 2), (3, 1)):
        expected = _np(two_time.preactivation(t, s))
        np.testing.assert_allclose(mf_shared.covariance(shared[t - 1], shared[s - 1]), expected, rtol=0, atol=1e-12)
        if t != s:
            assert np.abs(expected).max() > 0.1
            assert np.all(mf_fresh.covariance(fresh[t - 1], fresh[s - 1]) == 0.0)


def _relu_pair(k):
    d = np.sqrt(np.diag(k))
    c = np.clip(k / np.outer(d, d), -1.0, 1.0)
    th = np.arccos(c)
    return np.outer(d, d) / (2 * np.pi) * (np.sin(th) + (np.pi - th) * c)


def _erf_pair(k):
    d = np.diag(k)
    return 2 / np.pi * np.arcsin(2 * k / np.sqrt(np.outer(1 + 2 * d, 1 + 2 * d)))


def _normalise(k):
    d = np.sqrt(np.diag(k))
    return k / np.outer(d, d)


def _one_token_transformer(x, blocks, pair, weight_var, bias_var, input_var, readout_var, readout_bias_var):
    """Attention over one token returns v = W_v g (independent of g):
    g1 = LN(g + W_v g): Cov = (1 + wv) K normalised;  g = LN(g1 + W_2 phi(W_1 g1 + b_1) + b_2)."""
    k = input_var * x @ x.T / x.shape[1] + bias_var
    for _ in range(blocks):
        c1 = _normalise((1 + weight_var) * k)
        k = _normalise(c1 + weight_var * pair(weight_var * c1 + bias_var) + bias_var)
    return readout_var * k + readout_bias_var


@pytest.mark.parametrize("activation,pair", [("relu", _relu_pair), ("erf", _erf_pair)])
@pytest.mark.parametrize("blocks", [1, 2])
def test_transformer_on_one_token(activation, pair, blocks):
    x = np.random.default_rng(4).normal(size=(4, 1, 3))
    expected = _one_token_transformer(x[:, 0], blocks, pair, **KW)
    for opts in ({}, {"tie_query_key": True, "attention_scale": 3.0}, {"causal": True, "readout": "last"}):
        got = _np(nf.kernel(nf.transformer(blocks, activation, **KW, **opts), x))
        np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12, err_msg=str(opts))


# -- transformer attention ----------------------------------------------------------------------------
def _uniform_attention_transformer(blocks, activation, causal):
    """The transformer with attention replaced by the (causal) uniform token average (RowMap)."""
    wv, bv = KW["weight_var"], KW["bias_var"]

    def fn(p, arr):
        n, length, d = arr.shape
        avg = np.tril(np.ones((length, length))) / np.arange(1, length + 1)[:, None] if causal \
            else np.full((length, length), 1.0 / length)
        g = p.input("U", arr.reshape(n * length, d), KW["input_var"], space="tokens") + p.bias("b0", bv, space="tokens")
        for b in range(1, blocks + 1):
            v = p.matmul(f"Wv{b}", p.nonlin("linear", g), wv)
            g1 = p.layernorm(g + p.rowmap(v, np.kron(np.eye(n), avg), space="tokens"))
            m = p.matmul(f"W1_{b}", p.nonlin("linear", g1), wv) + p.bias(f"b1_{b}", bv, space="tokens")
            m = p.matmul(f"W2_{b}", p.nonlin(activation, m), wv) + p.bias(f"b2_{b}", bv, space="tokens")
            g = p.layernorm(g1 + m)
        pool = np.kron(np.eye(n), np.full((1, length), 1.0 / length))
        return p.readout(p.rowmap(p.nonlin("linear", g), pool, space="rows"), KW["readout_var"],
                         KW["readout_bias_var"])

    return nf.architecture(fn)


def _attention(mf):
    return [ins for ins in mf.program.instructions if isinstance(ins, Attention)]


@pytest.mark.parametrize("activation", ["relu", "erf"])
@pytest.mark.parametrize("causal", [False, True])
def test_untied_attention_is_the_uniform_average(activation, causal):
    x = np.random.default_rng(5).normal(size=(3, 4, 2))
    mf = nf.mean_field(nf.transformer(2, activation, causal=causal, **KW), x)
    expected = _np(nf.kernel(_uniform_attention_transformer(2, activation, causal), x))
    np.testing.assert_allclose(mf.readout, expected, rtol=0, atol=1e-12)
    for att in _attention(mf):  # the infinite-width logits Cov(q_i, k_j) vanish: uniform weights
        uniform = att.mask / att.mask.sum(axis=1, keepdims=True)
        np.testing.assert_allclose(_np(mf.engine.attention_weights(att.name)).mean(axis=0), uniform, atol=1e-15)


@pytest.mark.parametrize("causal", [False, True])
def test_tied_query_key_attention_weights(causal):
    x = np.random.default_rng(6).normal(size=(3, 4, 2))
    scale = 2.0
    tied = nf.mean_field(nf.transformer(2, "relu", tie_query_key=True, attention_scale=scale, causal=causal, **KW), x)
    atts = _attention(tied)
    assert len(atts) == 2
    # block 1: q = W_q g_0, Cov(q_i, q_j) = weight_var (input_var x_i.x_j / d + bias_var), independently
    rows = x.reshape(12, 2)
    cov_q1 = KW["weight_var"] * (KW["input_var"] * rows @ rows.T / 2 + KW["bias_var"])
    np.testing.assert_allclose(tied.covariance(atts[0].query, atts[0].key), cov_q1, rtol=0, atol=1e-12)
    for att in atts:
        assert att.query == att.key
        logits = np.where(att.mask, scale * tied.covariance(att.query, att.query), -np.inf)
        w = np.exp(logits - logits.max(axis=1, keepdims=True))
        w /= w.sum(axis=1, keepdims=True)
        got = _np(tied.engine.attention_weights(att.name)).mean(axis=0)
        np.testing.assert_allclose(got, w, rtol=0, atol=1e-14)
        assert np.abs(got - att.mask / att.mask.sum(axis=1, keepdims=True)).max() > 0.1  # not uniform
    untied = _np(nf.kernel(nf.transformer(2, "relu", attention_scale=scale, causal=causal, **KW), x))
    assert np.abs(tied.readout - untied).max() > 1e-2


# -- masking of variable-length sequences ---------------------------------------------------------
SEQS = [np.random.default_rng(7).normal(size=(t, 2)) for t in (3, 2, 1)]


@pytest.mark.parametrize("builder", [nf.gru, nf.lstm], ids=["gru", "lstm"])
def test_masked_sequence_equals_the_sequence_alone(builder):
    batch = nf.mean_field(builder(3), SEQS)
    alone = nf.mean_field(builder(3), [SEQS[1]])
    tol = 5 * np.hypot(batch.error[1, 1], alone.error[0, 0]) + 1e-12
    assert abs(batch.readout[1, 1] - alone.readout[0, 0]) <= tol
    if builder is nf.gru:  # and both equal the reference kernel of each sequence run alone
        for i, s in enumerate(SEQS):
            expected = ref.gru_readout_kernel(s[None])[0, 0]
            assert abs(batch.readout[i, i] - expected) <= 5 * batch.error[i, i] + 2e-6, i


@pytest.mark.slow
@pytest.mark.parametrize("builder", [nf.gru, nf.lstm], ids=["gru", "lstm"])
def test_masked_sequences_finite_width_agrees_with_mean_field(builder):
    mf = nf.mean_field(builder(3), SEQS)
    ens = nf.sample(builder(3), SEQS, width=512, networks=32, seed=1)
    r = np.asarray(ens.readout)
    se = r.std(axis=0, ddof=1) / np.sqrt(r.shape[0])
    z = (r.mean(axis=0) - mf.readout) / np.sqrt(se**2 + mf.error**2)
    assert np.all(np.abs(z) < 4), z


# -- back-ends --------------------------------------------------------------------------------------
def _gated_program(names):
    """h = sig(g1) tanh(g2) (2-argument nonlinearity), its coupled=True copy (forced joint QMC), erf(g1)."""

    def fn(p, x):
        g1 = p.input("U1", x, 1.0) + p.bias("b1", 0.2)
        g2 = 0.6 * g1 + p.input("U2", x, 0.8)
        gate = lambda u, v: erf_sigmoid(u) * jnp.tanh(v)
        h = p.nonlin(gate, g1, g2)
        h_joint = p.nonlin(gate, g1, g2, coupled=True)
        k = p.nonlin("erf", g1)
        names.update(g1=g1.name, g2=g2.name, a=p.matmul("W", h).name, a_joint=p.matmul("W", h_joint).name)
        c = p.matmul("W", k)
        names["c"] = c.name
        return p.readout(p.nonlin("erf", c))

    return nf.architecture(fn)


def _replicate_se(mf, g1, g2):
    reps = np.asarray(mf.engine.cov(g1, g2))
    return reps.std(axis=0, ddof=1) / np.sqrt(reps.shape[0])


def test_backends_agree():
    x = 0.4 * np.random.default_rng(8).normal(size=(3, 2))
    names = {}
    mf = nf.mean_field(_gated_program(names), x, qmc_points=2**13)
    eng = mf.engine
    # E[h(a) erf(g1(b))]: 3 Gaussian arguments -> tensor Gauss-Hermite (lowdim)
    before = dict(eng.backend_counts)
    low = mf.covariance(names["a"], names["c"])
    assert eng.backend_counts["lowdim"] == before["lowdim"] + 1 and eng.backend_counts["qmc"] == before["qmc"]
    assert eng.lowdim_error < 1e-8
    # the same moment with the coupled copy: joint QMC over all rows
    joint = mf.covariance(names["a_joint"], names["c"])
    assert eng.backend_counts["qmc"] == before["qmc"] + 1
    se = _replicate_se(mf, names["a_joint"], names["c"])
    assert np.all(np.abs(low - joint) <= 5 * (se + eng.lowdim_error) + 1e-12), np.abs(low - joint) / se
    # against qmc_expectation on the covariances of (g1, g2) at rows a and b
    g1, g2 = names["g1"], names["g2"]
    c11, c12, c22 = (mf.covariance(*pair) for pair in ((g1, g1), (g1, g2), (g2, g2)))
    a, b = 0, 2
    cov4 = np.array([[c11[a, a], c12[a, a], c11[a, b], c12[a, b]],
                     [c12[a, a], c22[a, a], c12[b, a], c22[a, b]],
                     [c11[b, a], c12[b, a], c11[b, b], c12[b, b]],
                     [c12[a, b], c22[a, b], c12[b, b], c22[b, b]]])

    def sig(u):
        return 0.5 * (1 + special.erf(u))

    m3, se3 = qmc_expectation(lambda z: sig(z[:, 0]) * np.tanh(z[:, 1]) * special.erf(z[:, 2]), cov4[:3, :3],
                              points=2**14)
    assert abs(low[a, b] - m3) <= 5 * se3 + 1e-8
    # E[h(a) h(b)]: 4 arguments (entrywise QMC) vs qmc_expectation on the 4-d covariance
    hh = mf.covariance(names["a"], names["a"])
    se_hh = _replicate_se(mf, names["a"], names["a"])[a, b]
    m4, se4 = qmc_expectation(lambda z: sig(z[:, 0]) * np.tanh(z[:, 1]) * sig(z[:, 2]) * np.tanh(z[:, 3]), cov4,
                              points=2**14)
    assert abs(hh[a, b] - m4) <= 5 * np.hypot(se4, se_hh) + 1e-8


# -- error estimates ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_qmc_error_estimates_are_honest():
    x = np.random.default_rng(9).normal(size=(2, 2, 2))
    best = nf.mean_field(nf.gru(2), x, qmc_points=2**15, seed=100)
    for seed in range(4):
        mf = nf.mean_field(nf.gru(2), x, qmc_points=2**12, seed=seed)
        dev = np.abs(mf.readout - best.readout)
        assert np.all(dev <= 5 * np.hypot(mf.error, best.error) + 1e-12), (seed, dev / mf.error)


def test_attention_is_the_transformer_block_builder():
    assert nf.attention is nf.transformer
