r"""Expectations of multi-argument nonlinearities of a zero-mean Gaussian vector (docs/theory.md section 7).

A Nonlin instruction of a tensor program, ``h := psi(g_1, ..., g_D)``, contributes kernel entries of
the form E[F(Z)] with Z ~ N(0, K) a D-dimensional zero-mean Gaussian (K the covariance of the
arguments, computed by the master theorem). This module provides three back-ends for such
expectations and one closed form.

Square-root factor (used by all numerical back-ends)
    K = V diag(lambda) V^T  (eigendecomposition, lambda_1 >= ... >= lambda_D >= 0),
    A = V diag(sqrt(lambda)),  A A^T = K,  Z = A xi  with  xi ~ N(0, I_D).              (M1)
    Columns of A are in PCA order, so the leading coordinates of xi carry the most variance: the
    order in which quasi-Monte-Carlo point sets are most uniform.

Randomized quasi-Monte Carlo (any D)
    xi_p^(r) = Phi^{-1}(u_p^(r)),  u^(r) the r-th independently scrambled Sobol' set of P points,
    m_r = (1/P) sum_p F(A xi_p^(r)),  mean = (1/R) sum_r m_r,
    stderr = std_{ddof=1}(m_1..m_R) / sqrt(R).                                            (M2)
    Each m_r is an unbiased estimate of E[F(Z)] and the R replicates are independent, so stderr is
    an honest standard error; for smooth F it falls nearly like 1/P instead of 1/sqrt(P).

Tensor-product Gauss-Hermite (D <= 4, batched over many covariances)
    E[F(Z)] ~= sum_{i_1..i_D} w_{i_1} ... w_{i_D} F(A (x_{i_1}, ..., x_{i_D})),               (M3)
    (x_i, w_i) the n-point probabilists' Gauss-Hermite rule (weight exp(-x^2/2)/sqrt(2 pi),
    weights normalised to sum 1). Exact for polynomials of degree <= 2n - 1 in each coordinate;
    converges exponentially fast for smooth (analytic) F but only algebraically for F with kinks
    (relu, step functions) or for saturating F whose transition is narrower than the standard
    deviation, where the returned error estimate -- the difference between the last two orders --
    stays large and says so. Tensor-grid nodes whose product weight is below 1e-22
    are dropped (their total mass is < 1e-17 for D <= 4, n <= 48).

Erf-sigmoid gate products (closed form, the GRU of GP4A)
    sig(u) = (1 + erf(u)) / 2 = Phi(sqrt(2) u),  1 - sig(u) = sig(-u), so with S = diag(s), s_i = +-1,
    E[prod_i sig(s_i Z_i)] = P(s_i Z_i - E_i / sqrt(2) >= 0 for all i)   (E ~ N(0, I) independent)
                           = P(W <= 0),  W ~ N(0, S K S + I/2).                              (M4)
    Orthant probabilities of a zero-mean Gaussian with correlations rho_ij (Sheppard / Plackett):
        D = 1:  1/2
        D = 2:  1/4 + arcsin(rho_12) / (2 pi)                                                (M5)
        D = 3:  1/8 + (arcsin rho_12 + arcsin rho_13 + arcsin rho_23) / (4 pi)               (M6)
        D > 3:  Genz's quasi-Monte-Carlo integration (scipy.stats.multivariate_normal.cdf).
"""

from __future__ import annotations

import functools
import itertools
import math
import numbers

import numpy as np

from .._checks import check_finite_array, check_positive_int, check_variance
from .differentiable import orthant_closed

__all__ = [
    "erf_gate_product",
    "lowdim_expectation",
    "psd_sqrt",
    "qmc_expectation",
    "sobol_normals",
    "sobol_uniforms",
]

_SYM_RTOL = 1e-10  # relative asymmetry tolerated in a covariance
_EIG_RTOL = 1e-10  # eigenvalues >= -_EIG_RTOL * max|eig| are rounding noise and clipped to 0
_PRUNE = 1e-22  # Gauss-Hermite tensor-grid nodes with smaller product weight are dropped
_CHUNK_ELEMENTS = 1 << 22  # at most this many float64 coordinates per call of fn (32 MiB)
_MAX_SOBOL_DIM = 21201  # scipy's Sobol' direction numbers
_U_LO, _U_HI = 2.0**-60, float(np.nextafter(1.0, 0.0))  # 1 - 2^-60 would round to 1.0 in float64
_CLOSED_FORM_ERROR = 1e-15


# --------------------------------------------------------------------------------------------- sqrt


def _check_covariance(cov, name: str) -> np.ndarray:
    """A finite, square, symmetric (to 1e-10 relative) array of shape (..., D, D); returns it symmetrised."""
    arr = check_finite_array(name, cov)
    if arr.ndim < 2 or arr.shape[-1] != arr.shape[-2] or arr.shape[-1] == 0:
        raise ValueError(f"{name} must be a square matrix (or a stack of them) of shape (..., D, D) with "
                         f"D >= 1, got shape {arr.shape}")
    asym = np.abs(arr - np.swapaxes(arr, -1, -2))
    scale = np.max(np.abs(arr)) if arr.size else 0.0
    if asym.size and asym.max() > _SYM_RTOL * scale:
        where = tuple(int(i) for i in np.unravel_index(np.argmax(asym), asym.shape))
        raise ValueError(f"{name} must be symmetric (to {_SYM_RTOL:g} relative), got |{name} - {name}^T| = "
                         f"{asym.max():.3g} at index {where} (max |entry| {scale:.3g})")
    return 0.5 * (arr + np.swapaxes(arr, -1, -2))


def psd_sqrt(cov, name: str = "covariance") -> np.ndarray:
    """Square-root factor A with A A^T = cov for a symmetric positive semi-definite ``cov`` (eq. M1).

    ``A = V diag(sqrt(lambda))`` from ``numpy.linalg.eigh``, columns ordered by decreasing eigenvalue
    (PCA order, best for quasi-Monte Carlo). Works on one (D, D) matrix or a stack (..., D, D).
    Eigenvalues >= -1e-10 * max|eigenvalue| are clipped to 0 (singular and rank-deficient
    covariances are fine); more negative ones raise ValueError. ``name`` is used in error messages.
    """
    arr = _check_covariance(cov, name)
    lam, vec = np.linalg.eigh(arr)  # ascending
    lam, vec = lam[..., ::-1], vec[..., :, ::-1]
    scale = np.max(np.abs(lam), axis=-1, keepdims=True)
    bad = lam < -_EIG_RTOL * scale
    if bad.any():
        worst = np.min(np.where(bad, lam, np.inf), axis=-1)
        idx = np.unravel_index(np.argmin(worst), worst.shape) if worst.ndim else ()
        where = f" (batch index {tuple(int(i) for i in idx)})" if idx else ""
        raise ValueError(f"{name} must be positive semi-definite, got most negative eigenvalue "
                         f"{float(worst[idx]):.6g}{where} (tolerance -{_EIG_RTOL:g} * max|eigenvalue| = "
                         f"{-_EIG_RTOL * float(scale.max()):.3g})")
    return vec * np.sqrt(np.clip(lam, 0.0, None))[..., None, :]


# ------------------------------------------------------------------------------------------ RQMC


def _check_power_of_two(name: str, value) -> int:
    value = check_positive_int(name, value)
    if value & (value - 1):
        raise ValueError(f"{name} must be a power of 2 (Sobol' sets are balanced only then), got {value}; "
                         f"nearest: {1 << (value.bit_length() - 1)} or {1 << value.bit_length()}")
    return value


def _check_seed(seed) -> int:
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"seed must be an integer >= 0, got {seed!r}")
    return int(seed)


def _sobol_engine(dim: int, rng: np.random.Generator):
    from scipy.stats import qmc  # scipy.stats costs ~0.35 s at import: loaded on first use

    try:
        return qmc.Sobol(dim, scramble=True, rng=rng)
    except TypeError:  # scipy < 1.15 names the argument seed
        return qmc.Sobol(dim, scramble=True, seed=rng)


@functools.lru_cache(maxsize=8)
def _sobol_uniforms_cached(points: int, dim: int, replicates: int, seed: int) -> np.ndarray:
    m = points.bit_length() - 1
    children = np.random.SeedSequence(seed).spawn(replicates)
    out = np.empty((replicates, points, dim))
    for r, child in enumerate(children):
        out[r] = np.clip(_sobol_engine(dim, np.random.default_rng(child)).random_base2(m), _U_LO, _U_HI)
    out.setflags(write=False)
    return out


@functools.lru_cache(maxsize=8)
def _sobol_normals_cached(points: int, dim: int, replicates: int, seed: int) -> np.ndarray:
    from scipy import special  # scipy (~0.1 s at import) loads on first use

    out = special.ndtri(_sobol_uniforms_cached(points, dim, replicates, seed))
    out.setflags(write=False)
    return out


def sobol_uniforms(points: int, dim: int, replicates: int = 8, seed: int = 0) -> np.ndarray:
    """Read-only (replicates, points, dim) scrambled Sobol' uniforms in [2^-60, 1 - 2^-53]: the points
    behind :func:`sobol_normals` (which maps them by Phi^{-1}), same scramblings and cache policy."""
    points = _check_power_of_two("points", points)
    dim = check_positive_int("dim", dim)
    if dim > _MAX_SOBOL_DIM:
        raise ValueError(f"dim must be <= {_MAX_SOBOL_DIM} (scipy's Sobol' direction numbers), got {dim}")
    replicates = check_positive_int("replicates", replicates)
    return _sobol_uniforms_cached(points, dim, replicates, _check_seed(seed))


def sobol_normals(points: int, dim: int, replicates: int = 8, seed: int = 0) -> np.ndarray:
    """Read-only array (replicates, points, dim) of quasi-random N(0, 1) vectors (eq. M2).

    Replicate r is ``scipy.stats.qmc.Sobol(dim, scramble=True)`` seeded by the r-th child of
    ``numpy.random.SeedSequence(seed).spawn(replicates)`` (independent scramblings), drawn with
    ``random_base2`` (``points`` must be a power of 2) and mapped by ``scipy.special.ndtri`` after
    clipping the uniforms to [2^-60, 1 - 2^-53]. Results are cached (small LRU cache).
    """
    points = _check_power_of_two("points", points)
    dim = check_positive_int("dim", dim)
    if dim > _MAX_SOBOL_DIM:
        raise ValueError(f"dim must be <= {_MAX_SOBOL_DIM} (scipy's Sobol' direction numbers), got {dim}")
    replicates = check_positive_int("replicates", replicates)
    return _sobol_normals_cached(points, dim, replicates, _check_seed(seed))


def qmc_expectation(fn, cov, *, points: int = 2**13, replicates: int = 8, seed: int = 0):
    """Randomized quasi-Monte-Carlo estimate of E[fn(Z)], Z ~ N(0, cov) (eqs. M1, M2).

    ``fn`` maps an array (S, D) of samples to (S, ...) (numpy or JAX, vectorised over the first axis).
    Z = xi @ psd_sqrt(cov).T with xi from :func:`sobol_normals`. Returns ``(mean, stderr)``, arrays of
    fn's trailing shape (0-d for a scalar fn): the average of the ``replicates`` replicate means and
    their standard deviation (ddof=1) divided by sqrt(replicates).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable mapping samples (S, D) to (S, ...), got {type(fn).__name__}")
    a = psd_sqrt(cov, "cov")
    if a.ndim != 2:
        raise ValueError(f"cov must be one (D, D) matrix, got shape {a.shape}; for a batch of small "
                         f"covariances use lowdim_expectation")
    replicates = check_positive_int("replicates", replicates, minimum=2)
    xi = sobol_normals(points, a.shape[0], replicates, seed)
    means = []
    for r in range(replicates):
        vals = np.asarray(fn(xi[r] @ a.T), dtype=np.float64)
        if vals.ndim < 1 or vals.shape[0] != points:
            raise ValueError(f"fn must map samples of shape ({points}, {a.shape[0]}) to an array with "
                             f"leading axis {points}, got shape {vals.shape}")
        means.append(vals.mean(axis=0))
    means = np.stack(means)
    return means.mean(axis=0), means.std(axis=0, ddof=1) / math.sqrt(replicates)


# ----------------------------------------------------------------------------------- Gauss-Hermite


@functools.lru_cache(maxsize=32)
def _hermite_grid(dim: int, order: int):
    """Pruned tensor grid of the normalised probabilists' Gauss-Hermite rule (eq. M3): (P, D), (P,)."""
    x, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    nodes, weights = np.zeros((1, 0)), np.ones(1)
    for _ in range(dim):  # partial products only shrink (w <= 1), so pruning each stage is exact
        weights = (weights[:, None] * w[None, :]).ravel()
        nodes = np.concatenate([np.repeat(nodes, order, axis=0), np.tile(x, nodes.shape[0])[:, None]], axis=1)
        keep = weights >= _PRUNE
        nodes, weights = nodes[keep], weights[keep]
    nodes.setflags(write=False)
    weights.setflags(write=False)
    return nodes, weights


def _check_orders(orders) -> tuple:
    try:
        orders = tuple(orders)
    except TypeError:
        raise TypeError(f"orders must be a sequence of increasing integers >= 1, got {orders!r}") from None
    ok = len(orders) >= 2 and all(isinstance(n, numbers.Integral) and not isinstance(n, bool) and n >= 1
                                  for n in orders)
    if not ok or any(b <= a for a, b in itertools.pairwise(orders)):
        raise ValueError(f"orders must hold at least two increasing integers >= 1, got {orders!r}")
    return tuple(int(n) for n in orders)


def _hermite_value(fn, a: np.ndarray, order: int) -> np.ndarray:
    dim = a.shape[-1]
    batch = a.shape[:-2]
    nodes, weights = _hermite_grid(dim, order)
    chunk = max(1, _CHUNK_ELEMENTS // (dim * max(1, math.prod(batch))))
    total = np.zeros(batch)
    for start in range(0, nodes.shape[0], chunk):
        xn, wn = nodes[start:start + chunk], weights[start:start + chunk]
        z = xn @ np.swapaxes(a, -1, -2)  # Z = A xi for every batch entry: (..., P, D)
        vals = np.asarray(fn(z), dtype=np.float64)
        if vals.shape != batch + (xn.shape[0],):
            raise ValueError(f"fn must map samples of shape {z.shape} (..., P, D) to shape "
                             f"{batch + (xn.shape[0],)} (..., P), got {vals.shape}")
        total = total + vals @ wn
    return total


def lowdim_expectation(fn, cov, *, tol: float = 1e-10, orders=(8, 16, 24, 32, 48)):
    """E[fn(Z)], Z ~ N(0, cov), by tensor-product Gauss-Hermite quadrature for D <= 4 (eqs. M1, M3).

    Batched: ``cov`` has shape (..., D, D) and ``fn`` maps samples (..., P, D) to values (..., P)
    (the leading axes are those of ``cov``; fn must treat the P points independently, since they are
    passed in chunks). The rule order runs through ``orders`` until
    max|value_k - value_{k-1}| <= tol * max(1, max|value_k|) over the whole batch. Returns
    ``(value, error)`` of shape (...), error = |value_k - value_{k-1}| at the last order used.

    Accurate for smooth fn only: for kinks (relu, steps) convergence is algebraic, the tolerance is
    usually not met and ``error`` shows the size of the remaining error. Saturating functions whose
    transition is much narrower than the standard deviation (erf with variance >> 1) behave like
    kinks at moderate orders (erf(Z1) erf(Z2) with variances ~3: error ~1e-5 at order 48).
    """
    if not callable(fn):
        raise TypeError(f"fn must be a callable mapping samples (..., P, D) to (..., P), got "
                        f"{type(fn).__name__}")
    a = psd_sqrt(cov, "cov")
    dim = a.shape[-1]
    if dim > 4:
        raise ValueError(f"lowdim_expectation handles dimension D <= 4 (tensor grids grow like order^D), "
                         f"got cov of shape {a.shape} (D = {dim}); use qmc_expectation")
    tol = float(check_variance("tol", tol, allow_zero=False))
    orders = _check_orders(orders)
    prev = _hermite_value(fn, a, orders[0])
    for order in orders[1:]:
        value = _hermite_value(fn, a, order)
        err = np.abs(value - prev)
        if err.max(initial=0.0) <= tol * max(1.0, float(np.abs(value).max(initial=0.0))):
            break
        prev = value
    return value, err


# --------------------------------------------------------------------------------- gate products


def _orthant_closed(w: np.ndarray) -> np.ndarray:
    """P(W <= 0) for W ~ N(0, w), w of shape (..., D, D), D <= 3 (eqs. M5, M6)."""
    return orthant_closed(np.asarray(w), np)


def _orthant_genz(w: np.ndarray, abseps: float, maxpts: int, seed: int):
    """P(W <= 0), W ~ N(0, w) of dimension D > 3, by scipy's Genz integration, run with two seeds.

    scipy's public API returns no error bound. Each run stops once 3 x its internal standard error
    is <= abseps (or maxpts is reached); the two runs are independent, so |p1 - p2| ~ sqrt(2) sigma
    of one run. The returned error max(abseps, 3 |p1 - p2|) is ~3 sigma of the mean of the runs
    when both converged, and exposes a run that stopped at maxpts.
    """
    from scipy.stats import multivariate_normal  # ~0.35 s at import: loaded on first use

    zero = np.zeros(w.shape[-1])
    runs = [multivariate_normal(mean=zero, cov=w, seed=seed + k, maxpts=maxpts, abseps=abseps,
                                releps=abseps).cdf(zero) for k in (0, 1)]
    return 0.5 * (runs[0] + runs[1]), max(abseps, 3.0 * abs(runs[0] - runs[1]))


def erf_gate_product(cov, signs, *, abseps: float = 1e-7, maxpts: int | None = None, seed: int = 0):
    """E[prod_i sig(s_i Z_i)], Z ~ N(0, cov), sig(u) = (1 + erf(u)) / 2, s_i = +-1 (eqs. M4-M6).

    Equals the orthant probability P(W <= 0), W ~ N(0, S cov S + I/2), S = diag(signs): closed forms
    for D <= 3 (error reported as 1e-15), Genz integration for D > 3 (``abseps``, ``maxpts`` passed to
    scipy; error as explained in :func:`_orthant_genz`; about 0.2 s per covariance at abseps = 1e-7,
    2 s at 1e-8).
    ``cov`` has shape (..., D, D) (batched), ``signs`` shape (D,) or broadcastable to (..., D).
    Returns ``(value, error)`` of shape (...). With s_i = -1 the factor is 1 - sig(Z_i).
    """
    c = _check_covariance(cov, "cov")
    psd_sqrt(c, "cov")  # positive semi-definiteness, with its error message
    dim = c.shape[-1]
    s = check_finite_array("signs", signs)
    if s.ndim < 1 or s.shape[-1] != dim or not np.all(np.abs(s) == 1.0):
        raise ValueError(f"signs must hold +1 / -1 entries with last axis of length D = {dim} (cov of shape "
                         f"{c.shape}), got {np.asarray(signs).tolist() if s.size <= 16 else s.shape}")
    try:
        batch = np.broadcast_shapes(c.shape[:-2], s.shape[:-1])
    except ValueError:
        raise ValueError(f"signs of shape {s.shape} does not broadcast against cov of shape "
                         f"{c.shape}") from None
    w = np.broadcast_to(c * s[..., :, None] * s[..., None, :], batch + (dim, dim)) + 0.5 * np.eye(dim)
    if dim <= 3:
        return _orthant_closed(w), np.full(batch, _CLOSED_FORM_ERROR)
    abseps = float(check_variance("abseps", abseps, allow_zero=False))
    maxpts = 1_000_000 * dim if maxpts is None else check_positive_int("maxpts", maxpts)
    seed = _check_seed(seed)
    flat = w.reshape((-1, dim, dim))
    res = np.array([_orthant_genz(wk, abseps, maxpts, seed) for wk in flat]).reshape(batch + (2,))
    return res[..., 0], res[..., 1]
