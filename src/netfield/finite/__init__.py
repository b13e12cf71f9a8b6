"""Finite-width interpreter: sampled networks of any program, their empirical kernels, ensembles."""

from .ensemble import Ensemble, mean_and_sem
from .sampler import sample

__all__ = ["Ensemble", "mean_and_sem", "sample"]
