"""GP regression with network kernels: posterior, evidence, gradients, jitter, errors (netfield.gp.regression)."""

import warnings

import jax
import numpy as np
import pytest
from scipy.stats import multivariate_normal

import netfield as nf
from netfield import gp

RNG = np.random.default_rng(3)
X = RNG.normal(size=(25, 4))
XT = RNG.normal(size=(7, 4))
Y1 = np.sin(X[:, 0]) + 0.1 * RNG.normal(size=25)
Y2 = np.stack([Y1, np.cos(X[:, 1])], axis=1)
NET = nf.dnn(3, "erf", weight_var=1.7, bias_var=0.2, input_var=1.1, readout_var=0.9, readout_bias_var=0.05)


def dense_posterior(k, y, ks, kss, noise):
    """GPML eqs. 2.25-2.26 with a dense solve (no Cholesky)."""
    a = k + noise * np.eye(len(k))
    return ks @ np.linalg.solve(a, y), kss - ks @ np.linalg.solve(a, ks.T)


@pytest.mark.parametrize("y", [Y1, Y2], ids=["one-output", "two-outputs"])
def test_posterior_matches_dense_formulas_jax_and_numpy(y):
    k = np.asarray(nf.kernel(NET, X))
    ks = np.asarray(nf.kernel(NET, XT, X))
    kss = np.asarray(nf.kernel(NET, XT))
    mean, cov = dense_posterior(k, y, ks, kss, 0.05)
    post = gp.posterior(k, y, ks, noise=0.05, k_test=kss)
    np.testing.assert_allclose(post.mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(post.cov, cov, rtol=1e-9, atol=1e-12)
    fit = gp.fit_network(NET, X, y, noise=0.05)
    out = fit.predict(XT, return_var=True)
    np.testing.assert_allclose(out.mean, mean, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(out.var, np.diag(cov), rtol=1e-8, atol=1e-12)
    assert out.mean.shape == (7,) + y.shape[1:]
    np.testing.assert_allclose(fit.predict(XT, return_cov=True).cov, cov, rtol=1e-8, atol=1e-12)


@pytest.mark.parametrize("y", [Y1, Y2], ids=["one-output", "two-outputs"])
def test_log_marginal_likelihood_is_the_gaussian_log_density(y):
    k = np.asarray(nf.kernel(NET, X))
    cov = k + 0.05 * np.eye(len(k))
    cols = y[:, None] if y.ndim == 1 else y
    exact = sum(multivariate_normal(np.zeros(len(k)), cov).logpdf(c) for c in cols.T)  # GPML eq. 2.30
    assert float(gp.log_marginal_likelihood(k, y, noise=0.05)) == pytest.approx(exact, rel=1e-11)
    assert float(gp.log_evidence(NET, X, y, noise=0.05)) == pytest.approx(exact, rel=1e-11)
    assert gp.fit_network(NET, X, y, noise=0.05).log_marginal_likelihood == pytest.approx(exact, rel=1e-11)


def test_pure_functions_jit():
    k = np.asarray(nf.kernel(NET, X))
    ks = np.asarray(nf.kernel(NET, XT, X))
    post = jax.jit(lambda k, y, ks, n: gp.posterior(k, y, ks, noise=n, k_test_diag=np.ones(7)))(k, Y1, ks, 0.05)
    np.testing.assert_allclose(post.mean, gp.posterior(k, Y1, ks, noise=0.05).mean, rtol=1e-12)
    lml = jax.jit(lambda k, n: gp.log_marginal_likelihood(k, Y2, noise=n))(k, 0.05)
    assert float(lml) == pytest.approx(float(gp.log_marginal_likelihood(k, Y2, noise=0.05)), rel=1e-12)


@pytest.mark.parametrize("architecture, readout", [("dnn", "last"), ("rnn", "mean")])
def test_evidence_gradient_matches_finite_differences(architecture, readout):
    build = nf.dnn if architecture == "dnn" else nf.rnn
    net = build(2, "erf", weight_var=1.7, bias_var=0.2, input_var=1.1, readout_var=0.9, readout_bias_var=0.05)
    x, y = X[:10], Y2[:10]
    value, grad = gp.evidence_and_grad(net, x, y, noise=0.05, readout=readout)
    assert value == pytest.approx(float(gp.log_evidence(net, x, y, noise=0.05, readout=readout)), rel=1e-12)
    for name in gp.regression.PARAMETERS:
        h = 1e-6

        def at(v, name=name):
            if name == "noise":
                return float(gp.log_evidence(net, x, y, noise=v, readout=readout))
            return float(gp.log_evidence(net.replace(**{name: v}), x, y, noise=0.05, readout=readout))

        v0 = 0.05 if name == "noise" else net.hyper(name)
        fd = (at(v0 + h) - at(v0 - h)) / (2 * h)
        assert grad[name] == pytest.approx(fd, rel=1e-5, abs=1e-6), name


def test_evidence_gradient_at_other_values_compiles_nothing_and_is_not_stale():
    """A second evidence_and_grad of an equal network at another weight_var reuses the compiled gradient
    (it recompiled on every call: 30 s each for a GRU) and gives the numbers of a fresh compilation; other
    inputs or another value of a parameter outside ``wrt`` get their own program."""
    net = nf.rnn(2, "erf", weight_var=1.3, bias_var=0.2)
    x, y = X[:6], Y1[:6]
    gp.evidence_and_grad(net, x, y, noise=0.05, wrt=("weight_var",))
    compiled = []

    def listen(event, duration, **kw):
        if event.endswith("backend_compile_duration"):
            compiled.append(kw.get("fun_name"))

    def fresh(*args, **kw):
        gp.regression._EVIDENCE_GRADS.clear()
        return gp.evidence_and_grad(*args, **kw)

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        again = gp.evidence_and_grad(net.replace(weight_var=1.6), x, y, noise=0.05, wrt=("weight_var",))
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert not any("objective" in str(name) for name in compiled), compiled
    assert again == fresh(net.replace(weight_var=1.6), x, y, noise=0.05, wrt=("weight_var",))
    for other in [(net, X[6:12], y, 0.05), (net.replace(bias_var=0.4), x, y, 0.05), (net, x, y, 0.2)]:
        got = gp.evidence_and_grad(other[0].replace(weight_var=1.6), other[1], other[2], noise=other[3],
                                   wrt=("weight_var",))
        assert got != again and got == fresh(other[0].replace(weight_var=1.6), *other[1:3], noise=other[3],
                                             wrt=("weight_var",))


@pytest.mark.slow
def test_nngp_posterior_is_the_wide_network_limit():
    """Oracle: Bayesian linear regression on the last-layer features of sampled RNNs (hidden weights
    fixed, readout Gaussian) is GP regression with the network's empirical kernel; its posterior mean
    must approach the NNGP posterior mean with fluctuations ~ 1/sqrt(width), and, averaged over
    networks, agree with it within 4 standard errors (plus the O(1/width) bias bound)."""
    net = nf.rnn(3, "erf", weight_var=1.5, bias_var=0.1, readout_var=1.0)
    x = np.concatenate([X[:16], XT[:4]])
    y = np.sin(X[:16, 0])
    theory = np.asarray(gp.fit_network(net, x[:16], y, noise=0.1, readout="mean").predict(x[16:]).mean)
    avg = gp.gram._averaging(np.full(20, 3), "mean", "x")
    rms, means = {}, {}
    for width in (32, 512):
        ens = nf.sample(net, x, width=width, networks=30, seed=11, readout="all", preactivations="none")
        preds = []
        for k_all in ens.readout:
            k = avg @ k_all @ avg.T
            preds.append(gp.fit_kernel(k[:16, :16], y, noise=0.1).predict(k[16:, :16]).mean)
        preds = np.array(preds)
        rms[width] = np.sqrt(np.mean((preds - theory) ** 2))
        means[width] = (preds.mean(axis=0), preds.std(axis=0, ddof=1) / np.sqrt(len(preds)))
    ratio = rms[32] / rms[512]
    assert 2.5 < ratio < 6.5, ratio  # sqrt(512 / 32) = 4
    mean, sem = means[512]
    assert np.all(np.abs(mean - theory) < 4 * sem + 2.0 / 512), (mean - theory, sem)


def test_singular_kernel_gets_jitter_with_a_warning_and_finite_predictions():
    x = np.concatenate([X[:10], X[:10]])  # duplicated points: K is singular
    y = np.concatenate([Y1[:10], Y1[:10]])
    net = nf.dnn(2, "linear", readout_var=1.0)  # linear kernel of 4-D inputs: rank <= 4 (+ bias)
    k = np.asarray(nf.kernel(net, x))
    with pytest.warns(gp.KernelJitterWarning, match="Increase `noise`"):
        fit = gp.fit_kernel(k, y, noise=0.0)
    assert fit.factor.jitter > 0
    assert np.isfinite(fit.predict(k[:3]).mean).all()
    with pytest.warns(gp.KernelJitterWarning):
        post = gp.posterior(k, y, k[:3], noise=0.0, k_test_diag=np.diag(k)[:3])
    assert float(post.jitter) > 0 and np.isfinite(post.mean).all() and np.isfinite(post.var).all()
    with pytest.warns(gp.KernelJitterWarning):
        reg = gp.fit_network(net, x, y, noise=0.0)
    assert np.isfinite(reg.predict(XT, return_var=True).var).all()


def test_in_place_factorisation_restores_the_matrix_between_jitter_tries():
    k = np.asarray(nf.kernel(nf.dnn(2, "linear"), np.concatenate([X[:10], X[:10]])))
    buffer = k.copy()
    with pytest.warns(gp.KernelJitterWarning):
        in_place = gp.factorize(buffer, 0.0, overwrite=True)
    assert np.shares_memory(in_place.upper, buffer)
    copied = gp.factorize(k + (in_place.jitter) * np.eye(20), 0.0)  # the same matrix, fresh
    np.testing.assert_allclose(np.triu(in_place.upper), np.triu(copied.upper), rtol=1e-7, atol=1e-9)


def test_indefinite_matrix_raises_and_names_noise():
    k = np.diag([1.0, 1.0, -1.0])
    with pytest.raises(ValueError, match="increase `noise`"):
        gp.fit_kernel(k, np.ones(3), noise=0.0)
    with pytest.raises(ValueError, match="increase `noise`"):
        gp.posterior(k, np.ones(3), k, noise=0.0)
    fixed = gp.fit_kernel(k, np.ones(3), noise=2.0)  # raising noise is the fix
    assert np.isfinite(fixed.predict(k).mean).all()


def test_under_jit_a_hopeless_matrix_reports_infinite_jitter():
    k = np.diag([1.0, -1.0])
    post = jax.jit(lambda k: gp.posterior(k, np.ones(2), k, noise=0.0))(k)
    assert np.isinf(float(post.jitter))


@pytest.mark.parametrize("call, match", [
    (lambda: gp.posterior(np.eye(3), np.ones(3), np.eye(3), noise=-1.0), "noise must be a finite number >= 0, got -1.0"),
    (lambda: gp.posterior(np.eye(3), np.ones(4), np.eye(3), noise=0.1), "y must have one row per training pattern"),
    (lambda: gp.posterior(np.eye(3), np.ones(3), np.eye(2), noise=0.1), r"k_cross must have shape \(M, 3\)"),
    (lambda: gp.log_marginal_likelihood(np.ones((2, 3)), np.ones(2), noise=0.1), "k_train must be a square"),
    (lambda: gp.fit_kernel(np.eye(3), [1.0, np.nan, 0.0], noise=0.1), "y must contain only finite numbers"),
    (lambda: gp.fit_kernel(np.array([[1.0, np.inf], [0.0, 1.0]]), np.ones(2), noise=0.1), "k must contain only finite"),
    (lambda: gp.fit_kernel(-np.eye(2), np.ones(2), noise=0.1), "positive mean diagonal"),
    (lambda: gp.fit_network(NET, X, Y1[:5], noise=0.1), "y must have one row per training pattern"),
    (lambda: gp.fit_network("dnn", X, Y1, noise=0.1), "net must be a network built by netfield.dnn"),
    (lambda: gp.evidence_and_grad(NET, X, Y1, noise=0.1, wrt=("depth",)), "wrt must be a non-empty subset"),
    (lambda: gp.fit_network(NET, X, Y1, noise=0.1, readout="first"), "readout must be 'last', 'mean'"),
])
def test_bad_input_names_argument_value_and_what_is_accepted(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


def test_negative_roundoff_variances_are_reported_not_hidden():
    fit = gp.fit_kernel(np.eye(2), np.ones(2), noise=0.0)
    with pytest.warns(RuntimeWarning, match="negative by roundoff"):
        post = fit.predict(np.eye(2), k_test_diag=np.array([1.0 - 1e-12, 1.0]))
    assert (post.var >= 0).all()
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        fit.predict(np.eye(2), k_test_diag=np.array([1.0, 1.0]))
