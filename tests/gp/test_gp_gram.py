"""Kernel matrices for inference (netfield.gp.gram): readouts at several times, diagonals, block-wise Gram."""

import numpy as np
import pytest

import netfield as nf
from netfield import gp
from netfield.gp import gram

RNG = np.random.default_rng(5)
STATIC = RNG.normal(size=(9, 3))
SEQ = RNG.normal(size=(9, 4, 2))
SEQ_LIST = [RNG.normal(size=(t, 2)) for t in (2, 3, 3, 2)]


def generic_multi(net, x1, x2, readout):
    """The definition: average the joint output covariance over the readout steps (no fast path)."""
    k_all = np.asarray(nf.kernel(net, x1, x2, readout="all"))
    p1 = nf.program.parse_inputs(x1, net.steps)
    p2 = p1 if x2 is None else nf.program.parse_inputs(x2, net.steps)
    a1 = gram._averaging(p1.lengths, readout, "x1")
    a2 = gram._averaging(p2.lengths, readout, "x2")
    return a1 @ k_all @ a2.T


CASES = {"static": (STATIC, None), "static-cross": (STATIC[:5], STATIC[5:]), "sequence": (SEQ, None),
         "sequence-cross": (SEQ[:4], SEQ[4:])}


@pytest.mark.parametrize("builder, activation, case, readout", [
    (nf.dnn, "erf", "static", "mean"),
    (nf.rnn, "erf", "static-cross", "mean"),
    (nf.rnn, "erf", "sequence", "mean"),
    (nf.dnn, "erf", "sequence-cross", "mean"),
    (nf.rnn, "relu", "static-cross", (2, 4)),
])
def test_fast_multi_readout_equals_the_joint_output_kernel(builder, activation, case, readout):
    x1, x2 = CASES[case]
    net = builder(4, activation, weight_var=1.6, bias_var=0.2, readout_var=0.8, readout_bias_var=0.1)
    fast = np.asarray(gp.network_kernel(net, x1, x2, readout))
    assert gram._multi_readout_fast(net, x1, x2, gram.check_readout(readout)) is not None
    np.testing.assert_allclose(fast, generic_multi(net, x1, x2, gram.check_readout(readout)), rtol=0, atol=1e-13)


def test_variable_length_sequences_use_the_generic_path():
    net = nf.rnn(3, "erf", weight_var=1.6, bias_var=0.2)
    k = np.asarray(gp.network_kernel(net, SEQ_LIST, None, "mean"))
    np.testing.assert_allclose(k, generic_multi(net, SEQ_LIST, None, "mean"), atol=1e-14)
    assert k.shape == (4, 4)


def test_single_readout_time_is_identical_for_dnn_and_rnn_but_several_are_not():
    hyper = {"weight_var": 1.8, "bias_var": 0.3}
    for x in (STATIC, SEQ):
        np.testing.assert_allclose(gp.network_kernel(nf.dnn(4, "erf", **hyper), x),
                                   gp.network_kernel(nf.rnn(4, "erf", **hyper), x), atol=1e-14)
        diff = np.abs(np.asarray(gp.network_kernel(nf.dnn(4, "erf", **hyper), x, None, "mean"))
                      - np.asarray(gp.network_kernel(nf.rnn(4, "erf", **hyper), x, None, "mean"))).max()
        assert diff > 1e-2


@pytest.mark.parametrize("builder, x, readout", [
    (nf.rnn, STATIC, "last"), (nf.rnn, STATIC, "mean"), (nf.dnn, STATIC, (1, 2)),
    (nf.rnn, SEQ, "last"), (nf.rnn, SEQ, (1, 2)), (nf.dnn, SEQ, "mean"),
    (nf.rnn, SEQ_LIST, "last"), (nf.rnn, SEQ_LIST, "mean"),
], ids=["static-last", "static-mean", "static-steps", "seq-last", "seq-steps", "seq-mean-dnn", "list-last",
        "list-mean"])
def test_kernel_diag_is_the_diagonal(builder, x, readout):
    net = builder(4, "erf", weight_var=1.6, bias_var=0.2, readout_bias_var=0.1)
    np.testing.assert_allclose(gp.kernel_diag(net, x, readout),
                               np.diag(np.asarray(gp.network_kernel(net, x, None, readout))), rtol=1e-12, atol=1e-15)


def test_block_wise_gram_matrix_equals_the_kernel():
    x = RNG.normal(size=(20, 3))
    net = nf.rnn(3, "erf", weight_var=2.0, bias_var=0.1)
    k = gp.gram_matrix(net, x, block_size=10)
    assert k.flags.writeable and k.flags.c_contiguous
    np.testing.assert_allclose(k, np.asarray(nf.kernel(net, x)), rtol=1e-13, atol=1e-15)
    np.testing.assert_array_equal(k[:10, 10:], k[10:, :10].T)  # the strip right of the diagonal is mirrored


@pytest.mark.parametrize("call, match", [
    (lambda: gp.network_kernel(nf.dnn(3), STATIC, readout="first"), "readout must be 'last', 'mean'"),
    (lambda: gp.network_kernel(nf.dnn(3), STATIC, readout=(0, 2)), "sequence of steps"),
    (lambda: gp.network_kernel(nf.dnn(3), STATIC, readout=(2, 5)), "readout steps .* go beyond pattern 0"),
    (lambda: gp.kernel_diag(nf.dnn(3), STATIC, readout=(4,)), "readout steps .* go beyond"),
    (lambda: gp.network_kernel("net", STATIC), "net must be a network built by netfield.dnn"),
    (lambda: gp.gram_matrix(nf.dnn(3), STATIC, block_size=0), "block_size must be an integer >= 1"),
])
def test_bad_input_is_named(call, match):
    with pytest.raises((ValueError, TypeError), match=match):
        call()


@pytest.mark.parametrize("n1, n2", [(5, None), (17, 3)])
def test_padding_to_bucket_sizes_does_not_change_the_kernel(n1, n2):
    x = RNG.normal(size=(n1 + (n2 or 0), 3))
    x1, x2 = x[:n1], (None if n2 is None else x[n1:])
    net = nf.rnn(3, "erf", weight_var=1.6, bias_var=0.2)
    np.testing.assert_allclose(gp.network_kernel(net, x1, x2), nf.kernel(net, x1, x2), rtol=1e-14, atol=1e-16)
    assert gram._bucket(5) == 16 and gram._bucket(17) == 32 and gram._bucket(300) == 512
