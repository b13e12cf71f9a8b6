"""Hyper-parameters are pytree leaves: jax.grad of a kernel works and matches finite differences."""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netfield as nf

X = np.random.default_rng(3).normal(size=(4, 3))
X_SEQ = np.random.default_rng(4).normal(size=(3, 3, 2))


def _central(f, w, h=1e-5):
    return (float(f(w + h)) - float(f(w - h))) / (2 * h)


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_grad_of_kernel_wrt_weight_var_matches_finite_difference(act):
    net = nf.dnn(3, act, weight_var=1.5, bias_var=0.2, input_var=1.1)

    def total(w):
        return jnp.sum(nf.kernel(net.replace(weight_var=w), X))

    g = float(jax.grad(total)(1.5))
    assert math.isfinite(g) and g != 0.0
    assert g == pytest.approx(_central(total, 1.5), rel=1e-6)


@pytest.mark.parametrize("hyper", ["bias_var", "input_var", "readout_var", "readout_bias_var"])
def test_grad_wrt_every_hyper_parameter(hyper):
    net = nf.rnn(3, "relu", weight_var=1.5, bias_var=0.2, input_var=1.1, readout_var=0.9, readout_bias_var=0.1)
    w0 = float(getattr(net, hyper))

    def total(w):
        return jnp.sum(nf.kernel(net.replace(**{hyper: w}), X_SEQ, readout="all"))

    g = float(jax.grad(total)(w0))
    assert math.isfinite(g)
    assert g == pytest.approx(_central(total, w0), rel=1e-6)


def test_grad_through_the_network_pytree():
    """jax.grad with respect to the Network itself returns a Network of gradients."""
    net = nf.dnn(2, "erf", weight_var=1.3, bias_var=0.1)
    grads = jax.grad(lambda n: jnp.sum(nf.kernel(n, X)))(net)
    assert isinstance(grads, nf.Network)
    assert grads.depth == 2 and grads.activation == net.activation
    leaves = jax.tree_util.tree_leaves(grads)
    assert len(leaves) == 5 and all(math.isfinite(float(v)) for v in leaves)
    # readout_bias_var enters as + readout_bias_var in every entry: its gradient is N^2
    assert float(grads.readout_bias_var) == pytest.approx(X.shape[0] ** 2, rel=1e-12)
    # readout_var multiplies E[phi phi]: its gradient is sum(K - readout_bias_var) / readout_var
    k = np.asarray(nf.kernel(net, X))
    assert float(grads.readout_var) == pytest.approx(k.sum() / net.readout_var, rel=1e-12)


def test_traced_kernel_equals_concrete_kernel():
    """Inside jit the generic interpreter runs (traced hyper-parameters); same numbers as the fused path."""
    net = nf.dnn(4, "erf", weight_var=1.5, bias_var=0.2)
    traced = jax.jit(lambda w: nf.kernel(net.replace(weight_var=w), X))(1.5)
    np.testing.assert_allclose(np.asarray(traced), np.asarray(nf.kernel(net, X)), rtol=0, atol=1e-13)
