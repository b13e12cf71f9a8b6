"""Variable-length sequences: a batch kernel is the collection of pairwise kernels (inputs.py).

Sequence i runs T_i steps and is read out at its own last step ('last') or at every one of its steps
('all', rows ordered sequence by sequence, step by step). Its entries must not depend on which other
sequences share the batch.
"""

from __future__ import annotations

import itertools

import numpy as np
import pytest

import netfield as nf

RNG = np.random.default_rng(21)
SEQS = [RNG.normal(size=(2, 3)), RNG.normal(size=(5, 3)), RNG.normal(size=(3, 3))]
LENGTHS = [len(s) for s in SEQS]
OFFSETS = np.concatenate([[0], np.cumsum(LENGTHS)[:-1]])
HYPER = {"weight_var": 1.4, "bias_var": 0.2, "input_var": 1.1, "readout_var": 0.9, "readout_bias_var": 0.05}


@pytest.mark.parametrize("act", ["erf", "relu", "tanh"])
def test_readout_last_equals_pairwise_runs(act):
    # closed forms: the same numbers up to rounding; tanh: Mehler series whose order is chosen per
    # block from the correlations it meets (a batch vs a pair), stated accuracy series.TOLERANCE = 1e-10
    tol = 1e-10 if act == "tanh" else 1e-12
    net = nf.rnn(6, act, **HYPER)
    k = np.asarray(nf.kernel(net, SEQS))
    assert k.shape == (3, 3)
    for i, j in itertools.combinations_with_replacement(range(3), 2):
        if i == j:
            alone = np.asarray(nf.kernel(net, [SEQS[i]]))[0, 0]
        else:
            alone = np.asarray(nf.kernel(net, [SEQS[i], SEQS[j]]))[0, 1]
        assert abs(k[i, j] - alone) <= tol, (i, j)
        assert abs(k[j, i] - alone) <= tol, (j, i)
    # a sequence alone, given as an (1, T, d) array, and as an (N, T, d) batch of equal lengths
    for i in range(3):
        assert abs(np.asarray(nf.kernel(net, SEQS[i][None]))[0, 0] - k[i, i]) <= tol
    # cross kernel x1 != x2 with mixed lengths
    k12 = np.asarray(nf.kernel(net, SEQS[:2], [SEQS[2]]))
    np.testing.assert_allclose(k12[:, 0], k[:2, 2], rtol=0, atol=tol)


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_readout_all_equals_pairwise_runs_and_ordering(act):
    net = nf.rnn(6, act, **HYPER)
    k = np.asarray(nf.kernel(net, SEQS, readout="all"))
    total = sum(LENGTHS)
    assert k.shape == (total, total)
    for i, j in itertools.product(range(3), repeat=2):
        rows = slice(OFFSETS[i], OFFSETS[i] + LENGTHS[i])
        cols = slice(OFFSETS[j], OFFSETS[j] + LENGTHS[j])
        if i == j:
            alone = np.asarray(nf.kernel(net, [SEQS[i]], readout="all"))
            expected = alone
        else:
            both = np.asarray(nf.kernel(net, [SEQS[i], SEQS[j]], readout="all"))
            expected = both[: LENGTHS[i], LENGTHS[i]:]
        np.testing.assert_allclose(k[rows, cols], expected, rtol=0, atol=1e-12, err_msg=f"block {i}, {j}")
    # step-by-step ordering: the row of (sequence i, step t) at its own last step is the 'last' kernel
    last_rows = OFFSETS + np.array(LENGTHS) - 1
    k_last = np.asarray(nf.kernel(net, SEQS))
    np.testing.assert_allclose(k[np.ix_(last_rows, last_rows)], k_last, rtol=0, atol=1e-12)
    # and step t of sequence i equals the readout of its prefix x[:t] (causality)
    i, t = 1, 3
    prefix = np.asarray(nf.kernel(net, [SEQS[i][:t], SEQS[0]]))
    assert abs(k[OFFSETS[i] + t - 1, OFFSETS[i] + t - 1] - prefix[0, 0]) <= 1e-12
    assert abs(k[OFFSETS[i] + t - 1, OFFSETS[0] + LENGTHS[0] - 1] - prefix[0, 1]) <= 1e-12


def test_readout_all_for_equal_lengths_is_sequence_major():
    x = RNG.normal(size=(3, 4, 2))
    net = nf.rnn(4, "erf", **HYPER)
    k_all = np.asarray(nf.kernel(net, x, readout="all"))
    k_list = np.asarray(nf.kernel(net, list(x), readout="all"))
    np.testing.assert_allclose(k_all, k_list, rtol=0, atol=1e-12)
    mf = nf.mean_field(net, x)
    # entry ((a, t), (b, s)) = readout_var E[phi(h_t a) phi(h_s b)] + readout_bias_var: check the
    # (a, t) = (0, 2), (b, s) = (2, 4) entry from the pre-activation blocks
    c = np.asarray(mf.preactivation(2, 4))
    q2, q4 = np.diag(np.asarray(mf.preactivation(2))), np.diag(np.asarray(mf.preactivation(4)))
    expected = HYPER["readout_var"] * float(nf.gauss.pair("erf", q2[0], q4[2], c[0, 2])) + HYPER["readout_bias_var"]
    assert abs(k_all[0 * 4 + 1, 2 * 4 + 3] - expected) <= 1e-12


def test_dnn_with_variable_lengths_reads_out_each_at_its_own_layer():
    net = nf.dnn(6, "erf", **HYPER)
    k = np.asarray(nf.kernel(net, SEQS))
    for i in range(3):
        alone = np.asarray(nf.kernel(nf.dnn(LENGTHS[i], "erf", **HYPER), SEQS[i][None]))[0, 0]
        assert abs(k[i, i] - alone) <= 1e-12
    # different readout layers of a DNN share only the readout bias
    assert abs(k[0, 1] - HYPER["readout_bias_var"]) <= 1e-15
