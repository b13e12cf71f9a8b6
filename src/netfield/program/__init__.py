"""Network descriptions as tensor programs (docs/design.md): one program language (NETSOR+,
:mod:`.netsor`), one network object (:class:`Network`), and the recognition of program shapes that
fast paths and shape-specific theories use (:mod:`.shape`)."""

from .architectures import Architecture, architecture, attention, batchnorm_mlp, conv, gru, lstm, transformer
from .builder import ProgramBuilder
from .inputs import Patterns, parse_inputs
from .netsor import ProgramError
from .network import HYPER_PARAMETERS, Network, dnn, rnn
from .shape import Chain, UnsupportedProgram, chain_of, require_chain

__all__ = [
    "HYPER_PARAMETERS",
    "Architecture",
    "Chain",
    "Network",
    "Patterns",
    "ProgramBuilder",
    "ProgramError",
    "UnsupportedProgram",
    "architecture",
    "attention",
    "batchnorm_mlp",
    "chain_of",
    "conv",
    "dnn",
    "gru",
    "lstm",
    "parse_inputs",
    "require_chain",
    "rnn",
    "transformer",
]
