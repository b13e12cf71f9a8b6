"""A callable activation is probed once: wrong output shape, non-finite values or failures give a clear
error (they gave a garbage or NaN kernel, or compiled every series order); ``kinks`` must be finite."""

import jax.numpy as jnp
import numpy as np
import pytest

import netfield

X = np.random.default_rng(0).normal(size=(3, 2))


@pytest.mark.parametrize("fn, error, match", [
    (lambda u: u[..., :1], ValueError, r"must act elementwise .* input of shape \(3, 4\) it returned shape \(3, 1\)"),
    (lambda u: u.sum(), ValueError, r"must act elementwise .*returned shape \(\)"),
    (lambda u: u * jnp.nan, ValueError, r"must be finite at ordinary pre-activations, got nan at u = -4"),
    (lambda u: jnp.log(u), ValueError, r"must be finite at ordinary pre-activations, got nan at u = -4"),
    (lambda u: u.undefined, TypeError, r"must be a JAX-traceable function applied elementwise.*AttributeError"),
    (lambda u: u + 1j, TypeError, r"must return real numbers, got dtype complex"),
], ids=["slice", "sum", "nan", "log", "raises", "complex"])
def test_bad_callable_activation_is_rejected(fn, error, match):
    with pytest.raises(error, match=rf"activation <lambda> {match}"):
        netfield.kernel(netfield.dnn(2, fn), X)


@pytest.mark.parametrize("activation", [jnp.tanh, "relu"])
@pytest.mark.parametrize("kinks, error, match", [
    ((float("nan"),), ValueError, r"kinks must be finite real numbers, got nan in \(nan,\)"),
    ((0.0, float("inf")), ValueError, r"kinks must be finite real numbers, got inf"),
    (("a",), TypeError, r"kinks must be a sequence of finite real numbers, got \('a',\)"),
])
def test_non_finite_kinks_are_rejected(activation, kinks, error, match):
    with pytest.raises(error, match=match):
        netfield.dnn(2, activation, kinks=kinks)


def test_a_good_callable_still_works():
    k = np.asarray(netfield.kernel(netfield.dnn(2, lambda u: jnp.tanh(u), kinks=(0.0,)), X))
    ref = np.asarray(netfield.kernel(netfield.dnn(2, "tanh"), X))
    np.testing.assert_allclose(k, ref, rtol=1e-7)
