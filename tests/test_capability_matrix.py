"""Every public capability on every architecture (issues 17, 21): a result, or the documented error.

Architectures: dnn, rnn, gru, lstm, transformer, conv, batchnorm_mlp and a program written by hand.
Theories are checked against the finite-width interpreter (sampled networks of the same program):
the mean over networks of the empirical kernel must lie within 5 combined standard errors (sampling
s.e. and the theory's own numerical error estimate) plus the O(1/n) finite-width bias bound. A
capability derived only for chain programs (DNN / RNN shapes) must raise ``netfield.UnsupportedProgram``
for the others, with a message that names what is not covered and an alternative; so must the posterior
sampler for programs outside its model (docs/feature.md).
"""

from __future__ import annotations

import numpy as np
import pytest

import netfield as nf
from netfield import gp
from netfield.feature import posterior_kernels, posterior_samples

RNG = np.random.default_rng(17)
SEQ = RNG.normal(size=(3, 3, 2))        # 3 sequences, 3 steps, d = 2
STATIC = RNG.normal(size=(3, 4))        # 3 patterns, d = 4
Y = np.array([0.5, -0.3, 0.8])


def _shared_tanh(p, x, hp):
    """A program written by hand: three tanh layers sharing one matrix, layer norm before the readout."""
    h = p.input("U", x, var=1.0) + p.bias("b", var=0.1)
    for layer in range(1, 4):
        h = p.tap("h", layer, p.matmul("W", p.nonlin("tanh", h), var=hp.weight_var) + p.bias("b", var=0.1))
    return p.readout(p.nonlin("relu", p.layernorm(h)), var=1.0)


def _hand_chain(p, x, hp):
    """A DNN written by hand (not with netfield.dnn): recognised as a chain by its shape."""
    h = p.tap("h", 1, p.input("U1", x, var=hp.input_var) + p.bias("b1", var=0.2))
    for layer in range(2, 4):
        h = p.matmul(f"W{layer}", p.nonlin("erf", h), var=hp.weight_var) + p.bias(f"b{layer}", var=0.2)
        p.tap("h", layer, h)
    return p.readout(p.nonlin("erf", h), var=1.0)


ARCHS = {
    "dnn": (nf.dnn(3, "erf", weight_var=1.5, bias_var=0.2), SEQ),
    "rnn": (nf.rnn(3, "erf", weight_var=1.5, bias_var=0.2), SEQ),
    "gru": (nf.gru(3), SEQ),
    "lstm": (nf.lstm(3), SEQ),
    "transformer": (nf.transformer(1, "relu", tie_query_key=True), SEQ),
    "conv": (nf.conv(2, "relu", weight_var=2.0, filter_shape=(3,)), SEQ),
    "batchnorm_mlp": (nf.batchnorm_mlp(2, "relu", weight_var=2.0), STATIC),
    "user": (nf.architecture(_shared_tanh, weight_var=1.5), STATIC),
    "user_chain": (nf.architecture(_hand_chain, weight_var=1.5, input_var=1.0), STATIC),
}
CHAINS = {"dnn", "rnn", "user_chain"}
WIDTH, NETWORKS = 256, 64


@pytest.fixture(scope="module")
def sampled():
    """Per architecture: the theory and sampled networks (readout 'all' and every 'h' tap pair)."""
    out = {}
    for name, (net, x) in ARCHS.items():
        mf = nf.mean_field(net, x, qmc_points=2**11)
        ens = nf.sample(net, x, width=WIDTH, networks=NETWORKS, seed=1, readout="all", preactivations="all",
                        ntk=True)
        out[name] = (mf, ens)
    return out


def _agrees(theory, theory_err, samples):
    """|mean - theory| <= 5 s.e. + theory error + bias bound (the finite-width bias is O(1/n))."""
    mean = samples.mean(axis=0)
    se = samples.std(axis=0, ddof=1) / np.sqrt(samples.shape[0])
    scale = np.abs(theory).max()
    bias = 4.0 * scale / WIDTH
    excess = np.abs(mean - theory) - (5 * se + theory_err + bias)
    return excess.max() <= 0, float(excess.max())


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_kernel_readout_all_and_taps_match_sampled_networks(name, sampled):
    mf, ens = sampled[name]
    net, x = ARCHS[name]
    k_all = np.asarray(mf.readout_kernel("all"))
    assert k_all.shape == ens.readout.shape[1:]
    np.testing.assert_allclose(np.asarray(nf.kernel(net, x, readout="all", qmc_points=2**11)), k_all,
                               atol=10 * mf.max_error + 1e-12)
    ok, excess = _agrees(k_all, 2 * mf.max_error, ens.readout)
    assert ok, f"readout 'all' off by {excess:.3g} beyond the error bars"
    steps = mf.steps
    assert steps >= 1 and sorted(ens.preactivations) == [(t, s) for t in range(1, steps + 1)
                                                          for s in range(t, steps + 1)]
    for (t, s), emp in ens.preactivations.items():
        ok, excess = _agrees(np.asarray(mf.preactivation(t, s)), 2 * mf.max_error, emp)
        assert ok, f"tap h({t}, {s}) off by {excess:.3g} beyond the error bars"
    assert mf.two_time(0).shape == (steps, steps)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_ntk_matches_sampled_networks(name, sampled):
    """The analytic NTK (docs/ntk.md) against the empirical NTK of the same sampled networks; batch norm
    over this 3-pattern batch has an infinite NTK: the documented UnsupportedProgram (docs/ntk.md 4)."""
    mf, ens = sampled[name]
    if name == "batchnorm_mlp":
        with pytest.raises(nf.UnsupportedProgram, match=r"NTK of batch norm is infinite"):
            mf.ntk("all")
        return
    theory = np.asarray(mf.ntk("all"))
    assert theory.shape == ens.ntk.shape[1:]
    ok, excess = _agrees(theory, 2 * float(mf.ntk_error("all").max()), ens.ntk)
    assert ok, f"NTK 'all' off by {excess:.3g} beyond the error bars"


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_training_prediction_for_every_network(name):
    """netfield.train (docs/training.md) on every architecture: finite predictions that start at the prior
    (t = 0: mean 0, covariance the NNGP kernel) and fit the training targets at t = infinity."""
    net, x = ARCHS[name]
    if name == "batchnorm_mlp":
        x = RNG.normal(size=(6, 8))  # a batch whose centred patterns span >= 3 dimensions
    y = np.sin(np.arange(len(x), dtype=float))
    # the checks are identities (prior = the kernel at the same settings, a fit at t = inf), whatever the
    # quasi-Monte-Carlo accuracy: 2^11 points, the sampled fixture's, as in the kernel call below
    pred = nf.train(net, x, y, x[:2], times=[0, 10, np.inf], qmc_points=2**11)
    assert np.all(np.isfinite(pred.mean)) and np.all(np.isfinite(pred.cov))
    np.testing.assert_allclose(pred.mean[0], 0.0, atol=1e-12)
    prior = np.asarray(nf.kernel(net, np.concatenate([x, x[:2]]), qmc_points=2**11))[-2:, -2:]  # joint batch (batch norm)
    np.testing.assert_allclose(pred.cov[0], prior, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(pred.train_mean[-1][:, 0], y, atol=1e-6)


def _gradient_checked_elsewhere() -> set:
    """The networks whose evidence gradient tests/gp/test_gp_evidence_grad_any_network.py checks against
    finite differences (read from that file, so the two stay in step)."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).parent / "gp" / "test_gp_evidence_grad_any_network.py"
    spec = importlib.util.spec_from_file_location("_evidence_grad_tests", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return set(module.NETS)


GRADIENT_CHECKED = _gradient_checked_elsewhere()


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_gp_takes_every_network(name):
    net, x = ARCHS[name]
    fit = gp.fit_network(net, x, Y, noise=0.1)
    assert np.isfinite(fit.log_marginal_likelihood)
    if name not in GRADIENT_CHECKED:
        # gated and attention networks: their evidence and its gradient are checked, more strictly (value
        # to 1e-10, gradient against a Richardson finite difference to 1e-6), by
        # tests/gp/test_gp_evidence_grad_any_network.py; compiling the gradient of a GRU's evidence again
        # here cost the suite ~60 s (it is the largest single compilation of the suite)
        value, grads = gp.evidence_and_grad(net, x, Y, noise=0.1, wrt=("weight_var", "noise"))
        assert np.isclose(value, fit.log_marginal_likelihood, rtol=1e-6) and set(grads) == {"weight_var", "noise"}
        assert all(np.isfinite(v) for v in grads.values())
    reg = gp.NNGPRegressor(net=net, noise=0.1)
    if x.ndim == 2:
        mean = reg.fit(x, Y).predict(x[:2])
        assert mean.shape == (2,)
        assert np.asarray(gp.NetworkKernel(net=net)(x)).shape == (3, 3)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_criticality_probe_measures_every_network(name):
    """Measured Lyapunov exponents and correlation gaps of any program (given inputs); the q_t of the
    probe are those of netfield.sample's networks (same seed, same matrices)."""
    net, x = ARCHS[name]
    if len(net.program(x).taps["h"]) < 2:  # one transformer block: no growth between steps to measure
        with pytest.raises(ValueError, match=r"tap must name a family of at least two tapped variables"):
            nf.criticality.probe(net, width=16, networks=4, x=x)
        net = net.rebuild(blocks=2)
    p = nf.criticality.probe(net, width=16, networks=4, seed=3, x=x)
    steps = len(net.program(x).taps["h"])
    assert p.growth.shape == p.q.shape == p.eps.shape == (4, steps) and np.all(np.isfinite(p.growth))
    ens = nf.sample(net, x, width=16, networks=4, seed=3, preactivations="equal", method="weights")
    for t in range(1, steps + 1):
        np.testing.assert_allclose(p.q[:, t - 1], ens.preactivation(t)[:, 0, 0], rtol=1e-10)


@pytest.mark.parametrize("name", sorted(ARCHS))
def test_chain_theories_work_or_raise_unsupported(name):
    net, x = ARCHS[name]
    # one pattern for the chains (cheap); valid inputs of the others (batch norm needs a batch of >= 2:
    # one pattern is a clear ValueError about x, not the UnsupportedProgram checked here)
    x1 = x[:1] if name in CHAINS else x
    calls = {
        "one_loop": lambda: nf.one_loop(net, x1),
        "criticality": lambda: nf.mean_field_criticality(net),
        "probe": lambda: nf.criticality.probe(net, width=16, networks=4),
        "posterior_kernels": lambda: posterior_kernels(net, x1, np.ones(len(x1)), kappa=0.5),
    }
    for label, call in calls.items():
        if name in CHAINS:
            assert call() is not None, label
        else:
            with pytest.raises(nf.UnsupportedProgram, match=r"derived for chain programs.*Use .* instead"):
                call()


@pytest.mark.parametrize("name", sorted(ARCHS) + ["conv_flatten"])
def test_posterior_sampler_takes_every_network(name):
    """The HMC posterior sampler runs every program of its model (docs/feature.md); the others raise
    UnsupportedProgram (the cases: tests/feature/test_posterior_any_program.py)."""
    if name == "conv_flatten":
        net, x = nf.conv(2, "relu", filter_shape=(3,), readout="flatten"), SEQ
        with pytest.raises(nf.UnsupportedProgram, match=r"reads flattened rows.*Use netfield.sample .* instead"):
            posterior_samples(net, x, Y, width=8, kappa=0.5, chains=1, samples=1, burn_in=0)
        return
    net, x = ARCHS[name]
    post = posterior_samples(net, x, Y, width=8, kappa=0.5, x_test=x[:1] + 0.1, chains=2, samples=2, thin=1,
                             burn_in=2)
    program = net.program(x)
    T, R = len(program.taps["h"]), len(program.readouts)
    assert post.kernel.shape[:2] == (T, T) and post.kernel.shape[2] % 4 == 0  # 4 patterns: rows per pattern
    assert post.overlap.shape == (R, R, 4, 4) and post.prediction.shape == (R, 4)
    assert all(np.isfinite(getattr(post, f)).all() for f in ("kernel", "overlap", "prediction", "acceptance"))
