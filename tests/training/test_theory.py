"""Infinite-width training dynamics from kernel blocks (netfield.training.theory, docs/training.md).

The kernels are synthetic: random positive semi-definite joint matrices on N training + M test points
(NNGP K and NTK Theta). The closed forms (T6)-(T9) are checked against explicit iteration of the linear
model, a direct evaluation with scipy's expm and Theta^-1, a Monte Carlo of the linear model from sampled
initial outputs f_0 ~ GP(0, K), and the GP posterior (K = Theta).
"""

from __future__ import annotations

import numpy as np
import pytest
import scipy.linalg

import netfield
from netfield.training import (
    TrainingPrediction,
    max_learning_rate,
    ntk_gp_posterior,
    ntk_spectrum,
    predict_from_kernels,
)

N, M = 6, 3


def _psd(rng, size, rank=None, scale=1.0):
    a = rng.normal(size=(size, rank or 2 * size))
    return scale * a @ a.T / a.shape[1]


@pytest.fixture
def kernels():
    """(joint NNGP K, joint NTK Theta, targets (N, 2)) on N + M points; Theta = 2 K + another PSD matrix
    (as for a deep network: the NTK adds the gradient kernels of the hidden layers to the NNGP)."""
    rng = np.random.default_rng(0)
    k = _psd(rng, N + M) + 0.1 * np.eye(N + M)
    th = 2 * k + _psd(rng, N + M)
    return k, th, rng.normal(size=(N, 2))


def _blocks(k, th):
    return {"nngp_train": k[:N, :N], "nngp_cross": k[N:, :N], "nngp_test": k[N:, N:], "ntk_train": th[:N, :N],
                "ntk_cross": th[N:, :N]}


def _predict(k, th, y, times, **kw):
    return predict_from_kernels(**_blocks(k, th), y_train=y, times=times, **kw)


def _iterate(k, th, y, eta, steps, f0=None):
    """Explicit gradient-descent iteration of the linear model on the joint points (T5):
    f(X) <- f(X) - (eta/N) Theta(X, X) (f(X) - Y), f(x*) <- f(x*) - (eta/N) Theta(x*, X) (f(X) - Y).
    f0: (..., N + M, K) initial outputs (default 0: the mean). Returns the outputs after ``steps`` steps."""
    f = np.zeros((N + M, y.shape[1])) if f0 is None else f0.copy()
    for _ in range(steps):
        resid = f[..., :N, :] - y
        f = f - (eta / N) * np.einsum("ij,...jk->...ik", th[:, :N], resid)
    return f


def _direct(k, th, y, eta, t, dynamics):
    """(T6) evaluated as written, with Theta^-1 and scipy's expm / matrix_power (an independent code path)."""
    theta, inv = th[:N, :N], np.linalg.inv(th[:N, :N])
    if dynamics == "flow":
        e = scipy.linalg.expm(-eta * t * theta / N)
    else:
        e = np.linalg.matrix_power(np.eye(N) - eta * theta / N, int(t))
    a = th[N:, :N] @ inv @ (np.eye(N) - e)
    cov = k[N:, N:] + a @ k[:N, :N] @ a.T - a @ k[:N, N:] - k[N:, :N] @ a.T
    return a @ y, cov, (np.eye(N) - e) @ y, e @ k[:N, :N] @ e.T


@pytest.mark.parametrize("dynamics", ["flow", "discrete"])
def test_time_zero_is_the_prior(kernels, dynamics):
    k, th, y = kernels
    p = _predict(k, th, y, [0], dynamics=dynamics)
    assert p.mean.shape == (1, M, 2) and p.cov.shape == (1, M, M)
    assert p.train_mean.shape == (1, N, 2) and p.train_cov.shape == (1, N, N)
    np.testing.assert_array_equal(p.mean[0], 0.0)
    np.testing.assert_array_equal(p.train_mean[0], 0.0)
    np.testing.assert_allclose(p.cov[0], k[N:, N:], rtol=0, atol=1e-14)
    np.testing.assert_allclose(p.train_cov[0], k[:N, :N], rtol=0, atol=1e-14)


@pytest.mark.parametrize("dynamics", ["flow", "discrete"])
def test_closed_form_equals_the_direct_formula(kernels, dynamics):
    k, th, y = kernels
    eta = 0.7 * max_learning_rate(th[:N, :N])
    times = [0, 1, 3, 20]
    p = _predict(k, th, y, times, learning_rate=eta, dynamics=dynamics)
    for i, t in enumerate(times):
        mean, cov, tmean, tcov = _direct(k, th, y, eta, t, dynamics)
        np.testing.assert_allclose(p.mean[i], mean, rtol=0, atol=1e-10)
        np.testing.assert_allclose(p.cov[i], cov, rtol=0, atol=1e-10)
        np.testing.assert_allclose(p.train_mean[i], tmean, rtol=0, atol=1e-10)
        np.testing.assert_allclose(p.train_cov[i], tcov, rtol=0, atol=1e-10)


def test_closed_form_mean_equals_iteration_of_the_linear_model(kernels):
    k, th, y = kernels
    eta = 0.9 * max_learning_rate(th[:N, :N])
    steps = [0, 1, 2, 7, 40]
    p = _predict(k, th, y, steps, learning_rate=eta, dynamics="discrete")
    for i, s in enumerate(steps):
        f = _iterate(k, th, y, eta, s)
        np.testing.assert_allclose(p.mean[i], f[N:], rtol=0, atol=1e-12)
        np.testing.assert_allclose(p.train_mean[i], f[:N], rtol=0, atol=1e-12)


def test_covariance_matches_a_monte_carlo_of_the_linear_model(kernels):
    """f_0 ~ GP(0, K) on the joint points, iterated as the linear model: the sample covariance lies within
    4 standard errors of (T6) / (T8) for every entry, at a few times."""
    k, th, y = kernels
    rng = np.random.default_rng(1)
    samples = 20000
    f0 = np.linalg.cholesky(k) @ rng.normal(size=(samples, N + M, 1))
    eta = 0.5 * max_learning_rate(th[:N, :N])
    y1 = y[:, :1]
    steps = [2, 10]
    p = _predict(k, th, y1, steps, learning_rate=eta, dynamics="discrete")
    for i, s in enumerate(steps):
        f = _iterate(k, th, y1, eta, s, f0)[..., 0]           # (samples, N + M)
        c = f - f.mean(axis=0)
        prods = c[:, :, None] * c[:, None, :]
        cov, se = prods.mean(axis=0), prods.std(axis=0, ddof=1) / np.sqrt(samples)
        theory = np.block([[p.train_cov[i], np.zeros((N, M))], [np.zeros((M, N)), p.cov[i]]])
        for block in (np.s_[:N, :N], np.s_[N:, N:]):
            z = np.abs(cov[block] - theory[block]) / se[block]
            assert z.max() < 4, (s, z.max())
        mean_se = f.std(axis=0, ddof=1) / np.sqrt(samples)
        z_mean = np.abs(f.mean(axis=0) - np.concatenate([p.train_mean[i, :, 0], p.mean[i, :, 0]])) / mean_se
        assert z_mean.max() < 4, (s, z_mean.max())


@pytest.mark.parametrize("dynamics", ["flow", "discrete"])
def test_long_times_approach_the_t_inf_formula(kernels, dynamics):
    k, th, y = kernels
    spec = ntk_spectrum(th[:N, :N])
    eta = max_learning_rate(spec) / 2
    slowest = eta * spec.eigenvalues[0] / N          # decay rate of the slowest mode per unit time / step
    late = float(np.ceil(80 / slowest))               # e^-80: below float64 resolution
    p = _predict(k, th, y, [late, np.inf], learning_rate=eta, dynamics=dynamics)
    for field in ("mean", "cov", "train_mean", "train_cov"):
        arr = getattr(p, field)
        np.testing.assert_allclose(arr[0], arr[1], rtol=0, atol=1e-10, err_msg=field)
    np.testing.assert_allclose(p.train_mean[1], y, rtol=0, atol=1e-10)   # the training data are fitted
    np.testing.assert_allclose(p.train_cov[1], 0.0, rtol=0, atol=1e-12)
    post = ntk_gp_posterior(th[:N, :N], th[N:, :N], y)
    np.testing.assert_allclose(p.mean[1], post.mean, rtol=0, atol=1e-10)  # t = inf mean = NTK-GP mean (T11)


def test_discrete_descent_with_small_steps_approaches_gradient_flow(kernels):
    """At fixed eta * t the discrete dynamics differ from the flow by O(eta) (docs/training.md (T10a))."""
    k, th, y = kernels
    eta_t = 3.0 * N / ntk_spectrum(th[:N, :N]).lambda_max
    flow = _predict(k, th, y, [eta_t], learning_rate=1.0, dynamics="flow")
    gaps = []
    for steps in (10, 20, 40, 80):
        disc = _predict(k, th, y, [steps], learning_rate=eta_t / steps, dynamics="discrete")
        gaps.append(max(np.abs(disc.mean - flow.mean).max(), np.abs(disc.cov - flow.cov).max()))
    ratios = np.array(gaps[:-1]) / np.array(gaps[1:])
    assert gaps[-1] < 0.02 * np.abs(flow.cov).max(), gaps
    np.testing.assert_allclose(ratios, 2.0, rtol=0.1)  # first order in eta: halving eta halves the gap


def test_gradient_flow_depends_on_eta_times_t_only(kernels):
    k, th, y = kernels
    a = _predict(k, th, y, [1.0, 4.0], learning_rate=0.2, dynamics="flow")
    b = _predict(k, th, y, [0.5, 2.0], learning_rate=0.4, dynamics="flow")
    np.testing.assert_allclose(a.mean, b.mean, rtol=0, atol=1e-13)
    np.testing.assert_allclose(a.cov, b.cov, rtol=0, atol=1e-13)


def test_ntk_equal_to_nngp_gives_the_gp_posterior_at_t_inf(kernels):
    k, _, y = kernels
    p = _predict(k, k, y, [np.inf])
    post = netfield.gp.posterior(k[:N, :N], y, k[N:, :N], noise=0.0, k_test=k[N:, N:])
    np.testing.assert_allclose(p.mean[0], post.mean, rtol=0, atol=1e-10)
    np.testing.assert_allclose(p.cov[0], post.cov, rtol=0, atol=1e-10)
    ntk_post = ntk_gp_posterior(k[:N, :N], k[N:, :N], y, k[N:, N:])
    np.testing.assert_allclose(ntk_post.cov, post.cov, rtol=0, atol=1e-10)   # (T12)


def test_max_learning_rate_is_the_stability_bound(kernels):
    """Explicit iteration diverges just above eta_max and converges just below (T10)."""
    k, th, y = kernels
    eta_max = max_learning_rate(th[:N, :N])
    assert eta_max == pytest.approx(2 * N / np.linalg.eigvalsh(th[:N, :N]).max(), rel=1e-12)
    assert max_learning_rate(th[:N, :N], 2 * N) == pytest.approx(2 * eta_max)
    steps = 3000
    below = _iterate(k, th, y, 0.99 * eta_max, steps)
    above = _iterate(k, th, y, 1.01 * eta_max, steps)
    assert np.abs(below[:N] - y).max() < 1e-6
    assert np.abs(above[:N] - y).max() > 1e6
    p = _predict(k, th, y, [steps], learning_rate=1.01 * eta_max, dynamics="discrete", allow_unstable=True)
    np.testing.assert_allclose(p.mean[0], above[N:], rtol=1e-8)     # the diverging closed form is the iteration
    with pytest.raises(ValueError, match=rf"learning_rate must be < eta_max = .*{eta_max:.6g}.*got"):
        _predict(k, th, y, [1], learning_rate=1.01 * eta_max, dynamics="discrete")
    with pytest.raises(ValueError, match=r"learning_rate must be < eta_max"):
        _predict(k, th, y, [1], learning_rate=eta_max, dynamics="discrete")
    with pytest.raises(ValueError, match=r"times must be finite when learning_rate .* >= eta_max"):
        _predict(k, th, y, [np.inf], learning_rate=1.01 * eta_max, dynamics="discrete", allow_unstable=True)
    with pytest.raises(ValueError, match=r"overflows float64 at t = 200000.0"):
        _predict(k, th, y, [1, 200000], learning_rate=1.5 * eta_max, dynamics="discrete", allow_unstable=True)
    flow = _predict(k, th, y, [np.inf], learning_rate=3 * eta_max, dynamics="flow")   # flow: stable at any eta
    assert flow.max_learning_rate == pytest.approx(eta_max)


def test_default_learning_rate_is_half_the_maximum(kernels):
    k, th, y = kernels
    p = _predict(k, th, y, [1], dynamics="discrete")
    assert p.learning_rate == pytest.approx(p.max_learning_rate / 2, rel=1e-14)


def test_small_eigenvalues_lose_no_digits():
    """(1 - e^{-lambda t}) / lambda at lambda t ~ 1e-12: the early-time mean is (eta t / N) Theta(x*, X) Y
    to first order (T7), to full relative precision, with no Theta^-1."""
    rng = np.random.default_rng(3)
    th = _psd(rng, N + M) + 1e-3 * np.eye(N + M)
    y = rng.normal(size=N)
    for dynamics, t in (("flow", 1e-9), ("discrete", 1)):
        eta = 1e-9 if dynamics == "discrete" else 1.0
        p = _predict(th, th, y, [t], learning_rate=eta, dynamics=dynamics)
        first_order = eta * t / N * th[N:, :N] @ y
        np.testing.assert_allclose(p.mean[0, :, 0], first_order, rtol=1e-7)


def test_singular_ntk_uses_the_pseudo_inverse_at_t_inf():
    """A rank-deficient joint Theta: its null directions do not train; t = inf equals the late-time limit."""
    rng = np.random.default_rng(4)
    k = _psd(rng, N + M) + 0.1 * np.eye(N + M)
    th = _psd(rng, N + M, rank=4)   # rank 4 < N: two null modes on the training points
    y = rng.normal(size=N)
    spec = ntk_spectrum(th[:N, :N])
    assert spec.null_modes == 2 and spec.condition > 1e12
    eta = max_learning_rate(spec) / 2
    slowest = eta * spec.eigenvalues[spec.kept].min() / N
    p = _predict(k, th, y, [np.ceil(80 / slowest), np.inf], learning_rate=eta, dynamics="discrete")
    assert p.null_modes == 2 and np.isfinite(p.cov).all()
    np.testing.assert_allclose(p.mean[0], p.mean[1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(p.cov[0], p.cov[1], rtol=0, atol=1e-9)
    np.testing.assert_allclose(p.mean[1, :, 0], th[N:, :N] @ np.linalg.pinv(th[:N, :N], rcond=1e-12) @ y,
                               rtol=0, atol=1e-9)


def test_targets_with_several_outputs_are_independent_columns(kernels):
    k, th, y = kernels
    both = _predict(k, th, y, [2.0, np.inf])
    for col in range(2):
        one = _predict(k, th, y[:, col], [2.0, np.inf])
        assert one.targets_1d and not both.targets_1d
        np.testing.assert_allclose(both.mean[..., col], one.mean[..., 0], rtol=0, atol=1e-14)
        np.testing.assert_array_equal(both.cov, one.cov)


def test_at_std_and_storage(kernels, tmp_path):
    k, th, y = kernels
    p = _predict(k, th, y, [0, 5, np.inf])
    at = p.at(5)
    np.testing.assert_array_equal(at.mean, p.mean[1])
    np.testing.assert_array_equal(at.train_cov, p.train_cov[1])
    np.testing.assert_allclose(p.std()[0], np.sqrt(np.diag(k[N:, N:])), rtol=1e-14)
    np.testing.assert_allclose(at.std(), p.std()[1], rtol=1e-14)
    assert p.std(train=True).shape == (3, N) and np.abs(p.std(train=True)[2]).max() < 1e-6
    with pytest.raises(ValueError, match=r"t must be one of the computed times \[0.0, 5.0, inf\], got 4"):
        p.at(4)
    path = p.save(tmp_path / "pred")
    for back in (TrainingPrediction.load(path), netfield.load(path)):
        assert isinstance(back, TrainingPrediction)
        for field in ("times", "mean", "cov", "train_mean", "train_cov"):
            np.testing.assert_array_equal(getattr(back, field), getattr(p, field))
        assert (back.learning_rate, back.dynamics, back.null_modes) == (p.learning_rate, p.dynamics, p.null_modes)


@pytest.mark.parametrize("kwargs, error, message", [
    ({"times": [-1.0]}, ValueError, r"times must be >= 0 \(inf allowed\), got -1.0 at index 0"),
    ({"times": [0, np.nan]}, ValueError, r"times must be >= 0 \(inf allowed\), got nan at index 1"),
    ({"times": [[1, 2]]}, ValueError, r"times must be a number or a non-empty 1-D sequence"),
    ({"times": [1.5], "dynamics": "discrete"}, ValueError,
     r"times must be whole numbers of steps \(or inf\) for dynamics='discrete', got 1.5"),
    ({"times": [1], "dynamics": "euler"}, ValueError, r"dynamics must be one of 'flow', 'discrete', got 'euler'"),
    ({"times": [1], "learning_rate": 0.0}, ValueError, r"learning_rate must be a finite number > 0, got 0.0"),
    ({"times": [1], "learning_rate": "fast"}, TypeError, r"learning_rate must be a number > 0 or None"),
    ({"times": [1], "y_train": np.zeros(N + 1)}, ValueError,
     rf"y_train must have shape \({N},\) or \({N}, K\) with K >= 1 \(one row per training point\), got shape \({N + 1},\)"),
    ({"times": [1], "y_train": np.zeros((N, 2, 1))}, ValueError, r"y_train must have shape .* got shape \(6, 2, 1\)"),
    ({"times": [1], "rcond": 2.0}, ValueError, r"rcond must be a number in \[0, 1\), got 2.0"),
])
def test_bad_arguments_name_argument_value_and_what_is_accepted(kernels, kwargs, error, message):
    k, th, y = kernels
    kw = {"y_train": y[:, 0], **kwargs}
    with pytest.raises(error, match=message):
        predict_from_kernels(**_blocks(k, th), **kw)


def test_bad_kernel_blocks_are_named(kernels):
    k, th, y = kernels
    blocks = _blocks(k, th)
    indefinite = th[:N, :N] - (np.linalg.eigvalsh(th[:N, :N])[0] + 0.5) * np.eye(N)
    cases = [
        ({"ntk_train": indefinite}, r"ntk_train must be positive semi-definite, got eigenvalue -"),
        ({"ntk_train": np.zeros((N, N))}, r"ntk_train must have a positive eigenvalue"),
        ({"ntk_train": th[:N, :N] + np.triu(np.ones((N, N)), 1)}, r"ntk_train must be symmetric"),
        ({"nngp_train": k[:N - 1, :N - 1]}, rf"nngp_train must have shape \({N}, {N}\)"),
        ({"ntk_cross": th[N:, :N].T}, rf"ntk_cross must have shape \({M}, {N}\)"),
        ({"nngp_cross": k[:N, N:]}, rf"nngp_cross must have shape \(M, {N}\)"),
        ({"nngp_test": k[:2, :2]}, rf"nngp_test must have shape \({M}, {M}\)"),
        ({"ntk_cross": np.full((M, N), np.inf)}, r"ntk_cross must contain only finite numbers, got inf at index"),
    ]
    for change, message in cases:
        with pytest.raises(ValueError, match=message):
            predict_from_kernels(**{**blocks, **change}, y_train=y, times=[1])
