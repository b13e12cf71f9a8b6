"""Parameters of a finite network (netfield.finite.parameters): scales, keys, outputs, and the hidden
network being netfield.sample's."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netfield as nf
from netfield.finite.netsor import _sample_matrices, readout_kernel, run_program, sample_program
from netfield.finite.parameters import (
    check_parameterization,
    network_outputs,
    readout_outputs,
    sample_parameters,
    scales,
)
from netfield.meanfield.result import readout_rows

RNG = np.random.default_rng(3)
X = RNG.normal(size=(3, 2))
DNN = nf.dnn(2, "erf", weight_var=1.7, bias_var=0.3, input_var=0.8, readout_var=1.3, readout_bias_var=0.2)


def test_scales_follow_the_conventions():
    program = DNN.program(X)
    s = {k: float(v) for k, v in scales(program, 8).items()}
    assert set(s) == {"U1", "b1", "W2", "b2", "V", "bo"}
    assert s["W2"] == pytest.approx(np.sqrt(1.7 / 8)) and s["U1"] == pytest.approx(np.sqrt(0.8 / 2))
    assert s["b1"] == pytest.approx(np.sqrt(0.3)) and s["V"] == pytest.approx(np.sqrt(1.3 / 8))
    assert s["bo"] == pytest.approx(np.sqrt(0.2))
    # flatten: V is (n, P) with scale sqrt(var / (n P)), P = positions read at once
    conv = nf.conv(1, filter_shape=(2,), readout="flatten", readout_var=2.0).program(RNG.normal(size=(2, 3, 2)))
    om = sample_parameters(conv, jax.random.PRNGKey(0), 5)
    assert om["V"].shape == (5, 3) and float(scales(conv, 5)["V"]) == pytest.approx(np.sqrt(2.0 / 15))


def test_keys_hidden_first_then_readout_outputs_extend():
    program = DNN.program(X)
    key = jax.random.PRNGKey(11)
    one, three = sample_parameters(program, key, 6), sample_parameters(program, key, 6, outputs=3)
    assert list(one) == [*program.matrices, "V", "bo"]
    assert one["V"].shape == (6,) and one["bo"].shape == () and three["V"].shape == (6, 3)
    assert three["bo"].shape == (3,)
    for name in program.matrices:  # hidden draws do not depend on the readout
        np.testing.assert_array_equal(one[name], three[name])
        np.testing.assert_array_equal(one[name], jax.random.normal(jax.random.fold_in(key, list(one).index(name)),
                                                                    one[name].shape))
    np.testing.assert_array_equal(one["V"], three["V"][:, 0])  # output 0 is the single-output network
    assert float(jnp.abs(three["V"][:, 1] - three["V"][:, 0]).max()) > 0.1
    hidden = _sample_matrices(program, key, 6, jnp.float64)  # the finite interpreter's s * omega
    s = scales(program, 6)
    for name in program.matrices:
        np.testing.assert_array_equal(hidden[name], s[name] * one[name])


def test_outputs_written_out_and_in_both_parameterizations():
    net = nf.dnn(1, "tanh", bias_var=0.4, readout_var=0.9, readout_bias_var=0.3)
    program, n = net.program(X), 7
    om = sample_parameters(program, jax.random.PRNGKey(2), n, outputs=2)
    s = {k: float(v) for k, v in scales(program, n).items()}
    h = np.tanh(s["U1"] * np.asarray(om["U1"]) @ X.T + s["b1"] * np.asarray(om["b1"])[:, None])  # (n, N)
    want = s["V"] * h.T @ np.asarray(om["V"]) + s["bo"] * np.asarray(om["bo"])  # (N, K)
    rows = readout_rows(program, "last")
    got = network_outputs(program, om, n, rows)
    np.testing.assert_allclose(got, want, rtol=1e-13, atol=1e-14)
    theta = {k: s[k] * v for k, v in om.items()}
    np.testing.assert_allclose(network_outputs(program, theta, n, rows, parameterization="standard"), want,
                               rtol=1e-13, atol=1e-14)


def test_flatten_and_shared_readouts():
    conv = nf.conv(1, filter_shape=(2,), readout="flatten", bias_var=0.2, readout_bias_var=0.1)
    program, n = conv.program(RNG.normal(size=(2, 3, 2))), 4
    om = sample_parameters(program, jax.random.PRNGKey(5), n)
    s = scales(program, n)
    theta = {k: s[k] * v for k, v in om.items()}
    values = run_program(program, theta, n)
    h = np.asarray(values[program.readout.arg])  # (n, N * P), rows pattern-major
    want = [float(s["V"]) * np.sum(np.asarray(om["V"]) * h[:, 3 * a:3 * a + 3]) + float(theta["bo"]) for a in range(2)]
    np.testing.assert_allclose(readout_outputs(program, values, theta, readout_rows(program, "last")), want,
                               rtol=1e-13)
    # an RNN's readouts at every step share V and b_o: one parameter each
    rnn = nf.rnn(3, "erf").program(RNG.normal(size=(2, 3, 2)))
    assert len(rnn.readouts) == 3 and [k for k in sample_parameters(rnn, jax.random.PRNGKey(0), 3)
                                       if k not in rnn.matrices] == ["V", "bo"]


@pytest.mark.parametrize("net, x", [
    (DNN, X),
    (nf.transformer(1, bias_var=0.1, readout_bias_var=0.2), RNG.normal(size=(2, 3, 2))),
])
def test_hidden_network_is_sample_programs(net, x):
    """The readout's conditional kernel of the forward pass with s * omega equals sample_program's for the
    same seed and network index (the same hidden matrices, bit for bit)."""
    program, n, seed = net.program(x), 12, 7
    ens = sample_program(program, n, networks=3, seed=seed)
    s = scales(program, n)
    for i in range(3):
        om = sample_parameters(program, jax.random.fold_in(jax.random.PRNGKey(seed), i), n)
        values = run_program(program, {k: s[k] * v for k, v in om.items()}, n)
        np.testing.assert_allclose(readout_kernel(program, values, n), ens.readout[i], rtol=1e-13, atol=1e-15)


def test_parameterization_is_checked():
    assert check_parameterization("standard") == "standard"
    for bad in ("muP", None, "NTK"):
        with pytest.raises(ValueError, match=r"parameterization must be one of 'ntk', 'standard', got "):
            check_parameterization(bad)
    program = DNN.program(X)
    om = sample_parameters(program, jax.random.PRNGKey(0), 4)
    with pytest.raises(ValueError, match="parameterization must be one of 'ntk', 'standard', got 'mup'"):
        network_outputs(program, om, 4, readout_rows(program, "last"), parameterization="mup")


def test_extra_draws_have_the_keys_after_the_matrices():
    """hidden_matrices_and_normals: the matrices of hidden_matrices and extra normals with the keys
    fold_in(key, H + j) (the Lyapunov probe's tangent), the numbers of separate jax.random.normal draws."""
    from netfield.finite.parameters import hidden_matrices, hidden_matrices_and_normals

    program = DNN.program(X)
    key = jax.random.fold_in(jax.random.PRNGKey(4), 2)
    mats, extra = hidden_matrices_and_normals(program, key, 6, extra=[(6,), (2, 3)])
    for name, m in hidden_matrices(program, key, 6).items():
        np.testing.assert_array_equal(np.asarray(mats[name]), np.asarray(m))
    H = len(program.matrices)
    for j, shape in enumerate([(6,), (2, 3)]):
        want = jax.random.normal(jax.random.fold_in(key, H + j), shape, jnp.float64)
        np.testing.assert_array_equal(np.asarray(extra[j]), np.asarray(want))
