"""Posterior sampler of finite-width muP networks (the oracle of the feature-learning theory).

Exactness is checked against independent references: the gradient against jax.grad of the full
potential, the posterior against importance sampling from the prior (plain numpy, small widths, with a
strong learning signal so that the posterior is far from the prior), and the lazy limit (targets 0)
against netfield.sample's finite-width prior ensemble (reweighted by the exact y = 0 likelihood
det(M)^(-1/2)) and the NNGP kernel.
"""

import json

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.special import erf

import netfield
from netfield.feature import PosteriorSamples, posterior_samples
from netfield.feature.sampler import _compiled


def _z(a, a_se, b, b_se):
    return (np.asarray(a) - b) / np.sqrt(np.asarray(a_se) ** 2 + b_se**2)


def _weighted(w, f):
    """Self-normalised importance-sampling mean and its (delta-method) standard error."""
    w = w / w.sum()
    m = np.tensordot(w, f, 1)
    return m, np.sqrt(np.tensordot(w**2, (f - m) ** 2, 1))


@pytest.mark.parametrize("arch", ["dnn", "rnn"])
def test_gradient_is_jax_grad_of_the_potential(arch):
    """The chain-rule weight gradient (through dE/dh) equals jax.grad of E(theta_hat) for every block."""
    T, n, d, t_in, P, S = 3, 5, 2, 2, 3, (1, 3)
    net = getattr(netfield, arch)(T, "tanh", weight_var=1.3, bias_var=0.4, input_var=0.8, readout_var=1.7)
    fns = _compiled(arch == "rnn", T, net.activation, n, d, t_in, P, P, S, True, True, 1, 1, "split")
    rng = np.random.default_rng(0)
    th = {name: jnp.asarray(rng.normal(size=(n, d) if name[0] == "U" else (n, n) if name[0] == "W" else (n,)))
          for name in fns["names"]}
    hyper = jnp.asarray([1.3, 0.8, 0.4, 1.7, 0.6])
    xs, yy = jnp.asarray(rng.normal(size=(P, t_in, d))), jnp.asarray(rng.normal(size=len(S) * P))
    expected = jax.jit(jax.grad(fns["energy"]))(th, hyper, xs, yy)
    got = jax.jit(fns["gradient"])(th, hyper, xs, yy)
    assert sorted(got) == sorted(expected) == sorted(fns["names"])
    for name in fns["names"]:
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-10, atol=1e-12)


def test_lazy_limit_equals_the_prior():
    """y = 0: kernels = finite-width prior ensemble reweighted by det(M)^(-1/2) (exact), and = NNGP.

    With y = 0 the likelihood is det(M)^(-1/2), M = readout_var Phi_T + kappa: the posterior is the prior
    tilted at O(1/n). The reweighted ensemble of netfield.sample (same width) is the exact reference.
    Against the NNGP kernel the allowed deviation is 4 standard errors plus 1/n times the kernel scale
    (finite-width mean shift and tilt, both O(1/n); here both are ~0.005, about one standard error).
    """
    x = np.array([[1.0, 0.0], [0.6, 0.8], [-0.5, 0.9]])
    n, kappa, T = 64, 0.5, 3
    net = netfield.rnn(T, "erf", weight_var=1.5, bias_var=0.2)
    post = posterior_samples(net, x, np.zeros((1, 3)), width=n, kappa=kappa, chains=4, samples=150, thin=2,
                             burn_in=60, leapfrog=5, seed=1)
    assert post.kernel.shape == post.overlap.shape == (T, T, 3, 3)
    assert np.all(post.acceptance > 0.6) and np.all(post.acceptance <= 1.0)
    assert 0.3 < post.tau < 5.0 and abs(post.rhat - 1.0) < 0.05

    ens = netfield.sample(net, x, width=n, networks=2000, seed=2, preactivations="all")
    steps = range(1, T + 1)
    kern = np.stack([np.stack([ens.preactivation(t, s) for s in steps], 1) for t in steps], 1)
    w = np.exp(-0.5 * np.linalg.slogdet(ens.readout + kappa * np.eye(3))[1])
    ref, ref_se = _weighted(w, kern)
    assert np.abs(_z(post.kernel, post.kernel_se, ref, ref_se)).max() < 4.0
    ref_phi, ref_phi_se = _weighted(w, ens.readout)  # readout kernel = readout_var * Phi_T (readout_var = 1)
    assert np.abs(_z(post.overlap[-1, -1], post.overlap_se[-1, -1], ref_phi, ref_phi_se)).max() < 4.0

    mf = netfield.mean_field(net, x)
    nngp = np.stack([np.stack([np.asarray(mf.preactivation(t, s)) for s in steps]) for t in steps])
    assert np.all(np.abs(post.kernel - nngp) < 4 * post.kernel_se + np.abs(nngp).max() / n)
    assert post.kernel_se.max() < 0.01  # the comparison has teeth: the cross-time kernels are O(0.1-1)


@pytest.mark.parametrize("integrator", ["split", "leapfrog"])
def test_linear_posterior_matches_importance_sampling(integrator):
    """T = 1 linear network, n = 8: HMC mean of Phi = importance sampling from the prior (strong signal)."""
    rng = np.random.default_rng(1)
    n, x, y, kappa = 8, np.array([[1.0, 0.2], [0.3, -1.0]]), np.array([[1.0, -1.2]]), 0.3
    h = rng.normal(size=(200_000, n, 2)) * np.sqrt(0.5) @ x.T  # U ~ N(0, input_var / d)
    phi = np.einsum("mip,miq->mpq", h, h) / n
    M = phi + kappa * np.eye(2)
    logw = -0.5 * n * np.einsum("p,mpq,q->m", y[0], np.linalg.inv(M), y[0]) - 0.5 * np.linalg.slogdet(M)[1]
    ref, ref_se = _weighted(np.exp(logw - logw.max()), phi)
    assert np.abs(ref - phi.mean(0)).max() > 0.2  # the posterior is far from the prior

    post = posterior_samples(netfield.dnn(1, "linear"), x, y, width=n, kappa=kappa, chains=4, samples=400,
                             thin=4, burn_in=100, leapfrog=5, integrator=integrator, seed=3)
    assert np.abs(_z(post.overlap[0, 0], post.overlap_se[0, 0], ref, ref_se)).max() < 4.0
    np.testing.assert_allclose(post.kernel, post.overlap)  # linear: K = Phi
    assert post.w_eigenvalues.shape == (4, 0, n)  # T = 1: no W


def test_rnn_posterior_with_bias_test_points_and_two_supervised_steps():
    """RNN, T = 2, bias, x_test, S = (1, 2), n = 6: kernels, overlaps, predictions = importance sampling."""
    rng = np.random.default_rng(2)
    n, d, T, P, kappa, S = 6, 2, 2, 2, 0.5, (1, 2)
    x, xt = np.array([[1.0, 0.5], [-0.4, 1.0]]), np.array([[0.7, -0.7]])
    y = np.array([[0.8, -0.5], [1.0, -1.0]])
    net = netfield.rnn(T, "erf", weight_var=1.5, bias_var=0.3)
    m = 200_000
    W = rng.normal(size=(m, n, n)) * np.sqrt(1.5 / n)
    U = rng.normal(size=(m, n, d)) * np.sqrt(1.0 / d)
    b = rng.normal(size=(m, n, 1)) * np.sqrt(0.3)
    h1 = U @ np.concatenate([x, xt]).T + b
    H = np.stack([h1, W @ erf(h1) + b], 1)  # (m, T, n, P')
    K = np.einsum("mtip,msiq->mtspq", H, H) / n
    Phi = np.einsum("mtip,msiq->mtspq", erf(H), erf(H)) / n
    k = len(S) * P
    M = Phi[:, :, :, :P, :P].transpose(0, 1, 3, 2, 4).reshape(m, k, k) + kappa * np.eye(k)
    alpha = np.linalg.solve(M, y.reshape(-1)[None, :, None])[..., 0]
    logw = -0.5 * n * alpha @ y.reshape(-1) - 0.5 * np.linalg.slogdet(M)[1]
    cross = Phi[:, :, :, :, :P].transpose(0, 1, 3, 2, 4).reshape(m, T, P + 1, k)
    pred = np.einsum("mtpk,mk->mtp", cross, alpha)
    w = np.exp(logw - logw.max())

    post = posterior_samples(net, x, y, width=n, kappa=kappa, supervised_steps=S, x_test=xt, chains=4,
                             samples=700, thin=4, burn_in=100, leapfrog=5, seed=6)
    for name, f in (("kernel", K), ("overlap", Phi), ("prediction", pred)):
        ref, ref_se = _weighted(w, f)
        z = _z(getattr(post, name), getattr(post, name + "_se"), ref, ref_se)
        assert np.abs(z).max() < 4.0, (name, z)
    assert post.prediction.shape == (T, 3) and post.w_eigenvalues.shape == (4, n)
    summary = json.loads(json.dumps(post.to_dict()))
    assert summary["supervised_steps"] == [1, 2] and len(summary["w_eigenvalues"][0][0]) == 2


class _Interrupt:
    """A progress callback that raises KeyboardInterrupt after ``after`` samples (like Ctrl-C)."""

    def __init__(self, after):
        self.after, self.seen = after, 0

    def __call__(self, k=1):
        self.seen += k
        if self.seen >= self.after:
            raise KeyboardInterrupt


_NET = netfield.rnn(2, "erf", weight_var=1.5, bias_var=0.1)  # one static configuration: compiled once
_X, _Y = np.array([[1.0, 0.0], [0.3, 1.0]]), np.array([[1.0, -1.0]])
_KW = {"width": 8, "kappa": 0.5, "chains": 2, "thin": 2}


def test_progress_follows_the_api_convention(capsys):
    """True (the default) draws a bar on stderr, False / None are quiet, a callable is told the samples,
    anything else is refused naming the argument (netfield._runtime.progress)."""
    kw = {**_KW, "samples": 4, "burn_in": 2}
    quiet = posterior_samples(_NET, _X, _Y, progress=False, **kw)
    assert capsys.readouterr().err == ""
    posterior_samples(_NET, _X, _Y, progress=None, **kw)
    assert capsys.readouterr().err == ""
    drawn = posterior_samples(_NET, _X, _Y, **kw)
    assert "posterior samples" in capsys.readouterr().err
    np.testing.assert_array_equal(drawn.kernel, quiet.kernel)  # the bar does not change the numbers
    told = []
    posterior_samples(_NET, _X, _Y, progress=told.append, **kw)
    assert sum(told) == 4
    with pytest.raises(TypeError, match="progress"):
        posterior_samples(_NET, _X, _Y, progress="yes", **kw)


def test_interrupted_run_resumes_to_identical_numbers(tmp_path):
    kw = {**_KW, "samples": 7, "burn_in": 13, "checkpoint_every": 2}
    full = posterior_samples(_NET, _X, _Y, **kw)
    path = tmp_path / "run.npz"
    with pytest.raises(KeyboardInterrupt):
        posterior_samples(_NET, _X, _Y, checkpoint=path, progress=_Interrupt(5), **kw)
    assert path.is_file() and not list(tmp_path.glob("*.tmp"))
    seen = _Interrupt(100)
    resumed = posterior_samples(_NET, _X, _Y, checkpoint=path, resume=True, progress=seen, **kw)
    assert seen.seen == 7  # 4 restored from the checkpoint + 3 new
    for name in ("kernel", "kernel_se", "overlap", "prediction", "acceptance", "step_size", "readout_trace",
                 "w_eigenvalues"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), err_msg=name)
    # a finished checkpoint is read back without sampling
    again = posterior_samples(_NET, _X, _Y, checkpoint=path, resume=True, **kw)
    np.testing.assert_array_equal(again.kernel, full.kernel)
    # another configuration is refused, naming what differs
    with pytest.raises(ValueError, match=r"another configuration.*kappa"):
        posterior_samples(_NET, _X, _Y, checkpoint=path, resume=True, **{**kw, "kappa": 0.7})


def test_chain_groups_are_the_chains_of_their_size_and_resume_from_their_own_files(tmp_path):
    """chain_group: chains 0-1 and 2 run as two programs; each chain's numbers are those of the same chain
    in a run of its group's size alone (fails if a group drew another chain's keys or initial state, or
    the groups were put together in another order), the statistics are those of the concatenated
    chains, progress adds up to ``samples``, and each group resumes from its own checkpoint file (fails
    if a group's file were ignored, shared or written under the run's own name)."""
    kw = {**_KW, "chains": 3, "samples": 5, "burn_in": 6}
    seen = _Interrupt(100)
    grouped = posterior_samples(_NET, _X, _Y, chain_group=2, progress=seen, **kw)
    assert seen.seen == 5 and grouped.readout_trace.shape == (3, 10) and grouped.chains == 3
    pair = posterior_samples(_NET, _X, _Y, **{**kw, "chains": 2})  # chains 0, 1 in a program of size 2
    np.testing.assert_array_equal(grouped.readout_trace[:2], pair.readout_trace)
    np.testing.assert_array_equal(grouped.chain_kernel[:2], pair.chain_kernel)
    assert not np.array_equal(grouped.readout_trace[2], grouped.readout_trace[1])
    one = posterior_samples(_NET, _X, _Y, **kw)  # all three in one program: the same law, other rounding
    np.testing.assert_allclose(grouped.readout_trace, one.readout_trace, rtol=1e-8, atol=1e-10)
    assert np.isfinite(grouped.kernel_se).all() and (grouped.kernel_se > 0).all()
    path = tmp_path / "post.npz"
    first = posterior_samples(_NET, _X, _Y, chain_group=2, checkpoint=path, **kw)
    files = sorted(p.name for p in tmp_path.glob("*.npz"))
    assert files == ["post.chains-0-1.npz", "post.chains-2-2.npz"], files
    (tmp_path / "post.chains-2-2.npz").unlink()  # one group lost: redone; the other read back
    again = posterior_samples(_NET, _X, _Y, chain_group=2, checkpoint=path, resume=True, **kw)
    for name in ("kernel", "kernel_se", "prediction", "readout_trace", "step_size", "w_eigenvalues"):
        np.testing.assert_array_equal(getattr(again, name), getattr(first, name), err_msg=name)
        np.testing.assert_array_equal(getattr(first, name), getattr(grouped, name), err_msg=name)


def test_run_killed_during_burn_in_resumes_to_identical_numbers(tmp_path, monkeypatch):
    """A kill right after a burn-in checkpoint (step size still adapting) resumes exactly."""
    from netfield.feature import sampler

    kw = {**_KW, "samples": 3, "burn_in": 11, "checkpoint_every": 1}
    full = posterior_samples(_NET, _X, _Y, **kw)
    save, calls = sampler._save, []

    def killed_after_third(path, arrays, *manifest):
        save(path, arrays, *manifest)
        calls.append(int(arrays["iteration"]))
        if len(calls) == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(sampler, "_save", killed_after_third)
    path = tmp_path / "burn.npz"
    with pytest.raises(KeyboardInterrupt):
        posterior_samples(_NET, _X, _Y, checkpoint=path, **kw)
    assert calls == [2, 4, 6]  # in burn-in
    monkeypatch.setattr(sampler, "_save", save)
    resumed = posterior_samples(_NET, _X, _Y, checkpoint=path, resume=True, **kw)
    for name in ("kernel", "overlap_se", "prediction", "step_size", "readout_trace", "w_eigenvalues"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), err_msg=name)


def test_step_size_adapts_to_a_strong_learning_signal():
    """Strong signal (kappa / n small): the adapted step lands at acceptance ~0.75, below the cap."""
    post = posterior_samples(_NET, _X, _Y, samples=100, burn_in=200, **{**_KW, "kappa": 0.01}, signal=10.0)
    assert np.all((post.acceptance > 0.6) & (post.acceptance < 0.9))
    assert np.all(post.step_size < 0.9 * np.pi / 20)  # cap = pi / (2 leapfrog)
    weak = posterior_samples(_NET, _X, _Y, samples=2, burn_in=60, **_KW)
    np.testing.assert_allclose(weak.step_size, np.pi / 20, rtol=0.02)  # weak signal: the cap binds


def test_result_fields_and_dict():
    post = posterior_samples(_NET, _X, _Y[0], samples=4, burn_in=6, **_KW)  # y of shape (P,) for one step
    assert isinstance(post, PosteriorSamples)
    assert post.kernel.shape == post.kernel_se.shape == (2, 2, 2, 2)
    assert post.prediction.shape == post.prediction_se.shape == (2, 2)
    assert post.acceptance.shape == post.step_size.shape == (2,) and post.readout_trace.shape == (2, 8)
    assert post.w_eigenvalues.shape == (2, 8) and np.iscomplexobj(post.w_eigenvalues)
    assert post.batches == 2 and post.width == 8
    d = json.loads(json.dumps(post.to_dict()))
    assert set(d) >= {"kernel", "kernel_se", "overlap", "prediction", "acceptance", "tau", "w_eigenvalues"}


@pytest.mark.parametrize(
    ("change", "error", "match"),
    [
        ({"kappa": 0.0}, ValueError, r"kappa must be a finite number > 0, got 0\.0"),
        ({"kappa": float("nan")}, ValueError, r"kappa must be a finite number > 0, got nan"),
        ({"signal": -1.0}, ValueError, r"signal must be a finite number > 0, got -1\.0"),
        ({"width": 0}, ValueError, r"width must be an integer >= 1, got 0"),
        ({"chains": 0}, ValueError, r"chains must be an integer >= 1, got 0"),
        ({"y": np.zeros((2, 3))}, ValueError,
         r"y must have shape \(len\(supervised_steps\), P\) = \(1, 3\).*\(2, 3\)"),
        ({"supervised_steps": (0, 2)}, ValueError,
         r"supervised_steps must be distinct integer steps in 1\.\.2, got \(0, 2\)"),
        ({"supervised_steps": (3,)}, ValueError, r"supervised_steps .* in 1\.\.2, got \(3,\)"),
        ({"x": np.array([[1.0, np.nan], [0, 1], [1, 1]])}, ValueError,
         r"x must contain only finite numbers, got nan at index \(0, 1\)"),
        ({"y": np.array([[1.0, np.inf, 0.0]])}, ValueError,
         r"y must contain only finite numbers, got inf at index \(0, 1\)"),
        ({"x": np.ones((3, 4, 2))}, ValueError, r"x must have shape \(P, d\) .* T_in <= 2.*\(3, 4, 2\)"),
        ({"x_test": np.ones((1, 3))}, ValueError,
         r"x_test must have d = 2 features like x, got shape \(1, 3\)"),
        ({"integrator": "euler"}, ValueError, r"integrator must be one of 'split', 'leapfrog', got 'euler'"),
        ({"resume": True}, ValueError, r"resume=True needs checkpoint"),
        ({"chain_group": 0}, ValueError, r"chain_group must be an integer >= 1, got 0"),
        ({"chain_group": 5}, ValueError, r"chain_group must be between 1 and chains = 4, got 5"),
        ({"workers": 0}, ValueError, r"workers must be an integer >= 1, got 0"),
        ({"chain_group": 2, "y": np.zeros((2, 3))}, ValueError,  # checked before the groups run
         r"y must have shape \(len\(supervised_steps\), P\) = \(1, 3\).*\(2, 3\)"),
        ({"net": "rnn"}, TypeError, r"net must be a network built by netfield.dnn"),
    ],
)
def test_invalid_arguments_are_named(change, error, match):
    args = {"net": netfield.rnn(2, "erf"), "x": np.eye(3, 2), "y": np.zeros((1, 3))}
    kw = {"width": 4, "kappa": 1.0, "samples": 1, "burn_in": 0}
    for key in list(change):
        (args if key in args else kw)[key] = change[key]
    with pytest.raises(error, match=match):
        posterior_samples(args["net"], args["x"], args["y"], **kw)
