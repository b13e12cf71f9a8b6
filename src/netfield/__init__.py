"""netfield: field theory of wide neural networks.

Importing netfield enables JAX float64 (``jax_enable_x64``): theory results are float64 by default
(DESIGN.md section 3); float32 stays available through ``dtype=`` arguments.
"""

import jax

jax.config.update("jax_enable_x64", True)

from . import gauss  # noqa: E402
from .gauss import Activation, get_activation, leaky_relu  # noqa: E402
from .finite import Ensemble, sample  # noqa: E402
from .meanfield import MeanFieldResult, kernel, mean_field  # noqa: E402
from .program import Network, dnn, rnn  # noqa: E402

__version__ = "0.1.0"

__all__ = [
    "Activation", "Ensemble", "MeanFieldResult", "Network", "dnn", "gauss", "get_activation", "kernel", "leaky_relu",
    "mean_field", "rnn", "sample",
]
