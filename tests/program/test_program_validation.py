"""Bad input raises ValueError / TypeError naming the argument and the bad value (docs/design.md section 3).

Never a NaN result, never a silent clip.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

import netfield as nf

NET = nf.rnn(3, "erf")
X = np.ones((2, 3))
HYPERS = ["weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var"]


def _with(x, index, value):
    x = np.array(x, dtype=float)
    x[index] = value
    return x


# --- inputs -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("call", ["kernel", "mean_field", "sample"])
@pytest.mark.parametrize("bad, shown", [(np.nan, "nan"), (np.inf, "inf"), (-np.inf, "-inf")])
def test_non_finite_inputs(call, bad, shown):
    x = _with(X, (1, 2), bad)
    name = "x1" if call == "kernel" else "x"  # each function names its own argument
    fn = {"kernel": lambda: nf.kernel(NET, x), "mean_field": lambda: nf.mean_field(NET, x),
          "sample": lambda: nf.sample(NET, x, width=4)}[call]
    with pytest.raises(ValueError, match=rf"{name} must contain only finite numbers, got {shown} at index \(1, 2\)"):
        fn()


def test_non_finite_second_input_and_sequence_lists():
    with pytest.raises(ValueError, match=r"x2 must contain only finite numbers, got inf at index \(0, 1\)"):
        nf.kernel(NET, X, _with(X, (0, 1), np.inf))
    seqs = [np.ones((2, 3)), _with(np.ones((3, 3)), (2, 0), np.nan)]
    with pytest.raises(ValueError, match=r"x1\[1\] must contain only finite numbers, got nan at index \(2, 0\)"):
        nf.kernel(NET, seqs)


@pytest.mark.parametrize("shape", [(3,), (2, 2, 2, 2), ()])
def test_wrong_rank(shape):
    shown = re.escape(str(shape))
    with pytest.raises(ValueError, match=rf"x1 must have shape \(N, d\), \(N, T, d\).*got an array of shape {shown}"):
        nf.kernel(NET, np.ones(shape))
    with pytest.raises(ValueError, match=rf"x must have shape .*got an array of shape {shown}"):
        nf.sample(NET, np.ones(shape), width=4)


def test_empty_inputs():
    with pytest.raises(ValueError, match=r"x1 must have at least one pattern and one feature, got shape \(0, 3\)"):
        nf.kernel(NET, np.ones((0, 3)))
    with pytest.raises(ValueError, match=r"x1 must be a non-empty list .*got an empty list"):
        nf.kernel(NET, [])


def test_dimension_mismatch():
    with pytest.raises(ValueError, match=r"x2 must have the same input dimension d as x1 \(3\), got d = 4"):
        nf.kernel(NET, X, np.ones((2, 4)))
    with pytest.raises(ValueError, match=r"x2 must have the same input dimension d as x1 \(3\), got d = 2"):
        nf.kernel(NET, np.ones((2, 2, 3)), np.ones((2, 2, 2)))
    with pytest.raises(ValueError, match=r"all sequences in x1 must have the same dimension d, got dimensions \[3, 4\]"):
        nf.kernel(NET, [np.ones((2, 3)), np.ones((2, 4))])


def test_sequences_longer_than_steps():
    with pytest.raises(ValueError, match=r"x1 has sequences of length up to 5, but the network has only 3 steps"):
        nf.kernel(NET, np.ones((2, 5, 3)))
    with pytest.raises(ValueError, match=r"x1 has sequences of length up to 4, but the network has only 3 steps"):
        nf.kernel(NET, [np.ones((2, 3)), np.ones((4, 3))])
    with pytest.raises(ValueError, match=r"x2 has sequences of length up to 4"):
        nf.kernel(NET, np.ones((2, 3, 3)), np.ones((2, 4, 3)))
    with pytest.raises(ValueError, match=r"x has sequences of length up to 5, but the network has only 3 steps"):
        nf.sample(NET, np.ones((2, 5, 3)), width=4)
    with pytest.raises(ValueError, match=r"x has sequences of length up to 4, but the network has only 3 steps"):
        nf.mean_field(nf.dnn(3, "relu"), np.ones((1, 4, 2)))


# --- hyper-parameters ------------------------------------------------------------------------------

@pytest.mark.parametrize("hyper", HYPERS)
@pytest.mark.parametrize("value, shown", [(-1.0, "-1.0"), (-1e-300, "-1e-300"), (float("nan"), "nan"),
                                          (float("inf"), "inf"), (float("-inf"), "-inf")])
@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_bad_variances(builder, hyper, value, shown):
    bound = "> 0" if hyper in ("weight_var", "readout_var") else ">= 0"
    pattern = rf"{hyper} must be a finite number {re.escape(bound)}, got {re.escape(shown)}"
    with pytest.raises(ValueError, match=pattern):
        builder(2, "erf", **{hyper: value})
    with pytest.raises(ValueError, match=pattern):
        NET.replace(**{hyper: value})


@pytest.mark.parametrize("hyper", ["weight_var", "readout_var"])
def test_zero_weight_and_readout_variance_rejected(hyper):
    with pytest.raises(ValueError, match=rf"{hyper} must be a finite number > 0, got 0.0"):
        nf.dnn(2, "erf", **{hyper: 0.0})


@pytest.mark.parametrize("hyper", ["bias_var", "input_var", "readout_bias_var"])
def test_zero_bias_and_input_variance_allowed(hyper):
    kw = {"bias_var": 0.1, "input_var": 1.0, "readout_bias_var": 0.1}
    kw[hyper] = 0.0
    k = np.asarray(nf.kernel(nf.dnn(2, "erf", **kw), X))
    assert np.isfinite(k).all() and (np.diag(k) > 0).all()


@pytest.mark.parametrize("value", ["1.0", None, [1.0], True])
def test_non_numeric_variances(value):
    with pytest.raises((TypeError, ValueError), match=r"weight_var must be a (real number|scalar)"):
        nf.dnn(2, "erf", weight_var=value)


def test_replace_rejects_structure_changes():
    with pytest.raises(ValueError, match=r"replace accepts the hyper-parameters .*got \['depth'\]"):
        NET.replace(depth=4)


# --- sizes, names, choices -------------------------------------------------------------------------

@pytest.mark.parametrize("builder, arg", [(nf.dnn, "depth"), (nf.rnn, "steps")])
def test_depth_and_steps(builder, arg):
    for bad in (0, -1):
        with pytest.raises(ValueError, match=rf"{arg} must be an integer >= 1, got {bad}"):
            builder(bad, "erf")
    for bad in (2.5, 3.0, "3", True, None):
        with pytest.raises(TypeError, match=rf"{arg} must be an integer >= 1, got {re.escape(repr(bad))}"):
            builder(bad, "erf")
    assert builder(np.int64(3), "erf").steps == 3


def test_width_networks_chunk_size_seed_first_network():
    with pytest.raises(ValueError, match=r"width must be an integer >= 1, got 0"):
        nf.sample(NET, X, width=0)
    with pytest.raises(TypeError, match=r"width must be an integer >= 1, got 2.5"):
        nf.sample(NET, X, width=2.5)
    with pytest.raises(ValueError, match=r"networks must be an integer >= 1, got 0"):
        nf.sample(NET, X, width=4, networks=0)
    with pytest.raises(ValueError, match=r"networks must be an integer >= 1, got -3"):
        nf.sample(NET, X, width=4, networks=-3)
    with pytest.raises(ValueError, match=r"chunk_size must be an integer >= 1, got 0"):
        nf.sample(NET, X, width=4, chunk_size=0)
    with pytest.raises(TypeError, match=r"seed must be an integer in \[0, 2\*\*63\), got 1.5"):
        nf.sample(NET, X, width=4, seed=1.5)
    with pytest.raises(ValueError, match=r"first_network must be an integer >= 0, got -1"):
        nf.sample(NET, X, width=4, first_network=-1)


@pytest.mark.parametrize("name", ["foo", "Tanhh", "relu6", ""])
def test_unknown_activation(name):
    pattern = rf"activation must be one of .*erf.*relu.*tanh.* or a JAX-traceable callable, got {re.escape(repr(name))}"
    with pytest.raises(ValueError, match=pattern):
        nf.dnn(2, name)
    with pytest.raises(ValueError, match=pattern):
        nf.rnn(2, name)
    with pytest.raises(ValueError, match=pattern):
        nf.gauss.pair(name, 1.0, 1.0, 0.5)


def test_activation_of_wrong_type():
    with pytest.raises(TypeError, match=r"activation must be a name \(str\), an Activation or a callable, got 123"):
        nf.dnn(2, 123)


@pytest.mark.parametrize("readout", ["first", "LAST", "", None])
def test_readout_choice(readout):
    pattern = rf"readout must be one of 'last', 'all', got {re.escape(repr(readout))}"
    with pytest.raises(ValueError, match=pattern):
        nf.kernel(NET, X, readout=readout)
    with pytest.raises(ValueError, match=pattern):
        nf.sample(NET, X, width=4, readout=readout)


def test_other_choices():
    with pytest.raises(ValueError, match=r"preactivations must be one of 'none', 'last', 'equal', 'all', got 'some'"):
        nf.sample(NET, X, width=4, preactivations="some")
    with pytest.raises(ValueError, match=r"preactivations pairs must hold steps in 1\.\.3, got \(1, 4\)"):
        nf.sample(NET, X, width=4, preactivations=[(1, 4)])
    with pytest.raises(ValueError, match=r"dtype must be one of 'float32', 'float64', got 'float16'"):
        nf.sample(NET, X, width=4, dtype="float16")
    with pytest.raises(ValueError, match=r"method must be one of .*got 'bogus'"):
        nf.kernel(NET, X, method="bogus")
    with pytest.raises(TypeError, match=r"net must be a network built by netfield.dnn, rnn, gru, lstm, "
                                        r"transformer, conv, batchnorm_mlp or architecture, got str"):
        nf.kernel("net", X)
    with pytest.raises(TypeError, match=r"net must be a network .*got dict"):
        nf.sample({}, X, width=4)
