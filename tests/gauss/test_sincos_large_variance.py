"""sin / cos kernels stay finite and correct at large pre-activation variances (the closed form
exp(-(cuu + cvv)/2) sinh(cuv) overflowed to 0 * inf = NaN once cuv > ~710)."""

import jax
import numpy as np
import pytest

import netfield
from netfield.gauss.activations import cos_pair, sin_pair


def _mc_kernel(phi, x, depth, weight_var, bias_var, samples=400_000, seed=0):
    """Independent Monte-Carlo of the DNN mean-field recursion: C1 = x x^T / d + bias_var,
    C_{l+1} = weight_var E[phi(u) phi(u)^T] + bias_var, readout E[phi phi^T] (unit input/readout variances)."""
    rng = np.random.default_rng(seed)
    c = x @ x.T / x.shape[1] + bias_var
    for layer in range(depth):
        w, v = np.linalg.eigh(c)
        z = rng.standard_normal((samples, len(c))) @ (v * np.sqrt(np.clip(w, 0, None))).T
        f = phi(z)
        e = f.T @ f / samples
        c = e if layer == depth - 1 else weight_var * e + bias_var
    return c


@pytest.mark.parametrize("name, phi", [("sin", np.sin), ("cos", np.cos)])
def test_sincos_kernels_are_finite_and_match_monte_carlo_at_large_scale(name, phi):
    x = 20 * np.random.default_rng(3).normal(size=(4, 3))  # |x|^2 / d up to ~1500: cuv > 710
    net = netfield.dnn(3, name, weight_var=1.5, bias_var=0.1)
    k = np.asarray(netfield.kernel(net, x))
    assert np.isfinite(k).all()
    mc = _mc_kernel(phi, x, 3, 1.5, 0.1)
    # entries are O(1) averages of bounded functions: MC standard error <= 1/sqrt(4e5) ~ 1.6e-3
    np.testing.assert_allclose(k, mc, atol=1e-2, rtol=0)


def test_pair_functions_match_the_textbook_forms_where_those_are_finite():
    rng = np.random.default_rng(0)
    cuu, cvv = rng.uniform(0.01, 250, 200), rng.uniform(0.01, 250, 200)
    cuv = rng.uniform(-1, 1, 200) * np.sqrt(cuu * cvv)
    env = np.exp(-(cuu + cvv) / 2)
    np.testing.assert_allclose(sin_pair(cuu, cvv, cuv), env * np.sinh(cuv), rtol=1e-13, atol=1e-300)
    np.testing.assert_allclose(cos_pair(cuu, cvv, cuv), env * np.cosh(cuv), rtol=1e-13, atol=1e-300)
    big = np.array([800.0, 1500.0, 1e5])  # variances where the product form gives NaN
    for f, expected in ((sin_pair, 0.5), (cos_pair, 0.5)):
        np.testing.assert_allclose(f(big, big, big), expected * (1 - np.exp(-2 * big)) if f is sin_pair
                                   else expected * (1 + np.exp(-2 * big)), rtol=1e-14)
    g = jax.grad(lambda c: sin_pair(1000.0, 1000.0, c))(999.0)
    assert np.isfinite(g) and g == pytest.approx(0.5 * (np.exp(-1.0) + np.exp(-1999.0)), rel=1e-12)
