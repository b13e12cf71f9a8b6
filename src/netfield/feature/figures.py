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


def theory_curve(data: dict, arch: str = "rnn"):
    """(signals, q^2, standard error of q^2) of the theory, with the transition point (s*, 0) inserted: q
    vanishes at s* (supercritical pitchfork, docs/feature.md F10), so the line bends where the transition
    is, not at the grid point below it."""
    th = data["theory"][arch]
    s, q, se = (np.asarray(th[k], float) for k in ("signals", "order", "order_se"))
    q2, q2_se = q**2, 2 * q * se
    crit = data.get("critical_signal")
    if arch == "rnn" and crit and s[0] < crit < s[-1] and crit not in s:
        i = int(np.searchsorted(s, crit))
        s, q2, q2_se = np.insert(s, i, crit), np.insert(q2, i, 0.0), np.insert(q2_se, i, 0.0)
    return s, q2, q2_se


def _critical_text(data: dict) -> str:
    """s* with its numerical error (replicate scramblings, :func:`netfield.feature.transition`)."""
    crit, err = data["critical_signal"], data.get("critical_signal_error")
    return f"{crit:.3f}" if err is None else f"{crit:.3f} ± {err:.3f}"


def plot_transition(data: dict, path=None):
    """Left: q^2 vs signal (theory lines with numerical error bands, the transition point s* included;
    sampled markers per width, ± standard error). Right: largest |eigenvalue| of W per chain at the largest
    sampled width, below and above the transition, against the circular-law bulk edge sqrt(weight_var)."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.8), layout="constrained")
    s, q2, q2_se = theory_curve(data, "rnn")
    ax.plot(s, q2, "-", color="k", lw=1.5, label="theory RNN (± QMC spread)")
    ax.fill_between(s, q2 - q2_se, q2 + q2_se, color="k", alpha=0.15, lw=0)
    lo, hi = min(s[0], 0.0), s[-1] * 1.05
    if data["theory"].get("dnn"):
        ax.plot([lo, hi], [0.0, 0.0], "--", color="tab:purple", lw=2.5, alpha=0.8,
                label="theory DNN: q = 0 at every signal")
    if data["critical_signal"]:
        ax.axvline(data["critical_signal"], color="C3", lw=1, ls=":",
                   label=f"RNN transition s* = {_critical_text(data)}")
    widths = sorted({e["width"] for e in data["samples"]})
    for e in data["samples"]:
        c = f"C{widths.index(e['width'])}"
        ax.errorbar(e["signal"] * (1.03 if e["arch"] == "dnn" else 1.0), e["order_sq"], e["order_sq_se"],
                    fmt="o" if e["arch"] == "rnn" else "s", color=c, mfc="none" if e["arch"] == "dnn" else c, ms=6,
                    capsize=2)
    for w in widths:
        ax.plot([], [], "o", color=f"C{widths.index(w)}", label=f"sampled RNN, n = {w}")
    ax.plot([], [], "s", color="0.3", mfc="none", ms=6, label="sampled DNN (colour: n)")
    ax.set_xlim(lo, hi)
    ax.set_xlabel("signal strength s")
    ax.set_ylabel("cross-time order parameter q$^2$")
    ax.legend(fontsize=8, loc="upper left")
    ax.set_title("RNN-only transition: q$^2$ = <K$_{23}^2$> / (K$_{22}$ K$_{33}$), T = 3", fontsize=10)
    top = max(widths)
    rnn_top = [e for e in data["samples"] if e["arch"] == "rnn" and e["width"] == top]
    for k, e in enumerate(rnn_top):
        vals = np.asarray(e["w_top"])[:, -1]
        ax2.plot(np.full(len(vals), k), vals, "o", color="C0", label="one HMC chain" if k == 0 else None)
    ax2.axhline(data["bulk_edge"], color="k", lw=0.8, ls="--", label="bulk edge sqrt(weight_var)")
    ax2.set_xticks(range(len(rnn_top)), [f"s = {e['signal']:g}" for e in rnn_top])
    ax2.set_xlim(-0.5, len(rnn_top) - 0.5)
    ax2.set_ylabel(f"largest |eigenvalue| of W (n = {top})")
    ax2.set_title("spectrum of the recurrent matrix, below and above s*", fontsize=10)
    ax2.legend(fontsize=8, loc="lower right")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_sequential(data: dict, path=None):
    """Test mean squared error per step (targets only at the supervised steps), theory and sampled (± s.e.)."""
    fig, ax = plt.subplots(figsize=(6.4, 4.6), layout="constrained")
    steps = np.arange(1, len(data["rnn"]["theory_mse"]) + 1)
    for k, arch in enumerate(("rnn", "dnn")):
        ax.plot(steps, data[arch]["theory_mse"], "-", color=f"C{k}", lw=2, label=f"theory {arch.upper()}")
        ax.errorbar(steps + (0.04 if arch == "dnn" else -0.04), data[arch]["sampled_mse"],
                    data[arch]["sampled_mse_se"], fmt="o", color=f"C{k}", ms=7, capsize=3,
                    label=f"sampled {arch.upper()}, n = {data['width']} (± s.e.)")
    for s in data["supervised_steps"]:
        ax.axvspan(s - 0.15, s + 0.15, color="0.9")
    ax.set_xticks(steps, [f"{t}\n({'supervised' if t in data['supervised_steps'] else 'no target'})" for t in steps])
    ax.set_xlabel("step")
    ax.set_ylabel("test mean squared error")
    ax.set_ylim(bottom=0)
    ax.legend(fontsize=8, loc="center right")
    ax.set_title("Sequential task: the RNN generalises to the unsupervised step,\nthe DNN stays at chance (error 1)",
                 fontsize=10)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def _paragraphs(tr: dict, sq: dict) -> dict:
    above = [e for e in tr["samples"] if e["arch"] == "rnn" and e["theory_order"] > 0]
    below = [e for e in tr["samples"] if e["arch"] == "rnn" and e["theory_order"] == 0]
    dnn = [e for e in tr["samples"] if e["arch"] == "dnn"]
    fmt = lambda es: "; ".join(f"n = {e['width']}: {e['order_sq']:.4f} ± {e['order_sq_se']:.4f}" for e in es)
    text1 = (
        f"Only the RNN learns features here: above the critical signal s* = {_critical_text(tr)} its representations at "
        f"different times become correlated (q^2 > 0), while the DNN's stay uncorrelated (q = 0), and sampled "
        f"finite networks agree with the theory [7]. "
        "muP (mean-field scaling) Bayesian networks trained on an endpoint-supervised toy task (erf, weight_var 1.5, "
        "kappa 0.1, T = 3 steps, 2 patterns with targets ±1, input at step 1). Theory (docs/feature.md): the leading "
        "eigenvalue of the saddle point's cross-time Jacobian crosses 1 at the critical signal "
        f"s* = {_critical_text(tr)} for the RNN (± its numerical error over the QMC scramblings; the DNN has no "
        "cross-time sector); above it the RNN's kernels leave the "
        "symmetric (DNN) solution for a branch with correlated representations across time, C(2,3) != 0 "
        "(found by Newton's method, followed in the signal). Markers: finite RNNs and DNNs sampled from the "
        "posterior by Hamiltonian Monte Carlo, q^2 = E[K_23^2] / (K_22 K_33) (the sign of K_23 is free: W -> -W). "
        f"Above the transition (RNN): {fmt(above)} (theory {above[0]['theory_order_sq']:.4f} ± "
        f"{2 * above[0]['theory_order'] * above[0]['theory_order_se']:.4f}, the spread of two QMC scramblings). "
        f"Below: {fmt(below)} (theory 0; the sampled value is the O(1/n) fluctuation). "
        f"DNN: {fmt(dnn)}. Right: the largest eigenvalue modulus of W per chain; the bulk edge is "
        f"sqrt(weight_var) = {tr['bulk_edge']:.3f}. Computed in {tr['seconds']:.0f} s."
    )
    r, d = sq["rnn"], sq["dnn"]
    pm = lambda a, i, k="sampled_mse": f"{a[k][i]:.3f} ± {a[k + '_se'][i]:.3f}"
    text2 = (
        f"The RNN generalises to a step without targets, the DNN does not: at the unsupervised step 2 the RNN's "
        f"test error is {pm(r, 1)} (sampled; theory {r['theory_mse'][1]:.3f}), the DNN's {pm(d, 1)} (chance: 1). "
        f"Sequential task: targets at steps {sq['supervised_steps']} of 3 (label sign(x . w), the same input at "
        f"every step), 3 training and 3 test sequences, signal {sq['signal']}, sampled networks of width "
        f"n = {sq['width']} (± standard error of the posterior mean). The RNN's shared weights carry what the "
        "supervised steps taught to the unsupervised one; the DNN's layer 2 has its own weights, and its output "
        f"there stays at the prior mean 0 (error 1). Every test prediction at every step: theory and sampled "
        f"networks differ by at most {r['max_abs_difference']:.3f} (RNN) and {d['max_abs_difference']:.3f} (DNN). "
        f"Computed in {sq['seconds']:.0f} s."
    )
    return {TRANSITION_PNG: text1, SEQUENTIAL_PNG: text2}


# The sample plans (keyword arguments of transition_study and sequential_study). Fast (the demo's default):
# QMC points 2**14 for the theory (2**13 moved the leading eigenvalue at s = 0.6 from 1.037 to 0.992 and s*
# from 0.555 to 0.612: one scrambling's error there is ~5 %; the spread over two scramblings is shown as the
# theory's error, and s* carries its standard error), the
# branch at 4 signals bracketing s* (0.5, 0.8), sampled RNNs at widths 64 and 128 below and above the
# transition and the DNN at 128. Full (``netfield demo --full``): 2**15 points, 5 signals, widths to 256.
FAST_TRANSITION = {"signals": (0.2, 0.5, 0.8, 1.0), "points": 2**14,
                   "sample_plan": (("rnn", 0.2, 64), ("rnn", 0.2, 128), ("rnn", 1.0, 64), ("rnn", 1.0, 128),
                                   ("dnn", 1.0, 128))}
FULL_TRANSITION = {"signals": (0.2, 0.4, 0.6, 0.8, 1.0), "points": 2**15,
                   "sample_plan": (("rnn", 0.2, 64), ("rnn", 0.2, 256), ("rnn", 1.0, 64), ("rnn", 1.0, 128),
                                   ("rnn", 1.0, 256), ("dnn", 1.0, 128))}
FAST_SEQUENTIAL = {"width": 128, "points": 2**13}
FULL_SEQUENTIAL = {"width": 128, "points": 2**14}


def _call(name, kw) -> str:
    args = ", ".join(f"{k}={tuple(v) if isinstance(v, list) else v!r}" for k, v in kw.items())
    return f"netfield.feature.study.{name}({args})"


def _plan_text(tr_kw, sq_kw, sampler) -> str:
    plan = ", ".join(f"{a.upper()} s = {s:g} n = {w}" for a, s, w in tr_kw["sample_plan"])
    return (f"theory: broken branch at signals {', '.join(f'{s:g}' for s in tr_kw['signals'])} with "
            f"{tr_kw['points']} quasi-Monte-Carlo points x 2 scramblings (their spread is the theory's error); "
            f"HMC posterior samples: {plan}, each {sampler['chains']} chains x {sampler['samples']} samples "
            f"(thin {sampler['thin']}, burn-in {sampler['burn_in']}); sequential task at n = {sq_kw['width']} "
            f"({sq_kw['points']} points)")


def demo_section(out_dir, *, full: bool = False) -> dict:
    """Run both studies (fast plan, or ``full``), write the figures, return {figures, paragraphs, numbers,
    plan, reproduce}."""
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise ValueError(f"out_dir must be an existing folder, got {out_dir!r}")
    start = time.perf_counter()
    tr_kw, sq_kw = (FULL_TRANSITION, FULL_SEQUENTIAL) if full else (FAST_TRANSITION, FAST_SEQUENTIAL)
    tr = transition_study(**tr_kw)
    sq = sequential_study(**sq_kw)
    plot_transition(tr, os.path.join(out_dir, TRANSITION_PNG))
    plot_sequential(sq, os.path.join(out_dir, SEQUENTIAL_PNG))
    plt.close("all")
    numbers = {"transition": tr, "sequential": sq, "seconds": time.perf_counter() - start}
    reproduce = (_call("transition_study", FULL_TRANSITION) + "; " + _call("sequential_study", FULL_SEQUENTIAL))
    return {"figures": [TRANSITION_PNG, SEQUENTIAL_PNG], "paragraphs": _paragraphs(tr, sq), "numbers": numbers,
            "plan": _plan_text(tr_kw, sq_kw, tr["sampler"]), "reproduce": reproduce}


__all__ = ["SEQUENTIAL_PNG", "TRANSITION_PNG", "demo_section", "plot_sequential", "plot_transition"]
