"""The seed papers' headline studies as functions returning frozen dataclasses of numbers.

- :mod:`~netfield.experiments.convergence`: DNN vs RNN convergence to the mean-field kernels
  (paper A's numerical finding; docs/theory.md 4.1).
- :mod:`~netfield.experiments.fitting`: weighted least-squares power laws with standard errors.
- :class:`ChunkStore`, :func:`run_chunks`, :func:`run_key`: resumable runs (one atomic .npz per finished
  chunk; defined in :mod:`netfield._runtime.checkpoint`, at the bottom of the stack, and public here).
- :mod:`~netfield.experiments.sampling`: compile-once sampling, identical to :func:`netfield.sample`.
- :mod:`~netfield.experiments.data`: real inputs (scikit-learn digits) and input files.
"""

from .._runtime.checkpoint import ChunkStore, run_chunks, run_key
from .convergence import (
    ArchitectureComparison,
    ConvergenceCurve,
    ConvergenceStudy,
    Measurement,
    StudySettings,
    compare_architectures,
    convergence_curve,
    convergence_study,
    measure,
)
from .data import digits_inputs, load_inputs
from .fitting import PowerLawFit, fit_power_law, prefactor_ratio

__all__ = [
    "ArchitectureComparison", "ChunkStore", "ConvergenceCurve", "ConvergenceStudy", "Measurement", "PowerLawFit",
    "StudySettings", "compare_architectures", "convergence_curve", "convergence_study", "digits_inputs", "fit_power_law", "load_inputs", "measure", "prefactor_ratio", "run_chunks", "run_key",
]
