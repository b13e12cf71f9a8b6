"""GP classification with network kernels (docs/theory.md 2.3).

(a) **Regression on centred one-hot labels** (the NNGP literature, e.g. Lee et al. 2018; seed paper
A): targets Y_ic = [label_i = c] - 1/C, GP-regression posterior mean (GPML Alg. 2.1), predicted
class argmax_c mean_c. Cheap, scales like regression, no probabilities.

(b) **Multi-class Laplace approximation with the softmax likelihood** (GPML section 3.5): C latent
functions f_c with independent GP priors sharing the network kernel K,
p(y_i = c | f_i) = exp(f_ic) / sum_c' exp(f_ic'). The posterior mode is found by damped Newton
iterations (GPML Alg. 3.3), predictions use the Gaussian approximation of the latent posterior and
Monte-Carlo averages of the softmax (GPML Alg. 3.4). Memory O(C N^2): for N of a few thousand.
The softmax (not one-vs-rest probit) is used: one joint model, calibrated multi-class probabilities,
and binary problems are its C = 2 case.

Log-determinant: GPML Alg. 3.3 accumulates z_c = sum_i log L_c,ii = 1/2 log|I + D_c^1/2 K D_c^1/2|.
The Laplace evidence (GPML eq. 3.44) needs 1/2 log|I_CN + K W| with W = D - Pi Pi^T, which is
sum_c z_c PLUS 1/2 log|sum_c E_c|: |I + K W| = |I + K D| |I - Pi^T (I + K D)^-1 K Pi| and
Pi^T (I + K D)^-1 K Pi = I - sum_c E_c (use sum_c pi_c = 1 and (K + D^-1)^-1 = E). GPstuff's
gpla_softmax_e.m adds the same term (as log|I - sum_c E_c K D_c|). :func:`laplace_mode` includes
it; the test suite checks the result against the dense (CN x CN) determinant.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass
from functools import partial

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite_array, check_positive_int, is_traced
from ._threads import blas_threads

solve_triangular = jax.scipy.linalg.solve_triangular


def one_hot(labels, classes=None):
    """Centred one-hot targets Y_ic = [labels_i = classes_c] - 1/C and the classes.

    Example:
        >>> from netfield.gp import one_hot
        >>> y, classes = one_hot(["b", "a", "b"])
        >>> y.tolist(), classes.tolist()
        ([[-0.5, 0.5], [0.5, -0.5], [-0.5, 0.5]], ['a', 'b'])
    """
    labels = np.asarray(labels)
    if labels.ndim != 1 or labels.shape[0] < 1:
        raise ValueError(f"labels must be a non-empty 1-D array, got shape {labels.shape}")
    classes = np.unique(labels) if classes is None else np.asarray(classes)
    if classes.shape[0] < 2:
        raise ValueError(f"labels must contain at least 2 classes, got {classes.shape[0]}: {classes.tolist()}")
    unknown = ~np.isin(labels, classes)
    if unknown.any():
        raise ValueError(f"labels contain {labels[unknown][0]!r}, which is not among classes {classes.tolist()}")
    indicator = (labels[:, None] == classes[None, :]).astype(np.float64)
    return indicator - 1.0 / classes.shape[0], classes


def _indicator(y):
    """Validate 0/1 class indicators y of shape (N, C), C >= 2, one 1 per row."""
    if is_traced(y):
        return y
    arr = check_finite_array("y", y)
    if arr.ndim != 2 or arr.shape[1] < 2:
        raise ValueError(f"y must be a (N, C) 0/1 class-indicator matrix with C >= 2, got shape {arr.shape}")
    if not (np.isin(arr, (0.0, 1.0)).all() and (arr.sum(axis=1) == 1).all()):
        raise ValueError("y must be a 0/1 class-indicator matrix with exactly one 1 per row "
                         "(use netfield.gp.one_hot(labels)[0] + 1/C, or class_indicators(labels))")
    return arr


def class_indicators(labels, classes=None):
    """0/1 indicator matrix (N, C) and the classes, for the Laplace classifier."""
    y, classes = one_hot(labels, classes)
    return y + 1.0 / classes.shape[0], classes


# ---- the algorithm once, on two array backends --------------------------------------------------
# JAX: jit-able and differentiable (evidence maximisation). NumPy/SciPy: what the scikit-learn
# estimator runs - no compilation per data shape (scikit-learn's checks fit dozens of shapes; a
# compiled mode search costs seconds per shape). Both run the same functions below.

def _linalg():
    import scipy.linalg  # ~0.1 s at import: loaded when the numpy back-end first runs

    return scipy.linalg


def _np_solve_lower(lower, b):
    if lower.ndim == 2:
        return _linalg().solve_triangular(lower, b, lower=True, check_finite=False)
    return np.stack([_linalg().solve_triangular(lc, bc, lower=True, check_finite=False)
                     for lc, bc in zip(lower, b)])


def _np_cholesky(a):
    if a.ndim == 2:
        return _linalg().cholesky(a, lower=True, check_finite=False)
    return np.stack([_linalg().cholesky(ac, lower=True, check_finite=False) for ac in a])


@dataclass(frozen=True)
class _Backend:
    xp: object
    cholesky: object
    solve_lower: object
    cho_solve: object


def _jax_cholesky(a):
    """Cholesky of one matrix or, one at a time, of a stack (C, N, N).

    jaxlib's batched LAPACK kernels split a batch over XLA's intra-op thread pool and wait for it
    (ParallelBatchMap); when XLA runs two such kernels concurrently on a 2-thread pool, both pool
    threads wait on each other and the program deadlocks (observed with jax 0.10 on 2 cores). A
    sequential ``lax.map`` keeps every kernel call at batch size 1.
    """
    return jnp.linalg.cholesky(a) if a.ndim == 2 else jax.lax.map(jnp.linalg.cholesky, a)


def _jax_solve_lower(lower, b):
    """L \\ b for one factor or, one at a time, a stack of factors (see :func:`_jax_cholesky`)."""
    if lower.ndim == 2:
        return solve_triangular(lower, b, lower=True)
    return jax.lax.map(lambda lb: solve_triangular(lb[0], lb[1], lower=True), (lower, b))


_JAX = _Backend(jnp, _jax_cholesky, _jax_solve_lower, lambda lower, b: jax.scipy.linalg.cho_solve((lower, True), b))
_NUMPY = _Backend(np, _np_cholesky, _np_solve_lower,
                  lambda lower, b: _linalg().cho_solve((lower, True), b, check_finite=False))


def _softmax(xp, f):
    z = xp.exp(f - xp.max(f, axis=1, keepdims=True))
    return z / xp.sum(z, axis=1, keepdims=True)


def _logsumexp(xp, f):
    top = xp.max(f, axis=1, keepdims=True)
    return top[:, 0] + xp.log(xp.sum(xp.exp(f - top), axis=1))


def _decompose(be, k, pi):
    """Per class c: L_c = chol(I + D_c^1/2 K D_c^1/2), E_c = D_c^1/2 L_c^-T L_c^-1 D_c^1/2, z_c; and
    M = chol(sum_c E_c) (GPML Alg. 3.3 lines 5-9)."""
    xp = be.xp
    n = k.shape[0]
    sq = xp.sqrt(pi).T  # (C, N)
    eye = xp.eye(n, dtype=k.dtype)
    lower = be.cholesky(eye + sq[:, :, None] * k[None] * sq[:, None, :])
    half = be.solve_lower(lower, eye[None] * sq[:, None, :])  # L_c^-1 D_c^1/2
    e = xp.swapaxes(half, 1, 2) @ half
    z = xp.sum(xp.log(xp.diagonal(lower, axis1=1, axis2=2)), axis=1)
    m = be.cholesky(xp.sum(e, axis=0))
    return e, m, z


def _psi(xp, y, f, a):
    """Psi(f) = -1/2 f^T K^-1 f + log p(y | f) with f = K a (GPML eq. 3.32, softmax eq. 3.37)."""
    return -0.5 * xp.sum(a * f) + xp.sum(y * f) - xp.sum(_logsumexp(xp, f))


def _newton_step(be, k, y, f):
    """One Newton step f -> K a (GPML Alg. 3.3 lines 4-13); returns (a, f_new)."""
    xp = be.xp
    pi = _softmax(xp, f)
    e, m, _ = _decompose(be, k, pi)
    b = pi * f - pi * xp.sum(pi * f, axis=1, keepdims=True) + y - pi  # (D - Pi Pi^T) f + y - pi
    c = (e @ (k @ b).T[:, :, None])[:, :, 0].T  # E K b
    r = xp.sum(c, axis=1)  # R^T c
    s = be.cho_solve(m, r)  # M^T \ (M \ R^T c)
    a = b - c + (e @ s).T
    return a, k @ a


def _log_evidence_at(be, k, y, f, a):
    """Laplace log marginal likelihood at the mode (GPML eq. 3.44 with the exact log-determinant)."""
    xp = be.xp
    _, m, z = _decompose(be, k, _softmax(xp, f))
    return _psi(xp, y, f, a) - xp.sum(z) - xp.sum(xp.log(xp.diagonal(m)))


# ---- GPML Alg. 3.3: the mode of the latent posterior ------------------------------------------

@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class LaplaceMode:
    """Mode of the latent posterior (GPML Alg. 3.3).

    Attributes:
        f: (N, C) latent functions at the mode.
        a: (N, C) with f = K a (at the mode a = y - softmax(f), GPML eq. 3.35).
        log_marginal_likelihood: the Laplace approximation of log p(y | X) (GPML eq. 3.44).
        iterations: Newton iterations.
        converged: max |delta f| fell below tol * (1 + max |f|) within max_iter.
    """

    f: jax.Array
    a: jax.Array
    log_marginal_likelihood: jax.Array
    iterations: jax.Array
    converged: jax.Array


def _check_mode_args(k, y, max_iter):
    y = _indicator(y)
    k = k if is_traced(k) else check_finite_array("k", k)
    if k.ndim != 2 or k.shape[0] != k.shape[1] or k.shape[0] != y.shape[0]:
        raise ValueError(f"k must be a square ({y.shape[0]}, {y.shape[0]}) matrix matching y, got {tuple(k.shape)}")
    return k, y, check_positive_int("max_iter", max_iter)


def laplace_mode(k, y, *, max_iter: int = 100, tol: float = 1e-9) -> LaplaceMode:
    """Posterior mode of the multi-class softmax GP classifier by damped Newton (GPML Alg. 3.3).

    Jit-able (``jax.lax.while_loop``): a Newton step that lowers Psi is halved until it does not.

    Args:
        k: (N, N) kernel matrix shared by the C latent functions.
        y: (N, C) 0/1 class indicators (:func:`class_indicators`).

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import class_indicators, laplace_mode
        >>> x = np.random.default_rng(0).normal(size=(20, 2)); y, _ = class_indicators(x[:, 0] > 0)
        >>> mode = laplace_mode(netfield.kernel(netfield.dnn(2, "erf", readout_var=5.0), x), y)
        >>> bool(mode.converged), mode.f.shape
        (True, (20, 2))
    """
    k, y, max_iter = _check_mode_args(k, y, max_iter)
    return _mode_jax(jnp.asarray(k), jnp.asarray(y, dtype=jnp.float64), max_iter, tol)


@partial(jax.jit, static_argnums=(2,))
def _mode_jax(k, y, max_iter, tol):
    """The while loops of :func:`laplace_mode`, compiled once per shape (module-level jit)."""
    n, c = y.shape

    def cond(state):
        it, _, _, _, done = state
        return (it < max_iter) & ~done

    def body(state):
        it, a, f, psi, _ = state
        a_new, f_new = _newton_step(_JAX, k, y, f)

        def shrink(s):  # damping: halve the step while Psi would decrease
            step, _, _, _ = s
            step = 0.5 * step
            a_s, f_s = a + step * (a_new - a), f + step * (f_new - f)
            return step, a_s, f_s, _psi(jnp, y, f_s, a_s)

        def worse(s):
            step, _, _, psi_s = s
            return (~(psi_s >= psi)) & (step > 1e-8)

        _, a_new, f_new, psi_new = jax.lax.while_loop(worse, shrink, (1.0, a_new, f_new, _psi(jnp, y, f_new, a_new)))
        done = jnp.max(jnp.abs(f_new - f)) <= tol * (1.0 + jnp.max(jnp.abs(f_new)))
        return it + 1, a_new, f_new, psi_new, done

    zeros = jnp.zeros((n, c), dtype=k.dtype)
    it, a, f, _, done = jax.lax.while_loop(cond, body, (0, zeros, zeros, jnp.asarray(-n * math.log(c), k.dtype), False))
    return LaplaceMode(f, a, _log_evidence_at(_JAX, k, y, f, a), it, done)


def laplace_mode_numpy(k, y, *, max_iter: int = 100, tol: float = 1e-9) -> LaplaceMode:
    """:func:`laplace_mode` on NumPy / SciPy (the same functions, a Python loop): no compilation,
    NumPy results. This is what :class:`netfield.gp.NNGPClassifier` runs."""
    k, y, max_iter = _check_mode_args(k, y, max_iter)
    with blas_threads(k.shape[0]):
        return _mode_numpy(k, y, max_iter, tol)


def _mode_numpy(k, y, max_iter, tol):
    n, c = y.shape
    a = np.zeros((n, c))
    f = np.zeros((n, c))
    psi = -n * math.log(c)
    done, it = False, 0
    while it < max_iter and not done:
        a_new, f_new = _newton_step(_NUMPY, k, y, f)
        psi_new, step = _psi(np, y, f_new, a_new), 1.0
        while not psi_new >= psi and step > 1e-8:  # damping, as in laplace_mode
            step *= 0.5
            a_s, f_s = a + step * (a_new - a), f + step * (f_new - f)
            psi_new = _psi(np, y, f_s, a_s)
        if step < 1.0:
            a_new, f_new = a_s, f_s
        done = bool(np.max(np.abs(f_new - f)) <= tol * (1.0 + np.max(np.abs(f_new))))
        a, f, psi, it = a_new, f_new, psi_new, it + 1
    return LaplaceMode(f, a, float(_log_evidence_at(_NUMPY, k, y, f, a)), it, done)


def laplace_log_evidence(k, y, *, max_iter: int = 100, tol: float = 1e-9):
    """Laplace log marginal likelihood, differentiable in ``k`` (and through it in the hyper-parameters).

    The mode is found on stopped values; one more (undamped) Newton step from the mode, taken on the
    live ``k``, carries the implicit derivative d f_hat / d K: at a stationary point the Newton map
    has zero Jacobian in f, so its Jacobian in K is exactly -H^-1 d(grad Psi)/dK, the implicit-function
    derivative (GPML section 5.5.1 derives the same gradient by hand, eqs. 5.22-5.23).
    """
    mode = laplace_mode(jax.lax.stop_gradient(k), y, max_iter=max_iter, tol=tol)
    y = jnp.asarray(_indicator(y), dtype=jnp.float64)
    a, f = _newton_step(_JAX, k, y, jax.lax.stop_gradient(mode.f))
    return _log_evidence_at(_JAX, k, y, f, a)


# ---- GPML Alg. 3.4: predictions ----------------------------------------------------------------

@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class LaplacePredictor:
    """What GPML Alg. 3.4 needs from training, computed once.

    Attributes:
        residual: (N, C) y - softmax(f_hat) (so the latent test mean is K(x*, X) residual).
        e: (C, N, N) E_c = (K + D_c^-1)^-1.
        m: (N, N) Cholesky factor of sum_c E_c.
    """

    residual: jax.Array
    e: jax.Array
    m: jax.Array


def _predictor(be, k, y, f_mode):
    pi = _softmax(be.xp, f_mode)
    e, m, _ = _decompose(be, k, pi)
    return LaplacePredictor(y - pi, e, m)


def laplace_predictor(k, y, f_mode) -> LaplacePredictor:
    """Training-side quantities of GPML Alg. 3.4 (lines 2-7) at the mode ``f_mode`` (JAX)."""
    return _predictor(_JAX, jnp.asarray(k), jnp.asarray(_indicator(y), dtype=jnp.float64), jnp.asarray(f_mode))


def laplace_predictor_numpy(k, y, f_mode) -> LaplacePredictor:
    """:func:`laplace_predictor` on NumPy / SciPy."""
    k = np.asarray(k, dtype=np.float64)
    with blas_threads(k.shape[0]):
        return _predictor(_NUMPY, k, _indicator(y), np.asarray(f_mode, dtype=np.float64))


def _latent(be, predictor, k_cross, k_test_diag):
    xp = be.xp
    e, m = predictor.e, predictor.m
    mean = k_cross @ predictor.residual  # GPML Alg. 3.4 line 9: mu*_c = (y_c - pi_c)^T k*_c
    b = e @ k_cross.T  # b_c = E_c k*, (C, N, M)
    n, cc, mm = e.shape[1], e.shape[0], k_cross.shape[0]
    v = be.solve_lower(m, b.transpose(1, 0, 2).reshape(n, cc * mm)).reshape(n, cc, mm)
    vt = v.transpose(2, 1, 0)  # (M, C, N)
    cov = vt @ xp.swapaxes(vt, 1, 2)  # k*^T E_c (sum E)^-1 E_c' k*
    own = k_test_diag[:, None] - xp.sum(k_cross.T[None] * b, axis=1).T  # k** - b_c^T k*
    return mean, cov + own[:, :, None] * xp.eye(cc, dtype=own.dtype)[None]


def laplace_latent(predictor: LaplacePredictor, k_cross, k_test_diag):
    """Gaussian approximation of the latent test posterior (GPML Alg. 3.4 lines 8-12, eq. 3.43). JAX.

    Returns:
        mean (M, C) and covariance (M, C, C) of f(x*).
    """
    return _latent(_JAX, predictor, jnp.asarray(k_cross), jnp.asarray(k_test_diag))


def laplace_latent_numpy(predictor: LaplacePredictor, k_cross, k_test_diag):
    """:func:`laplace_latent` on NumPy / SciPy."""
    with blas_threads(predictor.m.shape[0]):
        return _latent(_NUMPY, predictor, np.asarray(k_cross, dtype=np.float64),
                       np.asarray(k_test_diag, dtype=np.float64))


def softmax_expectation(mean, cov, *, n_samples: int = 1000, seed: int = 0) -> np.ndarray:
    """E[softmax(f)] for f ~ N(mean, cov) by Monte Carlo (GPML Alg. 3.4 lines 13-16).

    The same ``n_samples`` standard-normal draws (from ``seed``) are used for every test point
    (common random numbers), so a point's probabilities do not depend on which batch it is in.
    Eigenvalues of cov below zero by roundoff (>= -1e-8 times the largest) are treated as 0.

    Returns:
        (M, C) probabilities, numpy.
    """
    n_samples = check_positive_int("n_samples", n_samples)
    mean = np.asarray(mean, dtype=np.float64)
    cov = np.asarray(cov, dtype=np.float64)
    with blas_threads(0):
        w, vec = np.linalg.eigh(0.5 * (cov + np.swapaxes(cov, 1, 2)))
    scale = np.maximum(1.0, np.abs(w).max(axis=1, keepdims=True))
    if (w < -1e-8 * scale).any():
        warnings.warn(f"latent predictive covariance has eigenvalues down to {w.min():.3g} (not roundoff); "
                      "treated as 0. Check the kernel hyper-parameters.", RuntimeWarning, stacklevel=2)
    root = vec * np.sqrt(np.maximum(w, 0.0))[:, None, :]  # (M, C, C): cov = root root^T
    z = np.random.default_rng(seed).standard_normal((n_samples, mean.shape[1]))
    f = mean[:, None, :] + np.einsum("mcd,sd->msc", root, z)
    f -= f.max(axis=2, keepdims=True)
    p = np.exp(f)
    p /= p.sum(axis=2, keepdims=True)
    return p.mean(axis=1)


__all__ = ["LaplaceMode", "LaplacePredictor", "class_indicators", "laplace_latent", "laplace_latent_numpy",
           "laplace_log_evidence", "laplace_mode", "laplace_mode_numpy", "laplace_predictor", "laplace_predictor_numpy",
           "one_hot", "softmax_expectation"]
