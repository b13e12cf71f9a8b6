"""Infinite-width training dynamics from kernel blocks: pure linear algebra, no network (docs/training.md).

A wide network trained by full-batch gradient descent on the loss (T1) evolves as its linearisation
(Lee et al. 2019): its outputs are Gaussian at every time, with the mean and covariance below. Inputs
are the kernel blocks of the training points X (N of them) and the test points x* (M):

- ``nngp_train`` K(X, X) (N, N), ``nngp_cross`` K(x*, X) (M, N), ``nngp_test`` K(x*, x*) (M, M): the
  NNGP kernel, the covariance of the initial outputs f_0 ~ GP(0, K);
- ``ntk_train`` Theta(X, X) (N, N), ``ntk_cross`` Theta(x*, X) (M, N): the neural tangent kernel.

Cross blocks are (test, train), as in :func:`netfield.gp.posterior`. Everything goes through one
eigendecomposition Theta(X, X) = V diag(lambda) V^T (T7): the time dependence sits in the per-mode factors
g_t(lambda) = (1 - e_t(lambda)) / lambda, computed with ``expm1`` / ``log1p`` so that a small lambda t
loses no digits and Theta^-1 is never formed at finite t. Eigenvalues <= ``rcond`` * lambda_max (default
rcond = N * machine epsilon, numpy.linalg.matrix_rank's tolerance) are the numerical null space of
Theta(X, X): those modes are projected out at every time (they do not train, T9), which makes t = inf the
pseudo-inverse limit and the t -> inf limit of the finite-t formulas the same. A kernel with an
eigenvalue below -1e-6 * lambda_max is not positive semi-definite and is rejected.

Cost: O(N^3) for the eigendecomposition, then per time O(M N^2 + M^2 N) for the test covariance
(O(M N K) for the mean) and O(N^3) for the training covariance.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._checks import check_choice, check_finite_array
from .result import TrainingPrediction

DYNAMICS = ("flow", "discrete")
PSD_RTOL = 1e-6  # an eigenvalue below -PSD_RTOL * lambda_max: not a kernel (not positive semi-definite)
SYMMETRY_RTOL = 1e-8  # |A - A^T| / |A| allowed in a symmetric block (numerical round-off of a kernel)


# ---- validation --------------------------------------------------------------------------------

def _square(name: str, k, n: int | None = None) -> np.ndarray:
    arr = check_finite_array(name, k)
    if arr.ndim != 2 or arr.shape[0] != arr.shape[1] or arr.shape[0] < 1:
        raise ValueError(f"{name} must be a square (N, N) matrix with N >= 1, got shape {arr.shape}")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"{name} must have shape ({n}, {n}) (N = {n} training points), got {arr.shape}")
    scale = np.abs(arr).max()
    asym = np.abs(arr - arr.T).max()
    if asym > SYMMETRY_RTOL * scale:
        raise ValueError(f"{name} must be symmetric (a kernel matrix), got max |A - A^T| = {asym:.3g} "
                         f"(max |A| = {scale:.3g})")
    return 0.5 * (arr + arr.T)


def _block(name: str, k, shape: tuple) -> np.ndarray:
    arr = check_finite_array(name, k)
    if arr.shape != shape:
        raise ValueError(f"{name} must have shape {shape} (test points, training points), got {arr.shape}")
    return arr


def check_targets(y, n: int, name: str = "y_train") -> tuple[np.ndarray, bool]:
    """Targets as (N, K) float64 and whether they were given as (N,)."""
    arr = check_finite_array(name, y)
    if arr.ndim not in (1, 2) or arr.shape[0] != n or (arr.ndim == 2 and arr.shape[1] < 1):
        raise ValueError(f"{name} must have shape ({n},) or ({n}, K) with K >= 1 (one row per training point), "
                         f"got shape {arr.shape}")
    return (arr[:, None] if arr.ndim == 1 else arr), arr.ndim == 1


def check_times(times, dynamics: str) -> np.ndarray:
    """``times`` as a 1-D float64 array: finite numbers >= 0 or ``inf``; integers for discrete GD."""
    check_choice("dynamics", dynamics, DYNAMICS)
    if isinstance(times, numbers.Real) and not isinstance(times, bool):
        times = [times]
    try:
        arr = np.asarray(times, dtype=np.float64)
    except (TypeError, ValueError):
        raise TypeError(f"times must be a number or a 1-D sequence of numbers >= 0 (inf allowed), got "
                        f"{times!r}") from None
    if arr.ndim != 1 or arr.size < 1:
        raise ValueError(f"times must be a number or a non-empty 1-D sequence of numbers >= 0, got shape {arr.shape}")
    bad = np.isnan(arr) | (arr < 0)
    if bad.any():
        raise ValueError(f"times must be >= 0 (inf allowed), got {float(arr[bad][0])!r} at index {int(np.argmax(bad))}")
    finite = np.isfinite(arr)
    if dynamics == "discrete" and (arr[finite] != np.round(arr[finite])).any():
        bad = finite & (arr != np.round(arr))
        raise ValueError(f"times must be whole numbers of steps (or inf) for dynamics='discrete', got "
                         f"{float(arr[bad][0])!r} at index {int(np.argmax(bad))}")
    return arr


# ---- the spectrum of Theta(X, X) ---------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class NTKSpectrum:
    """Eigendecomposition Theta(X, X) = V diag(lambda) V^T with its numerical null space (module docstring).

    Attributes:
        eigenvalues: (N,) ascending; eigenvalues <= ``rcond`` * lambda_max are set to 0.
        eigenvectors: (N, N) V, columns in the order of ``eigenvalues``.
        kept: (N,) bool, the modes above the cut (the others are projected out).
        rcond: the relative cut used.
        condition: lambda_max / lambda_min of the matrix as given (inf if lambda_min <= 0).
    """

    eigenvalues: np.ndarray
    eigenvectors: np.ndarray
    kept: np.ndarray
    rcond: float
    condition: float

    @property
    def lambda_max(self) -> float:
        return float(self.eigenvalues[-1])

    @property
    def null_modes(self) -> int:
        return int((~self.kept).sum())


def ntk_spectrum(ntk_train, *, rcond: float | None = None) -> NTKSpectrum:
    """:class:`NTKSpectrum` of Theta(X, X) (docs/training.md (T7), (T9)).

    Args:
        ntk_train: (N, N) symmetric positive semi-definite Theta(X, X).
        rcond: eigenvalues <= rcond * lambda_max are the null space (default N * float64 epsilon).
    """
    theta = _square("ntk_train", ntk_train)
    n = theta.shape[0]
    rcond = n * np.finfo(np.float64).eps if rcond is None else rcond
    if isinstance(rcond, bool) or not isinstance(rcond, numbers.Real) or not 0 <= rcond < 1:
        raise ValueError(f"rcond must be a number in [0, 1), got {rcond!r}")
    lam, vec = np.linalg.eigh(theta)
    top = lam[-1]
    if top <= 0:
        raise ValueError(f"ntk_train must have a positive eigenvalue (a kernel that is not zero), got "
                         f"lambda_max = {float(top)!r}")
    if lam[0] < -PSD_RTOL * top:
        raise ValueError(f"ntk_train must be positive semi-definite, got eigenvalue {lam[0]:.6g} (lambda_max = "
                         f"{top:.6g}; accepted down to -{PSD_RTOL:g} * lambda_max as round-off)")
    condition = float(top / lam[0]) if lam[0] > 0 else math.inf
    kept = lam > rcond * top
    return NTKSpectrum(np.where(kept, lam, 0.0), vec, kept, float(rcond), condition)


def max_learning_rate(ntk_train, n_train: int | None = None) -> float:
    """eta_max = 2 N / lambda_max(Theta(X, X)): discrete gradient descent converges iff eta < eta_max
    (docs/training.md (T10)); gradient flow converges at any eta.

    Args:
        ntk_train: (N, N) Theta(X, X), or an :class:`NTKSpectrum` of it.
        n_train: N in the loss (T1) (default: the size of ``ntk_train``).

    Example:
        >>> import numpy as np
        >>> max_learning_rate(np.diag([4.0, 1.0]))   # 2 * 2 / 4
        1.0
    """
    spec = ntk_train if isinstance(ntk_train, NTKSpectrum) else ntk_spectrum(ntk_train)
    n = spec.eigenvalues.shape[0] if n_train is None else n_train
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or n < 1:
        raise ValueError(f"n_train must be an integer >= 1, got {n!r}")
    return 2.0 * n / spec.lambda_max


# ---- per-mode factors --------------------------------------------------------------------------

def mode_factors(rate: np.ndarray, t: float, dynamics: str) -> tuple[np.ndarray, np.ndarray]:
    """(u, e) per mode: e = the residual's decay factor at time t, u = 1 - e, both computed without
    cancellation (docs/training.md (T3), (T5)).

    ``rate`` = eta lambda / N per mode. Flow: e = exp(-rate t), u = -expm1(-rate t). Discrete:
    e = (1 - rate)^t, u = -expm1(t log1p(-rate)) for rate < 1, else 1 - (1 - rate)^t (no cancellation
    there). t = inf: e = 0, u = 1 for every mode with rate > 0 (callers check stability first).
    """
    rate = np.asarray(rate, dtype=np.float64)
    if math.isinf(t):
        return np.ones_like(rate), np.zeros_like(rate)
    if dynamics == "flow":
        x = rate * t
        return -np.expm1(-x), np.exp(-x)
    small = rate < 1.0
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        log_e = t * np.log1p(-np.where(small, rate, 0.0))
        u_small, e_small = -np.expm1(log_e), np.exp(log_e)
        e_big = np.power(1.0 - np.where(small, 2.0, rate), t)
    return np.where(small, u_small, 1.0 - e_big), np.where(small, e_small, e_big)


def _stable(spec: NTKSpectrum, learning_rate: float, n: int, dynamics: str) -> bool:
    return dynamics == "flow" or learning_rate * spec.lambda_max / n < 2.0


# ---- the trained outputs -----------------------------------------------------------------------

def predict_from_kernels(nngp_train, nngp_cross, nngp_test, ntk_train, ntk_cross, y_train, times, *,
                         learning_rate: float | None = None, dynamics: str = "flow", rcond: float | None = None,
                         allow_unstable: bool = False, **record) -> TrainingPrediction:
    """Mean and covariance of a wide network's outputs during training, at test and training points.

    Test outputs (docs/training.md (T6), (T7)), with A_t = Theta(x*, X) Theta^-1 (I - E_t):

        mean_t = A_t Y,    cov_t = K(x*, x*) + A_t K(X, X) A_t^T - A_t K(X, x*) - K(x*, X) A_t^T,

    E_t = expm(-eta t Theta / N) (``dynamics="flow"``) or (I - eta Theta / N)^t (``"discrete"``, t steps).
    Training outputs (T8): mean_t = (I - E_t) Y, cov_t = E_t K(X, X) E_t. t = inf uses the
    pseudo-inverse of Theta(X, X) (T9).

    Args:
        nngp_train, nngp_cross, nngp_test: K(X, X) (N, N), K(x*, X) (M, N), K(x*, x*) (M, M).
        ntk_train, ntk_cross: Theta(X, X) (N, N), Theta(x*, X) (M, N).
        y_train: (N,) or (N, K) targets.
        times: number or 1-D sequence of times >= 0, ``inf`` allowed; whole numbers of steps for
            discrete gradient descent.
        learning_rate: eta > 0 (default: eta_max / 2 = N / lambda_max). For gradient flow only eta t
            matters; for discrete gradient descent eta must be < eta_max = 2 N / lambda_max (T10).
        dynamics: ``"flow"`` (gradient flow) or ``"discrete"`` (gradient descent, t = steps).
        rcond: relative cut of the null space of Theta(X, X) (default N * float64 epsilon).
        allow_unstable: compute discrete GD with eta >= eta_max at finite times (it diverges).
        **record: stored with the result (``parameterization``, ``width``, ``kernel_error``).

    Returns:
        :class:`~netfield.training.result.TrainingPrediction`; ``mean`` (T, M, K), ``cov`` (T, M, M),
        ``train_mean`` (T, N, K), ``train_cov`` (T, N, N), T = len(times).

    Example:
        >>> import numpy as np
        >>> k = np.array([[2.0, 0.5], [0.5, 1.0]]); y = np.array([1.0, -1.0])
        >>> p = predict_from_kernels(k, k[:1], k[:1, :1], k, k[:1], y, [0.0, np.inf])
        >>> p.mean[:, 0, 0].round(12).tolist()      # prior mean 0, then the target of the training point
        [0.0, 1.0]
    """
    check_choice("dynamics", dynamics, DYNAMICS)
    spec = ntk_spectrum(ntk_train, rcond=rcond)
    n = spec.eigenvalues.shape[0]
    k_train = _square("nngp_train", nngp_train, n)
    k_cross = check_finite_array("nngp_cross", nngp_cross)
    m = k_cross.shape[0] if k_cross.ndim == 2 else -1
    if k_cross.ndim != 2 or k_cross.shape[1] != n or m < 1:
        raise ValueError(f"nngp_cross must have shape (M, {n}) (test points, training points), got {k_cross.shape}")
    k_test = _square("nngp_test", nngp_test, m)
    t_cross = _block("ntk_cross", ntk_cross, (m, n))
    y, flat = check_targets(y_train, n)
    t_arr = check_times(times, dynamics)
    eta_max = max_learning_rate(spec, n)
    eta = check_learning_rate(learning_rate, eta_max, dynamics, allow_unstable)
    if np.isinf(t_arr).any() and not _stable(spec, eta, n, dynamics):
        raise ValueError(f"times must be finite when learning_rate {eta!r} >= eta_max = {eta_max!r}: discrete "
                         f"gradient descent then diverges and has no t = inf limit")

    lam, vec, kept = spec.eigenvalues, spec.eigenvectors, spec.kept
    c = t_cross @ vec                   # Theta(x*, X) V            (M, N)
    w = vec.T @ k_train @ vec           # V^T K(X, X) V             (N, N)
    d = vec.T @ k_cross.T               # V^T K(X, x*)              (N, M)
    z = vec.T @ y                       # V^T Y                     (N, K)
    rate = eta * lam / n
    inv_lam = np.where(kept, 1.0 / np.where(kept, lam, 1.0), 0.0)
    out = {key: [] for key in ("mean", "cov", "train_mean", "train_cov")}
    for t in t_arr:
        with np.errstate(over="ignore", invalid="ignore"):  # only unstable GD overflows: reported below
            for key, value in _moments(float(t), rate, kept, inv_lam, vec, c, w, d, z, k_test, dynamics).items():
                out[key].append(value)
    arrays = {key: np.stack(v) for key, v in out.items()}
    for key, arr in arrays.items():
        if not np.isfinite(arr).all():
            first = float(t_arr[np.argmax(~np.isfinite(arr).reshape(len(t_arr), -1).all(axis=1))])
            raise ValueError(f"times: the {key} overflows float64 at t = {first!r} (learning_rate {eta!r} >= "
                             f"eta_max = {eta_max!r} diverges); use earlier times or a learning rate below eta_max")
    return TrainingPrediction(times=t_arr, **arrays, learning_rate=float(eta), max_learning_rate=float(eta_max),
                              dynamics=dynamics, targets_1d=flat, rcond=spec.rcond, ntk_condition=spec.condition,
                              null_modes=spec.null_modes, **record)


def _moments(t, rate, kept, inv_lam, vec, c, w, d, z, k_test, dynamics) -> dict:
    """Test and training moments at time t, in the eigenbasis of Theta(X, X) (c = Theta(x*, X) V,
    w = V^T K(X, X) V, d = V^T K(X, x*), z = V^T Y)."""
    u, e = mode_factors(rate, t, dynamics)
    u, e = np.where(kept, u, 0.0), np.where(kept, e, 1.0)  # null modes do not train (T9)
    g = u * inv_lam                                        # (1 - e_t(lambda)) / lambda          (T7)
    cg = c * g                                             # A_t V = Theta(x*, X) V diag(g)
    cross = cg @ d                                         # A_t K(X, x*)
    cov = k_test + cg @ w @ cg.T - cross - cross.T         # (T6)
    ve = vec * e
    tc = ve @ w @ ve.T                                     # E_t K(X, X) E_t                     (T8)
    return {"mean": cg @ z, "cov": 0.5 * (cov + cov.T), "train_mean": vec @ (u[:, None] * z),  # (I - E_t) Y
            "train_cov": 0.5 * (tc + tc.T)}


def check_learning_rate(learning_rate, eta_max: float, dynamics: str, allow_unstable: bool = False) -> float:
    """eta: default eta_max / 2; a finite number > 0; below eta_max for discrete GD unless ``allow_unstable``."""
    if learning_rate is None:
        return eta_max / 2.0
    if isinstance(learning_rate, bool) or not isinstance(learning_rate, numbers.Real):
        raise TypeError(f"learning_rate must be a number > 0 or None (eta_max / 2), got {learning_rate!r}")
    eta = float(learning_rate)
    if not (math.isfinite(eta) and eta > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {learning_rate!r}")
    if dynamics == "discrete" and eta >= eta_max and not allow_unstable:
        raise ValueError(f"learning_rate must be < eta_max = 2 N / lambda_max(Theta(X, X)) = {eta_max:.6g} for "
                         f"discrete gradient descent to converge, got {eta!r} (allow_unstable=True computes the "
                         f"diverging dynamics at finite times)")
    return eta


# ---- the NTK-GP ----------------------------------------------------------------------------------

@dataclass(frozen=True, eq=False)
class NTKPosterior:
    """The GP with kernel Theta conditioned on the training data without noise (docs/training.md (T11)).

    Attributes:
        mean: (M,) or (M, K), like the targets: Theta(x*, X) Theta^+ Y.
        cov: (M, M) Theta(x*, x*) - Theta(x*, X) Theta^+ Theta(X, x*), or None without ``ntk_test``.
    """

    mean: np.ndarray
    cov: np.ndarray | None = None


def ntk_gp_posterior(ntk_train, ntk_cross, y_train, ntk_test=None, *, rcond: float | None = None) -> NTKPosterior:
    """Posterior of the NTK-GP: the GP with kernel Theta conditioned on (X, Y) without noise (T11).

    Its mean is the trained network's mean at t = inf (T9); its covariance is the trained network's only
    when K = Theta (T12). Theta^+ is the pseudo-inverse with the null space of :func:`ntk_spectrum`.

    Example:
        >>> import numpy as np
        >>> th = np.array([[2.0, 0.5], [0.5, 1.0]])
        >>> ntk_gp_posterior(th, th, np.array([1.0, -1.0])).mean.round(12).tolist()   # interpolates
        [1.0, -1.0]
    """
    spec = ntk_spectrum(ntk_train, rcond=rcond)
    n = spec.eigenvalues.shape[0]
    cross = check_finite_array("ntk_cross", ntk_cross)
    if cross.ndim != 2 or cross.shape[1] != n or cross.shape[0] < 1:
        raise ValueError(f"ntk_cross must have shape (M, {n}) (test points, training points), got {cross.shape}")
    y, flat = check_targets(y_train, n)
    inv = np.where(spec.kept, 1.0 / np.where(spec.kept, spec.eigenvalues, 1.0), 0.0)
    a = (cross @ spec.eigenvectors) * inv @ spec.eigenvectors.T   # Theta(x*, X) Theta^+
    mean = a @ y
    cov = None
    if ntk_test is not None:
        test = _square("ntk_test", ntk_test, cross.shape[0])
        cov = test - a @ cross.T
        cov = 0.5 * (cov + cov.T)
    return NTKPosterior(mean[:, 0] if flat else mean, cov)


__all__ = ["DYNAMICS", "NTKPosterior", "NTKSpectrum", "check_learning_rate", "check_targets", "check_times",
           "max_learning_rate", "mode_factors", "ntk_gp_posterior", "ntk_spectrum", "predict_from_kernels"]
