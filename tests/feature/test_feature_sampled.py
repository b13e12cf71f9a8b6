"""The Markov-chain single-site solver of the muP saddle point (docs/feature.md F8b, F8c)."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netfield
from netfield.feature import posterior_kernels
from netfield.feature.sampled import solve_sampled
from netfield.feature.single_site import sample_single_site
from netfield.feature.study import TOY, digit_images_task, digit_rows_task, toy_task
from netfield.feature.theory import _jit_residual, _pack, build_problem, whitening_factor
from netfield.feature.transition import order_parameter


def _state(r):
    return _pack(r.problem, jnp.asarray(r.base), jnp.asarray(r.conjugate), jnp.asarray(r.readout_conjugate))


def test_chains_draw_the_single_site_law():
    """HMC's <xi xi^T> of a strongly tilted 3-dimensional single-site law (one pattern, s = 2) equals the
    20^3-node Gauss-Hermite value (spectrally exact here) within 4 standard errors, every entry; the
    standard errors are between-chain (256 independent chains), so a wrong kernel (a sign error in the
    gradient, a missing Metropolis term) shifts the moments by many of them."""
    x, y = np.array([[1.0, 0.5, -0.3]]), np.array([1.0])
    net = netfield.rnn(3, "erf", weight_var=1.5)
    r = posterior_kernels(net, x, y, kappa=0.1, signal=2.0, points=20**3, rule="hermite", replicates=1)
    v = _state(r)
    exact = np.asarray(_jit_residual(r.problem, v)[3]["xixi"])
    assert np.abs(exact - np.eye(3)).max() > 0.2  # far from the untilted N(0, I): the test can fail
    d = sample_single_site(r.problem, v, chains=256, draws=128, warmup=100, key=jax.random.PRNGKey(1))
    per_chain = np.einsum("dci,dcj->cij", d.xi, d.xi) / d.xi.shape[0]
    mean, se = per_chain.mean(0), per_chain.std(0, ddof=1) / np.sqrt(per_chain.shape[0])
    assert np.all(np.abs(mean - exact) < 4 * se), (mean, exact, se)
    assert d.rhat < 1.05 and 0.6 < d.acceptance < 0.95 and d.ess > 0.2 * d.energy.size


@pytest.fixture(scope="module")
def toy_solutions():
    """The toy task at s = 0.4 by QMC (2^15 points, 4 scramblings) and by Markov chains (2^14 draws, 3 seeds)."""
    x, y = toy_task()
    net = netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])
    qmc = posterior_kernels(net, x, y, kappa=TOY["kappa"], signal=0.4, points=2**15, rule="qmc", replicates=4)
    runs = [solve_sampled(lambda s: build_problem(net, x, y, kappa=TOY["kappa"], signal=s, rule="mcmc"), 0.4,
                          samples=2**14, seed=seed, progress=False) for seed in range(3)]
    return qmc, runs


@pytest.mark.slow
def test_sampled_solution_equals_quadrature_on_the_toy_task(toy_solutions):
    """Every kernel entry of each Markov-chain solution within 4 combined errors of the QMC solution (the
    QMC error: 4 scramblings' standard error; the chains' error: the root mean square of the 3 runs'
    stated errors, 45 degrees of freedom, so one entry's unlucky estimate does not decide; test_sampled_error_is_honest
    checks each run's own); the difference to the lazy (GP) kernel is many errors, so a solver that
    stopped at the lazy point, or at a wrong fixed point, fails."""
    qmc, runs = toy_solutions
    stated = np.sqrt(np.mean([r.kernel_error ** 2 for r in runs], axis=0))
    for r in runs:
        assert r.converged and r.sampling["z"] <= 2.0 and r.sampling["rhat"] < 1.05
        err = np.hypot(stated, qmc.kernel_error / 2)
        assert np.all(np.abs(r.kernel - qmc.kernel) < 4 * err + 1e-12), np.max(np.abs(r.kernel - qmc.kernel) / err)
        assert np.max(np.abs(qmc.kernel - qmc.gp_kernel) / err.max()) > 10


@pytest.mark.slow
def test_sampled_error_is_honest(toy_solutions):
    """The stated error (16 groups of chains) against the scatter of 3 independently seeded runs, pooled
    over the entries of the equal-time blocks: their mean square ratio within [1/4, 4] (an error stated 2x
    too small or too large fails)."""
    _, runs = toy_solutions
    idx = np.arange(3)
    K = np.array([r.kernel[idx, idx] for r in runs])  # (runs, T, P, P)
    stated = np.mean([r.kernel_error[idx, idx] ** 2 for r in runs], axis=0)
    ratio = np.mean(K.var(axis=0, ddof=1)) / np.mean(stated)
    assert 0.25 < ratio < 4.0, ratio


def test_posterior_kernels_routes_large_problems_to_markov_chains(monkeypatch):
    """rule='auto' above MAX_QUADRATURE_DIM dimensions goes to the sampled solver; spectrum=True is refused there."""
    from netfield.feature import sampled

    calls = []
    monkeypatch.setattr(sampled, "solve_sampled", lambda prob_at, signal, **kw: calls.append((prob_at(signal), kw)))
    x, lab, _, _ = digit_rows_task(P_train=6, P_test=0, steps=5)
    net = netfield.rnn(5, "erf", weight_var=1.5)
    posterior_kernels(net, x, lab, kappa=1.0, signal=0.5, points=2**12)  # 30 dimensions: 2 groups of 2048
    assert len(calls) == 1 and calls[0][1]["samples"] == 2**12 and calls[0][0].normals.shape[0] == 2**5
    posterior_kernels(net, x[:4], lab[:4], kappa=1.0, signal=0.5, points=2**12, rule="mcmc")
    assert len(calls) == 2
    with pytest.raises(ValueError, match="spectrum"):
        posterior_kernels(net, x, lab, kappa=1.0, signal=0.5, rule="mcmc", spectrum=True)


def test_sampled_solver_rejects_bad_chain_layouts():
    x, y = toy_task()
    net = netfield.rnn(3, "erf")
    at = lambda s: build_problem(net, x, y, kappa=0.1, signal=s, rule="mcmc")
    with pytest.raises(ValueError, match="chains must be a multiple of groups"):
        solve_sampled(at, 0.4, chains=100, groups=8)
    with pytest.raises(ValueError, match="samples must be at least"):
        solve_sampled(at, 0.4, chains=128, samples=256)


def test_digit_rows_task():
    x, lab, xt, lt = digit_rows_task(P_train=10, P_test=6, steps=4, seed=3)
    assert x.shape == (10, 4, 8) and xt.shape == (6, 4, 8)
    assert set(np.unique(np.concatenate([lab, lt]))) == {-1.0, 1.0}
    assert np.sum(np.concatenate([lab, lt]) > 0) == 8
    assert np.isclose(np.mean(np.concatenate([x, xt]) ** 2), 1.0)
    again = digit_rows_task(P_train=10, P_test=6, steps=4, seed=3)
    assert np.array_equal(again[0], x)
    with pytest.raises(ValueError, match="steps must be an integer in 1..8"):
        digit_rows_task(steps=9)


def test_digit_images_task_draws_the_images_of_digit_rows_task():
    x, lab, xt, lt = digit_images_task(P_train=10, P_test=6, seed=3)
    rows = digit_rows_task(P_train=10, P_test=6, steps=8, seed=3)
    assert x.shape == (10, 64) and xt.shape == (6, 64)
    assert np.array_equal(lab, rows[1]) and np.array_equal(lt, rows[3])  # the same images, in the same order
    both = np.concatenate([x, xt])
    assert np.allclose(both.mean(axis=0), 0.0, atol=1e-12) and np.isclose(np.mean(both ** 2), 1.0)
    # the flattened images are the rows task's 8 one-row bands, centred over the drawn set, up to one scale
    bands = np.concatenate([rows[0], rows[2]]).reshape(16, 64)
    bands = bands - bands.mean(axis=0)
    assert np.allclose(both / np.linalg.norm(both), bands / np.linalg.norm(bands), atol=1e-12)


def test_whitening_puts_test_patterns_after_the_training_ones():
    """L L^T = C; with test patterns, the training field h = L xi depends on the training block of C only
    (moving C's test rows, which the tilt does not see, leaves a fixed draw's training field unchanged)."""
    x, lab, xt, _ = digit_images_task(P_train=3, P_test=2)
    prob = build_problem(netfield.rnn(3, "erf"), x, lab, kappa=1.0, signal=1.0, x_test=xt)
    T, P, Ptr = prob.T, prob.P, prob.P_train
    rng = np.random.default_rng(0)
    a = rng.normal(size=(T * P, T * P))
    cm = a @ a.T / (T * P) + 0.1 * np.eye(T * P)
    L = np.asarray(whitening_factor(prob, jnp.asarray(cm)))
    assert np.allclose(L @ L.T, cm, atol=1e-12)
    test = np.array([t * P + mu for t in range(T) for mu in range(Ptr, P)])
    moved = cm.copy()
    bump = 0.05 * rng.normal(size=(test.size, T * P))
    moved[test] += bump
    moved[:, test] += bump.T  # the test rows and columns of C
    assert np.linalg.eigvalsh(moved).min() > 0
    L2 = np.asarray(whitening_factor(prob, jnp.asarray(moved)))
    train = np.setdiff1d(np.arange(T * P), test)
    xi = rng.normal(size=(5, T * P))
    assert np.allclose((xi @ L2.T)[:, train], (xi @ L.T)[:, train], atol=1e-12)
    assert not np.allclose((xi @ L2.T)[:, test], (xi @ L.T)[:, test])  # the test field does move
    plain = np.linalg.cholesky(cm)  # the plain factor mixes the test rows into later training coordinates
    plain2 = np.linalg.cholesky(moved)
    assert not np.allclose((xi @ plain2.T)[:, train], (xi @ plain.T)[:, train])


def test_error_groups_hold_enough_draws():
    """Groups of chains for the error: a divisor of the chains, each with >= max(1024, 16 d) draws."""
    from netfield.feature.sampled import error_groups

    assert error_groups(128, 2**14, 6) == 16
    assert error_groups(128, 2**14, 100) == 8  # 1600 draws per group at most 10 groups: 8 divides 128
    assert error_groups(128, 2**17, 100) == 16
    assert error_groups(128, 2**12, 100) == 2
    assert error_groups(128, 2**11, 100) == 0
    x, lab, _, _ = digit_rows_task(P_train=20, P_test=0, steps=5)
    with pytest.raises(ValueError, match="samples must give at least 2 groups"):
        solve_sampled(lambda s: build_problem(netfield.rnn(5, "erf"), x, lab, kappa=1.0, signal=s, rule="mcmc"), 0.5,
                      samples=2**11)


def test_interrupted_run_resumes_bit_for_bit(tmp_path):
    """A run killed after 3 rounds (the checkpoint holds the state after round 2) and resumed gives exactly
    the numbers of an uninterrupted run; a checkpoint of another setting is refused, naming it."""
    x, y = toy_task()
    net = netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])
    at = lambda s: build_problem(net, x, y, kappa=TOY["kappa"], signal=s, rule="mcmc")
    whole = solve_sampled(at, 0.4, samples=2**13, progress=False)
    calls = []

    def stop_at_third(k):
        calls.append(k)
        if len(calls) == 3:
            raise KeyboardInterrupt

    path = tmp_path / "saddle.npz"
    with pytest.raises(KeyboardInterrupt):
        solve_sampled(at, 0.4, samples=2**13, progress=stop_at_third, checkpoint=path)
    assert path.is_file()
    resumed = solve_sampled(at, 0.4, samples=2**13, progress=False, checkpoint=path, resume=True)
    for name in ("kernel", "overlap", "conjugate", "kernel_error"):
        assert np.array_equal(getattr(resumed, name), getattr(whole, name)), name
    assert len(resumed.sampling["rounds"]) == len(whole.sampling["rounds"])
    with pytest.raises(ValueError, match="another configuration.*seed"):
        solve_sampled(at, 0.4, samples=2**13, seed=1, progress=False, checkpoint=path, resume=True)


def test_start_continues_from_a_solution_at_another_signal():
    """``start``: the continuation runs from a given solution, here down from s = 1.0 (broken, q ~ 0.4) to
    0.8: the first rung is 1.0 - 0.2 / 8, every rung lies between the two signals, and the solution stays
    on the broken branch (q ~ 0.27; the symmetric solution has q = 0, so a solve that restarted from the
    lazy point and stayed symmetric, or walked up instead of down, fails)."""
    x, y = toy_task()
    net = netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])
    kw = {"kappa": TOY["kappa"], "rule": "mcmc", "points": 2**13, "progress": False}
    high = posterior_kernels(net, x, y, signal=1.0, **kw)
    down = posterior_kernels(net, x, y, signal=0.8, start=high, **kw)
    rungs = [e["signal"] for e in down.sampling["rounds"]]
    assert rungs[0] == pytest.approx(1.0 - 0.2 / 8) and all(0.8 <= s < 1.0 for s in rungs) and rungs[-1] == 0.8
    assert down.converged
    assert order_parameter(down.kernel, train_patterns=2) > 0.15
    with pytest.raises(ValueError, match="start must be a FeatureResult of the same network and data"):
        posterior_kernels(netfield.rnn(4, "erf"), x, y, signal=0.8, start=high, **kw)
    with pytest.raises(ValueError, match="start applies to rule='mcmc'"):
        posterior_kernels(net, x, y, kappa=TOY["kappa"], signal=0.8, start=high, rule="qmc", points=2**10)
