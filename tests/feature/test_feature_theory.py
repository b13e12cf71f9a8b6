"""The muP saddle-point theory (netfield.feature.theory, docs/feature.md F1-F10)."""

from __future__ import annotations

import numpy as np
import pytest

import netfield as nf
from netfield.feature import (
    NonConvergenceError,
    build_problem,
    cross_time_eigenvalue,
    posterior_kernels,
    solve,
    transition,
)

RNG = np.random.default_rng(0)
X2 = RNG.normal(size=(2, 3))
Y2 = np.array([1.0, -1.0])


@pytest.mark.parametrize("arch", ["rnn", "dnn"])
def test_lazy_limit_equals_gaussian_process(arch):
    """signal -> 0: posterior kernels = the mean-field (NNGP) kernels of every time pair, and the
    predictor = GP regression with the readout kernel and noise kappa (F8)."""
    x, xt, y = RNG.normal(size=(3, 2)), RNG.normal(size=(2, 2)), np.array([1.0, -1.0, 0.5])
    net = getattr(nf, arch)(3, "erf", weight_var=1.5, bias_var=0.2)
    r = posterior_kernels(net, x, y, kappa=0.5, signal=1e-8, x_test=xt, points=2**11)
    xa = np.concatenate([x, xt])
    mf = nf.mean_field(net, xa)
    for t in range(1, 4):
        for s in range(1, 4):
            np.testing.assert_allclose(r.kernel[t - 1, s - 1], np.asarray(mf.preactivation(t, s)), atol=1e-7)
    K = np.asarray(nf.kernel(net, xa))
    gp_mean = K[3:, :3] @ np.linalg.solve(K[:3, :3] + 0.5 * np.eye(3), y)
    np.testing.assert_allclose(r.prediction[-1], gp_mean, atol=1e-7)


def test_deep_linear_network_matches_the_known_one_over_n_posterior_kernel():
    """docs/theory.md 4.3 (standard scaling, targets y_std): K_post^(l) = K + (l / n) K Phi K with
    Phi = Gamma^-1 (y y^T - K - I/beta) Gamma^-1, Gamma = K + I/beta. In muP units the same model has
    targets y_std / sqrt(n), kappa = 1/beta and the O(1/n) log-determinant (width=n): the saddle point
    must reproduce the shift with an O(1/n) relative residual."""
    P, d, L, beta = 3, 4, 3, 2.0
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(P, d)), rng.normal(size=P)
    net = nf.dnn(L, "linear")
    K = X @ X.T / d
    gam = K + np.eye(P) / beta
    phi = np.linalg.solve(gam, np.linalg.solve(gam, np.outer(y, y) - gam).T).T
    residual = {}
    for n in (1000, 10000):
        r = solve(build_problem(net, X, y / np.sqrt(n), kappa=1 / beta, width=n), spectrum=False)
        residual[n] = max(np.abs(n * (r.kernel[t - 1, t - 1] - K) - t * K @ phi @ K).max() for t in range(1, L + 1))
    scale = np.abs(L * K @ phi @ K).max()
    assert residual[10000] < 1e-3 * scale
    assert residual[10000] < 0.2 * residual[1000]  # the residual is O(1/n): the shift itself is exact


@pytest.mark.parametrize("signal", [0.1, 1.0])
def test_symmetric_rnn_solution_equals_the_dnn(signal):
    """Odd phi, no bias, input at step 1: C(t, s) = 0 (t != s) solves the RNN saddle point and then the
    RNN's kernels are the DNN's (below and above the transition)."""
    kw = {"kappa": 0.1, "signal": signal, "points": 2**11}
    rnn = posterior_kernels(nf.rnn(3, "erf", weight_var=1.5), X2, Y2, **kw)
    dnn = posterior_kernels(nf.dnn(3, "erf", weight_var=1.5), X2, Y2, **kw)
    for t in range(3):
        np.testing.assert_allclose(rnn.kernel[t, t], dnn.kernel[t, t], atol=1e-10)
        for s in range(3):
            if s != t:
                assert np.abs(rnn.base[t, s]).max() < 1e-10  # zero up to the rounding of the iteration
    assert not np.allclose(rnn.kernel[2, 2], rnn.gp_kernel[2, 2], atol=1e-2)  # the kernels did move


def test_cross_time_instability_appears_with_the_signal_for_the_rnn_only():
    lam_weak, _ = cross_time_eigenvalue(nf.rnn(3, "erf", weight_var=1.5), X2, Y2, kappa=0.1, signal=0.1, points=2**11)
    lam_strong, _ = cross_time_eigenvalue(nf.rnn(3, "erf", weight_var=1.5), X2, Y2, kappa=0.1, signal=1.0,
                                          points=2**11)
    assert lam_weak < 0.6
    assert lam_strong > 1.0
    scan = transition(nf.dnn(3, "erf", weight_var=1.5), X2, Y2, kappa=0.1, signals=(0.1, 1.0))
    assert scan.critical_signal is None and scan.eigenvalue == (0.0, 0.0)


def test_kernel_aligns_with_the_targets_as_the_signal_grows():
    yy = np.outer(Y2, Y2)

    def alignment(k):
        return float(np.sum(k * yy) / np.linalg.norm(k) / np.linalg.norm(yy))

    values = [alignment(posterior_kernels(nf.dnn(3, "erf", weight_var=1.5), X2, Y2, kappa=0.1, signal=s,
                                          points=2**11).kernel[2, 2]) for s in (1e-6, 0.1, 0.5)]
    assert values[0] < values[1] < values[2]


@pytest.mark.parametrize("kw, message", [
    ({"kappa": 0.0}, r"kappa must be a finite number > 0, got 0.0"),
    ({"kappa": -1.0}, r"kappa must be a finite number > 0, got -1.0"),
    ({"kappa": 0.1, "signal": 0.0}, r"signal must be a finite number > 0, got 0.0"),
    ({"kappa": 0.1, "supervised_steps": (4,)}, r"supervised_steps must be distinct integers in 1\.\.3, got \(4,\)"),
])
def test_bad_arguments(kw, message):
    with pytest.raises(ValueError, match=message):
        posterior_kernels(nf.rnn(3, "erf"), X2, Y2, **kw)


def test_targets_of_the_wrong_shape():
    with pytest.raises(ValueError, match=r"y must have shape \(len\(supervised_steps\), P\) = \(2, 2\).*got \(2,\)"):
        posterior_kernels(nf.rnn(3, "erf"), X2, Y2, kappa=0.1, supervised_steps=(2, 3))


def test_non_convergence_is_an_error_or_an_explicit_flag():
    prob = build_problem(nf.rnn(3, "erf", weight_var=1.5), X2, Y2, kappa=0.1, signal=0.5, points=2**11)
    with pytest.raises(NonConvergenceError, match=r"did not converge in 1 iterations"):
        solve(prob, max_iter=1, spectrum=False)
    r = solve(prob, max_iter=1, spectrum=False, raise_on_failure=False)
    assert r.converged is False and r.residual > 1e-10


def test_target_rows_follow_the_given_supervised_steps():
    y = np.array([[1.0, -1.0], [0.5, 0.2]])
    kw = {"kappa": 0.1, "signal": 0.2, "points": 2**11}
    a = posterior_kernels(nf.rnn(3, "erf", weight_var=1.5), X2, y, supervised_steps=(1, 3), **kw)
    b = posterior_kernels(nf.rnn(3, "erf", weight_var=1.5), X2, y[::-1], supervised_steps=(3, 1), **kw)
    np.testing.assert_allclose(a.kernel, b.kernel, atol=1e-12)
