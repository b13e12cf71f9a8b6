"""Mean-field (infinite-width) interpreter of network programs."""

from .kernels import READOUTS, kernel, mean_field
from .netsor import ProgramEngine
from .result import MeanFieldResult

__all__ = ["READOUTS", "MeanFieldResult", "ProgramEngine", "kernel", "mean_field"]
