"""Clear errors of the samplers: seeds outside [0, 2**63) (the CLI's range too), malformed pre-activation
pairs, unsupported dtypes (float16 was accepted by the program sampler)."""

import numpy as np
import pytest

import netfield
from netfield.finite.netsor import sample_program

X = np.random.default_rng(0).normal(size=(3, 2))
NET = netfield.dnn(2)


@pytest.mark.parametrize("seed, error", [(2**70, ValueError), (2**63, ValueError), (-1, ValueError),
                                         (1.5, TypeError), (True, TypeError)])
def test_seed_outside_the_accepted_range(seed, error):
    with pytest.raises(error, match=r"seed must be an integer in \[0, 2\*\*63\), got"):
        netfield.sample(NET, X, 8, 2, seed=seed)


def test_largest_seed_is_accepted():
    assert netfield.sample(NET, X, 8, 1, seed=2**63 - 1).readout.shape == (1, 3, 3)


@pytest.mark.parametrize("pairs, match", [
    ([(1,)], r"preactivations pairs must be \(t, s\) pairs of steps in 1\.\.2, got \(1,\)"),
    ([(1, 2, 3)], r"got \(1, 2, 3\)"),
    (["ab"], r"got 'ab'"),
    ([3], r"got 3"),
    (5, r"preactivations must be one of 'none', .* or a list of \(t, s\) step pairs, got 5"),
])
def test_malformed_preactivation_pairs(pairs, match):
    with pytest.raises((ValueError, TypeError), match=match):
        netfield.sample(NET, X, 8, 2, preactivations=pairs)


@pytest.mark.parametrize("call", [
    lambda: sample_program(NET.program(X), 8, 2, dtype="float16"),
    lambda: netfield.sample(netfield.gru(2), X[:, None, :], 8, 2, dtype="float16"),
    lambda: netfield.sample(NET, X, 8, 2, dtype=np.float16),
], ids=["program", "gru", "dnn"])
def test_float16_is_rejected(call):
    with pytest.raises(ValueError, match=r"dtype must be one of 'float32', 'float64', got"):
        call()
