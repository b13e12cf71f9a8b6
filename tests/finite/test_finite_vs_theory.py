"""Mean-field kernels against ensembles of sampled finite-width networks (docs/design.md section 5).

The mean of the empirical kernels over `networks` sampled networks must lie within 4 standard errors
of the theory at two widths, and the deviation must shrink as the width grows. The empirical mean
carries a genuine O(1/n) bias (docs/theory.md section 4), ~1/n in units where the per-network fluctuation
is ~3/sqrt(n): with networks = width / 2 the bias stays ~0.3 standard errors at both widths, and the
error bar shrinks like 1/width (expected: 4x from width 128 to 512).
"""

from __future__ import annotations

import numpy as np
import pytest

import netfield as nf

pytestmark = pytest.mark.slow

WIDTHS = (128, 512)
NETWORKS = {128: 64, 512: 256}
SIGMAS = 4.0

RNG = np.random.default_rng(2024)
X_SEQ = RNG.normal(size=(2, 3, 4))
X_STATIC = RNG.normal(size=(3, 4))
RNN = nf.rnn(3, "erf", weight_var=1.5, bias_var=0.3, input_var=1.0, readout_var=1.0, readout_bias_var=0.1)
DNN = nf.dnn(3, "relu", weight_var=2.0, bias_var=0.1, input_var=1.0, readout_var=1.0, readout_bias_var=0.05)


def _check(theory, samples, what):
    """|mean - theory| < 4 sem for every entry; returns the largest deviation."""
    mean, sem = nf.finite.mean_and_sem(samples)
    theory = np.asarray(theory)
    assert mean.shape == theory.shape, what
    z = np.abs(mean - theory) / sem
    assert z.max() < SIGMAS, f"{what}: max |mean - theory| / sem = {z.max():.2f} at {np.unravel_index(z.argmax(), z.shape)}"
    return float(np.abs(mean - theory).max())


def _check_shrinks(deviation, what):
    small, large = deviation[WIDTHS[0]], deviation[WIDTHS[1]]
    assert large < 0.5 * small, f"{what}: max deviation {small:.3e} at n={WIDTHS[0]}, {large:.3e} at n={WIDTHS[1]}"


@pytest.fixture(scope="module")
def rnn_runs():
    return {n: nf.sample(RNN, X_SEQ, width=n, networks=NETWORKS[n], seed=n, readout="all", preactivations="all")
            for n in WIDTHS}


def test_rnn_two_time_kernels_match_theory(rnn_runs):
    mf = nf.mean_field(RNN, X_SEQ)
    pairs = [(t, s) for t in range(1, 4) for s in range(t, 4)]
    deviation = {}
    for n, ens in rnn_runs.items():
        deviation[n] = max(_check(mf.preactivation(t, s), ens.preactivation(t, s), f"C({t},{s}) n={n}") for t, s in pairs)
        # the cross-time blocks are substantial (shared W, U, b), not a trivially passing zero
        assert np.abs(np.asarray(mf.preactivation(1, 3))).max() > 0.2
    _check_shrinks(deviation, "RNN two-time kernels")


def test_rnn_readout_all_matches_theory(rnn_runs):
    theory = nf.kernel(RNN, X_SEQ, readout="all")
    deviation = {n: _check(theory, ens.readout, f"readout='all' n={n}") for n, ens in rnn_runs.items()}
    _check_shrinks(deviation, "RNN readout='all' kernel")


def test_theory_check_has_teeth(rnn_runs):
    """The same ensembles reject a slightly wrong theory (weight_var 1.5 -> 1.35)."""
    wrong = nf.kernel(RNN.replace(weight_var=1.35), X_SEQ, readout="all")
    mean, sem = rnn_runs[512].readout_stats()
    assert (np.abs(mean - np.asarray(wrong)) / sem).max() > SIGMAS


def test_dnn_readout_and_layers_match_theory():
    mf = nf.mean_field(DNN, X_STATIC)
    deviation = {}
    for n in WIDTHS:
        ens = nf.sample(DNN, X_STATIC, width=n, networks=NETWORKS[n], seed=7 + n)
        deviation[n] = _check(nf.kernel(DNN, X_STATIC), ens.readout, f"DNN readout n={n}")
        for t in (1, 2, 3):
            _check(mf.preactivation(t), ens.preactivation(t), f"DNN layer {t} n={n}")
    _check_shrinks(deviation, "DNN readout kernel")


def test_variable_length_sequences_match_theory():
    """Ragged inputs: readout='all' over every step of every sequence, and the pre-activation kernels of
    the padded batch (a sequence that has ended receives no further input) in both interpreters."""
    seqs = [RNG.normal(size=(1, 4)), RNG.normal(size=(3, 4)), RNG.normal(size=(2, 4))]
    n = 256
    ens = nf.sample(RNN, seqs, width=n, networks=128, seed=3, readout="all", preactivations="all")
    assert ens.readout.shape == (128, 6, 6)
    _check(nf.kernel(RNN, seqs, readout="all"), ens.readout, "ragged readout='all'")
    mf = nf.mean_field(RNN, seqs)
    for t in range(1, 4):
        for s in range(t, 4):
            _check(mf.preactivation(t, s), ens.preactivation(t, s), f"ragged C({t},{s})")
