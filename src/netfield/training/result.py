"""The result of :func:`netfield.train`: Gaussian outputs of a wide network during training."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..storage import Storable


@dataclass(frozen=True, eq=False)
class OutputsAt:
    """The trained network's outputs at one time (:meth:`TrainingPrediction.at`).

    Attributes:
        time: t (gradient-flow time or number of steps; ``inf`` for the end of training).
        mean: (M, K) mean of the test outputs; cov: (M, M) their covariance (shared by the K outputs).
        train_mean: (N, K), train_cov: (N, N): the same at the training points.
    """

    time: float
    mean: np.ndarray
    cov: np.ndarray
    train_mean: np.ndarray
    train_cov: np.ndarray
    scale: float = 0.0  # the largest variance at any computed time: the round-off scale of std()

    def std(self, train: bool = False) -> np.ndarray:
        """(M,) standard deviation of each test output (``train``: (N,) at the training points)."""
        return _std(self.train_cov if train else self.cov, self.scale)


@dataclass(frozen=True, eq=False)
class TrainingPrediction(Storable):
    """Mean and covariance of an infinitely wide network's outputs at given training times
    (docs/training.md (T6)-(T9)). The K outputs are independent with the same covariance.

    ``pred.save(path, network=net)`` / ``TrainingPrediction.load(path)`` / ``netfield.load(path)``: a
    portable .npz file (:mod:`netfield.storage`).

    Attributes:
        times: (T,) the times asked for (gradient-flow time t, or steps for discrete gradient descent).
        mean: (T, M, K) mean of the test outputs (K = 1 for targets of shape (N,)).
        cov: (T, M, M) covariance of the test outputs.
        train_mean: (T, N, K), train_cov: (T, N, N): the same at the training points.
        learning_rate: eta used; max_learning_rate: eta_max = 2 N / lambda_max(Theta(X, X)) (T10).
        dynamics: ``"flow"`` (gradient flow) or ``"discrete"`` (gradient descent).
        targets_1d: whether the targets were given as (N,).
        rcond: relative cut of the null space of Theta(X, X); null_modes: how many modes it removed (T9).
        ntk_condition: lambda_max / lambda_min of Theta(X, X) (inf if singular).
        parameterization, width: the NTK's parameterization and width (None where not applicable).
        kernel_error: {"nngp": float, "ntk": float} largest numerical error of the kernel blocks where
            the kernel reports one, else None.
    """

    times: np.ndarray
    mean: np.ndarray
    cov: np.ndarray
    train_mean: np.ndarray
    train_cov: np.ndarray
    learning_rate: float
    max_learning_rate: float
    dynamics: str = "flow"
    targets_1d: bool = False
    rcond: float = 0.0
    null_modes: int = 0
    ntk_condition: float = float("inf")
    parameterization: str | None = None
    width: int | None = None
    kernel_error: dict | None = None

    def at(self, t) -> OutputsAt:
        """The outputs at time ``t``, one of :attr:`times` (ValueError listing them otherwise).

        Example:
            >>> import numpy as np
            >>> from netfield.training import predict_from_kernels
            >>> k = np.array([[2.0, 0.5], [0.5, 1.0]])
            >>> p = predict_from_kernels(k, k, k, k, k, np.array([1.0, -1.0]), [0, 5, np.inf])
            >>> p.at(np.inf).std().round(6).tolist()    # the training points are fitted exactly
            [0.0, 0.0]
        """
        hits = np.flatnonzero(self.times == float(t))
        if hits.size == 0:
            raise ValueError(f"t must be one of the computed times {self.times.tolist()}, got {t!r} (pass it in "
                             f"times to netfield.train)")
        i = int(hits[0])
        return OutputsAt(float(self.times[i]), self.mean[i], self.cov[i], self.train_mean[i], self.train_cov[i],
                         self._scale())

    def _scale(self) -> float:
        return max((float(np.abs(np.diagonal(c, axis1=-2, axis2=-1)).max(initial=0.0))
                    for c in (self.cov, self.train_cov)), default=0.0)

    def std(self, train: bool = False) -> np.ndarray:
        """(T, M) standard deviation of each test output at each time (``train``: (T, N) at the training
        points)."""
        return _std(self.train_cov if train else self.cov, self._scale())

    def __repr__(self) -> str:
        t, m, k = self.mean.shape
        return (f"TrainingPrediction({t} times, {m} test points, {k} outputs, {self.dynamics}, "
                f"learning_rate={self.learning_rate:.4g}, max_learning_rate={self.max_learning_rate:.4g})")


def _std(cov: np.ndarray, scale: float = 0.0) -> np.ndarray:
    """sqrt of the diagonal. Round-off below zero (within 1e-9 of the largest variance at any computed
    time, ``scale``) reads as 0; a clearly negative variance means a covariance that is not positive
    semi-definite (an ill-conditioned Theta(X, X) at late times): ValueError naming rcond, the lever."""
    var = np.diagonal(cov, axis1=-2, axis2=-1)
    scale = max(scale, np.abs(var).max() if var.size else 0.0)
    if (var < -1e-9 * scale).any():
        raise ValueError(f"the covariance has a negative variance {var.min():.3g} (largest {scale:.3g}): Theta(X, X) "
                         f"is too ill-conditioned for these times; raise rcond")
    return np.sqrt(np.maximum(var, 0.0))


__all__ = ["OutputsAt", "TrainingPrediction"]
