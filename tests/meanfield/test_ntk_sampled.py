"""The analytic NTK (netfield.kernel(kind="ntk"), meanfield/ntk.py) against the empirical NTK of sampled
finite networks (netfield.sample(ntk=True), finite/ntk.py), per architecture.

Architectures: a simple RNN with inputs at every step on a batch of sequences of two lengths (a list of
(T_i, d) arrays), read out at every step (readout="all", 7 rows); GRU and LSTM (2 steps); a transformer
(1 block, tied query/key: non-uniform attention); an MLP with batch norm (a batch of 8 patterns, d = 8); and as
controls a 1-D conv net with global average pooling and a DNN. Per architecture,
netfield.experiments.architectures.architecture_convergence(kind="ntk") samples NETWORKS networks (NTK
parameterization) at each of WIDTHS and checks:

1. z-test: the mean empirical NTK at the largest width agrees with the analytic Theta within 4 standard
   errors, max |z| over the distinct entries, z = (mean - Theta) / sqrt(sem^2 + err^2) with err the
   analytic kernel's numerical error (spread of its quasi-Monte-Carlo replicates for GRU, LSTM and batch
   norm, checked against a 4x larger qmc_points run while writing this; 0 for closed forms);
2. 1/width: the squared relative distance d2 = ||Theta^ - Theta||_F^2 / ||Theta||_F^2, averaged over the
   networks, falls like 1/width: the weighted log-log fit (netfield.experiments.fitting.fit_power_law,
   Birge-inflated standard error) has |slope + 1| < 3 s.e. and s.e. < 0.3;
3. RNN = DNN: with the input at step 1 only and the readout at the last step the RNN's analytic NTK is the
   DNN's (exact, tests/meanfield/test_ntk.py); here the sampled RNN (one tied W) and DNN (fresh matrices)
   ensembles both agree with that one kernel, and their means with each other, within 4 standard errors.

Why the settings suffice (numbers of this module's runs, 48 networks at widths 64, 192, 512): the
standard error of a mean entry at width 512 is 1-4 % of the kernel's largest entry, so Theta scaled by
1.1 gives max |z| = 6.1 (batch norm) to 21.5 (RNN), and the NNGP kernel in place of the NTK |z| > 20
(benchmarks/ntk_sampled_table.py: 49-153 at width 1024, 64 networks): test_z_test_rejects_a_wrong_theory
asserts both, so the z-test can fail. The d2 means have relative errors of 10-22 % per width (batch
norm up to 42 %: heavy tails), so the slope's standard error is 0.07-0.2 over the width range 64..512
(a factor 8): a distance that stalls at a wrong limit (Theta x 1.1: d2 -> ~0.01) is rejected, and so is
one falling like n^-1/2 for every architecture but batch norm (s.e. 0.2: 2.5 s.e. only). Measured:
max |z| 0.9-2.3, slopes -0.79 +- 0.08 (DNN, the closest to the bound: 2.5 s.e.) to -1.14 +- 0.13.
Fixed seeds. Cost: XLA compilation dominates (about 1.5-4.5 s per architecture and width, 3 widths x 7
architectures: ~85 s of CPU on a loaded 2-core machine); sampling itself takes a few seconds in all.
"""

from __future__ import annotations

import numpy as np
import pytest

import netfield as nf
from netfield.experiments.architectures import architecture_convergence
from netfield.finite import mean_and_sem

pytestmark = pytest.mark.slow  # samples networks of 7 architectures at 3 widths (compilation: ~1 min)

WIDTHS = (64, 192, 512)  # about evenly spaced on log axes, a factor 8 in all
NETWORKS = 48
SEED = 20250611
SIGMAS = 4.0  # z-test
SLOPE_SIGMAS = 3.0  # 1/width fit

RNG = np.random.default_rng(7)
DNN = nf.dnn(3, "erf", weight_var=1.5, bias_var=0.3, readout_bias_var=0.1)
CASES = {  # name: (network, inputs, readout)
    "rnn": (nf.rnn(3, "erf", weight_var=1.5, bias_var=0.3, readout_bias_var=0.1),
            [RNG.normal(size=(2, 3)), RNG.normal(size=(3, 3)), RNG.normal(size=(2, 3))], "all"),
    "gru": (nf.gru(2), RNG.normal(size=(3, 2, 3)), "last"),
    "lstm": (nf.lstm(2), RNG.normal(size=(3, 2, 3)), "last"),
    "transformer": (nf.transformer(1, "relu", tie_query_key=True), RNG.normal(size=(3, 3, 3)), "last"),
    # d >= batch: the centred batch spans 7 dimensions (docs/ntk.md 4: with <= 4 the per-coordinate
    # terms of a finite network have infinite variance and sampled NTKs converge very slowly)
    "batchnorm": (nf.batchnorm_mlp(2, "relu"), RNG.normal(size=(8, 8)), "last"),
    "conv": (nf.conv(2, "relu", filter_shape=(3,)), RNG.normal(size=(3, 4, 3)), "last"),
    "dnn": (DNN, RNG.normal(size=(3, 3)), "last"),
}
_RESULTS: dict = {}


def study(name):
    """architecture_convergence(kind="ntk") of one case, computed once per module."""
    if name not in _RESULTS:
        net, x, readout = CASES[name]
        _RESULTS[name] = architecture_convergence(net, x, WIDTHS, NETWORKS, SEED, name=name, kind="ntk",
                                                  readout=readout, progress=False)
    return _RESULTS[name]


def max_abs_z(mean, sem, theory, theory_error=0.0):
    z = (mean - np.asarray(theory)) / np.sqrt(sem**2 + np.asarray(theory_error) ** 2)
    return float(np.abs(z[np.triu_indices(z.shape[0])]).max())


@pytest.mark.parametrize("name", list(CASES))
def test_mean_empirical_ntk_matches_analytic_at_largest_width(name):
    r = study(name)
    assert r.widths[-1] == WIDTHS[-1] and r.mean_kernel.shape == r.theory.shape
    assert r.theory_floor < 0.05 * r.d2_mean[-1]  # the analytic kernel's own error does not fake agreement
    assert r.max_abs_z < SIGMAS, (name, r.max_abs_z, r.z)


@pytest.mark.parametrize("name", list(CASES))
def test_squared_distance_falls_like_one_over_width(name):
    r = study(name)
    assert r.slope_se < 0.3, (name, r.slope, r.slope_se)  # the test has power
    assert abs(r.slope + 1.0) < SLOPE_SIGMAS * r.slope_se, (name, r.slope, r.slope_se, r.d2_mean)


@pytest.mark.parametrize("name", list(CASES))
def test_z_test_rejects_a_wrong_theory(name):
    """At these settings the z-test has teeth: Theta x 1.1, or the NNGP kernel in place of the NTK, fail."""
    r = study(name)
    net, x, readout = CASES[name]
    assert max_abs_z(r.mean_kernel, r.kernel_sem, 1.1 * r.theory, r.theory_error) > SIGMAS, name
    nngp = nf.kernel(net, x, readout=readout) if name in ("rnn", "dnn", "conv") else None
    if nngp is not None:  # closed forms: cheap; the others' fail as clearly (benchmarks/ntk_sampled_table.py)
        assert max_abs_z(r.mean_kernel, r.kernel_sem, nngp, r.theory_error) > 5 * SIGMAS, name


def test_study_theory_is_netfield_kernel():
    """The study's analytic NTK (with the error estimate) is netfield.kernel(kind="ntk"), rows readout="all"."""
    net, x, readout = CASES["rnn"]
    r = study("rnn")
    assert r.theory.shape == (7, 7) and r.kind == "ntk" and r.readout == "all"
    np.testing.assert_allclose(r.theory, nf.kernel(net, x, readout=readout, kind="ntk"), rtol=0, atol=1e-12)
    assert np.all(r.theory_error == 0.0)  # closed forms


def test_rnn_with_one_input_step_samples_the_dnn_ntk():
    """(N11) confirmed by sampling: RNN (input at step 1, readout at the last step) and DNN ensembles at
    the largest width both agree with the DNN's analytic NTK, and with each other, within 4 s.e."""
    x = CASES["dnn"][1]
    theory = np.asarray(nf.kernel(DNN, x, kind="ntk"))
    rnn = nf.rnn(3, "erf", weight_var=1.5, bias_var=0.3, readout_bias_var=0.1)
    np.testing.assert_allclose(nf.kernel(rnn, x, kind="ntk"), theory, rtol=0, atol=1e-12)
    dnn = study("dnn")  # the DNN control's ensemble at the largest width
    np.testing.assert_allclose(dnn.theory, theory, rtol=0, atol=1e-12)
    ens = nf.sample(rnn, x, WIDTHS[-1], NETWORKS, seed=SEED + 1, ntk=True, preactivations="none")
    mean, sem = ens.ntk_stats()
    np.testing.assert_allclose((mean, sem), mean_and_sem(ens.ntk), rtol=1e-12)
    assert max_abs_z(mean, sem, theory) < SIGMAS
    assert max_abs_z(dnn.mean_kernel, dnn.kernel_sem, theory) < SIGMAS
    assert max_abs_z(mean - dnn.mean_kernel, np.sqrt(sem**2 + dnn.kernel_sem**2), 0.0) < SIGMAS
    # the networks differ (tied W against fresh matrices): not one ensemble twice
    assert np.abs(ens.ntk.mean(axis=0) - dnn.mean_kernel).max() > 1e-6
