"""Weighted least-squares power-law fits (netfield.experiments.fitting)."""

import math

import numpy as np
import pytest

from netfield.experiments.fitting import fit_power_law, prefactor_ratio


def test_exact_power_law_is_recovered():
    n = np.array([16, 32, 64, 128, 256, 512])
    y = 1.7 * n**-0.5
    fit = fit_power_law(n, y, 0.05 * y)
    assert fit.exponent == pytest.approx(-0.5, abs=1e-12)
    assert fit.prefactor == pytest.approx(1.7, rel=1e-12)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-20)
    # error bars of 5 % in y: se(slope) = 0.05 / sqrt(sum (x - xbar)^2) for equal weights
    x = np.log(n)
    assert fit.exponent_se == pytest.approx(0.05 / np.sqrt(np.sum((x - x.mean()) ** 2)), rel=1e-10)


def test_fixed_exponent_gives_weighted_mean_amplitude():
    n = np.array([16, 64, 256])
    y = 4.0 / np.sqrt(n) * np.array([1.0, 1.1, 0.9])  # scattered around A = 4
    sem = 0.1 * y  # equal weights on log axes: ln A = mean of ln(y sqrt(n))
    fit = fit_power_law(n, y, sem, exponent=-0.5)
    assert fit.fixed_exponent and fit.exponent == -0.5 and fit.exponent_se == 0.0
    assert fit.prefactor == pytest.approx(4.0 * (1.0 * 1.1 * 0.9) ** (1 / 3), rel=1e-12)
    chi2 = float(np.sum((np.log(y * np.sqrt(n)) - fit.log_prefactor) ** 2) / 0.1**2)
    assert fit.chi2 == pytest.approx(chi2, rel=1e-10) and fit.dof == 2
    assert fit.log_prefactor_se == pytest.approx(0.1 / math.sqrt(3) * max(1.0, math.sqrt(chi2 / 2)), rel=1e-12)


def test_slope_error_is_honest_on_noisy_data():
    """Over many synthetic data sets the slope lies within 2 fitted standard errors ~95 % of the time."""
    rng = np.random.default_rng(0)
    n = np.array([16, 32, 64, 128, 256, 512], float)
    inside = 0
    trials = 400
    for _ in range(trials):
        true = 0.8 * n**-0.5
        sem = 0.08 * true
        y = true * np.exp(rng.normal(0, 0.08, size=n.size))
        fit = fit_power_law(n, y, sem)
        inside += abs(fit.exponent + 0.5) < 2 * fit.exponent_se
    assert 0.90 < inside / trials <= 1.0


def test_birge_ratio_inflates_errors_of_a_bad_fit():
    n = np.array([16, 32, 64, 128])
    y = np.array([1.0, 0.3, 0.5, 0.1])
    small = fit_power_law(n, y, 1e-3 * y)
    assert small.chi2 / small.dof > 1
    unscaled = 1e-3 / np.sqrt(np.sum((np.log(n) - np.log(n).mean()) ** 2))
    assert small.exponent_se == pytest.approx(unscaled * math.sqrt(small.chi2 / small.dof), rel=1e-8)


def test_prefactor_ratio_propagates_errors():
    n = np.array([16, 64, 256])
    a = fit_power_law(n, 2.0 * n**-0.5, 0.1 * 2.0 * n**-0.5, exponent=-0.5)
    b = fit_power_law(n, 1.0 * n**-0.5, 0.2 * 1.0 * n**-0.5, exponent=-0.5)
    ratio, se = prefactor_ratio(a, b)
    assert ratio == pytest.approx(2.0)
    assert se == pytest.approx(2.0 * math.hypot(0.1 / math.sqrt(3), 0.2 / math.sqrt(3)))


@pytest.mark.parametrize("n, y, sem, match", [
    ([16, 32], [0.1, -0.1], [0.01, 0.01], "y must hold finite numbers > 0"),
    ([16, 32], [0.1, 0.1], [0.01, 0.0], "sem must hold finite numbers > 0"),
    ([16, 32], [0.1, np.nan], [0.01, 0.01], "y must hold"),
    ([16], [0.1], [0.01], "at least two different widths"),
    ([16, 32], [0.1], [0.01], "1-D arrays of one length"),
])
def test_bad_fit_input_names_the_problem(n, y, sem, match):
    with pytest.raises(ValueError, match=match):
        fit_power_law(n, y, sem)
