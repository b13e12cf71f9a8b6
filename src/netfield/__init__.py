"""netfield: field theory of wide neural networks.

Importing netfield enables JAX float64 (``jax_enable_x64``): theory results are float64 by default
(DESIGN.md section 3); float32 stays available through ``dtype=`` arguments.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import gauss, gp
from .criticality import criticality, phase_diagram
from .finite import Ensemble, sample
from .gauss import Activation, get_activation, leaky_relu
from .meanfield import MeanFieldResult, kernel, mean_field
from .nlo import nlo  # the function; the subpackage stays importable as netfield.nlo.<module>
from .program import Network, dnn, rnn

__version__ = "0.1.0"

__all__ = [
    "Activation", "Ensemble", "MeanFieldResult", "Network", "criticality", "dnn", "gauss", "get_activation", "gp", "kernel",
    "leaky_relu", "mean_field", "nlo", "phase_diagram", "rnn", "sample",
]
