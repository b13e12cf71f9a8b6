"""The criticality section of ``netfield demo`` (wired in by the main report)."""

from __future__ import annotations

import os
import time

import numpy as np

from .figures import plot_phase_diagram
from .phase_diagram import phase_diagram

PHASES = ("ordered", "critical", "chaotic", "unbounded")


REPRODUCE = ("netfield phase-diagram --activation tanh --weight-min 0.5 --weight-max 4 --bias-max 0.3 "
             "--resolution 71x31 --out phase_diagram_tanh.png")


def demo_section(out_dir, *, full: bool = False) -> dict:
    """Write the tanh phase diagram into ``out_dir`` and return its report entry (< 20 s).

    ``full``: accepted for the demo's interface; the section is the same at both sizes (it is cheap).

    Returns:
        {"figures": [file names], "paragraphs": {file name: text}, "numbers": {...}, "plan": text,
        "reproduce": command} (JSON-serialisable).
    """
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise ValueError(f"out_dir must be an existing folder, got {out_dir!r}")
    start = time.perf_counter()
    # grid steps 0.05 x 0.01: the marked points (1.2, 0.05) and (3.0, 0.05) are grid points
    pd = phase_diagram("tanh", weight_range=(0.5, 4.0), bias_range=(0.0, 0.3), resolution=(71, 31))
    w05 = pd.line.weight_var_at(0.05)
    w0 = pd.line.weight_var_at(0.0)

    def at(w, b):
        i, j = int(np.argmin(np.abs(pd.bias_var - b))), int(np.argmin(np.abs(pd.weight_var - w)))
        return {"weight_var": float(pd.weight_var[j]), "bias_var": float(pd.bias_var[i]),
                "phase": PHASES[int(pd.phase[i, j])], "q_star": float(pd.q_star[i, j]),
                "lyapunov": float(pd.lyapunov[i, j]), "c_star": float(pd.c_star[i, j]), "xi_c": float(pd.xi_c[i, j])}

    ordered, chaotic = at(1.2, 0.05), at(3.0, 0.05)
    name = "phase_diagram_tanh.png"
    plot_phase_diagram(pd, os.path.join(out_dir, name),
                       marks=[(w05, 0.05, f"({w05:.4f}, 0.05)"), (1.2, 0.05, "ordered"), (3.0, 0.05, "chaotic")])
    text = (
        f"The critical line chi_1 = 1 separates ordered from chaotic tanh networks; at bias_var = 0.05 it crosses "
        f"weight_var = {w05:.4f} (Schoenholz et al. [3]: 1.7610). "
        "Order-to-chaos phase diagram of tanh networks (DNN and RNN share it at infinite width [1, 2]). "
        "Left: the largest Lyapunov exponent lambda = (1/2) ln chi_1 per layer, blue where perturbations "
        "shrink (ordered), red where they grow (chaotic). Right: the depth scale xi_c = -1/ln chi_c over "
        "which the correlation of two inputs relaxes to its fixed point; it diverges on the critical line. "
        f"The black line chi_1 = 1 is traced by pseudo-arclength continuation ({len(pd.line)} points); the "
        "dashed white lambda = 0 contour of the grid lies on it. "
        f"At bias_var = 0 it starts at weight_var = {w0:.4f}. The bias_var = 0 row of the xi_c map is bright "
        "because there every input is contracted to zero in the ordered phase, where tanh is linear and "
        "correlations are frozen (xi_c = inf). Markers: an ordered point (lambda = "
        f"{ordered['lyapunov']:.4f}, xi_c = {ordered['xi_c']:.2f}) and a chaotic one (lambda = "
        f"{chaotic['lyapunov']:.4f}, c* = {chaotic['c_star']:.3f}, xi_c = {chaotic['xi_c']:.2f})."
    )
    numbers = {
        "tanh_critical_weight_var_at_bias_0.05": w05,
        "tanh_critical_weight_var_at_bias_0": w0,
        "tanh_ordered_point": ordered,
        "tanh_chaotic_point": chaotic,
        "critical_line_points": len(pd.line),
        "seconds": round(time.perf_counter() - start, 2),
    }
    plan = ("71 x 31 grid of (weight_var, bias_var) in [0.5, 4] x [0, 0.3], critical line by continuation "
            f"({len(pd.line)} points); deterministic (no sampling), the same in --full")
    return {"figures": [name], "paragraphs": {name: text}, "numbers": numbers, "plan": plan, "reproduce": REPRODUCE}
