"""Matrix-free GP regression: preconditioned conjugate gradients and a stochastic log-evidence (docs/theory.md 2.4).

For kernels too large for one worker's memory (N^2 * 8 bytes: 80 GB at N = 100,000) the Cholesky path
of :mod:`netfield.gp.regression` is replaced by solvers that touch the kernel only through a
:class:`KernelOperator` - products K v, the diagonal and single columns:

- :func:`pivoted_cholesky`: rank-k factor K ~ L_k L_k^T from k columns (docs/theory.md eq. 2.4b);
- :class:`LowRankPreconditioner`: P = L_k L_k^T + noise I, applied in O(N k) (eqs. 2.4c-2.4d);
- :func:`conjugate_gradients`: (K + noise I) x = b by preconditioned CG (eq. 2.4e);
- :func:`stochastic_lanczos_logdet`: log det(K + noise I) with its standard error (eqs. 2.4f-2.4g);
- :func:`fit_iterative`: alpha, the mean predictor and the log evidence with its error (eq. 2.4h).

An operator whose row blocks live elsewhere (Dask workers) subclasses :class:`RowBlockOperator` and
overrides only :meth:`RowBlockOperator.map_blocks`. Exact Cholesky (:func:`netfield.gp.fit_kernel`)
stays the default wherever the kernel fits in memory: it is exact, with no tolerance or estimated error.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

from .._checks import check_finite_array, check_positive_int, check_variance
from ._threads import blas_threads
from .operators import BlockRowsOperator, DenseKernelOperator, KernelOperator, RowBlockOperator, as_operator
from .regression import Posterior, _check_targets


class ConvergenceError(RuntimeError):
    """Conjugate gradients did not reach the requested residual within ``max_iter`` iterations."""


# ---- pivoted Cholesky preconditioner ----------------------------------------------------------

@dataclass(frozen=True, eq=False)
class PivotedCholesky:
    """K ~ factor @ factor.T (docs/theory.md eq. 2.4b).

    Attributes:
        factor: (N, k) lower-trapezoidal in pivot order (row ``pivots[j]`` is zero beyond column j).
        pivots: (k,) the chosen columns, in order.
        trace_error: tr(K - factor factor^T) >= 0, the nuclear norm of the residual (PSD K).
        trace: tr K.
    """

    factor: np.ndarray
    pivots: np.ndarray
    trace_error: float
    trace: float

    @property
    def rank(self) -> int:
        return self.factor.shape[1]


def pivoted_cholesky(op, rank: int, tol: float = 0.0) -> PivotedCholesky:
    """Partial pivoted Cholesky of a PSD kernel (Harbrecht, Peters & Schneider 2012; docs/theory.md 2.4b).

    Step j takes the largest remaining diagonal entry d_i as pivot and adds the column
    (K[:, i] - L L[i]^T) / sqrt(d_i). Uses ``op.diagonal()`` once and ``op.columns([i])`` k times.

    Cost: k kernel columns (k N kernel entries) plus 2 N k^2 flops; memory N k. ``rank`` is the lever.

    Args:
        op: a :class:`KernelOperator` or an (N, N) array.
        rank: the largest k (>= 0; capped at N).
        tol: stop early once trace_error <= tol * tr K (>= 0; 0: only an exactly reproduced K stops it).
    """
    op = as_operator(op)
    rank = min(check_positive_int("rank", rank, minimum=0), op.size)
    tol = float(check_variance("tol", tol))
    n = op.size
    residual = np.array(op.diagonal(), dtype=np.float64)
    if residual.shape != (n,) or not np.all(np.isfinite(residual)) or residual.min() < 0:
        raise ValueError("the operator's diagonal must be (N,), finite and >= 0 (a PSD kernel), "
                         f"got shape {residual.shape} with min {np.min(residual):.3g}")
    trace = float(residual.sum())
    with blas_threads(n):
        factor, pivots, trace_error = _pivoted_cholesky_steps(op, residual, rank, tol * trace)
    return PivotedCholesky(factor, pivots, trace_error, trace)


def _pivoted_cholesky_steps(op, residual: np.ndarray, rank: int, stop: float):
    n = residual.shape[0]
    factor = np.zeros((n, rank))
    pivots = []
    for j in range(rank):
        i = int(np.argmax(residual))
        if residual[i] <= 0 or residual.sum() <= stop:
            break
        column = np.asarray(op.columns([i]), dtype=np.float64).reshape(n)
        column = (column - factor[:, :j] @ factor[i, :j]) / math.sqrt(residual[i])
        factor[:, j] = column
        residual = np.maximum(residual - column * column, 0.0)  # roundoff can make it slightly negative
        residual[i] = 0.0
        pivots.append(i)
    return factor[:, :len(pivots)].copy(), np.array(pivots, dtype=np.int64), float(residual.sum())


class LowRankPreconditioner:
    """P = L L^T + noise I for an (N, k) factor L (docs/theory.md eqs. 2.4c-2.4d).

    With the thin SVD L = Q diag(mu)^{1/2} W^T (Q: N x k orthonormal) P = Q diag(mu + noise) Q^T +
    noise (I - Q Q^T), so P^{-1}, P^{-1/2} (Woodbury, eq. 2.4c) and log det P (determinant lemma,
    eq. 2.4d) are exact and cost O(N k) per vector; the SVD costs O(N k^2) once.

    Args:
        factor: (N, k) array, k >= 0 (k = 0: P = noise I).
        noise: > 0.
    """

    def __init__(self, factor, noise):
        noise = float(check_variance("noise", noise, allow_zero=False))
        factor = check_finite_array("factor", factor)
        if factor.ndim != 2:
            raise ValueError(f"factor must be an (N, k) array, got shape {factor.shape}")
        self.noise, self.size, self.rank = noise, factor.shape[0], factor.shape[1]
        if self.rank:
            q, r = np.linalg.qr(factor)
            w, s, _ = np.linalg.svd(r)
            self.basis, self.mu = q @ w, s * s
        else:
            self.basis, self.mu = np.zeros((self.size, 0)), np.zeros(0)
        self.eigenvalues = self.mu + noise  # of P on span(basis); noise on its complement

    def _apply_power(self, v: np.ndarray, power: float) -> np.ndarray:
        """P^power v for v (N,) or (N, m)."""
        scale = self.noise ** power
        coefficients = self.basis.T @ v
        shift = self.eigenvalues ** power - scale
        return scale * v + self.basis @ (shift[:, None] * coefficients if v.ndim == 2 else shift * coefficients)

    def solve(self, v) -> np.ndarray:
        """P^{-1} v (eq. 2.4c)."""
        return self._apply_power(np.asarray(v, dtype=np.float64), -1.0)

    def inv_sqrt(self, v) -> np.ndarray:
        """P^{-1/2} v (symmetric root)."""
        return self._apply_power(np.asarray(v, dtype=np.float64), -0.5)

    def logdet(self) -> float:
        """log det P = N log(noise) + sum_j log(1 + mu_j / noise) (eq. 2.4d)."""
        return self.size * math.log(self.noise) + float(np.sum(np.log1p(self.mu / self.noise)))


# ---- conjugate gradients -----------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class CGResult:
    """Solution of (K + noise I) x = b.

    Attributes:
        solution: x, shaped like b.
        iterations: CG iterations (one matvec each; the slowest column when b has several).
        residual: max over columns of ||b - (K + noise I) x|| / ||b||, recomputed from x (not the
            recurrence).
        converged: residual <= tol.
    """

    solution: np.ndarray
    iterations: int
    residual: float
    converged: bool


def _check_tol(tol) -> float:
    return float(check_variance("tol", tol, allow_zero=False))


def _cg_columns(apply, precondition, rhs: np.ndarray, tol: float, max_iter: int):
    """Preconditioned CG on every column of rhs (N, m): (x, relative residuals (m,), iterations)."""
    b_norm = np.linalg.norm(rhs, axis=0)
    x = np.zeros_like(rhs)
    r = rhs.copy()
    z = precondition(r)
    p = z.copy()
    rz = np.sum(r * z, axis=0)
    relative = np.where(b_norm > 0, 1.0, 0.0)
    active = b_norm > 0
    iterations = 0
    while active.any() and iterations < max_iter:
        iterations += 1
        cols = np.flatnonzero(active)
        ap = apply(p[:, cols])
        step = rz[cols] / np.sum(p[:, cols] * ap, axis=0)
        x[:, cols] += step * p[:, cols]
        r[:, cols] -= step * ap
        relative[cols] = np.linalg.norm(r[:, cols], axis=0) / b_norm[cols]
        done = cols[relative[cols] <= tol]
        if done.size:  # the recurrence drifts from the true residual: check it, restart if needed
            r[:, done] = rhs[:, done] - apply(x[:, done])
            relative[done] = np.linalg.norm(r[:, done], axis=0) / b_norm[done]
            active[done[relative[done] <= tol]] = False
        cols = np.flatnonzero(active)
        z_cols = precondition(r[:, cols])
        rz_new = np.sum(r[:, cols] * z_cols, axis=0)
        restart = np.isin(cols, done)  # fresh residual: steepest-descent direction
        beta = np.where(restart, 0.0, rz_new / np.where(rz[cols] == 0, 1.0, rz[cols]))
        p[:, cols] = z_cols + beta * p[:, cols]
        rz[cols] = rz_new
    if active.any():  # the reported residual is the true one, even when CG stopped on the limit
        cols = np.flatnonzero(active)
        relative[cols] = np.linalg.norm(rhs[:, cols] - apply(x[:, cols]), axis=0) / b_norm[cols]
    return x, relative, iterations


def conjugate_gradients(op, b, *, noise, preconditioner=None, tol: float = 1e-10, max_iter: int | None = None,
                        raise_on_failure: bool = True) -> CGResult:
    """Solve (K + noise I) x = b by preconditioned conjugate gradients (docs/theory.md eq. 2.4e).

    The columns of an (N, m) ``b`` are independent CG runs sharing each (N, m') matvec; a column stops
    once its residual ||r|| / ||b|| <= tol. When the recurrence says so, the residual is recomputed as
    b - (K + noise I) x (one more matvec) and CG restarts from it if that one is still above tol.

    Cost: per iteration one matvec (2 N^2 flops for a dense kernel) and one preconditioner solve
    (O(N k)); the iteration count grows like sqrt(cond(P^{-1}(K + noise I))) log(1 / tol). Levers:
    the preconditioner rank and ``tol``.

    Args:
        op: a :class:`KernelOperator` or an (N, N) array (K without the noise).
        b: (N,) or (N, m) right-hand side.
        noise: > 0.
        preconditioner: None (identity) or an object with ``solve(v)`` = P^{-1} v, e.g.
            :class:`LowRankPreconditioner`.
        tol: relative residual to reach (> 0).
        max_iter: iteration limit (default max(N, 100)).
        raise_on_failure: raise :class:`ConvergenceError` if ``tol`` is not reached (default); if
            False, warn (RuntimeWarning) and return ``converged=False``.
    """
    op = as_operator(op)
    n = op.size
    noise = float(check_variance("noise", noise, allow_zero=False))
    tol = _check_tol(tol)
    max_iter = max(n, 100) if max_iter is None else check_positive_int("max_iter", max_iter)
    b_arr = check_finite_array("b", b)
    if b_arr.ndim not in (1, 2) or b_arr.shape[0] != n:
        raise ValueError(f"b must have shape ({n},) or ({n}, m), got shape {b_arr.shape}")
    rhs = b_arr[:, None] if b_arr.ndim == 1 else b_arr

    def apply(v):
        return np.asarray(op.matvec(v), dtype=np.float64) + noise * v

    def precondition(v):
        return v if preconditioner is None else np.asarray(preconditioner.solve(v), dtype=np.float64)

    with blas_threads(n):
        x, relative, iterations = _cg_columns(apply, precondition, rhs, tol, max_iter)
    residual = float(relative.max())
    converged = residual <= tol
    if not converged:
        message = (f"conjugate gradients did not converge within max_iter = {max_iter} iterations: relative "
                   f"residual {residual:.3g} > tol = {tol:.3g}. Raise max_iter, raise the preconditioner rank, "
                   f"raise noise (now {noise:.3g}) or loosen tol")
        if raise_on_failure:
            raise ConvergenceError(message)
        warnings.warn(message, RuntimeWarning, stacklevel=2)
    return CGResult(x[:, 0] if b_arr.ndim == 1 else x, iterations, residual, converged)


# ---- stochastic Lanczos quadrature -------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class LogDetEstimate:
    """log det(K + noise I) by stochastic Lanczos quadrature (docs/theory.md eqs. 2.4f-2.4g).

    Attributes:
        value: the estimate, log det P + mean over probes of the quadrature of z^T log(M) z.
        standard_error: std over probes / sqrt(probes): the Monte Carlo error of ``value``.
        log_det_preconditioner: log det P (exact; 0 without a preconditioner).
        samples: (probes,) the per-probe quadratures.
        quadrature_change: max over probes of |Lanczos quadrature with m steps - with m - 1 steps|, a
            gauge of the quadrature (bias) error, which ``standard_error`` does not include.
        lanczos_steps: m actually used (<= N).
    """

    value: float
    standard_error: float
    log_det_preconditioner: float
    samples: np.ndarray
    quadrature_change: float
    lanczos_steps: int


def _lanczos_tridiagonals(apply, start: np.ndarray, steps: int):
    """Lanczos with full reorthogonalisation for every column of ``start`` at once.

    Returns (diagonals (steps, p), off-diagonals (steps - 1, p), lengths (p,), exact (p,)): the Jacobi
    matrix T of each probe, of size ``lengths`` (< steps where a probe found an invariant subspace);
    ``exact`` marks the probes whose Krylov space became invariant (their quadrature is exact).
    """
    n, count = start.shape
    basis = np.zeros((steps, n, count))
    diagonals = np.zeros((steps, count))
    off = np.zeros((steps - 1, count))
    lengths = np.full(count, steps)
    exact = np.zeros(count, dtype=bool)
    q = start / np.linalg.norm(start, axis=0)
    scale = 0.0
    for j in range(steps):
        basis[j] = q
        w = apply(q)
        diagonals[j] = np.sum(q * w, axis=0)
        for _ in range(2):  # classical Gram-Schmidt twice against every earlier vector
            w -= np.einsum("jnc,jc->nc", basis[:j + 1], np.einsum("jnc,nc->jc", basis[:j + 1], w))
        norm = np.linalg.norm(w, axis=0)
        scale = max(scale, float(np.abs(diagonals[j]).max()), float(norm.max()))
        stopped = ~exact & (norm <= 1e-12 * scale)
        lengths[stopped] = j + 1
        exact |= stopped
        if j == steps - 1:
            break
        off[j] = np.where(exact, 0.0, norm)
        q = np.where(exact, 0.0, w / np.where(exact, 1.0, norm))
    return diagonals, off, lengths, exact


def _gauss_quadrature_log(diagonals: np.ndarray, off: np.ndarray) -> np.ndarray:
    """e_1^T log(T) e_1 (Gauss quadrature of the spectral measure) for the Jacobi matrices T of every
    probe: diagonals (m, p), off-diagonals (m - 1, p); returns (p,). One batched eigh."""
    m, count = diagonals.shape
    t = np.zeros((count, m, m))
    rows = np.arange(m)
    t[:, rows, rows] = diagonals.T
    t[:, rows[:-1], rows[1:]] = t[:, rows[1:], rows[:-1]] = off.T
    with threadpool_limits(limits=1, user_api="blas"):  # p small eigenproblems: threads only spin
        theta, vectors = np.linalg.eigh(t)
    if theta.min() <= 0:
        raise ValueError(f"Lanczos found a non-positive Ritz value {theta.min():.3g}: the operator is not "
                         f"positive definite (is the kernel PSD and noise > 0?)")
    return np.sum(vectors[:, 0, :] ** 2 * np.log(theta), axis=1)


def stochastic_lanczos_logdet(op, *, noise, preconditioner=None, probes: int = 32, lanczos_steps: int = 30,
                              seed=0) -> LogDetEstimate:
    """log det(K + noise I) by stochastic Lanczos quadrature (Ubaru, Chen & Saad 2017) on the
    preconditioned matrix M = P^{-1/2} (K + noise I) P^{-1/2} (docs/theory.md eqs. 2.4f-2.4g).

    log det(K + noise I) = log det P + tr log M; tr log M is averaged over Rademacher probes z (entries
    +-1 from ``numpy.random.default_rng(seed)``: the same seed gives the same bits, on one machine with
    the same BLAS threads), each z^T log(M) z
    by an m-point Gauss quadrature from m Lanczos steps started at z. A good preconditioner makes
    log M small, hence the probe variance (2 sum_{i != j} log(M)_ij^2 for Rademacher z) small.

    Cost: probes * lanczos_steps matvecs (each on an (N, probes) block) and as many preconditioner
    applications; full reorthogonalisation adds 4 N probes m^2 flops and stores m N probes floats
    (m = 30, probes = 32: 7.7 MB per 1,000 rows). Levers: ``probes`` (error ~ 1/sqrt(probes)), the
    preconditioner rank (error and the steps needed), ``lanczos_steps`` (quadrature bias, reported as
    ``quadrature_change``).

    Args:
        op: a :class:`KernelOperator` or an (N, N) array (K without the noise).
        noise: > 0.
        preconditioner: None or a :class:`LowRankPreconditioner` (anything with ``inv_sqrt`` and
            ``logdet``).
        probes: number of random probes (>= 2, for a standard error).
        lanczos_steps: Lanczos steps per probe (>= 2; capped at N).
        seed: seed of the probes' ``numpy.random.Generator``.
    """
    op = as_operator(op)
    n = op.size
    noise = float(check_variance("noise", noise, allow_zero=False))
    probes = check_positive_int("probes", probes, minimum=2)
    steps = min(check_positive_int("lanczos_steps", lanczos_steps, minimum=2), n)
    rng = np.random.default_rng(seed)
    z = rng.integers(0, 2, size=(n, probes)).astype(np.float64) * 2.0 - 1.0

    if preconditioner is None:
        def apply(v):
            return np.asarray(op.matvec(v), dtype=np.float64) + noise * v
        log_det_p = 0.0
    else:
        def apply(v):
            u = preconditioner.inv_sqrt(v)
            return preconditioner.inv_sqrt(np.asarray(op.matvec(u), dtype=np.float64) + noise * u)
        log_det_p = float(preconditioner.logdet())

    with blas_threads(n):
        diagonals, off, lengths, exact = _lanczos_tridiagonals(apply, z, steps)
    z_norm2 = np.sum(z * z, axis=0)
    diagonals[np.arange(steps)[:, None] >= lengths] = 1.0  # pad probes that stopped early: log 1 = 0
    samples = z_norm2 * _gauss_quadrature_log(diagonals, off)
    change = 0.0
    if steps > 1 and not exact.all():  # the same with one step fewer: how much the last step moved it
        fewer = z_norm2 * _gauss_quadrature_log(diagonals[:-1], off[:-1])
        change = float(np.max(np.abs(samples - fewer)[~exact]))
    value = log_det_p + float(samples.mean())
    error = float(samples.std(ddof=1) / math.sqrt(probes))
    if change > error:
        warnings.warn(f"the Lanczos quadrature has not converged: its last step changed a probe's estimate by "
                      f"{change:.3g}, more than the standard error {error:.3g}; raise lanczos_steps (now {steps}) "
                      f"or the preconditioner rank", RuntimeWarning, stacklevel=2)
    return LogDetEstimate(value, error, log_det_p, samples, change, steps)


# ---- GP regression -----------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class IterativeRegression:
    """GP regression fitted matrix-free (docs/theory.md 2.4).

    Attributes:
        alpha: (N, k) (K + noise I)^{-1} Y by CG.
        iterations: CG iterations.
        residual: the largest relative residual ||Y_c - (K + noise I) alpha_c|| / ||Y_c||.
        converged: residual <= tol (False only with ``raise_on_failure=False``).
        log_evidence: GPML eq. 2.30 summed over outputs, with the SLQ log determinant (eq. 2.4h); NaN
            if ``evidence=False``.
        log_evidence_error: its standard error, k/2 times the SLQ one (the quadratic term is exact to
            the CG tolerance); NaN if ``evidence=False``.
        logdet: the :class:`LogDetEstimate` (None if ``evidence=False``).
        preconditioner: the :class:`PivotedCholesky` factor used (None for rank 0).
        noise: the noise variance.
        flat: whether the targets were 1-D.
    """

    alpha: np.ndarray
    iterations: int
    residual: float
    converged: bool
    log_evidence: float
    log_evidence_error: float
    logdet: LogDetEstimate | None
    preconditioner: PivotedCholesky | None
    noise: float
    flat: bool

    def predict(self, k_cross) -> Posterior:
        """Posterior mean K(x*, X) alpha (docs/theory.md eq. 2.3a) from k_cross (M, N); no variances."""
        k_cross = check_finite_array("k_cross", k_cross)
        n = self.alpha.shape[0]
        if k_cross.ndim != 2 or k_cross.shape[1] != n:
            raise ValueError(f"k_cross must have shape (M, {n}), got {k_cross.shape}")
        mean = k_cross @ self.alpha
        return Posterior(mean[:, 0] if self.flat else mean)


def fit_iterative(k, y, *, noise, tol: float = 1e-10, max_iter: int | None = None, rank: int = 100,
                  probes: int = 32, lanczos_steps: int = 30, seed=0, evidence: bool = True,
                  raise_on_failure: bool = True) -> IterativeRegression:
    """GP regression without factorising K: pivoted-Cholesky-preconditioned CG for alpha and stochastic
    Lanczos quadrature for the log evidence, with its standard error (docs/theory.md 2.4).

    Use it when K + noise I does not fit in one worker's memory (a :class:`RowBlockOperator` over
    distributed row blocks); where it fits, :func:`netfield.gp.fit_kernel` (exact Cholesky) is the
    default (exact, no tolerance, no estimated error).

    Cost: ``rank`` kernel columns; CG iterations + 1 matvecs of (N, k) blocks (2 N^2 k flops each,
    dense); probes * lanczos_steps matvecs of (N, probes) blocks for the evidence (``evidence=False``
    skips them). Levers: ``rank`` (fewer CG iterations, smaller SLQ error), ``probes``, ``tol``.

    Args:
        k: a :class:`KernelOperator` or an (N, N) kernel matrix (without the noise).
        y: (N,) or (N, k) targets.
        noise: observation-noise variance > 0 (the matrix-free path has no jitter fallback).
        tol: CG relative residual (> 0).
        max_iter: CG iteration limit (default max(N, 100)).
        rank: pivoted-Cholesky preconditioner rank (>= 0; 0: no preconditioner).
        probes, lanczos_steps, seed: SLQ settings (:func:`stochastic_lanczos_logdet`).
        evidence: estimate the log evidence (default True).
        raise_on_failure: see :func:`conjugate_gradients`.

    Example:
        >>> import numpy as np
        >>> from netfield.gp import fit_iterative
        >>> x = np.linspace(-1, 1, 50); k = np.exp(-(x[:, None] - x) ** 2)
        >>> fit = fit_iterative(k, np.sin(3 * x), noise=1e-2, rank=10)
        >>> fit.residual <= 1e-10, fit.log_evidence_error < 1e-2
        (True, True)
    """
    op = as_operator(k)
    n = op.size
    noise = float(check_variance("noise", noise, allow_zero=False))
    tol = _check_tol(tol)
    rank = check_positive_int("rank", rank, minimum=0)
    probes = check_positive_int("probes", probes, minimum=2)
    lanczos_steps = check_positive_int("lanczos_steps", lanczos_steps, minimum=2)
    y2, flat = _check_targets(y, n)

    factor = pivoted_cholesky(op, rank) if rank > 0 else None
    precond = LowRankPreconditioner(factor.factor, noise) if factor is not None else None
    cg = conjugate_gradients(op, y2, noise=noise, preconditioner=precond, tol=tol, max_iter=max_iter,
                             raise_on_failure=raise_on_failure)
    logdet, lml, lml_error = None, math.nan, math.nan
    if evidence:
        logdet = stochastic_lanczos_logdet(op, noise=noise, preconditioner=precond, probes=probes,
                                           lanczos_steps=lanczos_steps, seed=seed)
        outputs = y2.shape[1]
        lml = (-0.5 * float(np.sum(y2 * cg.solution)) - 0.5 * outputs * logdet.value
               - 0.5 * outputs * n * math.log(2 * math.pi))  # GPML eq. 2.30; docs/theory.md eq. 2.4h
        lml_error = 0.5 * outputs * logdet.standard_error
    return IterativeRegression(cg.solution, cg.iterations, cg.residual, cg.converged, lml, lml_error, logdet, factor,
                               noise, flat)


__all__ = [
    "BlockRowsOperator",
    "CGResult",
    "ConvergenceError",
    "DenseKernelOperator",
    "IterativeRegression",
    "KernelOperator",
    "LogDetEstimate",
    "LowRankPreconditioner",
    "PivotedCholesky",
    "RowBlockOperator",
    "as_operator",
    "conjugate_gradients",
    "fit_iterative",
    "pivoted_cholesky",
    "stochastic_lanczos_logdet",
]
