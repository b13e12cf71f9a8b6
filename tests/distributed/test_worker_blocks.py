"""GP regression over kernel row blocks held on Dask workers (issue 22, part 5): preconditioned CG
agrees with the exact Cholesky solution and the SLQ evidence with the exact one within its error."""

import numpy as np
import pytest

import netfield as nf
from netfield.gp import WorkerRowBlocks, fit_iterative, fit_kernel, log_marginal_likelihood

NET = nf.dnn(3, "erf", weight_var=1.5, bias_var=0.1)


def test_distributed_cg_regression_matches_cholesky_on_2000_points(dask_client):
    rng = np.random.default_rng(0)
    x = rng.normal(size=(2000, 8))
    y = np.sin(x[:, 0]) + 0.1 * rng.normal(size=2000)
    noise = 1e-2
    k = np.asarray(nf.kernel(NET, x))
    exact = fit_kernel(k, y, noise=noise)
    exact_evidence = float(log_marginal_likelihood(k, y, noise=noise))
    with WorkerRowBlocks.from_network(NET, x, client=dask_client, block_rows=500) as op:
        assert op.row_counts == (500,) * 4
        # the blocks are the kernel's rows (cross-kernel strips: the diagonal is not pinned, ~1 ulp)
        np.testing.assert_allclose(op.diagonal(), np.diagonal(k), rtol=1e-13, atol=0)
        fit = fit_iterative(op, y, noise=noise, rank=600, probes=256, lanczos_steps=20, seed=0)
    alpha_exact = exact.alpha if hasattr(exact, "alpha") else exact.factor.solve(y)
    assert np.max(np.abs(fit.alpha - alpha_exact)) <= 1e-8 * np.max(np.abs(alpha_exact))
    # the estimate is within 4 of its standard errors, and the error is small enough to fail a wrong one
    assert abs(fit.log_evidence - exact_evidence) <= 4 * fit.log_evidence_error
    assert fit.log_evidence_error < 1e-3 * abs(exact_evidence)


def test_in_process_blocks_are_the_reference(dask_client):
    x = np.random.default_rng(1).normal(size=(300, 4))
    here = WorkerRowBlocks.from_network(NET, x, client=None, block_rows=128)
    with WorkerRowBlocks.from_network(NET, x, client=dask_client, block_rows=128) as there:
        v = np.random.default_rng(2).normal(size=(300, 3))
        assert np.array_equal(here.matvec(v), there.matvec(v))
        assert np.array_equal(here.columns([0, 7, 299]), there.columns([0, 7, 299]))
    with pytest.raises(TypeError, match="client must be a distributed.Client"):
        WorkerRowBlocks.from_network(NET, x, client="tcp://127.0.0.1:1")
