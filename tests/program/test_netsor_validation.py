"""Bad input to NETSOR+ programs and the architecture builders.

Programs that are not well formed are rejected by ``validate`` with a :class:`netfield.ProgramError`
(a ValueError) whose message names the instruction, ``instruction <i> (<Type> '<name>')``; the
builders' bad arguments with a ValueError naming the argument and the value received.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import netfield as nf
from netfield.program import netsor as ns
from netfield.program.builder import ProgramBuilder

X = np.random.default_rng(0).normal(size=(3, 2))
FEEDS, SPACES = [X], {"rows": 3}


def _where(i, kind, name):
    return re.escape(f"instruction {i} ({kind} '{name}')")


def _build(write):
    p = ProgramBuilder()
    write(p)
    return p.build()


def test_program_error_is_a_value_error():
    assert issubclass(nf.ProgramError, ValueError)
    assert nf.ProgramError is ns.ProgramError


# -- programs written instruction by instruction (validate) --------------------------------------------
def test_variable_used_before_definition():
    ins = [ns.Input("x1", "U", 0, 1.0, "rows"), ns.Nonlin("h", np.tanh, ("g9",), "rows"),
           ns.Readout("out", "h", 1.0, 0.0)]
    with pytest.raises(nf.ProgramError, match=_where(1, "Nonlin", "h") + ".*'g9' is used before it is defined"):
        ns.validate(ins, FEEDS, SPACES)
    later = [ns.Nonlin("h", np.tanh, ("x1",), "rows"), ns.Input("x1", "U", 0, 1.0, "rows"),
             ns.Readout("out", "h", 1.0, 0.0)]
    with pytest.raises(nf.ProgramError, match=_where(0, "Nonlin", "h") + ".*'x1' is used before"):
        ns.validate(later, FEEDS, SPACES)


def test_duplicate_names():
    ins = [ns.Input("x1", "U", 0, 1.0, "rows"), ns.Bias("x1", "b", 0.1, "rows"),
           ns.Nonlin("h", np.tanh, ("x1",), "rows"), ns.Readout("out", "h", 1.0, 0.0)]
    with pytest.raises(nf.ProgramError, match=_where(1, "Bias", "x1") + ".*'x1' is already defined"):
        ns.validate(ins, FEEDS, SPACES)


def test_matmul_of_a_g_variable():
    ins = [ns.Input("x1", "U", 0, 1.0, "rows"), ns.MatMul("g", "W", "x1", 1.0, "rows"),
           ns.Nonlin("h", np.tanh, ("g",), "rows"), ns.Readout("out", "h", 1.0, 0.0)]
    with pytest.raises(nf.ProgramError, match=_where(1, "MatMul", "g") + ".*'x1' is a G-variable, expected H"):
        ns.validate(ins, FEEDS, SPACES)

    def write(p):
        p.readout(p.nonlin("erf", p.matmul("W", p.input("U", X))))

    with pytest.raises(nf.ProgramError, match=r"matmul 'W': argument 'x1' is a G-variable, expected an H-variable"):
        _build(write)


def test_program_without_readout():
    ins = [ns.Input("x1", "U", 0, 1.0, "rows"), ns.Nonlin("h", np.tanh, ("x1",), "rows")]
    with pytest.raises(nf.ProgramError, match="must have a Readout instruction"):
        ns.validate(ins, FEEDS, SPACES)
    with pytest.raises(nf.ProgramError, match="must have a Readout instruction"):
        ns.validate([], FEEDS, SPACES)

    def no_readout(p, x):
        p.nonlin("erf", p.input("U", x))

    with pytest.raises(nf.ProgramError, match="must have a Readout instruction"):
        nf.kernel(nf.architecture(no_readout), X)
    # several readouts are allowed (an output at every step), but an output is not a variable
    used = [ns.Input("x1", "U", 0, 1.0, "rows"), ns.Nonlin("h", np.tanh, ("x1",), "rows"),
            ns.Readout("out", "h", 1.0, 0.0), ns.Nonlin("h2", np.tanh, ("out",), "rows"),
            ns.Readout("out2", "h2", 1.0, 0.0)]
    with pytest.raises(nf.ProgramError, match=_where(3, "Nonlin", "h2") + ".*argument 'out' is a out-variable"):
        ns.validate(used, FEEDS, SPACES)
    shared_v = [ns.Input("x1", "U", 0, 1.0, "rows"), ns.Nonlin("h", np.tanh, ("x1",), "rows"),
                ns.Readout("out", "h", 1.0, 0.0), ns.Readout("out2", "h", 2.0, 0.0)]
    with pytest.raises(nf.ProgramError, match=_where(3, "Readout", "out2") + ".*'V' is used with variance 2.0"):
        ns.validate(shared_v, FEEDS, SPACES)


# -- programs written with ProgramBuilder -----------------------------------------------------------------
def test_matrix_used_as_w_and_w_transpose():
    def write(p):
        g = p.matmul("W", p.nonlin("erf", p.input("U", X)), transpose=True)
        p.readout(p.nonlin("erf", p.matmul("W", p.nonlin("erf", g))))

    with pytest.raises(nf.ProgramError, match=_where(4, "MatMul", "g5") + ".*'W' is used both as W and as W\\^T"):
        _build(write)


def test_matrix_reused_with_another_variance():
    def write(p):
        g = p.matmul("W", p.nonlin("erf", p.input("U", X)), var=1.0)
        p.readout(p.nonlin("erf", p.matmul("W", p.nonlin("erf", g), var=2.0)))

    with pytest.raises(nf.ProgramError, match=_where(4, "MatMul", "g5") + ".*variance 2.0 but earlier with 1.0"):
        _build(write)

    def bias(p):
        g = p.input("U", X) + p.bias("b", 0.1)
        p.readout(p.nonlin("erf", p.matmul("W", p.nonlin("erf", g)) + p.bias("b", 0.3)))

    with pytest.raises(nf.ProgramError, match=r"Bias 'b\d+'\).*'b' is used with variance 0.3 but earlier with 0.1"):
        _build(bias)


def test_lincomb_over_two_row_spaces():
    def write(p):
        g = p.input("U", X, space="a") + p.input("V", np.ones((4, 2)), space="b")
        p.readout(p.nonlin("erf", g))

    with pytest.raises(nf.ProgramError, match=_where(2, "LinComb", "g3") + ".*different row spaces"):
        _build(write)


def test_rowmap_with_the_wrong_number_of_columns():
    def write(p):
        p.readout(p.rowmap(p.nonlin("erf", p.input("U", X)), np.ones((1, 5)), space="pooled"))

    with pytest.raises(nf.ProgramError, match=_where(2, "RowMap", "r3") + re.escape(
            ": row map has shape (1, 5), expected (1, 3)")):
        _build(write)


def test_input_matrix_with_features_of_another_dimension():
    def write(p):
        p.readout(p.nonlin("erf", p.input("U", X) + p.input("U", np.ones((3, 4)))))

    with pytest.raises(nf.ProgramError, match=_where(1, "Input", "x2")
                       + ".*'U' is used with features of dimension 4 but earlier with dimension 2"):
        _build(write)


def test_attention_mask_of_the_wrong_shape():
    def write(p):
        g = p.input("U", X)
        p.readout(p.nonlin("erf", p.attention(g, g, g, mask=np.ones((2, 2)))))

    with pytest.raises(nf.ProgramError, match=_where(1, "Attention", "att2") + re.escape(
            ": mask must be (3, 3) booleans") + ".*got shape \\(2, 2\\)"):
        _build(write)

    def empty_row(p):
        g = p.input("U", X)
        mask = np.ones((3, 3), bool)
        mask[1] = False
        p.readout(p.nonlin("erf", p.attention(g, g, g, mask=mask)))

    with pytest.raises(nf.ProgramError, match=_where(1, "Attention", "att2") + ".*at least one allowed row"):
        _build(empty_row)


# -- builders' arguments --------------------------------------------------------------------------------
@pytest.mark.parametrize("build,arg,value", [
    (lambda v: nf.gru(3, weight_var=v), "weight_var", -1.0),
    (lambda v: nf.lstm(3, bias_var=v), "bias_var", -0.5),
    (lambda v: nf.transformer(1, input_var=v), "input_var", -2.0),
    (lambda v: nf.conv(2, readout_bias_var=v), "readout_bias_var", -0.1),
    (lambda v: nf.batchnorm_mlp(2, readout_var=v), "readout_var", -3.0),
    (lambda v: nf.gru(3, readout_var=v), "readout_var", 0.0),
])
def test_negative_variances(build, arg, value):
    with pytest.raises(ValueError, match=f"{arg} must be a finite number .*got {value}"):
        build(value)


@pytest.mark.parametrize("build,arg", [(nf.gru, "steps"), (nf.lstm, "steps"), (nf.transformer, "blocks"),
                                       (nf.conv, "depth"), (nf.batchnorm_mlp, "depth")])
def test_zero_steps_or_depth(build, arg):
    with pytest.raises(ValueError, match=f"{arg} must be an integer >= 1, got 0"):
        build(0)


@pytest.mark.parametrize("build,arg,value", [
    (lambda v: nf.gru(2, gate=v), "gate", "relu"),
    (lambda v: nf.lstm(2, gate=v), "gate", "tanh"),
    (lambda v: nf.conv(2, padding=v), "padding", "FULL"),
    (lambda v: nf.conv(2, readout=v), "readout", "max"),
    (lambda v: nf.transformer(1, readout=v), "readout", "first"),
])
def test_unknown_choices(build, arg, value):
    with pytest.raises(ValueError, match=f"{arg} must be one of .*got '{value}'"):
        build(value)


@pytest.mark.parametrize("build,fixed,match", [
    (nf.gru, {"forget": 1}, "fixed_gates keys must be among .*'update'.*got 'forget'"),
    (nf.lstm, {"reset": 1}, "fixed_gates keys must be among .*'input'.*got 'reset'"),
    (nf.gru, {"update": 1.5}, re.escape("fixed_gates['update'] must be a number in [0, 1], got 1.5")),
    (nf.lstm, {"output": -0.1}, re.escape("fixed_gates['output'] must be a number in [0, 1], got -0.1")),
    (nf.lstm, {"input": "open"}, re.escape("fixed_gates['input'] must be a number in [0, 1], got 'open'")),
])
def test_fixed_gates_out_of_range(build, fixed, match):
    with pytest.raises(ValueError, match=match):
        build(2, fixed_gates=fixed)


def test_conv_shape_arguments():
    with pytest.raises(ValueError, match="skip=True needs padding='SAME'.*got padding='VALID'"):
        nf.conv(2, skip=True, padding="VALID")
    with pytest.raises(ValueError, match=re.escape("skip=True needs padding='SAME' and no pool_window")
                       + ".*pool_window=\\(2, 2\\)"):
        nf.conv(2, skip=True, pool_window=(2, 2))
    with pytest.raises(ValueError, match=re.escape("filter_shape (7, 7) is larger than the input (5, 5) "
                                                   "(padding VALID)")):
        nf.kernel(nf.conv(2, filter_shape=(7, 7), padding="VALID"), np.ones((2, 5, 5, 1)))
    with pytest.raises(ValueError, match=re.escape("filter_shape must hold positive integers, got (0, 3)")):
        nf.conv(2, filter_shape=(0, 3))
    with pytest.raises(ValueError, match=re.escape("pool_window (8, 8) is larger than the feature map (5, 5)")):
        nf.kernel(nf.conv(2, pool_window=(8, 8)), np.ones((2, 5, 5, 1)))
    with pytest.raises(ValueError, match=re.escape("to match filter_shape (3, 3), got (2, 5, 1)")):
        nf.kernel(nf.conv(2, filter_shape=(3, 3)), np.ones((2, 5, 1)))


def test_batchnorm_needs_a_batch():
    with pytest.raises(ValueError, match=re.escape("batch of N >= 2 patterns, got (1, 3)")):
        nf.kernel(nf.batchnorm_mlp(2), np.ones((1, 3)))
    with pytest.raises(ValueError, match="eps must be a finite number >= 0, got -1"):
        nf.batchnorm_mlp(2, eps=-1)


def test_transformer_input_must_be_3d():
    with pytest.raises(ValueError, match=re.escape("x1 must have shape (N, L, d): N sequences of L tokens, got (3, 2)")):
        nf.kernel(nf.transformer(1), np.ones((3, 2)))
    with pytest.raises(ValueError, match="attention_scale must be a finite number, got nan"):
        nf.transformer(1, attention_scale=float("nan"))


@pytest.mark.parametrize("build", [nf.gru, nf.lstm], ids=["gru", "lstm"])
def test_sequences_longer_than_steps(build):
    with pytest.raises(ValueError, match="sequences of length up to 3, but the network has only 2 steps"):
        nf.kernel(build(2), np.ones((2, 3, 2)))
    with pytest.raises(ValueError, match="sequences of length up to 3, but the network has only 2 steps"):
        nf.kernel(build(2), [np.ones((3, 2)), np.ones((1, 2))])


# -- mean_field / sample options --------------------------------------------------------------------
def test_mean_field_and_sample_options():
    arch = nf.gru(2)
    with pytest.raises(ValueError, match="qmc_points must be a power of 2, got 1000"):
        nf.mean_field(arch, X, qmc_points=1000)
    with pytest.raises(ValueError, match="qmc_replicates must be an integer >= 2, got 1"):
        nf.mean_field(arch, X, qmc_replicates=1)
    with pytest.raises(ValueError, match="width must be an integer >= 1, got 0"):
        nf.sample(arch, X, width=0)


def test_matmul_of_a_sum_of_g_variables_names_the_kind():
    p = nf.ProgramBuilder()
    g = p.input("U", np.ones((3, 2))) + p.bias("b", 0.1)
    with pytest.raises(nf.ProgramError, match=r"matmul 'W': argument 'g\d+' is a G-variable, expected an H-variable"):
        p.matmul("W", g)
