"""Next-to-leading order (1/n) corrections of DNN and RNN kernels (THEORY.md 4, docs/nlo.md)."""

from .observables import Observables, observables
from .oneloop import NLOResult, nlo

__all__ = ["NLOResult", "Observables", "nlo", "observables"]
