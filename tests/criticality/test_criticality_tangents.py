"""Measured Lyapunov exponents of any program by tangent propagation through the finite-width
interpreter (criticality/tangents.py).

Checks: (1) on a DNN the generic measurement reproduces the mean-field exponent plus its predicted
1/n shift (docs/criticality.md C14) within 4 standard errors at two widths - the tangent method is
right where a theory exists; (2) a GRU, which has no mean-field map here, gives widths 64-256 that
are consistent with one a + b/n fit (chi^2 p-value > 1e-3) and a limit resolved from zero, i.e. the
measurement agrees with its own sampled-network error bars; (3) bad arguments are named.
"""

import numpy as np
import pytest

import netfield as nf
from netfield.criticality import (
    dnn_lyapunov_correction,
    fit_inverse_width,
    mean_field_criticality,
    tangent_growth,
)


@pytest.mark.slow
def test_dnn_exponent_matches_mean_field_plus_predicted_shift():
    net = nf.dnn(24, "tanh", weight_var=1.2, bias_var=0.05)
    corr = dnn_lyapunov_correction(net)
    x = np.ones((1, 16)) * np.sqrt(mean_field_criticality(net).q_star)  # start at the length fixed point
    for width in (64, 256):
        mean, se = tangent_growth(net, x, width, networks=64, seed=1).exponent(burn_in=6)
        assert abs(mean - (corr.lyapunov + corr.kappa / width)) < 4 * se, width


@pytest.mark.slow
def test_gru_exponent_is_consistent_across_widths():
    gru = nf.gru(24, weight_var=1.0, bias_var=0.5)
    x = np.random.default_rng(0).normal(size=(1, 2))
    widths = np.array([64, 128, 256])
    res = [tangent_growth(gru, x, int(n), networks=64, seed=2).exponent(burn_in=6) for n in widths]
    fit = fit_inverse_width(widths, np.array([r[0] for r in res]), np.array([r[1] for r in res]))
    assert fit.p_value > 1e-3
    assert fit.a < 0 and abs(fit.a) > 4 * fit.errors[0]  # an ordered (contracting) GRU, resolved


def test_bad_arguments_are_named():
    x = np.ones((2, 3))
    with pytest.raises(ValueError, match=r"tap must name a family of at least two tapped variables.*got 'z'"):
        tangent_growth(nf.rnn(3), x, 8, networks=2, tap="z")
    with pytest.raises(ValueError, match=r"row must be an integer in 0\.\.1, got 5"):
        tangent_growth(nf.rnn(3), x, 8, networks=2, row=5)
    g = tangent_growth(nf.rnn(3), x, 8, networks=2)
    with pytest.raises(ValueError, match=r"burn_in must be < 2"):
        g.lyapunov(burn_in=2)
