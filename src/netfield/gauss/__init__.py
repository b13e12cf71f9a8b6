"""Gaussian expectations of activations: closed forms, numerical rules, Monte Carlo."""

from .activations import ACTIVATIONS, Activation, get_activation, leaky_relu
from .expect import METHODS, d2pair, dpair, pair, pair_kernel
from .montecarlo import pair_mc
from .multivariate import erf_gate_product, lowdim_expectation, psd_sqrt, qmc_expectation, sobol_normals

__all__ = [
    "ACTIVATIONS",
    "METHODS",
    "Activation",
    "d2pair",
    "dpair",
    "erf_gate_product",
    "get_activation",
    "leaky_relu",
    "lowdim_expectation",
    "pair",
    "pair_kernel",
    "pair_mc",
    "psd_sqrt",
    "qmc_expectation",
    "sobol_normals",
]
