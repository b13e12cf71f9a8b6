"""Next-to-leading order (1/n) corrections of DNN and RNN kernels (docs/theory.md 4, docs/nlo.md).

:func:`one_loop` (also ``netfield.one_loop``) returns the mean shift lim n (E[K^] - K*) and the
four-point vertex lim n Cov(K^_i, K^_j) of every kernel entry;
:func:`simulate` measures the same limits on sampled networks; :func:`pdlt` / :func:`deep_linear` are the
DNN cross-checks; :func:`fluctuation_study` is the DNN-vs-RNN comparison of the demo report.

Example:
    >>> import numpy as np, netfield
    >>> r = netfield.one_loop(netfield.rnn(4, "tanh", weight_var=1.5, bias_var=0.5, input_var=0.5), np.ones((1, 1)))
    >>> i = r.index("hidden", 4, 4)
    >>> bool(r.variance[i] > 0)
    True
"""

from .._deprecation import make_module_callable as _make_module_callable
from .observables import Observables, observables
from .oneloop import NLOResult, nlo, one_loop
from .pdlt import PDLTRecursion, deep_linear, pdlt
from .simulate import SimulatedNLO, simulate
from .study import FluctuationStudy, fluctuation_study

__all__ = ["FluctuationStudy", "NLOResult", "Observables", "PDLTRecursion", "SimulatedNLO", "deep_linear",
           "fluctuation_study", "nlo", "observables", "one_loop", "pdlt", "simulate"]

# ``netfield.nlo(net, x)`` (the old spelling, when netfield.nlo was this function) still works, with a
# DeprecationWarning naming netfield.one_loop.
_make_module_callable(__name__, one_loop, old="netfield.nlo", new="netfield.one_loop")
