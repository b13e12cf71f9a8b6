"""Evidence maximisation (L-BFGS-B on log-parameters, gradients through the kernel) and depth selection."""

import numpy as np
import pytest

import netfield as nf
from netfield import gp

RNG = np.random.default_rng(8)
X = RNG.normal(size=(15, 4))
Y = np.stack([np.sin(X[:, 0]), np.cos(X[:, 1])], axis=1)


def test_readout_var_optimum_is_the_analytic_one():
    """With noise = 0 and readout_bias_var = 0, K = s K0 and the evidence is maximal at
    s* = sum_c y_c^T K0^-1 y_c / (N k) (differentiate GPML eq. 2.30 in s)."""
    net = nf.dnn(2, "erf", weight_var=1.5, bias_var=0.1, readout_var=1.0)
    k0 = np.asarray(nf.kernel(net, X))
    exact = float(np.sum(Y * np.linalg.solve(k0, Y))) / Y.size
    fit = gp.maximize_evidence(net, X, Y, noise=0.0, params=("readout_var",))
    assert fit.network.readout_var == pytest.approx(exact, rel=1e-5)
    assert fit.converged and fit.log_evidence >= fit.initial_log_evidence
    assert abs(fit.gradient["readout_var"]) < 1e-4


def test_joint_maximisation_reaches_a_stationary_point():
    net = nf.rnn(3, "erf", weight_var=1.0, bias_var=0.0, readout_var=1.0)
    fit = gp.maximize_evidence(net, X, Y, noise=0.1)  # default params: the positive variances and noise
    assert fit.params == ("weight_var", "input_var", "readout_var", "noise")  # bias_var = 0 stays 0
    assert fit.network.bias_var == 0.0
    assert fit.network.name == "rnn" and fit.network.steps == 3
    assert fit.log_evidence > fit.initial_log_evidence + 1.0
    for p, g in fit.gradient.items():
        if p not in fit.at_bound:
            assert abs(g) < 1e-3, (p, g)
    again = float(gp.log_evidence(fit.network, X, Y, noise=fit.noise))
    assert again == pytest.approx(fit.log_evidence, rel=1e-10)


def test_depth_selection_recovers_the_generating_depth():
    """Targets drawn from the GP prior of a depth-3 network: the evidence prefers depth 3."""
    x = np.random.default_rng(1).normal(size=(60, 3))
    truth = nf.dnn(3, "erf", weight_var=4.0, bias_var=0.1)
    k = np.asarray(nf.kernel(truth, x)) + 1e-4 * np.eye(60)
    y = np.linalg.cholesky(k) @ np.random.default_rng(2).normal(size=(60, 4))
    sel = gp.select_depth(nf.dnn(1, "erf", weight_var=4.0, bias_var=0.1), x, y, noise=1e-4, depths=[1, 2, 3, 4, 6])
    assert sel.best_depth == 3 and sel.network.depth == 3
    assert sel.log_evidence.shape == (5,)
    # with weight_var optimised per depth, each depth is compared at its own best prior
    opt = gp.select_depth(truth, x[:20], y[:20], noise=1e-3, depths=[1, 2], optimize=True, params=("weight_var",))
    assert [f.network.depth for f in opt.fits] == [1, 2]
    assert all(f.log_evidence >= f.initial_log_evidence for f in opt.fits)
    np.testing.assert_allclose(opt.log_evidence, [f.log_evidence for f in opt.fits])
    assert opt.best_depth == opt.depths[np.argmax(opt.log_evidence)]


def test_laplace_evidence_maximisation():
    labels, _ = gp.class_indicators(X[:, 0] + X[:, 1] > 0)
    fit = gp.maximize_laplace_evidence(nf.dnn(2, "erf", weight_var=1.5), X, labels, params=("readout_var",))
    assert fit.noise is None
    assert fit.log_evidence >= fit.initial_log_evidence
    mode = gp.laplace_mode_numpy(np.asarray(nf.kernel(fit.network, X)), labels)
    assert mode.log_marginal_likelihood == pytest.approx(fit.log_evidence, rel=1e-8)
    if "readout_var" not in fit.at_bound:
        assert abs(fit.gradient["readout_var"]) < 1e-3


@pytest.mark.parametrize("call, match", [
    (lambda: gp.maximize_evidence(nf.dnn(2), X, Y, noise=0.1, params=("bias_var",)),
     "bias_var = 0.0 cannot be optimised on a log scale"),
    (lambda: gp.maximize_evidence(nf.dnn(2), X, Y, noise=0.1, params=("depth",)), "params must be distinct names"),
    (lambda: gp.maximize_evidence(nf.dnn(2), X, Y, noise=0.1, params=("noise",), bounds={"noise": (1.0, 2.0)}),
     r"noise = 0.1 is outside its bounds \(1.0, 2.0\)"),
    (lambda: gp.maximize_evidence(nf.dnn(2), X, Y, noise=0.1, bounds={"noise": (0.0, 2.0)}), "0 < low < high"),
    (lambda: gp.maximize_evidence(nf.dnn(2), X, Y, noise=0.1, bounds={"depth": (1, 2)}), "bounds accepts keys"),
    (lambda: gp.maximize_evidence(nf.dnn(2), X, Y[:3], noise=0.1), "one row per training pattern"),
    (lambda: gp.maximize_evidence(nf.dnn(2), X, Y, noise=0.1, max_iter=0), "max_iter must be an integer >= 1"),
    (lambda: gp.select_depth(nf.dnn(2), X, Y, noise=0.1, depths=[]), "depths must be a non-empty"),
    (lambda: gp.select_depth(nf.dnn(2), X, Y, noise=0.1, depths=[1, 0]), r"depths\[1\] must be an integer >= 1"),
    (lambda: gp.maximize_laplace_evidence(nf.dnn(2), X, gp.class_indicators(X[:, 0] > 0)[0], params=("noise",)),
     "params must be distinct names"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()
