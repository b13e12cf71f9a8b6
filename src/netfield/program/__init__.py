"""Network descriptions as tensor programs."""

from .inputs import Patterns, parse_inputs
from .ir import Bias, InputProj, LinComb, MatMul, Nonlin, Program
from .network import ARCHITECTURES, HYPER_PARAMETERS, Network, build_program, dnn, rnn

__all__ = [
    "ARCHITECTURES",
    "HYPER_PARAMETERS",
    "Bias",
    "InputProj",
    "LinComb",
    "MatMul",
    "Network",
    "Nonlin",
    "Patterns",
    "Program",
    "build_program",
    "dnn",
    "parse_inputs",
    "rnn",
]
