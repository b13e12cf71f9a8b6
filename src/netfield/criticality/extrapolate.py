"""Extrapolation in the width: fit measurements at several widths n as a + b/n (+ c/n^2) (C15).

Weighted least squares with the measurements' standard errors; the parameter covariance is
(X^T Sigma^-1 X)^-1 and the goodness of fit chi^2 (with its p-value) says whether the 1/n model
describes the data within their errors. ``a`` is the n -> infinity limit (to compare with the
mean-field value), ``b`` the O(1/n) coefficient.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from .._checks import check_finite_array


@dataclass(frozen=True, eq=False)
class WidthFit:
    """y(n) = a + b/n (+ c/n^2) fitted to measurements y_i +- err_i at widths n_i.

    Attributes:
        params: (a, b) or (a, b, c); ``cov`` their covariance; ``errors`` sqrt(diag(cov)).
        chi2, dof, p_value: goodness of fit (p_value = P(chi^2_dof >= chi2); nan-free: 1.0 when dof = 0).
        widths, values, sigmas: the data.
    """

    params: np.ndarray
    cov: np.ndarray
    chi2: float
    dof: int
    p_value: float
    widths: np.ndarray
    values: np.ndarray
    sigmas: np.ndarray

    @property
    def a(self) -> float:
        return float(self.params[0])

    @property
    def b(self) -> float:
        return float(self.params[1])

    @property
    def errors(self) -> np.ndarray:
        return np.sqrt(np.diag(self.cov))

    @property
    def a_err(self) -> float:
        return float(self.errors[0])

    @property
    def b_err(self) -> float:
        return float(self.errors[1])

    def predict(self, n):
        """The fitted curve at widths n (``inf`` gives a)."""
        inv = 1.0 / np.asarray(n, float)
        return sum(p * inv**k for k, p in enumerate(self.params))

    def as_dict(self) -> dict:
        return {"a": self.a, "a_err": self.a_err, "b": self.b, "b_err": self.b_err, "chi2": self.chi2,
                "dof": self.dof, "p_value": self.p_value, "widths": self.widths.tolist(),
                "values": self.values.tolist(), "sigmas": self.sigmas.tolist()}

    def __str__(self) -> str:
        return (f"a = {self.a:.6g} +- {self.a_err:.2g}, b = {self.b:.4g} +- {self.b_err:.2g} "
                f"(chi2 = {self.chi2:.2f} / {self.dof} dof, p = {self.p_value:.2f})")


def fit_inverse_width(widths, values, sigmas, *, order: int = 1) -> WidthFit:
    """Fit y(n) = sum_k p_k / n^k, k = 0..order, by weighted least squares (C15).

    Args:
        widths: (W,) widths n > 0.
        values: (W,) measurements (e.g. means over sampled networks).
        sigmas: (W,) their standard errors (> 0).
        order: 1 (a + b/n) or 2 (a + b/n + c/n^2); needs at least order + 1 widths.

    Example:
        >>> import numpy as np
        >>> from netfield.criticality import fit_inverse_width
        >>> n = np.array([32, 64, 128, 256])
        >>> fit = fit_inverse_width(n, 1.0 - 2.0 / n, np.full(4, 1e-3))
        >>> round(fit.a, 6), round(fit.b, 6)
        (1.0, -2.0)
    """
    n = check_finite_array("widths", widths).ravel()
    y = check_finite_array("values", values).ravel()
    s = check_finite_array("sigmas", sigmas).ravel()
    if not (len(n) == len(y) == len(s)):
        raise ValueError(f"widths, values and sigmas must have the same length, got {len(n)}, {len(y)}, {len(s)}")
    if order not in (1, 2):
        raise ValueError(f"order must be 1 (a + b/n) or 2 (a + b/n + c/n^2), got {order!r}")
    if len(n) < order + 1:
        raise ValueError(f"a fit of order {order} needs at least {order + 1} widths, got {len(n)}")
    if np.any(n <= 0):
        raise ValueError(f"widths must be > 0, got {n.tolist()}")
    if np.any(s <= 0):
        raise ValueError(f"sigmas must be > 0 (standard errors of the values), got {s.tolist()}")
    X = np.stack([n ** (-k) for k in range(order + 1)], axis=1)
    Xw = X / s[:, None]
    yw = y / s
    cov = np.linalg.inv(Xw.T @ Xw)
    params = cov @ Xw.T @ yw
    resid = yw - Xw @ params
    chi2 = float(resid @ resid)
    dof = len(n) - (order + 1)
    from scipy.stats import chi2 as chi2_dist  # scipy.stats costs ~0.35 s at import: loaded on first use

    p = float(chi2_dist.sf(chi2, dof)) if dof > 0 else 1.0
    return WidthFit(params, cov, chi2, dof, p if math.isfinite(p) else 0.0, n, y, s)
