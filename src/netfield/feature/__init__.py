"""Feature learning: the muP Bayesian theory of trained DNNs and RNNs and its finite-width oracle
(docs/feature.md).

- :func:`posterior_kernels`: saddle point of the posterior over kernels and conjugate fields (F4-F8).
- :func:`transition`, :func:`broken_solution`, :func:`broken_branch`: the RNN-only cross-time transition
  (F9-F11).
- :func:`posterior_samples`: Hamiltonian Monte Carlo of finite networks' posterior (the oracle).
"""

from .sampler import PosteriorSamples, posterior_samples
from .theory import (
    FeatureResult,
    NonConvergenceError,
    build_problem,
    posterior_kernels,
    solve,
    stability_spectrum,
)
from .transition import (
    BrokenBranch,
    TransitionScan,
    broken_branch,
    broken_solution,
    cross_time_eigenvalue,
    transition,
)

__all__ = [
    "BrokenBranch",
    "FeatureResult",
    "NonConvergenceError",
    "PosteriorSamples",
    "TransitionScan",
    "broken_branch",
    "broken_solution",
    "build_problem",
    "cross_time_eigenvalue",
    "posterior_kernels",
    "posterior_samples",
    "solve",
    "stability_spectrum",
    "transition",
]
