"""Measured Lyapunov exponents and correlation decay of any program: probe / width_study with given
inputs, through the finite-width interpreter (criticality/lyapunov.py).

Checks: (1) on a DNN the measurement with given inputs reproduces the mean-field exponent plus its
predicted 1/n shift (docs/criticality.md C14) within 4 standard errors at two widths - the tangent
method is right where a theory exists; (2) a GRU, which has no mean-field map here: width_study's
widths 64-256 are consistent with one a + b/n fit (chi^2 p-value > 1e-3) whose limit is resolved
from zero, i.e. the measurement agrees with its own sampled-network error bars, and its correlation
gap is measured at every step; (3) the GRU's q_t / eps_t are those of netfield.sample's networks
(same seed: the same matrices); (4) bad arguments are named.
"""

import numpy as np
import pytest

import netfield as nf
from netfield.criticality import dnn_lyapunov_correction, mean_field_criticality, probe, width_study


@pytest.mark.slow
def test_dnn_exponent_with_given_inputs_matches_mean_field_plus_predicted_shift():
    net = nf.dnn(24, "tanh", weight_var=1.2, bias_var=0.05)
    corr = dnn_lyapunov_correction(net)
    x = np.ones((1, 16)) * np.sqrt(mean_field_criticality(net).q_star)  # start at the length fixed point
    for width in (64, 256):
        p = probe(net, width, networks=64, seed=1, x=x, rows=0)
        assert p.eps is None and p.q_star is None
        mean, se = p.exponent(burn_in=6)
        assert abs(mean - (corr.lyapunov + corr.kappa / width)) < 4 * se, width


@pytest.mark.slow
def test_gru_width_study_is_consistent_across_widths():
    gru = nf.gru(24, weight_var=1.0, bias_var=0.5)
    x = np.random.default_rng(0).normal(size=(2, 2))
    s = width_study(gru, widths=(64, 128, 256), networks=64, seed=2, x=x, burn_in=6)
    fit = s.lyapunov_fit
    assert fit.p_value > 1e-3
    assert fit.a < 0 and abs(fit.a) > 4 * fit.errors[0]  # an ordered (contracting) GRU, resolved
    assert s.lyapunov_theory is None and s.phase is None and s.depth_b is None and s.architecture == "gru"
    assert s.eps.shape == (3, 24) and np.all(s.eps > 0) and np.all(s.eps_sem > 0)
    assert s.rate is not None and np.all(np.isfinite(s.rate_sem))
    assert s.summary()["lyapunov_theory"] is None


def test_gru_probe_runs_the_networks_of_sample():
    gru = nf.gru(5, weight_var=1.3, bias_var=0.5)
    x = np.random.default_rng(3).normal(size=(2, 5, 2))
    p = probe(gru, 16, networks=3, seed=7, x=x)
    ens = nf.sample(gru, x, width=16, networks=3, seed=7, preactivations="equal")
    for t in range(1, 6):
        K = ens.preactivation(t)
        np.testing.assert_allclose(p.q[:, t - 1], K[:, 0, 0], rtol=1e-12)
        np.testing.assert_allclose(p.eps[:, t - 1], 1 - K[:, 0, 1] / np.sqrt(K[:, 0, 0] * K[:, 1, 1]),
                                   rtol=1e-7, atol=1e-14)
    assert p.growth.shape == (3, 5) and np.all(p.growth[:, 0] == 0) and np.all(np.isfinite(p.growth))


def test_bad_arguments_are_named():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"tap must name a family of at least two tapped variables.*got 'z'"):
        probe(nf.rnn(3), 8, networks=2, x=x, tap="z")
    with pytest.raises(ValueError, match=r"rows must be one row index or two distinct ones in 0\.\.1.*\(5,\)"):
        probe(nf.rnn(3), 8, networks=2, x=x, rows=5)
    with pytest.raises(ValueError, match=r"rows must be .*\(0, 0\)"):
        probe(nf.rnn(3), 8, networks=2, x=x, rows=(0, 0))
    p = probe(nf.rnn(3), 8, networks=2, x=x)
    with pytest.raises(ValueError, match=r"burn_in must be an integer in 0\.\.1"):
        p.lyapunov(burn_in=2)
    with pytest.raises(nf.UnsupportedProgram, match=r"x=<two input rows>"):
        probe(nf.gru(3), 8, networks=2)
    with pytest.raises(nf.UnsupportedProgram, match=r"x=<two input rows>"):
        width_study(nf.lstm(3), widths=(8, 16), networks=4)
    with pytest.raises(ValueError, match=r"measure_lyapunov .* x cannot be chosen"):
        nf.criticality.measure_lyapunov(nf.rnn(3), 8, networks=2, x=x)
