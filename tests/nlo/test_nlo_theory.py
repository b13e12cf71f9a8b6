"""The one-loop theory (netfield.nlo.nlo) against exact results: PDLT recursions, deep linear nets, Isserlis,
closed-form erf moments, and bad input. Theory vs simulation is in test_nlo_vs_simulation.py."""

import jax.numpy as jnp
import numpy as np
import pytest

import netfield
from netfield.gauss.activations import get_activation
from netfield.nlo import nlo, observables
from netfield.nlo.moments import triu_pairs, value_and_grad_fn, value_grad_hessian_fn
from netfield.nlo.pdlt import deep_linear, pdlt

X1 = np.ones((1, 1))


@pytest.mark.parametrize("activation", ["tanh", "erf", "gelu"])
@pytest.mark.parametrize("depth, weight_var, bias_var", [(2, 1.5, 0.5), (6, 1.5, 0.5), (5, 4.0, 0.05)])
def test_general_formalism_equals_pdlt_recursions(activation, depth, weight_var, bias_var):
    net = netfield.dnn(depth, activation, weight_var=weight_var, bias_var=bias_var, input_var=0.5,
                       readout_var=0.7, readout_bias_var=0.1)
    r, p = nlo(net, X1), pdlt(net, X1)
    scale = np.abs(p.kernel).max()
    assert np.allclose(r.kernel, p.kernel, rtol=0, atol=1e-12 * scale)
    assert np.allclose(r.variance, p.variance, rtol=1e-10, atol=1e-10 * scale**2)
    assert np.allclose(r.mean_shift, p.shift, rtol=1e-10, atol=1e-10 * scale)
    # a DNN has no noise-response term (docs/theory.md 4.1: N depends only on the previous layer)
    assert np.allclose(r.noise_response, 0.0, atol=1e-10 * scale)


@pytest.mark.parametrize("depth", [1, 2, 5])
def test_deep_linear_network_is_exact(depth):
    net = netfield.dnn(depth, "linear", weight_var=1.3, bias_var=0.0, input_var=0.7, readout_var=0.9)
    x = np.array([[1.0, -2.0, 0.5]])
    r, exact = nlo(net, x), deep_linear(net, x)
    assert np.allclose(r.kernel, exact.kernel, rtol=1e-13)
    assert np.allclose(r.variance, exact.variance, rtol=1e-10)  # V = 2 (l - 1) K^2
    assert np.allclose(r.mean_shift, 0.0, atol=1e-10 * exact.kernel.max())  # G1 = 0


def test_mean_field_values_equal_the_mean_field_interpreter():
    x = np.array([[0.3, -1.0], [1.2, 0.4]])
    for arch in ("dnn", "rnn"):
        net = getattr(netfield, arch)(4, "tanh", weight_var=1.7, bias_var=0.3, readout_var=0.8, readout_bias_var=0.2)
        r = nlo(net, x)
        o = r.observables
        K = np.asarray(netfield.kernel(net.replace(readout_var=1.0, readout_bias_var=0.0), x, readout="all"))
        assert np.allclose(r.kernel, o.const + o.scale * K[o.u, o.v], atol=1e-12)


def test_sequence_inputs_enter_every_step_of_the_rnn():
    x = np.random.default_rng(0).normal(size=(1, 3, 2))
    net = netfield.rnn(3, "erf", weight_var=1.2, bias_var=0.2, input_var=0.8)
    o = observables(net, x)
    i = o.index("hidden", 2, 3)
    assert np.isclose(o.const[i], 0.2 + 0.8 * x[0, 1] @ x[0, 2] / 2)  # shared U: x_2 . x_3 enters C(2, 3)
    r = nlo(net, x)
    assert np.all(np.isfinite(r.covariance)) and r.covariance.shape == (len(o), len(o))


def test_rnn_equal_time_covariance_exceeds_the_dnn_by_the_cross_time_noise():
    """docs/theory.md eq. 4.1d:
    Var_RNN(K_TT) - Var_DNN(K_TT) = sum_{t != s} R_(TT),(tt) R_(TT),(ss) N_(tt),(ss)."""
    kw = {"weight_var": 1.5, "bias_var": 0.5, "input_var": 0.5}
    d, r = nlo(netfield.dnn(5, "tanh", **kw), X1), nlo(netfield.rnn(5, "tanh", **kw), X1)
    o = r.observables
    eq = [o.index("hidden", t, t) for t in range(2, 6)]
    iT = o.index("hidden", 5, 5)
    extra = sum(r.response[iT, i] * r.response[iT, j] * r.noise[i, j] for i in eq for j in eq if i != j)
    var_dnn = d.variance[d.observables.index("hidden", 5, 5)]
    # cross-time entries also feed K_TT through R in the RNN only via equal-time rows: rows (T,T) touch (t,t)
    assert np.isclose(r.variance[iT] - var_dnn, extra, rtol=1e-8)
    assert extra > 0


def test_isserlis_four_point_moment_and_its_derivative():
    rng = np.random.default_rng(1)
    A = rng.normal(size=(4, 4))
    S = A @ A.T / 4 + 0.3 * np.eye(4)
    theta = jnp.asarray(S[triu_pairs(4)][None])
    val, grad = value_and_grad_fn(lambda h: h, 4, (0, 1, 2, 3))(theta)
    exact = S[0, 1] * S[2, 3] + S[0, 2] * S[1, 3] + S[0, 3] * S[1, 2]
    assert np.isclose(float(val[0]), exact, rtol=1e-12)
    # d/dS_01 of the Isserlis sum is S_23 (one covariance entry, both S_01 and S_10 move)
    rows, cols = triu_pairs(4)
    e01 = int(np.flatnonzero((rows == 0) & (cols == 1))[0])
    assert np.isclose(float(grad[0, e01]), S[2, 3], rtol=1e-12)


def test_erf_two_point_moment_and_price_derivatives_match_closed_forms():
    Cuu, Cvv, Cuv = 1.3, 0.7, 0.4
    theta = jnp.asarray([[Cuu, Cuv, Cvv]])
    val, grad, hess = value_grad_hessian_fn(get_activation("erf").fn, 2, (0, 1))(theta)
    det = (1 + 2 * Cuu) * (1 + 2 * Cvv)
    assert np.isclose(float(val[0]), 2 / np.pi * np.arcsin(2 * Cuv / np.sqrt(det)), rtol=1e-10)
    # Price: d<erf erf>/dC_uv = <erf' erf'> = (4/pi) / sqrt(det - 4 C_uv^2)
    assert np.isclose(float(grad[0, 1]), 4 / np.pi / np.sqrt(det - 4 * Cuv**2), rtol=1e-9)
    assert np.isfinite(np.asarray(hess)).all()


def test_tanh_moments_converge_under_rule_refinement():
    """The default rules against finer ones (the accuracy quoted in moments.py)."""
    rng = np.random.default_rng(0)
    for k, slots, fine, tol in [(2, (0, 0, 1, 1), 200, 1e-8), (3, (0, 1, 2, 2), 64, 3e-5), (4, (0, 1, 2, 3), 40, 3e-4)]:
        A = rng.normal(size=(k, k))
        S = A @ A.T / k + 0.5 * np.eye(k)
        S *= 1.5 / np.mean(np.diag(S))
        theta = jnp.asarray(S[triu_pairs(k)][None])
        v0, g0 = value_and_grad_fn(jnp.tanh, k, slots)(theta)
        v1, g1 = value_and_grad_fn(jnp.tanh, k, slots, fine)(theta)
        assert abs(float(v0[0] - v1[0])) < tol
        assert np.abs(np.asarray(g0 - g1)).max() < 10 * tol


def test_bad_input_is_rejected_with_a_clear_message():
    with pytest.raises(ValueError, match="relu.*kinks"):
        nlo(netfield.dnn(3, "relu"), X1)
    with pytest.raises(ValueError, match="singular.*duplicate"):
        nlo(netfield.rnn(3, "tanh", bias_var=0.1), np.ones((2, 2)))
    with pytest.raises(ValueError, match="zero mean-field variance.*raise bias_var or input_var"):
        nlo(netfield.dnn(2, "erf"), np.zeros((2, 3)))
    with pytest.raises(ValueError, match="at most 24 nodes"):
        nlo(netfield.rnn(5, "tanh", bias_var=0.1), np.random.default_rng(0).normal(size=(5, 2)))
    with pytest.raises(ValueError, match="lengths"):
        nlo(netfield.rnn(3, "tanh"), [np.ones((2, 1)), np.ones((3, 1))])
    r = nlo(netfield.dnn(2, "tanh", bias_var=0.1), X1)
    with pytest.raises(ValueError, match="width must be a positive number"):
        r.mean_at(0)
    with pytest.raises(KeyError, match="no fluctuating hidden entry"):
        r.index("hidden", 1, 1)
    with pytest.raises(ValueError, match="PDLT recursions are for a DNN"):
        pdlt(netfield.rnn(2, "tanh"), X1)


def test_tiny_variances_are_not_called_duplicates():
    """Issue 19: distinct inputs of scale 1e-7 with bias_var 1e-14 were refused as 'duplicate' (an absolute
    1e-12 threshold on the covariance's smallest eigenvalue); the theory is scale-covariant: for a linear
    network the covariance scales exactly with the inputs' variance (checked against unit-scale inputs)."""
    x = np.random.default_rng(5).normal(size=(2, 3))
    small = nlo(netfield.dnn(2, "linear", bias_var=1e-14), 1e-7 * x)
    unit = nlo(netfield.dnn(2, "linear", bias_var=1.0), x)
    np.testing.assert_allclose(np.asarray(small.kernel) / 1e-14, np.asarray(unit.kernel), rtol=1e-9)
    assert np.all(np.isfinite(np.asarray(small.covariance)))
