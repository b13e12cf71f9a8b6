"""dnn and rnn build the same tensor program up to weight sharing (program/network.py, inputs.py)."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import netfield as nf
from netfield.program import parse_inputs
from netfield.program.netsor import Bias, Input, LinComb, MatMul, Nonlin

X = np.random.default_rng(0).normal(size=(3, 2))


def _shape(prog):
    """Instructions with layer indices stripped from matrix / vector names."""
    strip = str.maketrans("", "", "0123456789")
    out = []
    for ins in prog.instructions:
        key = getattr(ins, "matrix", None) or getattr(ins, "vector", None) or ""
        out.append((type(ins).__name__, ins.name, key.translate(strip), getattr(ins, "arg", None),
                    tuple(getattr(ins, "terms", ()))))
    return out


def test_dnn_uses_fresh_matrices_rnn_shares_them():
    dnn, rnn = nf.dnn(3, "erf").program(X), nf.rnn(3, "erf").program(X)
    assert dnn.taps == rnn.taps and sorted(dnn.taps["h"]) == [1, 2, 3]
    assert len(dnn.readouts) == len(rnn.readouts) == 3  # an output at every step
    assert _shape(dnn) == _shape(rnn)  # the same program once names lose their layer index
    mm = lambda prog: [ins.matrix for ins in prog.instructions if isinstance(ins, MatMul)]
    assert mm(dnn) == ["W2", "W3"] and mm(rnn) == ["W", "W"]
    assert dnn.matrices == ("U1", "b1", "W2", "b2", "W3", "b3") and rnn.matrices == ("U", "b", "W")
    h3 = dnn[dnn.taps["h"][3]]
    assert isinstance(h3, LinComb) and [dnn[a].__class__ for _, a in h3.terms] == [MatMul, Bias]
    assert all(isinstance(ins, Nonlin) and ins.activation.name == "erf"
               for ins in dnn.instructions if isinstance(ins, Nonlin))
    # sequences feed every step; the input matrix follows the same rule
    seq = np.ones((3, 3, 2))
    assert [i.matrix for i in nf.dnn(3).program(seq).instructions if isinstance(i, Input)] == ["U1", "U2", "U3"]
    assert [i.matrix for i in nf.rnn(3).program(seq).instructions if isinstance(i, Input)] == ["U", "U", "U"]


def test_variances_are_the_network_hyper_parameters():
    net = nf.dnn(2, "relu", weight_var=1.5, bias_var=0.25, input_var=0.5, readout_var=2.0, readout_bias_var=0.1)
    prog = net.program(X)
    var = {getattr(i, "matrix", None) or i.vector: i.var for i in prog.instructions
           if isinstance(i, (Input, MatMul, Bias))}
    assert var == {"U1": 0.5, "b1": 0.25, "W2": 1.5, "b2": 0.25}
    assert {(r.var, r.bias_var, r.matrix, r.vector) for r in prog.readouts} == {(2.0, 0.1, "V", "bo")}


def test_network_is_a_pytree_with_hyper_parameter_leaves():
    net = nf.rnn(4, "tanh", weight_var=1.5, bias_var=0.25, input_var=0.5, readout_var=2.0, readout_bias_var=0.1)
    leaves, tree = jax.tree_util.tree_flatten(net)
    assert leaves == [1.5, 0.25, 0.5, 2.0, 0.1]
    back = jax.tree_util.tree_unflatten(tree, [2 * v for v in leaves])
    assert isinstance(back, nf.Network)
    assert (back.name, back.steps, back.activation) == ("rnn", 4, net.activation)
    assert back.weight_var == 3.0 and back.readout_bias_var == 0.2
    doubled = jax.tree_util.tree_map(lambda v: 2 * v, net)
    assert doubled.bias_var == 0.5
    # equal networks have equal tree structures: jitted functions of them compile once
    assert tree == jax.tree_util.tree_structure(nf.rnn(4, "tanh"))


def test_replace_and_repr():
    net = nf.dnn(2, "erf", weight_var=1.5)
    other = net.replace(weight_var=2.0, bias_var=0.1)
    assert (other.weight_var, other.bias_var, net.weight_var) == (2.0, 0.1, 1.5)
    assert repr(other) == ("dnn(depth=2, activation='erf', weight_var=2.0, bias_var=0.1, input_var=1.0, "
                           "readout_var=1.0, readout_bias_var=0.0)")
    assert net.steps == net.depth == 2
    assert net.rebuild(depth=5).steps == 5 and net.rebuild(depth=5).weight_var == 1.5
    with pytest.raises(ValueError, match="replace accepts the hyper-parameters"):
        net.replace(depth=3)
    with pytest.raises(ValueError, match="rebuild accepts the options of the dnn builder"):
        net.rebuild(steps=3)


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
