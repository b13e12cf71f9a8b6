"""Kernel operators: a kernel matrix seen only through K v, its diagonal and its columns (docs/theory.md 2.4).

The matrix-free solvers of :mod:`netfield.gp.iterative` take any object with the four members of
:class:`KernelOperator`. Two implementations live here: :class:`DenseKernelOperator` (an array in
memory) and :class:`RowBlockOperator` (consecutive row blocks K[rows_i, :]), whose only hook,
:meth:`RowBlockOperator.map_blocks`, is what a distributed version (blocks on Dask workers) replaces;
:class:`BlockRowsOperator` keeps the blocks in this process.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import partial
from typing import Protocol, runtime_checkable

import numpy as np

from .._checks import check_finite_array, check_positive_int


@runtime_checkable
class KernelOperator(Protocol):
    """A symmetric positive semi-definite kernel matrix K (N x N, without the noise), matrix-free.

    The solvers here use nothing else: ``matvec`` (CG, Lanczos), ``diagonal`` and ``columns``
    (pivoted Cholesky). All return float64 NumPy arrays.
    """

    @property
    def size(self) -> int:
        """N."""

    def matvec(self, v: np.ndarray) -> np.ndarray:
        """K v for v of shape (N,) or (N, k); same shape as v."""

    def diagonal(self) -> np.ndarray:
        """diag K, shape (N,)."""

    def columns(self, idx) -> np.ndarray:
        """K[:, idx], shape (N, len(idx))."""


def _check_vectors(v, n: int) -> np.ndarray:
    arr = np.asarray(v, dtype=np.float64)
    if arr.ndim not in (1, 2) or arr.shape[0] != n:
        raise ValueError(f"v must have shape ({n},) or ({n}, k), got shape {arr.shape}")
    return arr


def _check_indices(idx, n: int) -> np.ndarray:
    arr = np.atleast_1d(np.asarray(idx))
    if arr.ndim != 1 or not np.issubdtype(arr.dtype, np.integer) or (arr.size and (arr.min() < 0 or arr.max() >= n)):
        raise ValueError(f"idx must be a 1-D array of integer column indices in [0, {n}), got {idx!r}")
    return arr


class DenseKernelOperator:
    """A kernel matrix held in memory, as a :class:`KernelOperator` (one matvec = 2 N^2 flops).

    Symmetry is assumed, not checked (that would cost another N x N pass).
    """

    def __init__(self, k):
        arr = check_finite_array("k", k)
        if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
            raise ValueError(f"k must be a square (N, N) matrix with N >= 1, got shape {arr.shape}")
        self.matrix = arr

    @property
    def size(self) -> int:
        return self.matrix.shape[0]

    def matvec(self, v) -> np.ndarray:
        return self.matrix @ _check_vectors(v, self.size)

    def diagonal(self) -> np.ndarray:
        return np.diagonal(self.matrix).copy()

    def columns(self, idx) -> np.ndarray:
        return self.matrix[:, _check_indices(idx, self.size)]


def _block_matvec(block: np.ndarray, start: int, v: np.ndarray) -> np.ndarray:
    return block @ v


def _block_columns(block: np.ndarray, start: int, idx: np.ndarray) -> np.ndarray:
    return block[:, idx]


def _block_diagonal(block: np.ndarray, start: int) -> np.ndarray:
    return np.diagonal(block[:, start:start + block.shape[0]]).copy()


class RowBlockOperator(ABC):
    """K stored as consecutive row blocks K[rows_i, :] (n_i x N); a subclass says where they live.

    The only hook is :meth:`map_blocks`: apply ``fn(block, start)`` to every block and return the
    results in block order. ``matvec``, ``diagonal`` and ``columns`` concatenate what it returns, so a
    distributed operator (blocks held by remote workers) overrides ``map_blocks`` alone - e.g. with
    ``client.gather(client.map(fn, block_futures, row_starts))``. The functions passed are module-level
    functions bound with :func:`functools.partial`, so they pickle.

    Args:
        row_counts: n_i, the number of rows of each block (sum = N).
    """

    def __init__(self, row_counts):
        counts = [int(c) for c in row_counts]
        if not counts or min(counts) < 1:
            raise ValueError(f"row_counts must be a non-empty list of positive integers, got {row_counts!r}")
        self.row_counts = tuple(counts)
        self.row_starts = tuple(int(s) for s in np.cumsum([0] + counts[:-1]))
        self._size = int(sum(counts))

    @property
    def size(self) -> int:
        return self._size

    @abstractmethod
    def map_blocks(self, fn: Callable[[np.ndarray, int], np.ndarray]) -> list:
        """``[fn(block_i, start_i) for every block i]``, in block order."""

    def matvec(self, v) -> np.ndarray:
        v = _check_vectors(v, self.size)
        return np.concatenate(self.map_blocks(partial(_block_matvec, v=v)), axis=0)

    def diagonal(self) -> np.ndarray:
        return np.concatenate(self.map_blocks(_block_diagonal))

    def columns(self, idx) -> np.ndarray:
        idx = _check_indices(idx, self.size)
        return np.concatenate(self.map_blocks(partial(_block_columns, idx=idx)), axis=0)


class BlockRowsOperator(RowBlockOperator):
    """Row blocks held in this process (the in-memory reference for a distributed operator).

    Args:
        blocks: arrays K[rows_i, :] of shape (n_i, N), consecutive from row 0.

    Example:
        >>> import numpy as np
        >>> from netfield.gp import BlockRowsOperator
        >>> op = BlockRowsOperator.from_matrix(np.diag([1.0, 2.0, 3.0]), block_rows=2)
        >>> op.row_counts, op.matvec(np.ones(3)).tolist()
        ((2, 1), [1.0, 2.0, 3.0])
    """

    def __init__(self, blocks):
        blocks = [check_finite_array(f"blocks[{i}]", b) for i, b in enumerate(blocks)]
        if not blocks:
            raise ValueError("blocks must hold at least one (n_i, N) row block, got none")
        n = sum(b.shape[0] for b in blocks)
        for i, b in enumerate(blocks):
            if b.ndim != 2 or b.shape[1] != n or b.shape[0] < 1:
                raise ValueError(f"blocks[{i}] must have shape (n_i, N) with N = {n} (the total number of rows), "
                                 f"got shape {b.shape}")
        super().__init__([b.shape[0] for b in blocks])
        self.blocks = tuple(blocks)

    @classmethod
    def from_matrix(cls, k, block_rows: int) -> BlockRowsOperator:
        """Split an (N, N) matrix into blocks of ``block_rows`` rows (the last one may be shorter)."""
        block_rows = check_positive_int("block_rows", block_rows)
        k = check_finite_array("k", k)
        if k.ndim != 2 or k.shape[0] != k.shape[1]:
            raise ValueError(f"k must be a square (N, N) matrix, got shape {k.shape}")
        return cls([k[i:i + block_rows] for i in range(0, k.shape[0], block_rows)])

    def map_blocks(self, fn) -> list:
        return [fn(block, start) for block, start in zip(self.blocks, self.row_starts)]


def as_operator(k) -> KernelOperator:
    """``k`` itself if it is a :class:`KernelOperator`, else a :class:`DenseKernelOperator` of it."""
    if isinstance(k, KernelOperator) and not isinstance(k, np.ndarray):
        return k
    return DenseKernelOperator(k)


__all__ = ["BlockRowsOperator", "DenseKernelOperator", "KernelOperator", "RowBlockOperator", "as_operator"]
