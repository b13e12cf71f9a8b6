"""Figure and demo-report section of the any-architecture study (:mod:`netfield.experiments.architectures`)."""

from __future__ import annotations

import math
import os
import time

import numpy as np
from matplotlib.figure import Figure

from .architectures import ArchitectureStudy, architecture_study, default_cases

ARCHITECTURES_PNG = "architectures_convergence.png"
# The demo's study, fast plan (the default of ``netfield demo``): 6 architectures x 5 widths 32..512, 48
# networks per width up to n = 256, 32 at 512: the 1/width slope over a factor 16 in width, and the mean
# kernel against the theory at n = 512 (tests/experiments/test_architecture_convergence.py states the power).
DEMO_WIDTHS = (32, 64, 128, 256, 512)
DEMO_NETWORKS = (48, 48, 48, 48, 32)
# Full plan (``netfield demo --full``; about 35 s of CPU on 2 cores, dominated by the widths 512 and 1024
# and by the GRU / LSTM theory kernels): widths to 1024.
FULL_WIDTHS = (32, 64, 128, 256, 512, 1024)
FULL_NETWORKS = (48, 48, 48, 48, 32, 32)
DEMO_SEED = 0
COLORS = ("tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown", "tab:pink", "tab:gray")


def plot_architecture_convergence(data: ArchitectureStudy | dict, path=None) -> Figure:
    """E[||K^ - K||_F^2 / ||K||_F^2] vs width, log-log, one panel per architecture.

    Each panel: the mean over networks with its standard error (markers), the fitted power law
    B n^beta (solid) and the 1/width line c / n fitted with the exponent held at -1 (dashed).
    ``data`` is an :class:`~netfield.experiments.architectures.ArchitectureStudy` or its ``to_dict()``.
    """
    data = data.to_dict() if isinstance(data, ArchitectureStudy) else data
    archs = data["architectures"]
    cols = min(3, len(archs))
    rows = math.ceil(len(archs) / cols)
    fig = Figure(figsize=(4.2 * cols, 3.4 * rows + 0.4), layout="constrained")
    axes = np.atleast_1d(fig.subplots(rows, cols, sharex=True, sharey=True, squeeze=False)).ravel()
    for i, (ax, arch) in enumerate(zip(axes, archs)):
        color = COLORS[i % len(COLORS)]
        n = np.asarray(arch["widths"], float)
        lo, hi = min(arch["networks"]), max(arch["networks"])
        ax.errorbar(n, arch["d2_mean"], yerr=arch["d2_sem"], fmt="o", ms=4, capsize=2, color=color,
                    label=f"{lo}..{hi} networks per width" if lo != hi else f"{lo} networks per width")
        fit, inv = arch["fit"], arch["inverse_fit"]
        ax.plot(n, fit["prefactor"] * n ** fit["exponent"], "-", color=color, lw=1.5,
                label=f"fit: slope {fit['exponent']:.3f} ± {fit['exponent_se']:.3f}")
        ax.plot(n, inv["prefactor"] * n**-1.0, "--", color="k", lw=1, label=f"1/width: {inv['prefactor']:.2f} / n")
        ax.set_xscale("log", base=2)
        ax.set_yscale("log")
        ax.set_title(f"{arch['name']}  (max |z| = {arch['max_abs_z']:.1f} at n = {arch['largest_width']})", fontsize=10)
        ax.legend(fontsize=7, loc="lower left")
        ax.grid(alpha=0.3, which="both", lw=0.5)
    for ax in axes[len(archs):]:
        ax.set_visible(False)
    for ax in axes[(rows - 1) * cols:]:
        ax.set_xlabel("width n")
    for ax in axes[::cols]:
        ax.set_ylabel(r"$\|\hat K - K\|_F^2 / \|K\|_F^2$")
    fig.suptitle("Kernels of any architecture: sampled networks vs tensor-program mean field "
                 "(squared relative distance, mean ± s.e.)")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _paragraph(data: dict) -> str:
    archs = data["architectures"]
    per = "; ".join(
        f"{a['name']}: slope {a['slope']:.3f} ± {a['slope_se']:.3f}, max |z| = {a['max_abs_z']:.2f}"
        for a in archs
    )
    floor = max(a["theory_floor"] for a in archs)
    size = len(archs[0]["theory"])
    worst = max(abs(a["slope"] + 1) / a["slope_se"] for a in archs)
    return (
        "For every architecture the sampled kernels approach the tensor-program mean field [6] like 1/width: "
        f"every fitted slope of the squared distance is within {worst:.1f} standard errors of -1. "
        "Relative squared Frobenius distance ||K_emp - K||_F^2 / ||K||_F^2 between the conditional readout kernel "
        "K_emp of sampled finite networks and the infinite-width kernel K of the NETSOR+ master theorem "
        "(netfield.mean_field; netfield.kernel for the simple RNN), against the width n, for a simple RNN (erf, "
        "T = 4), a GRU and an LSTM (T = 3), a one-block transformer (relu, tied query/key, layer norm, 4 tokens), "
        "an MLP with batch norm (depth 3, relu, the 4 inputs as the batch) and a 1-D CNN (depth 2, filter 3). "
        "Inputs: 4 digit images (0-3) from scikit-learn's bundled digits, averaged to 4x4 and read row by row as "
        "sequences / tokens / positions (flattened for batch norm). "
        f"Widths {data['widths'][0]}..{data['widths'][-1]} with {min(data['networks'])}..{max(data['networks'])} "
        f"networks per width (seed {data['seed']}); markers: mean ± standard error over networks, solid: weighted "
        "log-log fit, dashed: c / n with the exponent fixed at -1. Fluctuations of order n^(-1/2) per entry make the "
        "squared distance fall like 1/width for every architecture; fitted slopes: " + per + " (max |z|: largest "
        "deviation of the mean empirical kernel at the largest width from the theory, in units of the combined "
        f"sampling and numerical standard error, over the {size * (size + 1) // 2} distinct entries). The theory's own numerical error "
        f"(quasi-Monte Carlo for the gated and batch-norm networks) accounts for at most {floor:.0e} of the squared "
        f"distance. Computed in {data['seconds']:.0f} s."
    )


def demo_section(out_dir, *, full: bool = False) -> dict:
    """Run the demo study (fast plan, or ``full``: widths to 1024), write the figure, return {figures,
    paragraphs, numbers, plan, reproduce}."""
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise ValueError(f"out_dir must be an existing folder, got {out_dir!r}")
    start = time.perf_counter()
    widths, networks = (FULL_WIDTHS, FULL_NETWORKS) if full else (DEMO_WIDTHS, DEMO_NETWORKS)
    study = architecture_study(default_cases(), widths=widths, networks=networks, seed=DEMO_SEED)
    data = study.to_dict()
    plot_architecture_convergence(data, os.path.join(out_dir, ARCHITECTURES_PNG))
    data["seconds"] = time.perf_counter() - start
    plan = (f"6 architectures x widths {', '.join(map(str, widths))} with {', '.join(map(str, networks))} sampled "
            "networks per width, 4 digit inputs")
    reproduce = ("netfield.experiments.architectures.architecture_study(cases=netfield.experiments.architectures."
                 f"default_cases(), widths={FULL_WIDTHS!r}, networks={FULL_NETWORKS!r}, seed={DEMO_SEED})")
    return {"figures": [ARCHITECTURES_PNG], "paragraphs": {ARCHITECTURES_PNG: _paragraph(data)}, "numbers": data,
            "plan": plan, "reproduce": reproduce}


__all__ = ["ARCHITECTURES_PNG", "DEMO_NETWORKS", "DEMO_SEED", "DEMO_WIDTHS", "FULL_NETWORKS", "FULL_WIDTHS", "demo_section",
           "plot_architecture_convergence"]
