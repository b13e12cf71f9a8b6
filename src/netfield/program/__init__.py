"""Network descriptions as tensor programs."""

from .architectures import Architecture, architecture, attention, batchnorm_mlp, conv, gru, lstm, transformer
from .inputs import Patterns, parse_inputs
from .ir import Bias, InputProj, LinComb, MatMul, Nonlin, Program
from .netsor import ProgramBuilder, ProgramError
from .network import ARCHITECTURES, HYPER_PARAMETERS, Network, build_program, dnn, rnn

__all__ = [
    "ARCHITECTURES",
    "HYPER_PARAMETERS",
    "Architecture",
    "Bias",
    "InputProj",
    "LinComb",
    "MatMul",
    "Network",
    "Nonlin",
    "Patterns",
    "Program",
    "ProgramBuilder",
    "ProgramError",
    "architecture",
    "attention",
    "batchnorm_mlp",
    "build_program",
    "conv",
    "dnn",
    "gru",
    "lstm",
    "parse_inputs",
    "rnn",
    "transformer",
]
