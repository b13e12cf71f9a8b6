"""Gaussian expectations of activations: closed forms, numerical rules, Monte Carlo."""

from .activations import ACTIVATIONS, Activation, get_activation, leaky_relu
from .expect import METHODS, d2pair, dpair, pair, pair_kernel
from .montecarlo import pair_mc

__all__ = [
    "ACTIVATIONS",
    "METHODS",
    "Activation",
    "d2pair",
    "dpair",
    "get_activation",
    "leaky_relu",
    "pair",
    "pair_kernel",
    "pair_mc",
]
