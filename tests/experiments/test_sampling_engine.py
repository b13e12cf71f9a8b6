"""The compile-once sampler equals netfield.sample exactly (same keys, same interpreter)."""

import numpy as np
import pytest

import netfield
from netfield.experiments.sampling import sample_range


@pytest.mark.parametrize("arch, readout, pre", [("dnn", "all", "all"), ("rnn", "last", "equal")])
def test_sample_range_equals_public_sample(arch, readout, pre):
    net = getattr(netfield, arch)(3, "tanh", weight_var=1.3, bias_var=0.2, readout_bias_var=0.1)
    x = np.random.default_rng(0).normal(size=(3, 4))
    ours = sample_range(net, x, 24, 2, 3, seed=11, readout=readout, preactivations=pre)
    ref = netfield.sample(net, x, 24, 3, seed=11, first_network=2, readout=readout, preactivations=pre)
    np.testing.assert_array_equal(ours.readout, ref.readout)
    assert set(ours.preactivations) == set(ref.preactivations)
    for key in ref.preactivations:
        np.testing.assert_array_equal(ours.preactivations[key], ref.preactivations[key])
    assert (ours.width, ours.seed, ours.first_network, ours.steps) == (24, 11, 2, 3)


def test_sequences_and_large_seeds_match():
    net = netfield.rnn(4, "erf", weight_var=1.5, bias_var=0.5)
    x = np.random.default_rng(1).normal(size=(2, 4, 3))
    seed = 2**40 + 7
    ours = sample_range(net, x, 16, 0, 2, seed=seed, readout="all")
    ref = netfield.sample(net, x, 16, 2, seed=seed, readout="all")
    np.testing.assert_array_equal(ours.readout, ref.readout)


def test_hyper_parameters_are_not_baked_into_the_compiled_function():
    """Two weight variances share one compiled function but give different (correct) numbers."""
    x = np.eye(2)
    for wv in (0.5, 2.5):
        net = netfield.dnn(2, "erf", weight_var=wv)
        ours = sample_range(net, x, 8, 0, 2, seed=3)
        ref = netfield.sample(net, x, 8, 2, seed=3)
        np.testing.assert_array_equal(ours.readout, ref.readout)


def test_bad_arguments_are_named():
    net = netfield.rnn(2)
    with pytest.raises(ValueError, match="seed"):
        sample_range(net, np.eye(2), 8, 0, 1, seed=-1)
    with pytest.raises(ValueError, match="width"):
        sample_range(net, np.eye(2), 0, 0, 1)
    with pytest.raises(ValueError, match="networks"):
        sample_range(net, np.eye(2), 8, 0, 0)
