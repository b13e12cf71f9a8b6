"""The Mehler-series path (gauss/series.py) against the panel rule and its own error bound."""

import jax.numpy as jnp
import numpy as np
import pytest

import netfield as nf
from netfield.gauss import pair, series
from netfield.gauss.expect import _series_pair

RNG = np.random.default_rng(3)


@pytest.mark.parametrize("name", ["tanh", "gelu", "softplus", "swish", "sigmoid"])
def test_series_matches_panels_on_kernel_blocks(name):
    act = nf.get_activation(name)
    q1, q2 = RNG.uniform(0.2, 3.0, size=12), RNG.uniform(0.2, 3.0, size=9)
    c = RNG.uniform(-1, 1, size=(12, 9))
    c[0, 0], c[1, 1], c[2, 2] = 1.0, -1.0, 1 - 1e-9  # the series' hardest points: |c| -> 1
    cov = c * np.sqrt(q1[:, None] * q2[None, :])
    fast = _series_pair(act, jnp.asarray(q1)[:, None], jnp.asarray(q2)[None, :], jnp.asarray(cov))
    assert fast is not None
    slow = pair(act, q1[:, None], q2[None, :], cov, method="panels")
    scale = np.sqrt(np.outer(pair(act, q1, q1, q1), pair(act, q2, q2, q2)))
    assert np.max(np.abs(np.asarray(fast) - np.asarray(slow)) / scale) < 1e-9


def test_series_declines_when_its_bound_fails():
    """Large variances make tanh nearly a step: the Hermite tail is too heavy, panels take over."""
    act = nf.get_activation("tanh")
    assert series.choose_order(act, np.array([1.0, 200.0])) is None
    q = jnp.array([1.0, 200.0])
    cov = jnp.array([[1.0, 5.0], [5.0, 200.0]])
    auto = pair(act, q[:, None], q[None, :], cov)
    panels = pair(act, q[:, None], q[None, :], cov, method="panels")
    np.testing.assert_allclose(np.asarray(auto), np.asarray(panels), rtol=1e-12)


def test_kinked_activations_never_use_series():
    assert not series.applies(nf.get_activation("elu"))
    assert not series.applies(nf.get_activation("relu"))
    assert series.applies(nf.get_activation("tanh"))


def test_parseval_tail_bounds_the_truncation_error():
    act = nf.get_activation("tanh")
    q = jnp.array([2.0])
    a, second = series.coefficients(act, q, 64)
    tail = float(second[0] - jnp.sum(a[0] ** 2))
    exact = float(pair(act, 2.0, 2.0, 2.0 * 0.9, method="panels"))
    truncated = float(jnp.sum(a[0] ** 2 * 0.9 ** jnp.arange(65)))
    assert 0 <= abs(exact - truncated) <= tail * 0.9 ** 65 + 1e-12


def test_numerical_kernel_auto_equals_panels():
    x = RNG.normal(size=(7, 4))
    for name in ["tanh", "softplus"]:
        net = nf.dnn(4, name, weight_var=1.8, bias_var=0.2)
        auto = np.asarray(nf.kernel(net, x))
        panels = np.asarray(nf.kernel(net, x, method="panels"))
        assert np.abs(auto - panels).max() < 1e-9 * np.abs(panels).max()
