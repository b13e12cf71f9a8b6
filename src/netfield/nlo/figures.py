"""Figure and demo-report section of the 1/n study (:mod:`netfield.nlo.study`)."""

from __future__ import annotations

import os
import time

import numpy as np
from matplotlib.figure import Figure

from .study import FluctuationStudy, fluctuation_study

FLUCTUATIONS_PNG = "nlo_fluctuations.png"
COLORS = {"dnn": "tab:blue", "rnn": "tab:orange"}


def plot_fluctuations(study: FluctuationStudy | dict, path=None) -> Figure:
    """n Var(K^_tt) / K_tt^2 vs t: theory lines, simulation limits with error bars, one panel per regime."""
    data = study.to_dict() if isinstance(study, FluctuationStudy) else study
    regimes = data["regimes"]
    fig = Figure(figsize=(5.2 * len(regimes), 4.2), layout="constrained")
    axes = np.atleast_1d(fig.subplots(1, len(regimes)))
    for ax, reg in zip(axes, regimes):
        t = np.asarray(reg["steps"])
        for arch in ("dnn", "rnn"):
            ax.plot(t, reg["theory"][arch], "-", color=COLORS[arch], lw=2, label=f"{arch.upper()} one-loop theory")
            sim = reg["simulation"].get(arch)
            if sim:
                shift = -0.08 if arch == "dnn" else 0.08
                ax.errorbar(t + shift, sim["limit"], yerr=sim["limit_se"], fmt="o", ms=4, capsize=2, color=COLORS[arch],
                            label=f"{arch.upper()} sampled, n -> inf (fit over n = {data['widths'][0]}..{data['widths'][-1]})")
        ax.plot(t, np.asarray(reg["theory"]["dnn"]) + np.asarray(reg["cross_time_term"]), ":", color="k", lw=1.2,
                label="DNN + cross-time noise term (= RNN)")
        ax.set_xlabel("step t (DNN layer / RNN time)")
        ax.set_ylabel(r"relative fluctuation  $n\,\mathrm{Var}(\hat K_{tt}) / K_{tt}^2$")
        ax.set_title(f"{reg['name']}: weight_var = {reg['weight_var']:g}, bias_var = {reg['bias_var']:g} "
                     f"($\\chi_1$ = {reg['chi1']:.2f})", fontsize=10)
        ax.set_ylim(bottom=0)
        ax.legend(fontsize=7, loc="lower right")
    fig.suptitle(f"Kernel fluctuations at next-to-leading order: {data['activation']}, single input")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _paragraph(data: dict) -> str:
    parts = []
    for reg in data["regimes"]:
        d, r = reg["theory"]["dnn"], reg["theory"]["rnn"]
        last = reg["steps"][-1]
        text = (f"{reg['name']} (chi_1 = {reg['chi1']:.2f}): at t = {last} the theory gives {d[-1]:.3f} (DNN) and "
                f"{r[-1]:.3f} (RNN); the DNN changes by {abs(d[-1] - d[-2]):.1e} over its last step")
        sim = reg["simulation"]
        if sim:
            text += (f", sampled networks give {sim['dnn']['limit'][-1]:.3f} +- {sim['dnn']['limit_se'][-1]:.3f} and "
                     f"{sim['rnn']['limit'][-1]:.3f} +- {sim['rnn']['limit_se'][-1]:.3f}")
        parts.append(text)
    lead = ""
    reg = data["regimes"][0]
    if reg["simulation"]:
        d, r = reg["simulation"]["dnn"], reg["simulation"]["rnn"]
        lead = (f"The RNN's kernel fluctuations keep growing with the number of steps while the DNN's saturate: at "
                f"t = {reg['steps'][-1]} ({reg['name']}) sampled networks give {r['limit'][-1]:.3f} ± "
                f"{r['limit_se'][-1]:.3f} (RNN) vs {d['limit'][-1]:.3f} ± {d['limit_se'][-1]:.3f} (DNN), as the "
                "one-loop theory predicts [1, 5]. ")
    return (lead + "Relative fluctuation n Var(K^_tt) / K_tt^2 of the equal-time conditional kernel of a single input "
            f"({data['activation']}, x = 1, input_var = {data['input_var']:g}) against the step t. Lines: one-loop "
            "theory (netfield.one_loop); points: sampled networks extrapolated to n -> inf (netfield.nlo.simulate, "
            f"widths {data['widths'][0]}..{data['widths'][-1]}, {data['networks'][0]}..{data['networks'][-1]} networks "
            "per width). The DNN's fluctuations saturate with depth; the RNN's keep growing, because its weight "
            "sharing correlates the sampling noise of different time steps: the difference is exactly the "
            "cross-time noise term of docs/theory.md eq. 4.1d (dotted: DNN + that term, on top of the RNN line). "
            + "; ".join(parts) + ".")


SETTINGS = (("ordered", 1.5, 0.5), ("chaotic", 4.0, 0.3))
# Sample plans (networks per width 32, 64, 128). Fast: 3/4 of the networks of the full plan, standard errors
# 1.15 times larger; the RNN - DNN difference of the Richardson limits at t = 8 (ordered; 3.6 standard errors
# with the full plan, seed 0) stays resolved at about 3 (tests/report/test_demo_report.py asks for 2).
FAST_NETWORKS = (1500, 750, 375)
FULL_NETWORKS = (2000, 1000, 500)
WIDTHS = (32, 64, 128)


def _api_call(networks) -> str:
    return (f"netfield.nlo.study.fluctuation_study(settings={SETTINGS!r}, steps=8, widths={WIDTHS!r}, "
            f"networks={tuple(networks)!r})")


def demo_section(out_dir, *, full: bool = False) -> dict:
    """Run the study (measured on 2 cores shared with other work, load ~5: fast 34-37 s with an empty
    compilation cache, 10-12 s with a warm one; ``full``: 53 s), write the figure, return
    {figures, paragraphs, numbers, plan, reproduce}."""
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise ValueError(f"out_dir must be an existing folder, got {out_dir!r}")
    start = time.perf_counter()
    networks = FULL_NETWORKS if full else FAST_NETWORKS
    study = fluctuation_study(settings=SETTINGS, steps=8, widths=WIDTHS, networks=networks)
    data = study.to_dict()
    plot_fluctuations(data, os.path.join(out_dir, FLUCTUATIONS_PNG))
    data["seconds"] = time.perf_counter() - start
    plan = (f"2 regimes x 2 architectures, single input, T = 8; widths {', '.join(map(str, WIDTHS))} with "
            f"{', '.join(map(str, networks))} sampled networks (Richardson limit n -> inf with its standard error)")
    return {"figures": [FLUCTUATIONS_PNG], "paragraphs": {FLUCTUATIONS_PNG: _paragraph(data)}, "numbers": data,
            "plan": plan, "reproduce": _api_call(FULL_NETWORKS)}


__all__ = ["FLUCTUATIONS_PNG", "demo_section", "plot_fluctuations"]
