"""Simulation-based 1/n estimator (netfield.nlo.simulate): exact deep-linear checks, fits, ordering, resume."""

import json

import jax
import numpy as np
import pytest

import netfield
from netfield.experiments import ChunkStore
from netfield.finite.sampler import _sample_parameters
from netfield.nlo.observables import observables
from netfield.nlo.simulate import SimulatedNLO, simulate
from netfield.program.shape import CHAIN_HYPER, chain_of

# one small RNN structure shared by the ordering / resume / validation tests (one compilation per width)
RNN = netfield.rnn(3, "tanh", weight_var=1.5, bias_var=0.3, input_var=1.2, readout_var=0.7, readout_bias_var=0.2)
X_SEQ = np.random.default_rng(0).normal(size=(2, 3, 2))
SMALL = {"widths": (3, 4), "networks": 4, "order": 0, "chunk_size": 2}


# ------------------------------------------------------------------------------------ deep linear DNN

@pytest.fixture(scope="module")
def deep_linear():
    """Deep linear DNN, no bias: S_l = (1/n) sum_j h_l,j^2 = K_l prod_{k<=l} chi2_n / n exactly, so
    E[S_l] = K_l and Cov(S_l, S_m) = K_l K_m [(1 + 2/n)^min(l, m) - 1] (docs/theory.md 4.2)."""
    net = netfield.dnn(4, "linear", weight_var=1.3, bias_var=0.0, input_var=0.8, readout_var=2.0,
                       readout_bias_var=0.0)
    x = np.array([[1.0, -0.5, 0.3]])
    return simulate(net, x, widths=(16, 32, 64), networks=4000, seed=3)


def _layers(res):
    """Hidden layer l whose activations enter each entry: t - 1 for hidden step t, T for the readout."""
    obs = res.observables
    return np.where(obs.hidden, obs.t - 1, obs.steps)


def test_deep_linear_mean_is_exact(deep_linear):
    res = deep_linear
    assert res.observables.labels() == ["K(2,2|0,0)", "K(3,3|0,0)", "K(4,4|0,0)", "out(0,0)"]
    # mean field: K_1 = input_var |x|^2 / d, K_t = weight_var^(t-1) K_1, readout = readout_var K_T
    k1 = 0.8 * (1 + 0.25 + 0.09) / 3
    np.testing.assert_allclose(res.mft, [1.3 * k1, 1.3**2 * k1, 1.3**3 * k1, 2.0 * 1.3**3 * k1], rtol=1e-12)
    assert np.all(np.abs(res.mean - res.mft) < 4 * res.mean_se)  # E = K exactly at every width
    assert np.all(np.abs(res.shift) < 4 * res.shift_se)
    assert np.all(np.abs(res.free_limit_pull) < 4)


def test_deep_linear_fluctuations(deep_linear):
    res = deep_linear
    K, lay = res.mft, _layers(res)
    lmin = np.minimum.outer(lay, lay)
    n = np.asarray(res.widths, float)
    exact = n[:, None, None] * np.outer(K, K) * ((1 + 2 / n[:, None, None]) ** lmin - 1)  # n Cov_n, exact
    assert np.all(np.abs(n[:, None, None] * res.cov - exact) < 4 * n[:, None, None] * res.cov_se)
    limit = 2 * lmin * np.outer(K, K)  # n Cov -> 2 min(l, m) K_l K_m; diagonal: 2 (t-1) K_t^2, 2 T K_out^2
    assert np.all(np.abs(res.cov_limit - limit) < 4 * res.cov_limit_se)
    np.testing.assert_allclose(res.variance_limit, np.diagonal(res.cov_limit))
    assert np.all(res.variance_limit_se < 0.1 * np.diagonal(limit))  # the test has teeth
    value, se = res.n_variance(res.entry("readout", 4, 4))
    np.testing.assert_array_equal(value, n * res.cov[:, 3, 3])
    np.testing.assert_array_equal(se, n * res.cov_se[:, 3, 3])


# ------------------------------------------------------------------------------------------- fitting

def _wls(n, y, se, powers):
    """Reference weighted least squares with the Birge ratio (scalar, plain numpy)."""
    X = np.asarray(n, float)[:, None] ** -np.asarray(powers, float)[None, :]
    w = 1 / np.asarray(se) ** 2
    cov = np.linalg.inv(X.T @ (w[:, None] * X))
    beta = cov @ (X.T @ (w * y))
    chi2 = float(np.sum(w * (y - X @ beta) ** 2))
    dof = len(n) - len(powers)
    return beta, np.sqrt(np.diag(cov)) * np.sqrt(max(1.0, chi2 / dof)), chi2


def _synthetic(noise=None, order=1):
    obs = observables(netfield.dnn(3, "erf", weight_var=1.7, bias_var=0.1), np.eye(2))
    M = len(obs)
    rng = np.random.default_rng(1)
    widths = np.array([10, 20, 40, 80])
    mft, a, b = rng.normal(size=(3, M))
    sig = rng.normal(size=(M, M))
    sig = sig @ sig.T
    c = rng.normal(size=(M, M))
    c = c + c.T
    n = widths[:, None].astype(float)
    mean = mft + a / n + b / n**2
    mean_se = 0.01 * (1 + rng.random((4, M))) / n
    cov = (sig + c / n[..., None]) / n[..., None]
    cov_se = 0.02 * (1 + rng.random((4, M, M))) / n[..., None]
    cov_se = (cov_se + np.swapaxes(cov_se, 1, 2)) / 2
    if noise is not None:
        mean = mean + noise * mean_se
        cov = cov + noise[..., None] * cov_se
    res = SimulatedNLO.from_moments(obs, widths, 100, mft, mean, mean_se, cov, cov_se, order=order)
    return res, {"widths": widths, "mft": mft, "a": a, "b": b, "sig": sig, "c": c, "mean": mean,
                 "mean_se": mean_se, "cov": cov, "cov_se": cov_se}


def test_fits_recover_known_coefficients():
    res, t = _synthetic()
    np.testing.assert_allclose(res.shift, t["a"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.shift_coef[:, 1], t["b"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(res.cov_limit, t["sig"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.cov_coef[..., 1], t["c"], rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(res.free_limit, t["mft"], rtol=1e-9, atol=1e-9)
    np.testing.assert_allclose(res.free_shift, t["a"], rtol=1e-7, atol=1e-7)
    assert np.all(res.shift_chi2 < 1e-12) and res.dof == 2 and res.free_dof == 1
    # exact data: chi2 ~ 0 < dof, so the errors are the bare (X^T W X)^{-1} ones (never shrunk)
    n = t["widths"]
    for i in (0, len(res.observables) - 1):
        _, se, _ = _wls(n, n * (t["mean"][:, i] - t["mft"][i]), n * t["mean_se"][:, i], [0, 1])
        np.testing.assert_allclose(res.shift_coef_se[i], se, rtol=1e-10)
        _, se, _ = _wls(n, n * t["cov"][:, i, 0], n * t["cov_se"][:, i, 0], [0, 1])
        np.testing.assert_allclose(res.cov_coef_se[i, 0], se, rtol=1e-10)


def test_birge_ratio_only_when_chi2_exceeds_dof():
    M = len(_synthetic()[0].observables)
    noise = np.zeros((4, M))
    noise[:, 0] = [3.0, -3.0, 3.0, -3.0]  # entry 0: chi2/dof >> 1
    noise[:, 1] = [0.1, -0.1, 0.1, -0.1]  # entry 1: chi2/dof < 1
    res, t = _synthetic(noise)
    n = t["widths"]
    for i, inflated in ((0, True), (1, False)):
        y, s = n * (t["mean"][:, i] - t["mft"][i]), n * t["mean_se"][:, i]
        beta, se, chi2 = _wls(n, y, s, [0, 1])
        assert (chi2 / 2 > 1) == inflated
        np.testing.assert_allclose(res.shift_coef[i], beta, rtol=1e-9)
        np.testing.assert_allclose(res.shift_coef_se[i], se, rtol=1e-9)
        np.testing.assert_allclose(res.shift_chi2[i], chi2, rtol=1e-9)
        bare = _wls(n, y, s * 1e3, [0, 1])[1] / 1e3  # chi2 scaled below dof: no inflation
        assert bool(np.all(res.shift_coef_se[i] > bare * (1 + 1e-9))) == inflated


def test_order_zero_is_weighted_mean_and_order_two_fits_quadratic():
    res, t = _synthetic(order=0)
    n = t["widths"]
    y, s = n * (t["mean"][:, 2] - t["mft"][2]), n * t["mean_se"][:, 2]
    w = 1 / s**2
    np.testing.assert_allclose(res.shift[2], np.sum(w * y) / np.sum(w), rtol=1e-12)
    M = len(res.observables)
    assert res.shift_coef.shape == (M, 1) and res.dof == 3
    res2, t = _synthetic(order=2)
    np.testing.assert_allclose(res2.shift, t["a"], atol=1e-8)
    np.testing.assert_allclose(res2.shift_coef[:, 2], 0, atol=1e-5)
    assert res2.cov_coef.shape == (M, M, 3) and res2.dof == 1


# ------------------------------------------------------------------------------- ordering and MFT

def _forward_values(net, x, width, seed, index, obs):
    """Observables of network ``index`` of a run, by a plain numpy forward pass of the RNN."""
    key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
    chain = chain_of(net, x)
    hyper = tuple(chain.hyper(k) for k in CHAIN_HYPER)
    p = {k: np.asarray(v) for k, v in _sample_parameters(chain.shared, chain.steps, x.shape[1], key, width,
                                                        x.shape[2], np.float64, hyper).items()}
    P, T, _ = x.shape
    phi = np.zeros((P * T, width))
    for a in range(P):
        h = p["U"] @ x[a, 0] + p["b"]
        for t in range(1, T + 1):
            if t > 1:
                h = p["W"] @ phi[a * T + t - 2] + p["U"] @ x[a, t - 1] + p["b"]
            phi[a * T + t - 1] = np.tanh(h)  # node a * T + (t - 1)
    return obs.values(phi @ phi.T / width)


def test_sampled_values_match_a_numpy_forward_pass():
    res = simulate(RNN, X_SEQ, seed=5, **SMALL)
    obs = res.observables
    sampled = RNN.replace(readout_var=1.0, readout_bias_var=0.0)
    for k, width in enumerate(res.widths):
        vals = np.stack([_forward_values(sampled, X_SEQ, width, res.seeds[k], i, obs) for i in range(4)])
        np.testing.assert_allclose(res.mean[k], vals.mean(0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.cov[k], np.cov(vals.T, ddof=1), rtol=1e-8, atol=1e-12)
        d = vals - vals.mean(0)
        z = d[:, :, None] * d[:, None, :]
        np.testing.assert_allclose(res.cov_se[k], z.std(0, ddof=1) / 2, rtol=1e-8, atol=1e-12)
    i = res.entry("readout", 3, 3, 1, 0)
    assert obs.labels()[i] == "out(0,1)"
    # mean field: readout scale / const from the net, hidden entries weight_var <phi phi> + c
    k_all = np.asarray(netfield.kernel(sampled, X_SEQ, readout="all"))
    assert res.mft[i] == pytest.approx(0.2 + 0.7 * k_all[2, 5], rel=1e-12)
    j = res.entry("hidden", 3, 2, 1, 0)  # K(2,3|0,1) by symmetry
    x0, x1 = X_SEQ[0, 1], X_SEQ[1, 2]
    assert res.mft[j] == pytest.approx(0.3 + 1.2 * x0 @ x1 / 2 + 1.5 * k_all[0, 4], rel=1e-12)
    json.dumps(res.to_dict())


def test_large_width_means_agree_with_mean_field():
    x = np.random.default_rng(2).normal(size=(2, 3))
    net = netfield.rnn(3, "tanh", weight_var=1.5, bias_var=0.3)
    res = simulate(net, x, widths=(256, 1024), networks=100, seed=1, order=0)
    assert np.all(np.abs(res.mean[-1] - res.mft) < 4 * res.mean_se[-1])
    assert np.all(np.abs(res.free_limit_pull) < 4)


# --------------------------------------------------------------------------------- resume, inputs

class _Interrupt:
    def __init__(self, after):
        self.after, self.seen = after, 0

    def __call__(self, k=1):
        self.seen += k
        if self.seen >= self.after:
            raise KeyboardInterrupt


def test_resume_gives_identical_numbers(tmp_path):
    full = simulate(RNN, X_SEQ, seed=7, **SMALL)
    store = ChunkStore(tmp_path / "ck")
    with pytest.raises(KeyboardInterrupt):
        simulate(RNN, X_SEQ, seed=7, store=store, progress=_Interrupt(after=7), **SMALL)  # in width 4's 2nd chunk
    assert len(list((tmp_path / "ck").glob("*.npz"))) == 3
    seen = []
    resumed = simulate(RNN, X_SEQ, seed=7, store=store, resume=True, progress=seen.append, **SMALL)
    assert sum(seen) == 8
    for name in ("mean", "mean_se", "cov", "cov_se", "shift", "shift_se", "cov_limit", "cov_limit_se", "free_limit"):
        np.testing.assert_array_equal(getattr(full, name), getattr(resumed, name))
    assert len(list((tmp_path / "ck").glob("*.npz"))) == 4
    # the readout prior enters the stored values: another readout_var must not reuse those chunks
    scaled = simulate(RNN.replace(readout_var=1.4), X_SEQ, seed=7, store=store, resume=True, **SMALL)
    assert len(list((tmp_path / "ck").glob("*.npz"))) == 8
    out = scaled.observables.kind == "readout"
    np.testing.assert_allclose(scaled.mean[:, out] - 0.2, 2 * (full.mean[:, out] - 0.2), rtol=1e-12)
    other = simulate(RNN, X_SEQ, seed=8, **SMALL)  # widths and seeds give independent samples
    assert not np.allclose(other.mean, full.mean)
    assert full.seeds[0] != full.seeds[1]


@pytest.mark.parametrize("kwargs, error, match", [
    ({"widths": (3, 3)}, ValueError, r"widths must not repeat a value .*got \[3, 3\]"),
    ({"widths": (3,)}, ValueError, r"order=0 needs at least 2 distinct widths"),
    ({"widths": (3, 4), "order": 1}, ValueError, r"order=1 needs at least 3 distinct widths.*\[3, 4\]"),
    ({"widths": (3, 0)}, ValueError, r"widths must hold integers >= 1, got 0"),
    ({"widths": (3, 4.0)}, ValueError, r"widths must hold integers >= 1, got 4.0"),
    ({"widths": 8}, TypeError, r"widths must be a list of integers"),
    ({"networks": 2}, ValueError, r"networks must be an integer >= 3, got 2"),
    ({"order": 3}, ValueError, r"order must be one of 0, 1, 2, got 3"),
    ({"order": "1"}, TypeError, r"order must be one of 0, 1, 2"),
    ({"seed": 1.5}, TypeError, r"seed must be an integer in \[0, 2\*\*63\), got 1.5"),
    ({"seed": -1}, ValueError, r"seed must be an integer in \[0, 2\*\*63\), got -1"),
    ({"chunk_size": 0}, ValueError, r"chunk_size must be an integer >= 1, got 0"),
    ({"store": "dir"}, TypeError, r"store must be a netfield.experiments.ChunkStore"),
    ({"progress": 3}, TypeError, r"progress must be True \(a bar on stderr\), False / None \(quiet\) or a callable"),
])
def test_bad_inputs_raise_clear_errors(kwargs, error, match):
    args = {**SMALL, **kwargs}
    with pytest.raises(error, match=match):
        simulate(RNN, X_SEQ, **args)


def test_entry_and_index_errors():
    res, _ = _synthetic()
    assert res.entry("hidden", 3, 3, 1, 0) == res.observables.index("hidden", 3, 3, 0, 1)
    with pytest.raises(KeyError, match="no fluctuating hidden entry"):
        res.entry("hidden", 1, 1)
    M = len(res.observables)
    with pytest.raises(IndexError, match=rf"i must be an entry index in 0..{M - 1}"):
        res.n_shift(M)
    assert res.n_shift(-1)[0].shape == (4,)


def test_from_moments_accepts_unsorted_widths():
    res, t = _synthetic()
    perm = [2, 0, 3, 1]
    shuffled = SimulatedNLO.from_moments(res.observables, t["widths"][perm], 100, t["mft"], t["mean"][perm],
                                         t["mean_se"][perm], t["cov"][perm], t["cov_se"][perm])
    assert shuffled.widths == (10, 20, 40, 80)
    np.testing.assert_array_equal(shuffled.mean, res.mean)
    np.testing.assert_allclose(shuffled.cov_limit, res.cov_limit, rtol=1e-12)


@pytest.mark.slow
def test_simulate_runs_any_program_gru():
    """nlo.simulate on a GRU (no 1/n theory): its readout entries, extrapolated in 1/n from sampled
    networks of widths 32..256, reach the mean-field kernel within their own error bars, resolve a
    non-zero n Var, and the check has power (a theory with bias_var 0.3 instead of 0.5 is rejected)."""
    x = np.random.default_rng(4).normal(size=(2, 3, 2))
    net = netfield.gru(3, weight_var=1.2, bias_var=0.5)
    res = simulate(net, x, widths=(32, 64, 128, 256), networks=(1200, 600, 300, 150), seed=3)
    assert len(res.mft) == 21 and set(res.observables.kind) == {"readout"}  # 6 output rows, i <= j
    assert np.abs(res.free_limit_pull).max() < 4
    assert (res.variance_limit > 5 * res.variance_limit_se).all()
    wrong = np.asarray(netfield.kernel(net.replace(bias_var=0.3), x, readout="all"))
    pull = (res.free_limit - wrong[res.observables.u, res.observables.v]) / res.free_limit_se
    assert np.abs(pull).max() > 4
