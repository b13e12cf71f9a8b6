"""Figures of the feature-learning section of ``netfield demo`` (docs/feature.md F9-F12).

:func:`demo_section` runs :func:`netfield.feature.study.transition_study` and
:func:`netfield.feature.study.sequential_study` (about 4 minutes on 2 cores; the wider study of docs/feature.md
section 5 is scripts/feature_widths.py) and draws
``feature_transition.png`` (order parameter vs signal, theory and sampled networks; the spectrum of W
below and above the transition) and ``feature_sequential.png`` (test error per step, RNN vs DNN).
"""

from __future__ import annotations

import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from .study import sequential_study, transition_study

TRANSITION_PNG = "feature_transition.png"
SEQUENTIAL_PNG = "feature_sequential.png"


def plot_transition(data: dict, path=None):
    """Left: q^2 vs signal (theory lines with numerical error bands; sampled markers per width). Right:
    largest |eigenvalue| of W per chain at the largest sampled width, below and above the transition,
    against the circular-law bulk edge sqrt(weight_var)."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    for arch, style in (("rnn", "-"), ("dnn", "--")):
        if arch not in data["theory"]:
            continue
        th = data["theory"][arch]
        q = np.asarray(th["order"])
        ax.plot(np.asarray(th["signals"]), q ** 2, style, color="k" if arch == "rnn" else "C7",
                label=f"theory {arch.upper()}")
    if data["critical_signal"]:
        ax.axvline(data["critical_signal"], color="C3", lw=0.8, ls=":", label=f"s* = {data['critical_signal']:.3f}")
    widths = sorted({e["width"] for e in data["samples"]})
    for e in data["samples"]:
        c = f"C{widths.index(e['width'])}"
        ax.errorbar(e["signal"] * (1.03 if e["arch"] == "dnn" else 1.0), e["order_sq"], e["order_sq_se"],
                    fmt="o" if e["arch"] == "rnn" else "s", color=c, mfc="none" if e["arch"] == "dnn" else c, ms=5)
    for w in widths:
        ax.plot([], [], "o", color=f"C{widths.index(w)}", label=f"sampled n = {w}")
    ax.plot([], [], "s", color="k", mfc="none", label="sampled DNN")
    ax.set_xlabel("signal strength s")
    ax.set_ylabel("cross-time order parameter q^2 = <K_23^2> / (K_22 K_33)")
    ax.legend(fontsize=7)
    ax.set_title("RNN-only transition (T = 3, endpoint target)")
    top = max(widths)
    rnn_top = [e for e in data["samples"] if e["arch"] == "rnn" and e["width"] == top]
    for k, e in enumerate(rnn_top):
        vals = np.asarray(e["w_top"])[:, -1]
        ax2.plot(np.full(len(vals), k), vals, "o", color="C0")
    ax2.axhline(data["bulk_edge"], color="k", lw=0.8, ls="--", label="bulk edge sqrt(weight_var)")
    ax2.set_xticks(range(len(rnn_top)), [f"s = {e['signal']}" for e in rnn_top])
    ax2.set_ylabel(f"largest |eigenvalue| of W per chain (n = {top})")
    ax2.set_title("spectrum of the recurrent matrix")
    ax2.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_sequential(data: dict, path=None):
    """Test mean squared error per step (targets only at the supervised steps), theory and sampled."""
    fig, ax = plt.subplots(figsize=(5.5, 4))
    steps = np.arange(1, len(data["rnn"]["theory_mse"]) + 1)
    for k, arch in enumerate(("rnn", "dnn")):
        ax.plot(steps, data[arch]["theory_mse"], "-", color=f"C{k}", label=f"theory {arch.upper()}")
        ax.plot(steps, data[arch]["sampled_mse"], "o", color=f"C{k}", label=f"sampled {arch.upper()}, n = {data['width']}")
    for s in data["supervised_steps"]:
        ax.axvspan(s - 0.15, s + 0.15, color="0.9")
    ax.set_xticks(steps)
    ax.set_xlabel("step (shaded: supervised)")
    ax.set_ylabel("test mean squared error")
    ax.legend(fontsize=7)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _paragraphs(tr: dict, sq: dict) -> dict:
    above = [e for e in tr["samples"] if e["arch"] == "rnn" and e["theory_order"] > 0]
    below = [e for e in tr["samples"] if e["arch"] == "rnn" and e["theory_order"] == 0]
    dnn = [e for e in tr["samples"] if e["arch"] == "dnn"]
    fmt = lambda es: "; ".join(f"n = {e['width']}: {e['order_sq']:.4f} ± {e['order_sq_se']:.4f}" for e in es)
    crit = tr["critical_signal"]
    text1 = (
        "muP (mean-field scaling) Bayesian networks trained on an endpoint-supervised toy task (erf, weight_var 1.5, "
        "kappa 0.1, T = 3 steps, 2 patterns with targets ±1, input at step 1). Theory (docs/feature.md): the leading "
        "eigenvalue of the saddle point's cross-time Jacobian crosses 1 at the critical signal "
        f"s* = {crit:.3f} for the RNN (the DNN has no cross-time sector); above it the RNN's kernels leave the "
        "symmetric (DNN) solution for a branch with correlated representations across time, C(2,3) != 0 "
        "(found by Newton's method, followed in the signal). Markers: finite RNNs and DNNs sampled from the "
        "posterior by Hamiltonian Monte Carlo, q^2 = E[K_23^2] / (K_22 K_33) (the sign of K_23 is free: W -> -W). "
        f"Above the transition (RNN): {fmt(above)} (theory {above[0]['theory_order_sq']:.4f}). "
        f"Below: {fmt(below)} (theory 0; the sampled value is the O(1/n) fluctuation). "
        f"DNN: {fmt(dnn)}. Right: the largest eigenvalue modulus of W per chain; the bulk edge is "
        f"sqrt(weight_var) = {tr['bulk_edge']:.3f}. Computed in {tr['seconds']:.0f} s."
    )
    r, d = sq["rnn"], sq["dnn"]
    text2 = (
        f"Sequential task: targets at steps {sq['supervised_steps']} of 3 (label sign(x . w), the same input at "
        f"every step), 3 training and 3 test sequences, signal {sq['signal']}. Test error at the unsupervised "
        f"step 2: RNN {r['theory_mse'][1]:.3f} (theory) / {r['sampled_mse'][1]:.3f} (sampled, n = {sq['width']}); "
        f"DNN {d['theory_mse'][1]:.3f} / {d['sampled_mse'][1]:.3f}. The RNN's shared weights carry what the "
        "supervised steps taught to the unsupervised one; the DNN's layer 2 has its own weights, and its output "
        f"there stays at the prior mean 0 (error 1). Every test prediction at every step: theory and sampled "
        f"networks differ by at most {r['max_abs_difference']:.3f} (RNN) and {d['max_abs_difference']:.3f} (DNN). "
        f"Computed in {sq['seconds']:.0f} s."
    )
    return {TRANSITION_PNG: text1, SEQUENTIAL_PNG: text2}


def demo_section(out_dir) -> dict:
    """Run both studies, write the figures, return {figures, paragraphs, numbers}."""
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise ValueError(f"out_dir must be an existing folder, got {out_dir!r}")
    start = time.perf_counter()
    tr = transition_study()
    sq = sequential_study()
    plot_transition(tr, os.path.join(out_dir, TRANSITION_PNG))
    plot_sequential(sq, os.path.join(out_dir, SEQUENTIAL_PNG))
    plt.close("all")
    numbers = {"transition": tr, "sequential": sq, "seconds": time.perf_counter() - start}
    return {"figures": [TRANSITION_PNG, SEQUENTIAL_PNG], "paragraphs": _paragraphs(tr, sq), "numbers": numbers}


__all__ = ["SEQUENTIAL_PNG", "TRANSITION_PNG", "demo_section", "plot_sequential", "plot_transition"]
