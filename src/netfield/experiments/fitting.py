"""Weighted least-squares power laws y = A n^alpha, fitted on log-log axes.

A convergence curve is a set of (width n_i, mean distance y_i, standard error s_i). On log axes,
ln y_i = ln A + alpha ln n_i with (delta method) standard deviation s_i / y_i, so the weighted
least-squares estimate with weights w_i = (y_i / s_i)^2 has the covariance (X^T W X)^{-1}. When the
points scatter more than their error bars say (chi^2 / dof > 1: e.g. 1/n corrections at small
widths), the standard errors are multiplied by sqrt(chi^2 / dof) (Birge ratio), never shrunk.

Leading-order theory (docs/theory.md 4.1a) predicts alpha = -1/2 for the distance between the empirical
and the mean-field kernel (fluctuations of order n^{-1/2}), alpha = -1 for its square.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import numpy as np


@dataclass(frozen=True)
class PowerLawFit:
    """y = prefactor * n**exponent, fitted by weighted least squares on log-log axes.

    Attributes:
        exponent, exponent_se: fitted exponent and its standard error (se 0 when it was fixed).
        log_prefactor, log_prefactor_se: ln A and its standard error.
        prefactor, prefactor_se: A = exp(ln A) and A * se(ln A).
        chi2, dof: weighted residual sum of squares and degrees of freedom.
        fixed_exponent: True when the exponent was held fixed (only A fitted).
        points: number of widths used.
    """

    exponent: float
    exponent_se: float
    log_prefactor: float
    log_prefactor_se: float
    chi2: float
    dof: int
    fixed_exponent: bool
    points: int

    @property
    def prefactor(self) -> float:
        return math.exp(self.log_prefactor)

    @property
    def prefactor_se(self) -> float:
        return self.prefactor * self.log_prefactor_se

    def __call__(self, n):
        """The fitted curve A n^alpha at widths ``n``."""
        return self.prefactor * np.asarray(n, dtype=float) ** self.exponent

    def to_dict(self) -> dict:
        out = asdict(self)
        out.update(prefactor=self.prefactor, prefactor_se=self.prefactor_se)
        return out


def _check(n, y, sem):
    n, y, sem = (np.asarray(v, dtype=float) for v in (n, y, sem))
    if not (n.ndim == y.ndim == sem.ndim == 1 and n.shape == y.shape == sem.shape):
        raise ValueError(f"n, y and sem must be 1-D arrays of one length, got shapes {n.shape}, {y.shape}, {sem.shape}")
    for name, v in (("n", n), ("y", y), ("sem", sem)):
        if not np.all(np.isfinite(v)) or np.any(v <= 0):
            raise ValueError(f"{name} must hold finite numbers > 0 (power-law fit on log axes), got {v.tolist()}")
    return n, y, sem


def fit_power_law(n, y, sem, exponent: float | None = None) -> PowerLawFit:
    """Fit y = A n^alpha by weighted least squares of ln y on ln n.

    Args:
        n: widths (> 0).
        y: mean values (> 0), one per width.
        sem: standard errors of ``y`` (> 0).
        exponent: hold the exponent at this value and fit only A (e.g. -0.5 for the asymptotic
            amplitude A = lim sqrt(n) E[distance]); None (default) fits both.

    Returns:
        :class:`PowerLawFit`.

    Example:
        >>> import numpy as np
        >>> n = np.array([16, 64, 256, 1024]); y = 2.0 / np.sqrt(n)
        >>> fit = fit_power_law(n, y, 0.05 * y)
        >>> round(fit.exponent, 6), round(fit.prefactor, 6)
        (-0.5, 2.0)
    """
    n, y, sem = _check(n, y, sem)
    x, ly = np.log(n), np.log(y)
    w = (y / sem) ** 2  # 1 / var(ln y), delta method
    if exponent is None:
        if len(n) < 2 or np.ptp(x) == 0:
            raise ValueError(f"fitting an exponent needs at least two different widths, got n = {n.tolist()}")
        X = np.stack([np.ones_like(x), x], axis=1)
        cov = np.linalg.inv(X.T @ (w[:, None] * X))
        beta = cov @ (X.T @ (w * ly))
        resid = ly - X @ beta
        dof = len(n) - 2
        log_a, alpha = float(beta[0]), float(beta[1])
    else:
        alpha = float(exponent)
        cov = np.array([[1.0 / w.sum()]])
        log_a = float(np.sum(w * (ly - alpha * x)) / w.sum())
        resid = ly - alpha * x - log_a
        dof = len(n) - 1
    chi2 = float(np.sum(w * resid**2))
    inflate = math.sqrt(max(1.0, chi2 / dof)) if dof > 0 else 1.0  # Birge ratio, never < 1
    return PowerLawFit(
        exponent=alpha,
        exponent_se=0.0 if exponent is not None else float(math.sqrt(cov[1, 1]) * inflate),
        log_prefactor=log_a,
        log_prefactor_se=float(math.sqrt(cov[0, 0]) * inflate),
        chi2=chi2, dof=dof, fixed_exponent=exponent is not None, points=len(n),
    )


def prefactor_ratio(numerator: PowerLawFit, denominator: PowerLawFit) -> tuple[float, float]:
    """A_num / A_den and its standard error, from two independent fits (errors add on log axes)."""
    ratio = math.exp(numerator.log_prefactor - denominator.log_prefactor)
    se = ratio * math.hypot(numerator.log_prefactor_se, denominator.log_prefactor_se)
    return ratio, se
