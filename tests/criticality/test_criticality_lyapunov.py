"""Measured vs predicted: Lyapunov exponents and correlation decay of sampled DNNs and RNNs as the
width grows (docs/criticality.md sections 3-5). Statistical assertions use the samples' standard
errors (4 sigma) and check the 1/n scaling through a + b/n fits over three widths."""

import math

import numpy as np
import pytest
from scipy.special import digamma

import netfield
from netfield.criticality import criticality, dnn_lyapunov_correction, probe, width_study
from netfield.criticality.lyapunov import _inputs

pytestmark = pytest.mark.slow

WIDTHS = (32, 64, 128)
NETWORKS = 192
DEPTH = 20


def _study(arch, weight_var, input_power=0.0, seed=11, networks=NETWORKS):
    net = getattr(netfield, arch)(DEPTH, "tanh", weight_var=weight_var, bias_var=0.05)
    return width_study(net, widths=WIDTHS, networks=networks, seed=seed, input_power=input_power)


@pytest.fixture(scope="module")
def dnn_ordered():
    return _study("dnn", 1.2)


@pytest.fixture(scope="module")
def rnn_ordered():
    return _study("rnn", 1.2, networks=4 * NETWORKS)   # RNNs are cheap: one W per network


def test_probe_runs_the_networks_of_sample():
    # (same width / depth as the studies below: the compiled probe is reused)
    for arch, drive in (("dnn", 0.0), ("rnn", 0.7)):
        net = getattr(netfield, arch)(DEPTH, "tanh", weight_var=1.5, bias_var=0.05, input_var=0.8)
        p = probe(net, WIDTHS[0], networks=3, seed=5, input_power=drive)
        x = _inputs(net, p.q_star, 0.9, drive, 16, DEPTH, 5)
        ens = netfield.sample(net, x, width=WIDTHS[0], networks=3, seed=5, method="weights")
        for t in (1, 2, DEPTH // 2, DEPTH):
            K = ens.preactivation(t)
            np.testing.assert_allclose(p.q[:, t - 1], K[:, 0, 0], rtol=1e-12)
            np.testing.assert_allclose(p.eps[:, t - 1], 1 - K[:, 0, 1] / np.sqrt(K[:, 0, 0] * K[:, 1, 1]),
                                       rtol=1e-7, atol=1e-14)


def test_linear_dnn_exponent_is_exact_at_every_width():
    # linear phi: |delta_{t+1}|^2 = weight_var |delta_t|^2 chi^2_n / n exactly (C14 with R = 1):
    # lambda_n = (1/2) ln weight_var + (1/2) (psi(n/2) - ln(n/2))
    net = netfield.dnn(DEPTH, "linear", weight_var=0.5, bias_var=0.1)
    p = probe(net, 32, networks=NETWORKS, seed=3)
    lam = p.lyapunov(burn_in=1)
    exact = 0.5 * math.log(0.5) + 0.5 * (digamma(16) - math.log(16))
    sem = lam.std(ddof=1) / math.sqrt(len(lam))
    assert abs(lam.mean() - exact) < 4 * sem
    assert abs(lam.mean() - criticality(net).lyapunov) > 4 * sem      # the 1/n shift is resolved
    assert dnn_lyapunov_correction(net).kappa == pytest.approx(-0.5)


@pytest.mark.parametrize("weight_var", [1.2, 3.0])
def test_dnn_lyapunov_converges_with_the_predicted_1_over_n_correction(dnn_ordered, weight_var):
    s = dnn_ordered if weight_var == 1.2 else _study("dnn", 3.0)
    fit = s.lyapunov_fit
    assert s.phase == ("ordered" if weight_var == 1.2 else "chaotic")
    assert abs(fit.a - s.lyapunov_theory) < 4 * fit.a_err                 # n -> inf: (1/2) ln chi_1
    assert abs(fit.b - s.lyapunov_kappa) < 4 * fit.b_err                  # 1/n coefficient: (C14)
    assert fit.b < -4 * fit.b_err and fit.p_value > 1e-3                  # a resolved, a + b/n shift
    dev = np.abs(s.lyapunov - s.lyapunov_theory)
    assert dev[-1] < dev[0] / 2


@pytest.mark.parametrize("weight_var", [1.2, 3.0])
def test_rnn_with_input_drive_converges_to_the_mean_field_exponent(weight_var):
    s = _study("rnn", weight_var, input_power=0.5)
    fit = s.lyapunov_fit
    assert abs(fit.a - s.lyapunov_theory) < 4 * fit.a_err and fit.p_value > 1e-3
    assert s.lyapunov_theory == pytest.approx(
        criticality("tanh", weight_var, 0.05 + 0.5).lyapunov, rel=1e-12)   # drive = extra bias (C0)


def test_dnn_correlation_length_and_its_t_over_n_correction(dnn_ordered):
    s = dnn_ordered
    kappa = s.lyapunov_kappa
    # typical gap: rate -> chi_c, with 1/n coefficient 2 kappa chi_c from (C14)
    f = s.typical_rate_fit
    assert abs(f.a - s.rate_theory) < 4 * f.a_err
    assert abs(f.b - 2 * kappa * s.rate_theory) < 4 * f.b_err
    # the mean gap (the mean kernel) also converges to chi_c
    assert abs(s.rate_fit.a - s.rate_theory) < 4 * s.rate_fit.a_err
    # the correction of E ln(1 - c_t) grows linearly with depth: ~ 2 kappa (t - 1) at the last layer
    T = s.steps
    b, err = s.typical_depth_b[T - 1], s.typical_depth_b_sem[T - 1]
    assert b < -4 * err
    assert abs(b - 2 * kappa * (T - 1)) < 4 * err
    # and the per-depth extrapolation recovers the mean field (intercept 0)
    assert np.all(np.abs(s.typical_depth_a) < 4 * np.maximum(s.typical_depth_b_sem / WIDTHS[0], 1e-3) + 0.05)


def test_rnn_correlation_decay_differs_from_dnn(dnn_ordered, rnn_ordered):
    d, r = dnn_ordered, rnn_ordered
    assert abs(r.typical_rate_fit.a - r.rate_theory) < 4 * r.typical_rate_fit.a_err
    # weight sharing: the mean correlation gap of the RNN decays more slowly at finite width - its
    # rate has a large positive 1/n coefficient, well above the DNN's
    assert r.rate_fit.b > 4 * r.rate_fit.b_err
    assert r.rate_fit.b > d.rate_fit.b + 4 * math.hypot(r.rate_fit.b_err, d.rate_fit.b_err)
