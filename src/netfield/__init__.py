"""netfield: field theory of wide neural networks.

Importing netfield enables JAX float64 (``jax_enable_x64``): theory results are float64 by default
(docs/design.md section 3); float32 stays available through ``dtype=`` arguments.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import gauss, gp
from .criticality import criticality, phase_diagram
from .finite import Ensemble, sample
from .gauss import Activation, get_activation, leaky_relu
from .meanfield import MeanFieldResult, kernel, mean_field
from .nlo import nlo  # the function; the subpackage stays importable as netfield.nlo.<module>
from .program import (
    Architecture,
    Network,
    ProgramBuilder,
    ProgramError,
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

__version__ = "0.1.0"

__all__ = [
    "Activation",
    "Architecture",
    "Ensemble",
    "MeanFieldResult",
    "Network",
    "ProgramBuilder",
    "ProgramError",
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
    "nlo",
    "phase_diagram",
    "rnn",
    "sample",
    "transformer",
]
