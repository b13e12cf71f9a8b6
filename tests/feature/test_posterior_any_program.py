"""Posterior sampler on programs other than DNN / RNN chains (issue 17: "a posterior of a finite GRU").

References are independent of the sampler's model and HMC: importance sampling from prior draws of the
finite-width interpreter (netfield.finite.netsor: the weights sampled as netfield.sample samples them,
the likelihood written out here), and netfield.sample's prior ensemble in the lazy limit.

z-score bound 4.5: each test compares some 10-80 strongly correlated entries; under Gaussian errors a
single |z| > 4.5 has probability 7e-6, so the family-wise false-alarm rate stays below 1e-3, while a
wrong model (a weight scale, the readout overlap, the likelihood) moves the posterior by many standard
errors (each test asserts that the posterior is far from the prior where that matters).
"""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netfield
from netfield.feature import posterior_samples
from netfield.finite.netsor import _sample_matrices, run_program
from netfield.program.shape import UnsupportedProgram

Z_BOUND = 4.5


def _z(a, a_se, b, b_se):
    return (np.asarray(a) - b) / np.sqrt(np.asarray(a_se) ** 2 + b_se**2)


def _weighted(w, f):
    """Self-normalised importance-sampling mean and its (delta-method) standard error."""
    w = w / w.sum()
    m = np.tensordot(w, f, 1)
    return m, np.sqrt(np.tensordot(w**2, (f - m) ** 2, 1))


def _prior_draws(program, n, draws, S, P, yy, readout_var, kappa, chunk=20_000):
    """Per prior draw: "h" tap kernels, readout overlaps, the posterior-mean prediction given the hidden
    weights, and the log likelihood of the targets with v integrated out (all in numpy from run_program)."""
    taps = [program.taps["h"][t] for t in sorted(program.taps["h"])]
    args = [r.arg for r in program.readouts]
    S_idx = np.asarray(S) - 1
    k = len(S) * P

    def one(key):
        values = run_program(program, _sample_matrices(program, key, n, jnp.float64), n)
        H = jnp.stack([values[t] for t in taps])  # (T, n, P')
        G = jnp.stack([values[a] for a in args])  # (R, n, P')
        K = jnp.einsum("tip,siq->tspq", H, H) / n
        Phi = jnp.einsum("rip,siq->rspq", G, G) / n
        M = readout_var * Phi[S_idx][:, S_idx][:, :, :P, :P].transpose(0, 2, 1, 3).reshape(k, k) + kappa * jnp.eye(k)
        alpha = jnp.linalg.solve(M, yy)
        logw = -0.5 * n * alpha @ yy - 0.5 * jnp.linalg.slogdet(M)[1]
        cross = Phi[:, S_idx][:, :, :, :P].transpose(0, 2, 1, 3).reshape(len(args), -1, k)
        return K, Phi, readout_var * cross @ alpha, logw

    run = jax.jit(jax.vmap(one))
    parts = [run(jax.random.split(jax.random.PRNGKey(7 + i), chunk)) for i in range(draws // chunk)]
    return [np.concatenate([np.asarray(p[j]) for p in parts]) for j in range(4)]


def test_gru_posterior_matches_importance_sampling():
    """GRU, 3 steps, n = 4, a test pattern, readouts 2 and 3 supervised: kernels of the hidden states,
    readout overlaps and predictions = importance sampling from 400k prior networks. (Sensitivity: with
    the reference drawn at weight_var 1.8 instead of 1.5 this test fails.)"""
    n, kappa, S = 4, 0.5, (2, 3)
    x, xt = np.array([[1.0, 0.5], [-0.4, 1.0]]), np.array([[0.7, -0.7]])
    y = np.array([[0.9, -0.6], [1.2, -1.0]])
    net = netfield.gru(3, weight_var=1.5, bias_var=0.3)
    program = net.program(np.concatenate([x, xt]))
    K, Phi, pred, logw = _prior_draws(program, n, 400_000, S, 2, y.reshape(-1), 1.0, kappa)
    w = np.exp(logw - logw.max())
    assert 1.0 / np.sum((w / w.sum()) ** 2) > 4_000  # enough effective draws for the reference

    post = posterior_samples(net, x, y, width=n, kappa=kappa, supervised_steps=S, x_test=xt, chains=4,
                             samples=600, thin=4, burn_in=100, leapfrog=5, seed=4)
    assert post.kernel.shape == (3, 3, 3, 3) and post.overlap.shape == (3, 3, 3, 3)
    assert post.prediction.shape == (3, 3) and post.matrices == ("W_z", "W_r", "W_h")
    assert post.w_eigenvalues.shape == (4, 3, n)
    for name, f in (("kernel", K), ("overlap", Phi), ("prediction", pred)):
        ref, ref_se = _weighted(w, f)
        z = _z(getattr(post, name), getattr(post, name + "_se"), ref, ref_se)
        assert np.abs(z).max() < Z_BOUND, (name, z)
    # the comparison has teeth: the posterior predictions are far from the prior's (zero) mean
    ref, ref_se = _weighted(w, pred)
    assert np.abs(ref[1:, :2]).min() > 10 * ref_se[1:, :2].max()
    prior_k, post_k = K.mean(0), _weighted(w, K)[0]
    assert np.abs(post_k - prior_k).max() > 10 * post.kernel_se.max()


def test_transformer_lazy_limit_is_the_prior():
    """kappa huge: the likelihood is flat, so the posterior kernel of the residual stream (token rows) is
    the prior one, the mean of netfield.sample's "h" tap kernels at the same width."""
    rng = np.random.default_rng(3)
    x = rng.normal(size=(2, 3, 2))  # 2 sequences of 3 tokens
    n = 16
    net = netfield.transformer(1, "relu", tie_query_key=True)
    post = posterior_samples(net, x, np.array([1.0, -1.0]), width=n, kappa=1e8, chains=4, samples=200, thin=2,
                             burn_in=20, leapfrog=5, seed=2)
    assert post.kernel.shape == (1, 1, 6, 6) and post.prediction.shape == (1, 2)
    np.testing.assert_allclose(post.step_size, np.pi / 10, rtol=0.02)  # flat likelihood: the cap binds
    assert np.all(post.acceptance > 0.99)
    ens = netfield.sample(net, x, width=n, networks=4000, seed=5, preactivations="all")
    k = ens.preactivation(1, 1)
    ref, ref_se = k.mean(0), k.std(0, ddof=1) / np.sqrt(k.shape[0])
    z = _z(post.kernel[0, 0], post.kernel_se[0, 0], ref, ref_se)
    assert np.abs(z).max() < Z_BOUND, z
    assert post.kernel_se.max() < 0.05 * np.abs(ref).max()  # the comparison has teeth


def test_lstm_posterior_smoke():
    """LSTM with sequences and a test sequence: shapes, finite numbers, a working sampler."""
    rng = np.random.default_rng(4)
    x, xt = rng.normal(size=(3, 2, 2)), rng.normal(size=(1, 2, 2))
    post = posterior_samples(netfield.lstm(2), x, np.array([0.5, -0.5, 1.0]), width=8, kappa=0.5, x_test=xt,
                             chains=2, samples=10, thin=2, burn_in=20, leapfrog=5)
    assert post.kernel.shape == (2, 2, 4, 4) and post.prediction.shape == (2, 4)
    assert post.matrices == ("W_i", "W_f", "W_o", "W_g") and post.w_eigenvalues.shape == (2, 4, 8)
    assert all(np.isfinite(getattr(post, f)).all() for f in ("kernel", "overlap", "prediction"))
    assert np.all(post.acceptance > 0.5)


def test_gru_interrupted_run_resumes_to_identical_numbers(tmp_path):
    class Interrupt:
        def __init__(self, after):
            self.after, self.seen = after, 0

        def __call__(self, k=1):
            self.seen += k
            if self.seen >= self.after:
                raise KeyboardInterrupt

    net, x = netfield.gru(2), np.array([[1.0, 0.0], [0.3, 1.0]])
    kw = {"width": 6, "kappa": 0.5, "chains": 2, "thin": 2, "samples": 5, "burn_in": 7, "checkpoint_every": 2,
          "x_test": np.array([[0.5, 0.5]])}
    full = posterior_samples(net, x, np.array([1.0, -1.0]), **kw)
    path = tmp_path / "gru.npz"
    with pytest.raises(KeyboardInterrupt):
        posterior_samples(net, x, np.array([1.0, -1.0]), checkpoint=path, progress=Interrupt(3), **kw)
    resumed = posterior_samples(net, x, np.array([1.0, -1.0]), checkpoint=path, resume=True, **kw)
    for name in ("kernel", "kernel_se", "kernel_sq", "overlap", "prediction", "acceptance", "step_size",
                 "readout_trace", "w_eigenvalues"):
        np.testing.assert_array_equal(getattr(resumed, name), getattr(full, name), err_msg=name)


def _two_readout_matrices(p, x):
    h = p.input("U", x) + p.bias("b", var=0.1)
    p.readout(p.nonlin("erf", h), matrix="V1")
    return p.readout(p.nonlin("tanh", h), matrix="V2")


def _coupled(p, x):
    """Centres every coordinate over the batch (all rows): the batch's patterns are coupled."""
    h = p.input("U", x) + p.bias("b", var=0.1)
    return p.readout(p.nonlin(lambda g: jnp.tanh(g - g.mean(axis=-1, keepdims=True)), h, coupled=True))


def _token_readout(p, x):
    rows = x.reshape(-1, x.shape[-1])
    g = p.input("U", rows, space="tokens")
    return p.readout(p.nonlin("erf", g))


SEQ = np.random.default_rng(17).normal(size=(3, 3, 2))
STATIC = np.random.default_rng(18).normal(size=(3, 2))


@pytest.mark.parametrize(
    ("net", "x", "kw", "match"),
    [
        (netfield.conv(2, filter_shape=(3,), readout="flatten"), SEQ, {},
         r"conv network: readout 'out' reads flattened rows.*Use netfield.sample"),
        (netfield.conv(2, filter_shape=(3,), pool_window=(2,)), SEQ, {},
         r"'h' taps live on different row spaces \(positions1, positions3\)"),
        (netfield.architecture(_two_readout_matrices), STATIC, {}, r"different readout matrices \(V1, V2\)"),
        (netfield.architecture(_token_readout), SEQ, {}, r"reads 9 rows for 3 patterns"),
        (netfield.architecture(_coupled), STATIC, {"x_test": STATIC[:1]},
         r"features at readout 'out' change when the test patterns join the batch.*coupled instructions"),
    ],
)
def test_programs_outside_the_model_raise_unsupported(net, x, kw, match):
    with pytest.raises(UnsupportedProgram, match=match):
        posterior_samples(net, x, np.zeros(3), width=4, kappa=1.0, chains=1, samples=1, burn_in=0, **kw)


def test_batch_coupled_programs_without_test_patterns_and_batch_norm_are_covered():
    """Without x_test the likelihood sees only the training batch; batch norm normalises test patterns
    with the training batch's statistics, so its training features do not depend on them."""
    kw = {"width": 4, "kappa": 1.0, "chains": 1, "samples": 1, "burn_in": 1}
    post = posterior_samples(netfield.architecture(_coupled), STATIC, np.zeros(3), **kw)
    assert post.overlap.shape == (1, 1, 3, 3)
    post = posterior_samples(netfield.batchnorm_mlp(2), STATIC, np.zeros(3), x_test=STATIC[:1] + 0.5, **kw)
    assert post.kernel.shape == (2, 2, 4, 4) and np.isfinite(post.prediction).all()


def test_gru_inputs_of_different_lengths_are_refused():
    with pytest.raises(ValueError, match=r"x_test must have the shape of x beyond the first.*\(2,\).*gru"):
        posterior_samples(netfield.gru(2), np.eye(3, 2), np.zeros(3), x_test=np.ones((1, 2, 2)), width=4,
                          kappa=1.0, samples=1, burn_in=0)
