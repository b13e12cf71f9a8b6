"""Criticality: fixed points, order-to-chaos transition, Lyapunov exponents, depth scales, phase diagrams.

Theory and numbered equations: docs/criticality.md. The fixed points, slopes, depth scales, Lyapunov
exponent and phase of one setting: :func:`mean_field_criticality` (also ``netfield.mean_field_criticality``;
``criticality`` is its original name). Import the rest from here, e.g.
``from netfield.criticality import critical_line, width_study``.
"""

from .._deprecation import make_module_callable as _make_module_callable
from .demo import demo_section
from .extrapolate import WidthFit, fit_inverse_width
from .figures import plot_phase_diagram, plot_width_study
from .finite_width import LyapunovCorrection, WidthStudy, dnn_lyapunov_correction, width_study
from .fixed_points import (
    CorrelationFixedPoint,
    Criticality,
    correlation_map,
    criticality,
    length_map,
    mean_field_criticality,
)
from .lyapunov import LyapunovMeasurement, Probe, mean_field_eps, measure_lyapunov, probe
from .phase_diagram import CriticalLine, PhaseDiagram, critical_line, critical_weight_var, phase_diagram

__all__ = [
    "CorrelationFixedPoint",
    "CriticalLine",
    "Criticality",
    "LyapunovCorrection",
    "LyapunovMeasurement",
    "PhaseDiagram",
    "Probe",
    "WidthFit",
    "WidthStudy",
    "correlation_map",
    "critical_line",
    "critical_weight_var",
    "criticality",
    "demo_section",
    "dnn_lyapunov_correction",
    "fit_inverse_width",
    "length_map",
    "mean_field_criticality",
    "mean_field_eps",
    "measure_lyapunov",
    "phase_diagram",
    "plot_phase_diagram",
    "plot_width_study",
    "probe",
    "width_study",
]

# ``netfield.criticality("tanh", ...)`` (the old spelling, when netfield.criticality was this function)
# still works, with a DeprecationWarning naming netfield.mean_field_criticality.
_make_module_callable(__name__, mean_field_criticality, old="netfield.criticality",
                      new="netfield.mean_field_criticality")
