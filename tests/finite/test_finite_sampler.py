"""The finite-width sampler: shapes, reproducibility, chunking, resumable runs, ensembles.

Every call of netfield.sample compiles its network once (~2 s), so the runs are shared between tests
through module-scoped fixtures.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

import netfield as nf
from netfield.finite import Ensemble, mean_and_sem
from netfield.finite.sampler import _preactivation_pairs

RNG = np.random.default_rng(8)
X_SEQ = RNG.normal(size=(3, 3, 4))
NET = nf.rnn(3, "tanh", weight_var=1.5, bias_var=0.3, readout_var=0.8, readout_bias_var=0.1)
SEQS = [RNG.normal(size=(2, 3)), RNG.normal(size=(4, 3)), RNG.normal(size=(1, 3))]
RUN = {"width": 40, "seed": 4, "preactivations": "all"}


@pytest.fixture(scope="module")
def full():
    return nf.sample(NET, X_SEQ, networks=9, **RUN)


def _assert_same(a: Ensemble, b: Ensemble, exact=True):
    check = np.testing.assert_array_equal if exact else (
        lambda x, y: np.testing.assert_allclose(x, y, rtol=1e-13, atol=1e-15))
    check(a.readout, b.readout)
    assert set(a.preactivations) == set(b.preactivations)
    for key in a.preactivations:
        check(a.preactivations[key], b.preactivations[key])


def test_shapes_and_metadata(full):
    assert full.networks == 9 and full.width == 40 and full.seed == 4 and full.steps == 3
    assert full.readout_mode == "last" and full.first_network == 0
    assert full.readout.shape == (9, 3, 3) and full.readout.dtype == np.float64
    assert sorted(full.preactivations) == [(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)]
    assert full.preactivation(1, 3).shape == (9, 3, 3)
    np.testing.assert_array_equal(full.preactivation(3, 1), np.swapaxes(full.preactivation(1, 3), 1, 2))
    # empirical kernels of one network are Gram matrices: symmetric, positive semi-definite
    for k in (full.readout, full.preactivation(2, 2)):
        np.testing.assert_allclose(k, np.swapaxes(k, 1, 2), rtol=0, atol=1e-14)
        assert np.linalg.eigvalsh(k).min() > -1e-12
    # cross-time kernels of one network are not symmetric in the patterns
    assert np.abs(full.preactivation(1, 2) - np.swapaxes(full.preactivation(1, 2), 1, 2)).max() > 1e-3


def test_preactivation_modes():
    assert _preactivation_pairs("none", 3) == ()
    assert _preactivation_pairs("last", 3) == ((3, 3),)
    assert _preactivation_pairs("equal", 3) == ((1, 1), (2, 2), (3, 3))
    assert _preactivation_pairs("all", 2) == ((1, 1), (1, 2), (2, 2))
    assert _preactivation_pairs([(2, 1), (1, 2), (3, 3)], 3) == ((1, 2), (3, 3))


def test_reproducible_from_seed(full):
    _assert_same(nf.sample(NET, X_SEQ, networks=9, **RUN), full)


def test_independent_of_chunk_size(full):
    _assert_same(nf.sample(NET, X_SEQ, networks=9, chunk_size=1, **RUN), full, exact=False)


def test_networks_one_after_another_equal_vmapped(full, monkeypatch):
    """Large networks run one at a time inside the compiled chunk (lax.map) instead of vmapped:
    the same networks, up to the rounding of batched products."""
    from netfield.finite import sampler

    assert not sampler._sequential(RUN["width"], X_SEQ.shape[0], 3)
    monkeypatch.setattr(sampler, "SEQUENTIAL_FLOPS", 1.0)
    assert sampler._sequential(RUN["width"], X_SEQ.shape[0], 3)
    sampler._compiled_chunk.cache_clear()
    try:
        _assert_same(nf.sample(NET, X_SEQ, networks=9, chunk_size=4, **RUN), full, exact=False)
    finally:
        sampler._compiled_chunk.cache_clear()


def test_first_network_continuation_and_concatenate(full):
    tail = nf.sample(NET, X_SEQ, networks=5, first_network=4, chunk_size=2, **RUN)  # 2 + 2 + 1
    assert tail.first_network == 4 and tail.networks == 5
    np.testing.assert_allclose(tail.readout, full.readout[4:], rtol=1e-13, atol=1e-15)
    for key in full.preactivations:
        np.testing.assert_allclose(tail.preactivations[key], full.preactivations[key][4:], rtol=1e-13, atol=1e-15)
    head = nf.sample(NET, X_SEQ, networks=4, **RUN)
    joined = Ensemble.concatenate([head, tail])
    _assert_same(joined, Ensemble.concatenate([head, dataclasses.replace(tail)]))
    _assert_same(joined, full, exact=False)
    assert joined.first_network == 0 and joined.networks == 9 and joined.width == 40 and joined.steps == 3


def test_other_seed_other_networks_and_concatenate_checks(full):
    other = nf.sample(NET, X_SEQ, networks=2, first_network=4, **dict(RUN, seed=5))
    assert np.abs(other.readout - full.readout[4:6]).min() > 0  # every entry differs
    head = Ensemble(readout=full.readout[:4], preactivations={k: v[:4] for k, v in full.preactivations.items()},
                    width=40, seed=4, readout_mode="last", first_network=0, steps=3)
    with pytest.raises(ValueError, match="parts must come from the same run"):
        Ensemble.concatenate([head, other])
    with pytest.raises(ValueError, match="parts must come from the same run"):
        Ensemble.concatenate([head, dataclasses.replace(other, seed=4, width=24)])
    with pytest.raises(ValueError, match="parts must come from the same run"):
        Ensemble.concatenate([head, dataclasses.replace(other, seed=4, preactivations={})])
    with pytest.raises(ValueError, match="parts must be a non-empty list"):
        Ensemble.concatenate([])


def test_readout_hyper_parameters_enter_analytically(full):
    """The readout matrix is integrated out: readout_var scales, readout_bias_var shifts the kernel."""
    other = nf.sample(NET.replace(readout_var=1.6, readout_bias_var=0.0), X_SEQ, networks=9, width=40, seed=4)
    np.testing.assert_allclose(other.readout, 2 * (full.readout - NET.readout_bias_var), rtol=1e-13, atol=1e-14)
    assert sorted(other.preactivations) == [(1, 1), (2, 2), (3, 3)]  # default preactivations='equal'
    for t in (1, 2, 3):
        np.testing.assert_array_equal(other.preactivation(t), full.preactivation(t))


def test_mean_and_sem(full):
    samples = np.array([[1.0, 2.0], [3.0, 2.0], [5.0, 2.0]])
    mean, sem = mean_and_sem(samples)
    np.testing.assert_allclose(mean, [3.0, 2.0])
    np.testing.assert_allclose(sem, [2.0 / np.sqrt(3.0), 0.0])
    m, s = full.readout_stats()
    np.testing.assert_allclose(m, full.readout.mean(0))
    np.testing.assert_allclose(s, full.readout.std(0, ddof=1) / 3.0)
    m, s = full.preactivation_stats(2, 3)
    np.testing.assert_allclose(m, full.preactivation(2, 3).mean(0))
    _, one = mean_and_sem(samples[:1])
    assert np.isinf(one).all()  # one sample: no error bar, not a zero one


def test_variable_length_sequences():
    net = nf.rnn(4, "erf", bias_var=0.2)
    lengths = [len(s) for s in SEQS]
    every = nf.sample(net, SEQS, width=32, networks=3, seed=6, readout="all", method="weights")
    assert every.readout.shape == (3, sum(lengths), sum(lengths)) and every.readout_mode == "all"
    assert every.steps == 4
    # the first two sequences alone, read out at their last steps: the same networks (same seed), so
    # the same numbers as the corresponding rows of the bigger batch (rows: sequence by sequence,
    # step by step); a sequence's kernel does not depend on its batch mates. With weights only: the
    # conditional sampler draws all sequences' step t jointly, so batch mates change the numbers
    # (not their law, tests/finite/test_conditional_sampler.py)
    two = nf.sample(net, SEQS[:2], width=32, networks=3, seed=6, method="weights")
    assert two.readout.shape == (3, 2, 2) and two.steps == 4
    last_rows = np.cumsum(lengths)[:2] - 1
    np.testing.assert_allclose(every.readout[:, last_rows][:, :, last_rows], two.readout, rtol=1e-12, atol=1e-14)
    assert np.abs(every.readout[:, 0, 0] - every.readout[:, 1, 1]).min() > 0  # rows are distinct steps


def test_float32_sampling():
    ens = nf.sample(NET, X_SEQ, width=32, networks=3, seed=1, dtype="float32")
    assert ens.readout.dtype == np.float64  # stored as float64
    assert np.isfinite(ens.readout).all()
    np.testing.assert_allclose(ens.readout, np.swapaxes(ens.readout, 1, 2), rtol=0, atol=1e-5)
    assert np.linalg.eigvalsh(ens.readout).min() > -1e-5
