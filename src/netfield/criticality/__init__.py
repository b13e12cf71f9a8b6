"""Criticality: fixed points, order-to-chaos transition, Lyapunov exponents, depth scales, phase diagrams."""

from .fixed_points import Criticality, CorrelationFixedPoint, correlation_map, criticality, length_map
from .phase_diagram import CriticalLine, PhaseDiagram, critical_line, critical_weight_var, phase_diagram

__all__ = [
    "CriticalLine", "Criticality", "CorrelationFixedPoint", "PhaseDiagram", "correlation_map", "critical_line",
    "critical_weight_var", "criticality", "length_map", "phase_diagram",
]
from .lyapunov import LyapunovMeasurement, Probe, mean_field_eps, measure_lyapunov, probe  # noqa: E402

__all__ += ["LyapunovMeasurement", "Probe", "mean_field_eps", "measure_lyapunov", "probe"]
from .extrapolate import WidthFit, fit_inverse_width  # noqa: E402
from .finite_width import LyapunovCorrection, WidthStudy, dnn_lyapunov_correction, width_study  # noqa: E402

__all__ += ["LyapunovCorrection", "WidthFit", "WidthStudy", "dnn_lyapunov_correction", "fit_inverse_width",
            "width_study"]
from .demo import demo_section  # noqa: E402
from .figures import plot_phase_diagram, plot_width_study  # noqa: E402

__all__ += ["demo_section", "plot_phase_diagram", "plot_width_study"]
