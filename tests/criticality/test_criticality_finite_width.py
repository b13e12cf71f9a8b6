"""The analytic 1/n coefficient of the DNN Lyapunov exponent (C14): exact cases and argument checks.
(Its comparison with sampled networks is in test_criticality_lyapunov.py.)"""

import math

import pytest

import netfield
from netfield.criticality import dnn_lyapunov_correction, width_study


def test_exact_cases():
    # linear: R = 1, only the chi-square term: kappa = -1/2
    lin = dnn_lyapunov_correction("linear", 0.5, 0.1)
    assert lin.kappa == pytest.approx(-0.5, abs=1e-9) and lin.lyapunov == pytest.approx(0.5 * math.log(0.5))
    # relu: D = 1/2 for every q, m = <step^4>/<step^2>^2 = 2: kappa = -1/2 - 3/4 = -5/4
    relu = dnn_lyapunov_correction("relu", 1.5, 0.1)
    assert relu.kappa == pytest.approx(-1.25, abs=1e-9)
    assert relu.terms["mean_shift"] == pytest.approx(0.0, abs=1e-9)


def test_tanh_terms_and_network_form():
    c = dnn_lyapunov_correction("tanh", 1.2, 0.05)
    assert c.kappa == pytest.approx(sum(c.terms.values()))
    assert c.terms["chi_square"] == -0.5 and c.terms["sampling"] < 0 and c.terms["alignment"] < 0
    net = netfield.dnn(10, "tanh", weight_var=1.2, bias_var=0.05)
    assert dnn_lyapunov_correction(net).kappa == pytest.approx(c.kappa, rel=1e-12)
    assert c.at([64])[0] == pytest.approx(c.lyapunov + c.kappa / 64)


@pytest.mark.parametrize("args, kwargs, exc, words", [
    ((netfield.rnn(5, "tanh", weight_var=1.2),), {}, ValueError, "needs a DNN"),
    (("sign", 1.0, 0.1), {}, ValueError, "chi_1 = inf"),
    (("relu", 2.5, 0.1), {}, ValueError, "finite, positive length fixed point"),
])
def test_correction_errors(args, kwargs, exc, words):
    with pytest.raises(exc, match=words):
        dnn_lyapunov_correction(*args, **kwargs)


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"widths": (32,)}, ValueError, "at least two widths"),
    ({"widths": (32, 64), "window": (0, 5)}, ValueError, "window must be"),
    ({"widths": (32, 64), "networks": 2}, ValueError, "networks must be an integer >= 4"),
])
def test_width_study_errors(kwargs, exc, words):
    with pytest.raises(exc, match=words):
        width_study(netfield.dnn(8, "tanh", weight_var=1.2, bias_var=0.05), **kwargs)
