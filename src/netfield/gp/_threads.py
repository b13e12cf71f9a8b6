"""BLAS threading for small dense linear algebra.

For matrices below a few thousand rows a multi-threaded OpenBLAS is no faster than one thread, and
on a busy 2-core machine its spinning worker threads make a 300 x 300 Cholesky factorisation 100-300
times slower (measured: 0.3 s instead of 1 ms). Small problems therefore run single-threaded; large
ones (the N = 10,000 Cholesky) keep all BLAS threads.
"""

from __future__ import annotations

from contextlib import nullcontext

from .._runtime.blas import one_blas_thread

SMALL = 2048


def blas_threads(n: int):
    """Context manager: one BLAS thread if the problem size ``n`` < SMALL, otherwise unchanged."""
    return one_blas_thread() if n < SMALL else nullcontext()
