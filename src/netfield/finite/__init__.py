"""Finite-width interpreter: sampled networks of any program, their empirical kernels (readout,
pre-activation, neural tangent), ensembles, and gradient-descent training."""

from .ensemble import Ensemble, mean_and_sem
from .ntk import empirical_ntk
from .sampler import sample
from .training import TrainingResult, train_ensemble

__all__ = ["Ensemble", "TrainingResult", "empirical_ntk", "mean_and_sem", "sample", "train_ensemble"]
