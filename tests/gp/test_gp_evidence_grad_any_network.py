"""GP evidence gradients of any network by autodiff through the program (issue 17).

jax.grad of the log-evidence with respect to weight_var for a GRU (quasi-Monte-Carlo moments of its
gated states) and a transformer (attention, layer norm) equals a central finite difference of the
concrete evidence to 1e-6 relative. The finite difference is Richardson-extrapolated (steps h, h/2),
so its own truncation error is O(h^4) ~ 1e-12; the quasi-Monte-Carlo points are fixed, and the
symmetric square root that maps them (docs/theory.md 7, gauss/differentiable.py D2) makes the
estimate a smooth function of the variances, so a wrong derivative rule cannot pass.
"""

import numpy as np
import pytest

import netfield as nf
from netfield import gp

RNG = np.random.default_rng(3)
SEQ = RNG.normal(size=(4, 3, 2))
Y = np.array([0.4, -0.2, 0.9, -0.6])

NETS = {
    "gru": nf.gru(3, weight_var=1.2, bias_var=0.5),
    "lstm": nf.lstm(3, weight_var=1.2, bias_var=0.5),
    "transformer": nf.transformer(1, "relu", weight_var=1.3, bias_var=0.1, tie_query_key=True),
}


def _evidence(net, w):
    return gp.fit_network(net.replace(weight_var=w), SEQ, Y, noise=0.05).log_marginal_likelihood


@pytest.mark.parametrize("name", sorted(NETS))
def test_evidence_gradient_equals_finite_difference(name):
    net = NETS[name]
    value, grads = gp.evidence_and_grad(net, SEQ, Y, noise=0.05, wrt=("weight_var", "bias_var", "noise"))
    w = float(net.weight_var)
    assert value == pytest.approx(_evidence(net, w), rel=1e-10)
    h = 1e-3 * w
    d1 = (_evidence(net, w + h) - _evidence(net, w - h)) / (2 * h)
    d2 = (_evidence(net, w + h / 2) - _evidence(net, w - h / 2)) / h
    fd = (4 * d2 - d1) / 3
    assert abs(grads["weight_var"] - fd) <= 1e-6 * abs(fd)
    assert abs(fd) > 1e-3  # the evidence does depend on weight_var here: the check has power
    assert all(np.isfinite(v) for v in grads.values())
