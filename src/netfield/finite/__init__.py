"""Finite-width interpreter: sampled networks and their empirical kernels."""

from .ensemble import Ensemble, mean_and_sem
from .sampler import PREACTIVATIONS, sample

__all__ = ["PREACTIVATIONS", "Ensemble", "mean_and_sem", "sample"]
