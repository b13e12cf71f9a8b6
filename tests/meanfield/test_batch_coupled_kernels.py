"""Cross kernels of batch-coupled programs (batch norm): which batch, said explicitly (issue 17 item 5).

A batch-norm network's kernel of a pattern depends on the other patterns of its batch.
``netfield.kernel(net, x1, x2, batch="joint")`` (default) is the kernel of the batch x1 + x2;
``batch="x1"`` normalises every pattern with the statistics of x1 alone (the training batch), so
the x1 block does not depend on x2. Both are checked against sampled finite networks of the same
program and against each other; QMC-based values carry their own error estimates.
"""

import numpy as np
import pytest

import netfield as nf
from netfield.finite.netsor import sample_program
from netfield.meanfield.netsor import ProgramEngine

RNG = np.random.default_rng(5)
X1, X2 = RNG.normal(size=(4, 3)), RNG.normal(size=(3, 3))
NET = nf.batchnorm_mlp(2, "relu", weight_var=2.0, bias_var=0.1)
JOINED = np.concatenate([X1, X2])


def _theory(program):
    reps = np.asarray(ProgramEngine(program, points=2**12, replicates=8).readout())
    return reps.mean(0), reps.std(0, ddof=1) / np.sqrt(reps.shape[0])


def test_the_batch_changes_the_kernel_and_joint_is_the_kernel_of_the_joined_batch():
    alone = np.asarray(nf.kernel(NET, X1))
    joint_full, joint_err = _theory(NET.program(JOINED))
    # the batch matters: x1's block in the joined batch differs from x1 alone (far beyond QMC error)
    assert np.abs(joint_full[:4, :4] - alone).max() > 50 * joint_err.max()
    cross = np.asarray(nf.kernel(NET, X1, X2))
    np.testing.assert_allclose(cross, joint_full[:4, 4:], atol=1e-12)  # the same program, same draws


def test_x1_batch_statistics_make_the_x1_block_independent_of_x2():
    program = NET.program(JOINED, batch_rows=4)
    full, err = _theory(program)
    alone, alone_err = _theory(NET.program(X1))
    # x1's block: statistics of x1 only, as if x2 were not there (separate QMC draws: within errors)
    assert np.abs(full[:4, :4] - alone).max() <= 5 * (err.max() + alone_err.max())
    cross = np.asarray(nf.kernel(NET, X1, X2, batch="x1"))
    np.testing.assert_allclose(cross, full[:4, 4:], atol=1e-12)
    # and it differs from the joint batch's cross kernel, entry by entry beyond both error estimates
    _, joint_err = _theory(NET.program(JOINED))
    gap = np.abs(cross - np.asarray(nf.kernel(NET, X1, X2)))
    assert (gap > 20 * (err[:4, 4:] + joint_err[:4, 4:])).any()


@pytest.mark.parametrize("batch_rows", [None, 4])
def test_both_semantics_match_sampled_networks(batch_rows):
    program = NET.program(JOINED, batch_rows=batch_rows)
    theory, err = _theory(program)
    ens = sample_program(program, width=512, networks=64, seed=2)
    mean = ens.readout.mean(0)
    se = ens.readout.std(0, ddof=1) / np.sqrt(ens.networks)
    # mean over networks within 5 s.e. + QMC error + the O(1/n) finite-width bias (bounded by 4 K / n)
    bound = 5 * se + 3 * err + 4 * np.abs(theory).max() / 512
    assert (np.abs(mean - theory) <= bound).all()


def test_batch_choice_is_validated_and_ignored_without_coupling():
    with pytest.raises(ValueError, match=r"batch must be one of 'joint', 'x1', got 'train'"):
        nf.kernel(NET, X1, X2, batch="train")
    dnn = nf.dnn(2, "relu")
    np.testing.assert_array_equal(np.asarray(nf.kernel(dnn, X1, X2, batch="x1")),
                                  np.asarray(nf.kernel(dnn, X1, X2)))
