"""GP regression with network kernels: posterior and log marginal likelihood (docs/theory.md 2.3).

Two implementations of the same equations, for two jobs:

- **pure JAX** (:func:`posterior`, :func:`log_marginal_likelihood`, :func:`log_evidence`): jit-able
  and differentiable, so ``jax.grad`` of the evidence with respect to the network's hyper-parameters
  and the noise goes through the kernel (:func:`evidence_and_grad`). A kernel matrix that is not
  positive definite gets the smallest jitter from 1e-10 * mean(diag K) upwards (factors of 10) that
  makes the Cholesky factorisation succeed; the jitter is returned / warned about outside ``jit``.
- **NumPy / LAPACK** (:func:`factorize`, :func:`fit_kernel`, :func:`fit_network`): for large N.
  The Cholesky factor overwrites the kernel matrix in place (one N x N float64 buffer: 800 MB at
  N = 10,000), prediction runs in batches, a failed factorisation is retried with jitter and a
  :class:`KernelJitterWarning`, and if even the largest jitter fails a ValueError says to raise
  ``noise``. Predictions are never NaN.

Equations (Rasmussen & Williams 2006, "GPML", Alg. 2.1; multi-output Y (N, k) with one shared kernel):

    L      = cholesky(K + noise I)
    alpha  = L^T \\ (L \\ Y)
    mean*  = K(x*, X) alpha                                         (GPML eq. 2.25)
    v      = L \\ K(X, x*)
    cov*   = K(x*, x*) - v^T v                                      (GPML eq. 2.26)
    log p(Y | X) = -1/2 sum_c Y_c^T alpha_c - k sum_i log L_ii - k N/2 log 2 pi   (GPML eq. 2.30)
"""

from __future__ import annotations

import math
import warnings
from collections import OrderedDict
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite_array, check_positive_int, check_variance, is_traced
from ..meanfield.kernels import check_network
from ..program import HYPER_PARAMETERS, Network
from ..program.memo import inputs_key, kept, network_key
from ._threads import blas_threads
from .gram import check_readout, gram_matrix, kernel_diag, network_kernel

JITTER_START = 1e-10  # relative to mean(diag K)
JITTER_TRIES = 5  # 1e-10 ... 1e-6 times mean(diag K)
PARAMETERS = HYPER_PARAMETERS + ("noise",)


def _linalg():
    import scipy.linalg  # ~0.1 s at import: loaded when the numpy path first runs

    return scipy.linalg


class KernelJitterWarning(UserWarning):
    """K + noise I was not positive definite; a small jitter was added to its diagonal."""


# ---- validation --------------------------------------------------------------------------------

def _check_noise(noise):
    return check_variance("noise", noise)


def _check_targets(y, n: int, name: str = "y"):
    """Targets as (N, k) float64 plus a flag whether they were 1-D."""
    if is_traced(y):
        arr = y
    else:
        arr = check_finite_array(name, y)
    if arr.ndim not in (1, 2):
        raise ValueError(f"{name} must have shape (N,) or (N, k), got an array of shape {tuple(arr.shape)}")
    if arr.shape[0] != n:
        raise ValueError(f"{name} must have one row per training pattern (N = {n}), got {arr.shape[0]} rows")
    if arr.ndim == 2 and arr.shape[1] < 1:
        raise ValueError(f"{name} must have at least one output column, got shape {tuple(arr.shape)}")
    return (arr[:, None] if arr.ndim == 1 else arr), arr.ndim == 1


def _check_square(name: str, k):
    if is_traced(k):
        arr = k
    else:
        arr = check_finite_array(name, k)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(f"{name} must be a square (N, N) matrix with N >= 1, got shape {tuple(arr.shape)}")
    return arr


# ---- pure JAX ----------------------------------------------------------------------------------

@jax.tree_util.register_dataclass
@dataclass(frozen=True)
class Posterior:
    """Predictive distribution at test points.

    Attributes:
        mean: (M,) or (M, k), like the training targets.
        var: (M,) predictive variances of the latent function (shared by all outputs), or None.
        cov: (M, M) predictive covariance, or None.
        jitter: what was added to noise on the diagonal of K (0.0 normally, ``inf`` under ``jit``
            if no jitter up to 1e-6 * mean(diag K) made K + noise I positive definite).
    """

    mean: jax.Array
    var: jax.Array | None = None
    cov: jax.Array | None = None
    jitter: jax.Array | float = 0.0


def cholesky_with_jitter(k, noise):
    """(L, jitter): L L^T = K + (noise + jitter) I with the smallest jitter in {0, 1e-10 s, ..., 1e-6 s},
    s = mean(diag K). Jit-able and differentiable in K and noise (the search runs on stopped values).
    ``jitter`` is ``inf`` (and L NaN) if every try fails. Compiled once per shape (module-level jit)."""
    return _cholesky_with_jitter(k, noise)


@jax.jit
def _cholesky_with_jitter(k, noise):
    n = k.shape[0]
    eye = jnp.eye(n, dtype=k.dtype)
    l0 = jnp.linalg.cholesky(k + noise * eye)
    ok0 = jnp.all(jnp.isfinite(l0))

    def keep(_):
        return l0, jnp.zeros((), k.dtype)

    def search(_):
        ks, ns = jax.lax.stop_gradient(k), jax.lax.stop_gradient(noise)
        scale = jnp.abs(jnp.mean(jnp.diag(ks)))

        def cond(state):
            _, ok, i = state
            return (~ok) & (i < JITTER_TRIES)

        def body(state):
            _, _, i = state
            j = scale * JITTER_START * 10.0 ** i
            ok = jnp.all(jnp.isfinite(jnp.linalg.cholesky(ks + (ns + j) * eye)))
            return j, ok, i + 1

        j, ok, _ = jax.lax.while_loop(cond, body, (jnp.zeros((), k.dtype), jnp.array(False), 0))
        lj = jnp.linalg.cholesky(k + (noise + jnp.where(ok, j, 0.0)) * eye)
        return lj, jnp.where(ok, j, jnp.inf)

    return jax.lax.cond(ok0, keep, search, None)


def _warn_or_raise(jitter, noise):
    """Outside jit: warn about a jitter, raise if none helped."""
    if is_traced(jitter):
        return
    j = float(jitter)
    if math.isinf(j):
        raise ValueError(_not_pd_message(noise))
    if j > 0:
        warnings.warn(_jitter_message(j, noise), KernelJitterWarning, stacklevel=3)


def _jitter_message(jitter, noise):
    nz = "a traced value" if is_traced(noise) else f"{float(noise):.3g}"
    return (f"K + noise I is not positive definite (Cholesky failed) with noise = {nz}; added jitter "
            f"{jitter:.3g} to the diagonal. Increase `noise` to remove this warning.")


def _not_pd_message(noise):
    nz = "a traced value" if is_traced(noise) else f"{float(noise):.3g}"
    return (f"K + noise I is not positive definite even with a jitter of {JITTER_START * 10 ** (JITTER_TRIES - 1):g}"
            f" * mean(diag K) (Cholesky failed); increase `noise` (now {nz}), or check the kernel "
            f"hyper-parameters (a very deep network in the ordered phase gives an almost constant kernel)")


def posterior(k_train, y, k_cross, *, noise, k_test=None, k_test_diag=None) -> Posterior:
    """GP regression posterior from kernel matrices (GPML Alg. 2.1, eqs. 2.25-2.26). Jit-able.

    Args:
        k_train: (N, N) training kernel K(X, X).
        y: (N,) or (N, k) targets.
        k_cross: (M, N) kernel K(x*, X).
        noise: observation-noise variance sigma_e^2 >= 0 (docs/theory.md 2.3).
        k_test: optional (M, M) K(x*, x*): the full predictive covariance is returned.
        k_test_diag: optional (M,) diag K(x*, x*): the predictive variances are returned.

    Returns:
        :class:`Posterior`.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import posterior
        >>> x = np.linspace(-2, 2, 8)[:, None]; net = netfield.dnn(2, "erf", bias_var=0.1)
        >>> post = posterior(netfield.kernel(net, x), np.sin(x[:, 0]), netfield.kernel(net, x[:3], x),
        ...                  noise=1e-4, k_test_diag=np.diag(netfield.kernel(net, x[:3])))
        >>> bool(np.allclose(post.mean, np.sin(x[:3, 0]), atol=0.05)), post.var.shape
        (True, (3,))
    """
    _check_noise(noise)
    k_train = _check_square("k_train", k_train)
    n = k_train.shape[0]
    y2, flat = _check_targets(y, n)
    k_cross = jnp.asarray(k_cross)
    if k_cross.ndim != 2 or k_cross.shape[1] != n:
        raise ValueError(f"k_cross must have shape (M, {n}), got {tuple(k_cross.shape)}")
    lower, jitter = cholesky_with_jitter(jnp.asarray(k_train), noise)
    _warn_or_raise(jitter, noise)
    alpha = jax.scipy.linalg.cho_solve((lower, True), jnp.asarray(y2))  # GPML Alg. 2.1 line 3
    mean = k_cross @ alpha  # GPML eq. 2.25
    mean = mean[:, 0] if flat else mean
    var = cov = None
    if k_test is not None or k_test_diag is not None:
        v = jax.scipy.linalg.solve_triangular(lower, k_cross.T, lower=True)  # GPML Alg. 2.1 line 5
        if k_test is not None:
            cov = jnp.asarray(k_test) - v.T @ v  # GPML eq. 2.26
            var = jnp.diag(cov)
        else:
            var = jnp.asarray(k_test_diag) - jnp.sum(v * v, axis=0)
    return Posterior(mean, var, cov, jitter)


def log_marginal_likelihood(k_train, y, *, noise):
    """log p(Y | X) of GP regression, summed over the k outputs (GPML Alg. 2.1 line 7, eq. 2.30).

    Jit-able and differentiable in ``k_train`` and ``noise``.

    Example:
        >>> import numpy as np
        >>> from netfield.gp import log_marginal_likelihood
        >>> round(float(log_marginal_likelihood(np.eye(2), np.zeros(2), noise=0.0)), 4)  # -log(2 pi)
        -1.8379
    """
    _check_noise(noise)
    k_train = _check_square("k_train", k_train)
    n = k_train.shape[0]
    y2, _ = _check_targets(y, n)
    y2 = jnp.asarray(y2)
    lower, jitter = cholesky_with_jitter(jnp.asarray(k_train), noise)
    _warn_or_raise(jitter, noise)
    alpha = jax.scipy.linalg.cho_solve((lower, True), y2)
    outputs = y2.shape[1]
    return (-0.5 * jnp.sum(y2 * alpha) - outputs * jnp.sum(jnp.log(jnp.diag(lower)))
            - 0.5 * outputs * n * math.log(2 * math.pi))


def log_evidence(net: Network, x, y, *, noise, readout="last"):
    """Log marginal likelihood of targets y under the network's GP prior (docs/theory.md 2.3).

    Differentiable with respect to ``net``'s hyper-parameters (pytree leaves) and ``noise``: the
    kernel is recomputed by :func:`netfield.kernel` on traced values (generic interpreter).

    Example:
        >>> import numpy as np, netfield, jax
        >>> from netfield.gp import log_evidence
        >>> x = np.random.default_rng(0).normal(size=(6, 2)); y = x[:, 0]
        >>> g = jax.grad(lambda w: log_evidence(netfield.dnn(2).replace(weight_var=w), x, y, noise=0.1))(1.0)
        >>> bool(np.isfinite(g))
        True
    """
    k = network_kernel(net, x, None, readout)
    return log_marginal_likelihood(k, y, noise=noise)


def evidence_and_grad(net: Network, x, y, *, noise, readout="last", wrt=None):
    """(log evidence, {parameter: d log evidence / d parameter}) by autodiff through the kernel.

    Args:
        wrt: names among the network's hyper-parameters (weight_var, bias_var, input_var, readout_var,
            readout_bias_var for the builders) and noise; default: all of them.

    Cost: one XLA compilation of the gradient (~1 s per layer of a DNN / RNN, ~30 s for a 3-step GRU's
    gated moments), kept for later calls with the same network, inputs and targets at other values of
    the ``wrt`` parameters (then a run of the program: ~0.1-1 s); the lever is the network (steps,
    gated back-ends) and the number of inputs.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import evidence_and_grad
        >>> x = np.random.default_rng(0).normal(size=(6, 2))
        >>> value, grad = evidence_and_grad(netfield.rnn(3), x, x[:, 0], noise=0.1, wrt=("weight_var", "noise"))
        >>> sorted(grad)
        ['noise', 'weight_var']
    """
    check_network(net)
    wrt = _check_wrt(wrt, net)
    _check_noise(noise)
    start = {p: (noise if p == "noise" else net.hyper(p)) for p in wrt}
    value, grad = _compiled_evidence_grad(net, x, y, noise, readout, wrt)(
        {p: jnp.asarray(v, jnp.float64) for p, v in start.items()})
    return float(value), {p: float(g) for p, g in grad.items()}


_EVIDENCE_GRADS: OrderedDict = OrderedDict()
EVIDENCE_GRADS_KEPT = 4  # compiled evidence gradients kept (each holds an XLA executable)


def _compiled_evidence_grad(net: Network, x, y, noise, readout, wrt):
    """jit(value_and_grad(log evidence)) in the parameters ``wrt``, compiled once per (network with the
    values of ``wrt`` left out, inputs, targets, readout, and noise unless in ``wrt``): a second call at
    other values of the parameters reuses the program (measured, GRU of 3 steps on 4 sequences: 30 s of
    compilation on every call before, 0.7 s for a second call now). One compilation (~1 s per layer, ~30 s
    for a GRU's gated moments) is cheaper than dispatching the interpreter op by op."""

    def objective(values):
        hyper = {p: v for p, v in values.items() if p != "noise"}
        return log_evidence(_with_values(net, hyper), x, y, noise=values.get("noise", noise), readout=readout)

    parts = (network_key(net, skip=wrt), inputs_key(x), inputs_key(np.asarray(y)),
             "noise" if "noise" in wrt else inputs_key(np.asarray(noise, np.float64)))
    key = None if any(k is None for k in parts) else (*parts, readout, wrt)
    return kept(_EVIDENCE_GRADS, key, lambda: jax.jit(jax.value_and_grad(objective)), EVIDENCE_GRADS_KEPT)


def _check_wrt(wrt, net: Network):
    allowed = tuple(net.hyper_names) + ("noise",)
    if wrt is None:
        return allowed
    if isinstance(wrt, str):
        wrt = (wrt,)
    wrt = tuple(wrt)
    bad = [p for p in wrt if p not in allowed]
    if bad or not wrt:
        raise ValueError(f"wrt must be a non-empty subset of {', '.join(allowed)}, got {wrt!r}")
    return wrt


def _with_values(net: Network, values: dict) -> Network:
    """``net`` with some hyper-parameters replaced by (possibly traced) values, without validation."""
    leaves = [values.get(k, v) for k, v in zip(net.hyper_names, net.hyper_values)]
    return jax.tree_util.tree_unflatten(jax.tree_util.tree_structure(net), leaves)


# ---- NumPy / LAPACK, in place, batched ---------------------------------------------------------

@dataclass(frozen=True, eq=False)
class CholeskyFactor:
    """K + (noise + jitter) I = U^T U, stored in place.

    Attributes:
        upper: (N, N) Fortran-ordered array whose upper triangle is U (its strict lower triangle may
            still hold kernel entries: LAPACK never reads it).
        noise: the noise variance that was asked for.
        jitter: extra diagonal that was needed (0.0 normally).
    """

    upper: np.ndarray
    noise: float
    jitter: float

    @property
    def size(self) -> int:
        return self.upper.shape[0]

    def solve(self, b: np.ndarray) -> np.ndarray:
        """(K + (noise + jitter) I)^{-1} b."""
        z = _linalg().solve_triangular(self.upper, b, lower=False, trans="T", check_finite=False)
        return _linalg().solve_triangular(self.upper, z, lower=False, check_finite=False)

    def half_solve(self, b: np.ndarray) -> np.ndarray:
        """L^{-1} b with L = U^T."""
        return _linalg().solve_triangular(self.upper, b, lower=False, trans="T", check_finite=False)

    def logdet(self) -> float:
        """log det (K + (noise + jitter) I)."""
        return 2.0 * float(np.sum(np.log(np.diagonal(self.upper))))


def _restore_lower(a: np.ndarray, block: int = 1024):
    """Copy the strict upper triangle (untouched by a failed LAPACK factorisation) back into the lower."""
    n = a.shape[0]
    for i0 in range(0, n, block):
        i1 = min(n, i0 + block)
        a[i0:i1, :i0] = a[:i0, i0:i1].T
        sub = a[i0:i1, i0:i1]
        rows, cols = np.tril_indices(i1 - i0, -1)
        sub[rows, cols] = sub[cols, rows]


def _check_finite_rows(a: np.ndarray, block: int = 1024):
    """Reject NaN / inf in the lower triangle (what LAPACK reads), a block of rows at a time."""
    for i0 in range(0, a.shape[0], block):
        rows = a[i0:i0 + block]
        bad = ~np.isfinite(rows)
        if bad.any():
            i, j = (int(v) for v in np.argwhere(bad)[0])
            raise ValueError(f"k must contain only finite numbers, got {rows[i, j]} at index ({i0 + i}, {j})")


def factorize(k, noise, *, overwrite: bool = False) -> CholeskyFactor:
    """Cholesky factor of K + noise I with LAPACK dpotrf, retried with jitter if needed.

    Args:
        k: (N, N) symmetric kernel matrix (only its lower triangle in C order is read).
        noise: observation-noise variance >= 0.
        overwrite: factorise ``k`` in place if it is a writable C-contiguous float64 array
            (no copy: the only N x N buffer at N = 10,000 is the caller's 800 MB).

    Raises:
        ValueError: if no jitter up to 1e-6 * mean(diag K) helps; the message says to raise ``noise``.

    Warns:
        KernelJitterWarning: when a jitter was needed.
    """
    noise = float(_check_noise(noise))
    arr = np.asarray(k)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(f"k must be a square (N, N) matrix with N >= 1, got shape {arr.shape}")
    in_place = (overwrite and arr.dtype == np.float64 and arr.flags.c_contiguous and arr.flags.writeable)
    a = arr if in_place else np.array(arr, dtype=np.float64, order="C")
    _check_finite_rows(a)
    diag = np.diagonal(a).copy()
    scale = float(np.mean(diag))
    if not scale >= 0:
        raise ValueError(f"k must have a positive mean diagonal (a kernel matrix), got mean(diag k) = {scale:.3g}")
    if scale == 0 and noise == 0:  # a kernel with zero diagonal is zero: K + noise I is singular without noise
        raise ValueError("noise must be > 0 for a zero kernel matrix k (mean(diag k) = 0: the prior has no variance, "
                         "e.g. identical inputs at the origin and bias_var = 0), got noise = 0")
    with blas_threads(a.shape[0]):
        jitter = _factorize_in_place(a, diag, noise, scale)
    if jitter > 0:
        warnings.warn(_jitter_message(jitter, noise), KernelJitterWarning, stacklevel=2)
    return CholeskyFactor(a.T, noise, jitter)


def _factorize_in_place(a, diag, noise, scale):
    idx = np.diag_indices_from(a)
    jitter = 0.0
    for attempt in range(JITTER_TRIES + 1):
        a[idx] = diag + noise + jitter
        # GPML Alg. 2.1 line 2: L = cholesky(K + sigma_n^2 I); a.T is Fortran-ordered, LAPACK factors
        # its upper triangle in place (a.T = U^T U) and does not touch the other one
        factor, info = _linalg().lapack.dpotrf(a.T, lower=0, clean=0, overwrite_a=1)
        if info < 0:  # pragma: no cover - an invalid argument would be a bug here
            raise RuntimeError(f"LAPACK dpotrf: argument {-info} is invalid")
        if info == 0:
            if not np.shares_memory(factor, a):  # pragma: no cover - f2py made a copy after all
                a[...] = factor.T
            break
        _restore_lower(a)
        if attempt == JITTER_TRIES:
            raise ValueError(_not_pd_message(noise))
        jitter = JITTER_START * scale * 10.0 ** attempt
    return jitter


def _clip_variances(var: np.ndarray, scale: float) -> np.ndarray:
    """Predictive variances are >= 0; roundoff can make them slightly negative: those are set to 0
    with a warning that says by how much (never silently)."""
    neg = var < 0
    if neg.any():
        worst = float(var.min())
        warnings.warn(f"{int(neg.sum())} predictive variance(s) were negative by roundoff (min {worst:.3g}, "
                      f"kernel scale {scale:.3g}); set to 0. Increase `noise` if this is not roundoff.",
                      RuntimeWarning, stacklevel=3)
        var = np.where(neg, 0.0, var)
    return var


@dataclass(frozen=True, eq=False)
class KernelRegression:
    """GP regression fitted on a precomputed kernel matrix (GPML Alg. 2.1), NumPy arrays.

    Attributes:
        factor: the :class:`CholeskyFactor` of K + noise I.
        alpha: (N, k) (K + noise I)^{-1} Y.
        log_marginal_likelihood: GPML eq. 2.30, summed over outputs.
        flat: whether the targets were 1-D.
    """

    factor: CholeskyFactor
    alpha: np.ndarray
    log_marginal_likelihood: float
    flat: bool

    def predict(self, k_cross, k_test=None, k_test_diag=None) -> Posterior:
        """Posterior at test points from K(x*, X) (and optionally K(x*, x*) or its diagonal)."""
        k_cross = check_finite_array("k_cross", k_cross)
        n = self.factor.size
        if k_cross.ndim != 2 or k_cross.shape[1] != n:
            raise ValueError(f"k_cross must have shape (M, {n}), got {k_cross.shape}")
        mean = k_cross @ self.alpha  # GPML eq. 2.25
        var = cov = None
        if k_test is not None or k_test_diag is not None:
            with blas_threads(n):
                v = self.factor.half_solve(k_cross.T)  # GPML Alg. 2.1 line 5
            if k_test is not None:
                cov = check_finite_array("k_test", k_test) - v.T @ v  # GPML eq. 2.26
                var = _clip_variances(np.diagonal(cov).copy(), float(np.abs(np.diagonal(k_test)).max()))
            else:
                kd = check_finite_array("k_test_diag", k_test_diag)
                var = _clip_variances(kd - np.einsum("nm,nm->m", v, v), float(np.abs(kd).max()))
        return Posterior(mean[:, 0] if self.flat else mean, var, cov, self.factor.jitter)


def fit_kernel(k, y, *, noise, overwrite: bool = False) -> KernelRegression:
    """Fit GP regression on a precomputed (N, N) kernel (NumPy, robust; GPML Alg. 2.1).

    Example:
        >>> import numpy as np
        >>> from netfield.gp import fit_kernel
        >>> fit = fit_kernel(np.eye(3), np.ones(3), noise=1.0)
        >>> fit.predict(np.eye(3)).mean
        array([0.5, 0.5, 0.5])
    """
    arr = np.asarray(k)
    if arr.ndim != 2:
        raise ValueError(f"k must be a square (N, N) matrix, got shape {arr.shape}")
    y2, flat = _check_targets(y, arr.shape[0])
    factor = factorize(arr, noise, overwrite=overwrite)
    with blas_threads(factor.size):
        alpha = factor.solve(y2)  # GPML Alg. 2.1 line 3
    outputs, n = y2.shape[1], y2.shape[0]
    lml = (-0.5 * float(np.sum(y2 * alpha)) - 0.5 * outputs * factor.logdet()
           - 0.5 * outputs * n * math.log(2 * math.pi))  # GPML eq. 2.30
    return KernelRegression(factor, alpha, lml, flat)


@dataclass(frozen=True, eq=False)
class NetworkRegression:
    """GP regression with a network's readout kernel, fitted on training inputs (NumPy, large N).

    Attributes:
        net, readout: the prior.
        x_train: the training inputs.
        model: the :class:`KernelRegression` on K(X, X).
    """

    net: Network
    readout: object
    x_train: object
    model: KernelRegression

    @property
    def log_marginal_likelihood(self) -> float:
        return self.model.log_marginal_likelihood

    def predict(self, x, *, return_var: bool = False, return_cov: bool = False,
                batch_size: int = 2048) -> Posterior:
        """Posterior at test inputs ``x``; K(x*, X) is computed ``batch_size`` test points at a time."""
        batch_size = check_positive_int("batch_size", batch_size)
        d_train, d_test = _input_dim(self.x_train), _input_dim(x)
        if d_test is not None and d_train is not None and d_test != d_train:
            raise ValueError(f"x must have the input dimension of the training inputs, d = {d_train}, got d = {d_test} "
                             f"(shape {_shape_text(x)})")
        if return_cov:
            k_cross = np.asarray(network_kernel(self.net, x, self.x_train, self.readout))
            return self.model.predict(k_cross, k_test=np.asarray(network_kernel(self.net, x, None, self.readout)))
        m = len(x) if isinstance(x, (list, tuple)) else np.shape(x)[0]
        means, variances = [], []
        for i0 in range(0, m, batch_size):
            xb = x[i0:i0 + batch_size]
            k_cross = np.asarray(network_kernel(self.net, xb, self.x_train, self.readout))
            diag = kernel_diag(self.net, xb, self.readout) if return_var else None
            post = self.model.predict(k_cross, k_test_diag=diag)
            means.append(post.mean)
            variances.append(post.var)
        mean = np.concatenate(means)
        var = np.concatenate(variances) if return_var else None
        return Posterior(mean, var, None, self.model.factor.jitter)


def _input_dim(x):
    """The input dimension d (last axis) of an (N, d) / (N, T, d) array or a list of (T_i, d) arrays."""
    try:
        first = x[0] if isinstance(x, (list, tuple)) else x
        shape = np.shape(first)
    except (TypeError, ValueError, IndexError):
        return None
    return int(shape[-1]) if len(shape) >= 2 or isinstance(x, (list, tuple)) and len(shape) >= 1 else None


def _shape_text(x) -> str:
    return f"a list of {len(x)} sequences" if isinstance(x, (list, tuple)) else str(np.shape(x))


def fit_network(net: Network, x, y, *, noise, readout="last") -> NetworkRegression:
    """GP regression with ``net``'s kernel on training data (x, y); scales to N = 10,000 and beyond.

    The Gram matrix is built block-wise into one writable buffer and factorised in place.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import fit_network
        >>> x = np.random.default_rng(0).normal(size=(50, 3)); y = np.tanh(x[:, 0])
        >>> fit = fit_network(netfield.dnn(3, "erf", weight_var=2.0), x, y, noise=1e-3)
        >>> fit.predict(x[:2], return_var=True).var.shape
        (2,)
    """
    check_network(net)
    readout = check_readout(readout)
    _check_noise(noise)
    n = len(x) if isinstance(x, (list, tuple)) else np.shape(x)[0]
    _check_targets(y, n)
    k = gram_matrix(net, x, readout)
    model = fit_kernel(k, y, noise=noise, overwrite=True)
    return NetworkRegression(net, readout, x, model)


__all__ = [
    "PARAMETERS",
    "CholeskyFactor",
    "KernelJitterWarning",
    "KernelRegression",
    "NetworkRegression",
    "Posterior",
    "cholesky_with_jitter",
    "evidence_and_grad",
    "factorize",
    "fit_kernel",
    "fit_network",
    "log_evidence",
    "log_marginal_likelihood",
    "posterior",
]
