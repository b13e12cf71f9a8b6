"""A network's kernel as row blocks computed and kept on Dask workers (docs/distributed.md section 4).

:class:`WorkerRowBlocks` is the :class:`~netfield.gp.operators.RowBlockOperator` of the matrix-free GP
solvers (:func:`netfield.gp.fit_iterative`) whose blocks K[rows_i, :] never leave the workers: each
block is computed on a worker from its rows' inputs (``netfield.kernel(net, x[rows_i], x)``) and
held there; a matrix-vector product sends v to every block and gathers the (n_i,) pieces. So the
caller's memory holds O(N k) numbers, the workers' together the N x N kernel (8 N^2 bytes: 3.2 GB at
N = 20,000, spread over the workers). A worker that dies loses its blocks; Dask computes them again
from the task that made them (its inputs are in the task).
"""

from __future__ import annotations

import numpy as np

from .._checks import check_positive_int
from ..meanfield.tiled import count_patterns, take_patterns
from .operators import BlockRowsOperator, RowBlockOperator


def _row_block(net, x_rows, x, options: dict) -> np.ndarray:
    from ..meanfield.kernels import kernel

    return np.asarray(kernel(net, x_rows, x, **options), dtype=np.float64)


class WorkerRowBlocks(RowBlockOperator):
    """Row blocks of a kernel held on the workers of a ``distributed.Client`` (module docstring).

    Build it with :meth:`from_network`; ``close()`` (or ``with``) releases the blocks.
    """

    def __init__(self, client, futures: list, row_counts):
        super().__init__(row_counts)
        self.client = client
        self.futures = list(futures)

    @classmethod
    def from_network(cls, net, x, *, client, block_rows: int = 2048, **kernel_options):
        """The kernel of ``net`` on ``x`` (readout "last"), blocks of ``block_rows`` rows on ``client``'s
        workers; with ``client=None`` a :class:`~netfield.gp.operators.BlockRowsOperator` in this process
        (the same blocks, for reference). ``kernel_options``: keywords of :func:`netfield.kernel`
        (``kind``, ``method``, ...).

        Cost: the N x N kernel once (spread over the workers), 8 N^2 bytes of worker memory."""
        block_rows = check_positive_int("block_rows", block_rows)
        n = count_patterns(x)
        starts = list(range(0, n, block_rows))
        counts = [min(block_rows, n - s) for s in starts]
        if client is None:
            return BlockRowsOperator([_row_block(net, take_patterns(x, s, s + c), x, kernel_options)
                                      for s, c in zip(starts, counts)])
        from distributed import Client

        if not isinstance(client, Client):
            raise TypeError(f"client must be a distributed.Client (the blocks stay on its workers while the "
                            f"operator is used), got {type(client).__name__}")
        from ..distributed import DaskExecutor

        [x_all] = DaskExecutor(client).share([x])  # a task that holds x: recomputed if its worker dies
        futures = [client.submit(_row_block, net, take_patterns(x, s, s + c), x_all, kernel_options, pure=False)
                   for s, c in zip(starts, counts)]
        return cls(client, futures, counts)

    def map_blocks(self, fn) -> list:
        futures = self.client.map(fn, self.futures, list(self.row_starts), pure=False)
        try:
            return self.client.gather(futures)
        finally:
            self.client.cancel(futures)

    def close(self) -> None:
        """Release the blocks on the workers."""
        if self.futures:
            self.client.cancel(self.futures)
            self.futures = []

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


__all__ = ["WorkerRowBlocks"]
