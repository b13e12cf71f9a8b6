"""Mean-field (infinite-width) interpreter of network programs."""

from .interpreter import CovarianceEngine
from .kernels import READOUTS, MeanFieldResult, kernel, mean_field

__all__ = ["READOUTS", "CovarianceEngine", "MeanFieldResult", "kernel", "mean_field"]
