"""netfield: field theory of wide neural networks.

Importing netfield enables JAX float64 (``jax_enable_x64``): theory results are float64 by default
(docs/design.md section 3); float32 stays available through ``dtype=`` arguments.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import criticality, gauss, gp, nlo
from ._version import __version__ as __version__
from .criticality import mean_field_criticality, phase_diagram
from .finite import Ensemble, sample
from .gauss import Activation, get_activation, leaky_relu
from .meanfield import MeanFieldResult, kernel, mean_field
from .nlo import one_loop
from .program import (
    Architecture,
    Network,
    ProgramBuilder,
    ProgramError,
    UnsupportedProgram,
    architecture,
    attention,
    batchnorm_mlp,
    conv,
    dnn,
    gru,
    lstm,
    rnn,
    transformer,
)

__all__ = [
    "Activation",
    "Architecture",
    "Ensemble",
    "MeanFieldResult",
    "Network",
    "ProgramBuilder",
    "ProgramError",
    "UnsupportedProgram",
    "architecture",
    "attention",
    "batchnorm_mlp",
    "conv",
    "criticality",
    "dnn",
    "gauss",
    "get_activation",
    "gp",
    "gru",
    "kernel",
    "leaky_relu",
    "lstm",
    "mean_field",
    "mean_field_criticality",
    "nlo",
    "one_loop",
    "phase_diagram",
    "rnn",
    "sample",
    "transformer",
]
