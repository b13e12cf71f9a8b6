"""One BLAS thread for small dense linear algebra, JAX's LAPACK calls included.

On a busy 2-core machine OpenBLAS's spinning worker threads fight XLA's own threads: a 300 x 300
Cholesky factorisation becomes 100-300 times slower (0.3 s instead of 1 ms), and the conditional
sampler's 256 x 256 factors inside a compiled network took 1.1-4.9 s per network instead of 0.2 s.

JAX's CPU Cholesky factors and triangular solves call the LAPACK of SciPy's OpenBLAS
(``scipy.linalg.cython_lapack``), which is loaded only at JAX's first such call. ``threadpoolctl``
limits the libraries loaded when the limit is set, so a limit set before that first call missed it: the
first ``netfield.sample(..., method="conditional")`` of a process ran at half speed (n = 1024,
N = 256, ten layers: 0.8 s per chunk of 7 networks instead of 0.38 s; measured 2026-12-07).
:func:`one_blas_thread` loads it first.
"""

from __future__ import annotations

from threadpoolctl import threadpool_limits


def one_blas_thread():
    """Context manager: one thread for every loaded BLAS, JAX's LAPACK (SciPy's OpenBLAS) loaded first."""
    import scipy.linalg.cython_lapack  # noqa: F401  (module docstring: the library JAX's LAPACK calls use)

    return threadpool_limits(limits=1, user_api="blas")


__all__ = ["one_blas_thread"]
