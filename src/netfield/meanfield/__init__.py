"""Mean-field (infinite-width) interpreter of network programs."""

from .interpreter import CovarianceEngine
from .kernels import READOUTS, MeanFieldResult, kernel, mean_field
from .netsor import ProgramKernel, program_kernel

__all__ = ["READOUTS", "CovarianceEngine", "MeanFieldResult", "ProgramKernel", "kernel", "mean_field", "program_kernel"]
