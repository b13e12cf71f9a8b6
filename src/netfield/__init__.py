"""netfield: field theory of wide neural networks.

Importing netfield enables JAX float64 (``jax_enable_x64``): theory results are float64 by default
(docs/design.md section 3); float32 stays available through ``dtype=`` arguments.
"""

from . import _startup

_startup.install()  # the netfield command: Ctrl-C while importing exits 130 with the resume hint

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
from .storage import read_metadata as _read_metadata

# the module of each result type that result files may hold (netfield.load imports it on demand)
_RESULT_TYPES = {
    "Ensemble": "netfield.finite.ensemble",
    "MeanFieldResult": "netfield.meanfield.result",
    "NLOResult": "netfield.nlo.oneloop",
    "SimulatedNLO": "netfield.nlo.simulate",
    "FeatureResult": "netfield.feature.theory",
    "PosteriorSamples": "netfield.feature.sampler",
    "TrainingResult": "netfield.finite.training",
    "TrainingPrediction": "netfield.training.result",
}

# Public names whose module loads on first access (netfield.train: infinite-width training dynamics).
_LAZY = {"train": "netfield.training.network", "TrainingPrediction": "netfield.training.result"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name]), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


def save(result, path, *, network=None):
    """``result.save(path, network=network)``: write a result to a portable .npz file (netfield.storage)."""
    if not hasattr(result, "save"):
        raise TypeError(f"result must be one of {', '.join(_RESULT_TYPES)}, got {type(result).__name__}")
    return result.save(path, network=network)


def load(path):
    """Read a result written by ``result.save(path)``, whatever its type (recorded in the file).

    Example:
        >>> import numpy as np, netfield, tempfile, os
        >>> ens = netfield.sample(netfield.rnn(2), np.eye(2), width=8, networks=3, seed=0)
        >>> path = ens.save(os.path.join(tempfile.mkdtemp(), "ens"), network=netfield.rnn(2))
        >>> np.array_equal(netfield.load(path).readout, ens.readout)
        True
    """
    import importlib

    kind = _read_metadata(path).get("type")
    if kind not in _RESULT_TYPES:
        raise ValueError(f"path {str(path)!r} holds a result of type {kind!r}; this netfield reads "
                         f"{', '.join(_RESULT_TYPES)}")
    return getattr(importlib.import_module(_RESULT_TYPES[kind]), kind).load(path)


__all__ = [
    "Activation",
    "Architecture",
    "Ensemble",
    "MeanFieldResult",
    "Network",
    "ProgramBuilder",
    "ProgramError",
    "TrainingPrediction",
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
    "load",
    "lstm",
    "mean_field",
    "mean_field_criticality",
    "nlo",
    "one_loop",
    "phase_diagram",
    "rnn",
    "sample",
    "save",
    "train",
    "transformer",
]
