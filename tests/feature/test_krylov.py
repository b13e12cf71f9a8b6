"""Newton-Krylov steps on the saddle-point map (docs/feature.md F8d) and the noise ratio that ends a rung."""

import jax
import jax.numpy as jnp
import numpy as np

import netfield
from netfield.feature import posterior_kernels
from netfield.feature.krylov import newton_krylov
from netfield.feature.sampled import _noise_ratio, _reweight_share, _surrogate
from netfield.feature.single_site import sample_single_site
from netfield.feature.study import TOY, toy_task
from netfield.feature.theory import _free_index, _jit_residual, _pack, build_problem, lazy_point, solve


def _toy(signal, **kw):
    x, y = toy_task()
    net = netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])
    return build_problem(net, x, y, kappa=TOY["kappa"], signal=signal, **kw)


def _lazy_state(prob):
    k = len(prob.supervised) * prob.P_train
    return _pack(prob, lazy_point(prob), jnp.zeros((prob.T, prob.T, prob.P, prob.P)), jnp.zeros((k, k)))


def test_newton_krylov_finds_the_fixed_point_of_anderson_mixing():
    """On a fixed QMC node set (a deterministic map) Newton-Krylov from the lazy point reaches the fixed
    point Anderson mixing finds, to 1e-8, each of the last steps gaining at least 10x (a wrong
    Jacobian-vector product gives a wrong direction: the steps then stall or gain little)."""
    ref = posterior_kernels(*_toy_args(), kappa=TOY["kappa"], signal=0.4, points=2**12, rule="qmc", replicates=1)
    prob = ref.problem
    ref = solve(prob, init=(ref.base, ref.conjugate, ref.readout_conjugate), tol=1e-11, spectrum=False)
    idx = _free_index(prob)
    v, residuals, converged, first = newton_krylov(prob, _lazy_state(prob), idx, 1e-10, max_iter=20)
    assert converged and first > 0
    target = _pack(prob, jnp.asarray(ref.base), jnp.asarray(ref.conjugate), jnp.asarray(ref.readout_conjugate))
    assert np.abs(np.asarray(v - target)[idx]).max() < 1e-8
    assert len(residuals) <= 16, residuals  # 12 Newton steps measured from 6.9 to 5e-12
    ratios = np.array(residuals[1:]) / np.array(residuals[:-1])
    assert np.all(ratios[-5:] < 0.1), residuals  # near the root each step gains GMRES's 10x (KRYLOV_RTOL)


def test_newton_krylov_stays_in_its_trust_region():
    """Steps on draws reweighted from the lazy point of a strong signal (s = 1.5): every accepted state
    keeps the required share of the draws, and the residual falls."""
    prob = _toy(1.5, rule="mcmc")
    v0 = _lazy_state(prob)
    draws = sample_single_site(prob, v0, chains=64, draws=64, warmup=100, key=jax.random.PRNGKey(0))
    sprob = _surrogate(prob, v0, draws.xi.reshape(-1, draws.xi.shape[2]))
    idx = _free_index(prob)
    v, residuals, _, _ = newton_krylov(sprob, v0, idx, 1e-6, floor=0.5, keep=0.8)
    assert len(residuals) > 1 and residuals[-1] < residuals[0]
    assert _reweight_share(sprob, v) >= 0.5


def test_noise_ratio_tells_a_settled_state_from_a_far_one():
    """At a state within the draws' noise of the fixed point (the QMC solution, error ~1e-4 against the
    draws' ~1e-2) the residuals of two halves of the chains are independent noise: ratio ~1; at the lazy
    point of the same signal (Qt = 0, the map's residual ~0.5) it is many times larger."""
    exact = posterior_kernels(*_toy_args(), kappa=TOY["kappa"], signal=0.4, points=2**15, rule="qmc", replicates=1)
    prob = _toy(0.4, rule="mcmc")
    idx = _free_index(prob)
    near = _pack(prob, jnp.asarray(exact.base), jnp.asarray(exact.conjugate), jnp.asarray(exact.readout_conjugate))
    d = sample_single_site(prob, near, chains=128, draws=128, warmup=150, key=jax.random.PRNGKey(3))
    assert 0.7 < _noise_ratio(prob, near, d.xi, idx) < 1.5
    far = _lazy_state(prob)
    assert float(np.abs(np.asarray(_jit_residual(prob, far)[1])[idx]).max()) > 0.1
    d = sample_single_site(prob, far, chains=128, draws=128, warmup=150, key=jax.random.PRNGKey(3))
    assert _noise_ratio(prob, far, d.xi, idx) > 5


def _toy_args():
    x, y = toy_task()
    net = netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])
    return net, x, y
