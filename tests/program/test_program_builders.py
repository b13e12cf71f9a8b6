"""dnn and rnn build the same tensor program up to weight sharing (program/network.py, ir.py, inputs.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import netfield as nf
from netfield.program import Bias, InputProj, LinComb, MatMul, Nonlin, parse_inputs


def _atoms(prog, name):
    return prog[name].atoms


def test_dnn_uses_fresh_matrices_rnn_shares_them():
    dnn, rnn = nf.dnn(3, "erf").program, nf.rnn(3, "erf").program
    assert dnn.hidden == rnn.hidden == ("h1", "h2", "h3")
    assert dnn.readouts == rnn.readouts == ("f1", "f2", "f3")
    assert _atoms(dnn, "h1") == (InputProj("U1", 1), Bias("b1"))
    assert _atoms(dnn, "h3") == (MatMul("W3", "phi2"), InputProj("U3", 3), Bias("b3"))
    assert _atoms(rnn, "h3") == (MatMul("W", "phi2"), InputProj("U", 3), Bias("b"))
    assert _atoms(dnn, "f2") == _atoms(rnn, "f2") == (MatMul("V", "phi2"), Bias("bo"))
    assert isinstance(dnn["phi2"], Nonlin) and dnn["phi2"].arg == "h2"
    assert isinstance(dnn["h2"], LinComb)
    # the structure is identical once names are stripped of their layer index: sharing is the only difference
    strip = str.maketrans("", "", "0123456789")

    def shape(prog):
        out = []
        for ins in prog.instructions:
            if isinstance(ins, LinComb):
                out.append((ins.name, tuple((type(a).__name__, getattr(a, "matrix", getattr(a, "vector", "")).translate(strip))
                                            for a in ins.atoms)))
            else:
                out.append((ins.name, ins.arg))
        return out

    assert shape(dnn) == shape(rnn)
    assert len(dnn.matrices) == 3 * 3 - 1 + 2 and len(rnn.matrices) == 5


def test_variances_map_matrices_to_hyper_parameters():
    prog = nf.dnn(2, "relu").program
    assert {m: prog.hyper_of(m) for m in prog.matrices} == {
        "U1": "input_var", "b1": "bias_var", "W2": "weight_var", "U2": "input_var", "b2": "bias_var",
        "V": "readout_var", "bo": "readout_bias_var",
    }


def test_network_is_a_pytree_with_hyper_parameter_leaves():
    net = nf.rnn(4, "tanh", weight_var=1.5, bias_var=0.25, input_var=0.5, readout_var=2.0, readout_bias_var=0.1)
    leaves, tree = jax.tree_util.tree_flatten(net)
    assert leaves == [1.5, 0.25, 0.5, 2.0, 0.1]
    back = jax.tree_util.tree_unflatten(tree, [2 * v for v in leaves])
    assert isinstance(back, nf.Network)
    assert (back.architecture, back.depth, back.activation) == ("rnn", 4, net.activation)
    assert back.weight_var == 3.0 and back.readout_bias_var == 0.2
    doubled = jax.tree_util.tree_map(lambda v: 2 * v, net)
    assert doubled.bias_var == 0.5


def test_replace_and_repr():
    net = nf.dnn(2, "erf", weight_var=1.5)
    other = net.replace(weight_var=2.0, bias_var=0.1)
    assert (other.weight_var, other.bias_var, net.weight_var) == (2.0, 0.1, 1.5)
    assert repr(other) == ("dnn(depth=2, activation='erf', weight_var=2.0, bias_var=0.1, input_var=1.0, "
                           "readout_var=1.0, readout_bias_var=0.0)")
    assert net.steps == net.depth == 2


def test_activation_spellings():
    assert nf.dnn(2, " ReLU ").activation is nf.get_activation("relu")
    leaky = nf.leaky_relu(0.2)
    assert nf.dnn(2, leaky).activation is leaky
    fn = lambda x: x * x
    assert nf.get_activation(fn, kinks=(0.0,)) is nf.get_activation(fn, kinks=(0.0,))  # cached
    assert nf.get_activation(fn).kinks == ()


def test_parse_inputs_conventions():
    static = parse_inputs(np.ones((3, 2)), steps=4)
    assert static.x.shape == (3, 1, 2) and not static.sequential
    np.testing.assert_array_equal(static.lengths, [4, 4, 4])  # read out after all steps
    seq = parse_inputs(np.ones((3, 2, 5)), steps=4)
    assert seq.x.shape == (3, 2, 5) and seq.sequential
    np.testing.assert_array_equal(seq.lengths, [2, 2, 2])  # read out at step T
    a, b = np.arange(6.0).reshape(3, 2), np.arange(2.0).reshape(1, 2) + 10
    ragged = parse_inputs([a, b], steps=3)
    assert ragged.x.shape == (2, 3, 2) and ragged.count == 2 and ragged.dim == 2
    np.testing.assert_array_equal(ragged.lengths, [3, 1])
    np.testing.assert_array_equal(ragged.x[1], [[10.0, 11.0], [0.0, 0.0], [0.0, 0.0]])  # zero-padded
    groups = ragged.groups()
    assert [(length, list(idx)) for length, idx, _ in groups] == [(1, [1]), (3, [0])]
    assert groups[0][2].shape == (1, 1, 2)


@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_static_input_reads_out_at_the_last_step(builder):
    """(N, d) inputs feed step 1 only and run all steps: different depths give different kernels,
    while (N, T, d) inputs are read out at step T."""
    x = np.random.default_rng(0).normal(size=(3, 2))
    k3 = np.asarray(nf.kernel(builder(3, "erf", weight_var=2.0), x))
    k4 = np.asarray(nf.kernel(builder(4, "erf", weight_var=2.0), x))
    assert np.abs(k3 - k4).max() > 1e-3
    seq = np.random.default_rng(1).normal(size=(3, 3, 2))
    np.testing.assert_allclose(np.asarray(nf.kernel(builder(3, "erf"), seq)),
                               np.asarray(nf.kernel(builder(5, "erf"), seq)), rtol=0, atol=1e-14)
