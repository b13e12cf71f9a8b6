"""The demo-report section for Bayesian inference with network kernels (digits study).

:func:`demo_section` runs :func:`netfield.gp.studies.digits_study` (about 30-60 s on 2 cores), writes
two PNGs and returns their captions and the measured numbers. Text is generated from the numbers.
"""

from __future__ import annotations

import os

import numpy as np
from matplotlib.figure import Figure
from matplotlib.ticker import NullFormatter

from .studies import DigitsStudy, digits_study

SWEEPS_PNG = "gp_digits_sweeps.png"
COMPARISON_PNG = "gp_digits_dnn_vs_rnn.png"


def _relative_evidence(ev):
    return np.asarray(ev) - np.max(ev)


def _sweeps_figure(s: DigitsStudy, path: str):
    fig = Figure(figsize=(11, 4.2), layout="constrained")
    ax_w, ax_d = fig.subplots(1, 2)

    # accuracy and evidence vs weight_var at depth sweep_depth
    w = s.weight_vars
    ax_w.axvspan(w.min() * 0.9, s.critical_weight_var, color="tab:blue", alpha=0.07, lw=0)
    ax_w.axvspan(s.critical_weight_var, w.max() * 1.1, color="tab:red", alpha=0.07, lw=0)
    ax_w.errorbar(w, s.accuracy_vs_weight_var, yerr=[accuracy_se(a, s.n_test) for a in s.accuracy_vs_weight_var],
                  fmt="o-", color="k", capsize=2, label="test accuracy (DNN = RNN), ± binomial s.e.")
    ax_w.axvline(s.critical_weight_var, color="tab:purple", ls="--", lw=1.2,
                 label=f"edge of chaos $\\chi_1 = 1$ ($\\sigma_w^2$ = {s.critical_weight_var:.3f})")
    ax_w.plot([s.evidence_optimal_weight_var], [s.evidence_optimal_weight_var_accuracy], "*", ms=16, color="gold",
              mec="k", label=f"evidence optimum ($\\sigma_w^2$ = {s.evidence_optimal_weight_var:.3f})", zorder=5)
    ax_w.set_xscale("log")
    ax_w.set_xlim(w.min() * 0.9, w.max() * 1.1)
    ticks = [t for t in (0.125, 0.25, 0.5, 1, 2, 4, 8, 16) if w.min() * 0.9 <= t <= w.max() * 1.1]
    ax_w.set_xticks(ticks, [f"{t:g}" for t in ticks])
    ax_w.xaxis.set_minor_formatter(NullFormatter())
    ax_w.set_ylim(0, 1.02)
    ax_w.set_xlabel("weight_var $\\sigma_w^2$")
    ax_w.set_ylabel("test accuracy")
    ax_w.set_title(f"depth {s.sweep_depth}: ordered | chaotic (bias_var = {s.bias_var:g})")
    ev = ax_w.twinx()
    ev.plot(w, _relative_evidence(s.log_evidence_vs_weight_var), "s:", color="tab:green", ms=4)
    ev.set_yscale("symlog", linthresh=10.0)
    ev.set_ylabel("log evidence - max  (symlog)", color="tab:green")
    ev.tick_params(axis="y", colors="tab:green")
    ax_w.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    ax_w.text(0.02, 0.93, "ordered", transform=ax_w.transAxes, color="tab:blue", fontsize=9)
    ax_w.text(0.86, 0.93, "chaotic", transform=ax_w.transAxes, color="tab:red", fontsize=9)

    # accuracy vs depth
    styles = {"ordered": ("s--", "tab:blue", 7), "evidence-optimal": ("o-", "k", 6), "chaotic": ("^:", "tab:red", 6)}
    for label, (wv, acc, _) in s.depth_curves.items():
        fmt, color, ms = styles[label]
        ax_d.errorbar(s.depths, acc, yerr=[accuracy_se(a, s.n_test) for a in acc], fmt=fmt, color=color, ms=ms,
                      capsize=2, label=f"DNN, {label} ($\\sigma_w^2$ = {wv:.2f})")
    ax_d.plot(s.depths, s.accuracy_vs_depth_rnn, "x", ms=10, mew=2, color="gold",
              label="RNN, evidence-optimal $\\sigma_w^2$ (same)")
    acc_best = s.depth_curves["evidence-optimal"][1][list(s.depths).index(s.evidence_optimal_depth)]
    ax_d.plot([s.evidence_optimal_depth], [acc_best], "*", ms=16, color="gold", mec="k", zorder=5,
              label=f"evidence-optimal depth ({s.evidence_optimal_depth})")
    ax_d.set_xscale("log", base=2)
    ax_d.set_xlabel("depth L (DNN layers = RNN time steps)")
    ax_d.set_ylabel("test accuracy")
    ax_d.set_ylim(0, 1.02)
    ax_d.set_title("accuracy vs depth, readout at the last layer / time")
    ax_d.set_xticks([int(d) for d in s.depths], [str(int(d)) for d in s.depths])
    ax_d.xaxis.set_minor_formatter(NullFormatter())
    ax_d.legend(loc="upper center", bbox_to_anchor=(0.5, -0.2), ncol=2, fontsize=8)
    fig.suptitle(f"GP classification of digits with NNGP kernels ({s.activation}, {s.n_train} train / "
                 f"{s.n_test} test images)")
    fig.savefig(path, dpi=110)


CATEGORY_NAMES = {  # comparison name -> what the bar shows (input form; which outputs are read out)
    "static-last": "image,\nlast step",
    "static-mean": "image,\nmean of steps",
    "rows-last": "rows,\nlast step",
    "rows-mean": "rows,\nmean of steps",
}
CATEGORY_NOTE = ("image: all 64 pixels enter at step 1; rows: row t of the image enters at step t;\n"
                 "last step: read out once; mean of steps: outputs of all steps averaged")


def accuracy_se(accuracy: float, n_test: int) -> float:
    """Binomial standard error of a test accuracy measured on ``n_test`` images."""
    return float(np.sqrt(max(accuracy * (1 - accuracy), 0.0) / n_test))


def _comparison_figure(s: DigitsStudy, path: str):
    fig = Figure(figsize=(12, 4.8), layout="constrained")
    ax_b, ax_s = fig.subplots(1, 2, gridspec_kw={"width_ratios": [1.6, 1]})

    labels, dnn_acc, rnn_acc, notes = [], [], [], []
    for c in s.comparisons:
        labels.append(CATEGORY_NAMES.get(c.name, c.name))
        dnn_acc.append(c.accuracy_dnn)
        rnn_acc.append(c.accuracy_rnn)
        notes.append("identical" if c.disagreement == 0 else f"{100 * c.disagreement:.1f}% differ")
    labels.append("softmax Laplace,\nimage, last step")
    dnn_acc.append(s.laplace_accuracy_dnn)
    rnn_acc.append(s.laplace_accuracy_rnn)
    notes.append("identical" if s.laplace_max_probability_difference == 0 else
                 f"max dp {s.laplace_max_probability_difference:.1e}")
    x = np.arange(len(labels))
    se = lambda a: [accuracy_se(v, s.n_test) for v in a]
    ax_b.bar(x - 0.2, dnn_acc, 0.4, yerr=se(dnn_acc), capsize=2, label="DNN kernel", color="tab:blue")
    ax_b.bar(x + 0.2, rnn_acc, 0.4, yerr=se(rnn_acc), capsize=2, label="RNN kernel", color="tab:orange")
    ax_b.bar([len(labels)], [s.rbf_accuracy], 0.4, yerr=se([s.rbf_accuracy]), capsize=2, color="tab:gray",
             label="scikit-learn GP, RBF kernel")
    for xi, note, dv, rv in zip(x, notes, dnn_acc, rnn_acc):
        ax_b.text(xi, 0.04, f"{100 * dv:.1f} / {100 * rv:.1f}%\n{note}", ha="center", fontsize=7, color="w",
                  fontweight="bold")
    ax_b.text(len(labels), 0.04, f"{100 * s.rbf_accuracy:.1f}%", ha="center", fontsize=7, color="w",
              fontweight="bold")
    ax_b.axhline(0.1, color="k", ls=":", lw=1, label="chance (10 classes)")
    ax_b.set_xticks(list(x) + [len(labels)], labels + ["RBF kernel\n(no network)"], fontsize=8)
    ax_b.set_xlabel(CATEGORY_NOTE, fontsize=7)
    ax_b.set_ylim(0, 1.12)
    ax_b.set_ylabel(f"test accuracy ({s.n_test} images, ± binomial s.e.)")
    ax_b.set_title("DNN vs RNN: one readout time (identical) vs several (differ)")
    ax_b.legend(loc="upper center", ncol=4, fontsize=7)

    same = next(c for c in s.comparisons if c.name == "static-last")
    diff = next(c for c in s.comparisons if c.name == "rows-mean")
    ax_s.plot(same.true_class_score_dnn, same.true_class_score_rnn, "o", ms=3, alpha=0.6,
              label="image at step 1, readout at the last step")
    ax_s.plot(diff.true_class_score_dnn, diff.true_class_score_rnn, "^", ms=3, alpha=0.6, color="tab:red",
              label="rows as a sequence, outputs of all steps averaged")
    lim = [min(ax_s.get_xlim()[0], ax_s.get_ylim()[0]), max(ax_s.get_xlim()[1], ax_s.get_ylim()[1])]
    ax_s.plot(lim, lim, "k-", lw=0.8)
    ax_s.set_xlabel("DNN posterior mean of the true class")
    ax_s.set_ylabel("RNN posterior mean of the true class")
    ax_s.set_title("per test image")
    ax_s.legend(loc="upper left", fontsize=8)
    fig.suptitle(f"GP classification of digits ({s.n_train} train / {s.n_test} test images): DNN vs RNN kernels")
    fig.savefig(path, dpi=110)


def _numbers(s: DigitsStudy) -> dict:
    out = {
        "n_train": s.n_train, "n_test": s.n_test, "seed": s.seed, "activation": s.activation, "bias_var": s.bias_var,
        "base_depth": s.depth, "evidence_weight_var": s.weight_var, "evidence_readout_var": s.readout_var,
        "evidence_noise": s.noise, "evidence_at_bound": list(s.evidence_at_bound), "log_evidence": s.log_evidence, "initial_log_evidence": s.initial_log_evidence,
        "accuracy_dnn": s.accuracy_dnn, "accuracy_rnn": s.accuracy_rnn,
        "max_prediction_difference": s.max_prediction_difference,
        "generic_rnn_max_kernel_difference": s.generic_rnn_max_kernel_difference,
        "laplace_readout_var": s.laplace_readout_var, "laplace_accuracy_dnn": s.laplace_accuracy_dnn,
        "laplace_accuracy_rnn": s.laplace_accuracy_rnn,
        "sweep_depth": s.sweep_depth, "evidence_optimal_weight_var": s.evidence_optimal_weight_var,
        "critical_weight_var": s.critical_weight_var,
        "evidence_optimal_weight_var_accuracy": s.evidence_optimal_weight_var_accuracy,
        "best_accuracy_vs_weight_var": float(np.max(s.accuracy_vs_weight_var)),
        "evidence_optimal_depth": s.evidence_optimal_depth,
        "rbf_accuracy": s.rbf_accuracy, "rbf_log_evidence": s.rbf_log_evidence, "rbf_kernel": s.rbf_kernel,
        "seconds": s.seconds, "cpu_seconds": s.cpu_seconds,
    }
    for c in s.comparisons:
        out[f"{c.name}_accuracy_dnn"] = c.accuracy_dnn
        out[f"{c.name}_accuracy_rnn"] = c.accuracy_rnn
        out[f"{c.name}_disagreement"] = c.disagreement
        out[f"{c.name}_max_kernel_difference"] = c.max_kernel_difference
    for label, (wv, acc, ev) in s.depth_curves.items():
        out[f"depth_curve_{label}_weight_var"] = float(wv)
        out[f"depth_curve_{label}_accuracy"] = [float(a) for a in acc]
    out["depths"] = [int(d) for d in s.depths]
    return {k: (float(v) if isinstance(v, (np.floating, np.integer)) and not isinstance(v, bool) else v)
            for k, v in out.items()}


def _paragraphs(s: DigitsStudy) -> dict:
    by = {c.name: c for c in s.comparisons}
    sl, sm, rl, rm = by["static-last"], by["static-mean"], by["rows-last"], by["rows-mean"]
    w_ord, acc_ord, _ = s.depth_curves["ordered"]
    w_cha, acc_cha, _ = s.depth_curves["chaotic"]
    pm = lambda a: f"{a:.1%} ± {accuracy_se(a, s.n_test):.1%}"
    sweeps = (
        f"The evidence finds the edge of chaos: at depth {s.sweep_depth} it is maximal at weight_var = "
        f"{s.evidence_optimal_weight_var:.3f}, next to chi_1 = 1 at {s.critical_weight_var:.3f} [2, 3], where the "
        f"test accuracy is {pm(s.evidence_optimal_weight_var_accuracy)} (± binomial standard error over "
        f"{s.n_test} test images), and accuracy falls towards chance deep in either phase. "
        f"GP regression on centred one-hot labels with the NNGP kernel of an {s.activation} network "
        f"({s.n_train} training and {s.n_test} test digits, bias_var = {s.bias_var:g}). Left: at depth "
        f"{s.sweep_depth}, test accuracy against weight_var. The evidence (log marginal likelihood, green) "
        f"is maximal at weight_var = {s.evidence_optimal_weight_var:.3f}, next to the edge of chaos "
        f"chi_1 = 1 at weight_var = {s.critical_weight_var:.3f}; the accuracy there is "
        f"{pm(s.evidence_optimal_weight_var_accuracy)} (best on the grid {pm(np.max(s.accuracy_vs_weight_var))}). "
        f"Deep in the ordered phase the kernel forgets its inputs (all correlations flow to 1) and deep in the "
        f"chaotic phase it decorrelates them; accuracy falls towards chance (10% for ten classes) on "
        f"both sides. Right: accuracy against depth at weight_var = {w_ord:.2g} (ordered: "
        f"{pm(acc_ord[-1])} at depth {s.depths[-1]}), at the evidence optimum, and at {w_cha:.2g} (chaotic: "
        f"{pm(acc_cha[-1])}); the evidence prefers depth {s.evidence_optimal_depth}. RNN (crosses) and DNN "
        f"give the same accuracy at every depth, as the theory says for a readout at a single time."
    )
    bound = (" at its lower bound: the evidence prefers interpolating the labels" if "noise" in s.evidence_at_bound
             else "")
    comparison = (
        f"With a readout at a single time DNN and RNN kernels give identical predictions "
        f"({pm(sl.accuracy_dnn)} both); averaging the outputs of all steps brings in the RNN's cross-time "
        f"kernels and {rm.disagreement:.1%} of the test predictions change (row sequences) [1, 4]. "
        f"Bar labels: how each image enters (at step 1, or its 8 rows one per step) and which outputs are read "
        f"out; the white numbers are DNN / RNN accuracies; error bars: binomial standard errors. "
        f"Readout at a single layer / time: DNN and RNN kernels are identical (the RNN kernel recomputed by the "
        f"generic master-theorem interpreter differs from the DNN's by {s.generic_rnn_max_kernel_difference:.1e} "
        f"relative), so are the predictions (max difference {sl.max_prediction_difference:.1e}) and the test "
        f"accuracy: {sl.accuracy_dnn:.1%} vs {sl.accuracy_rnn:.1%} for one-hot regression (hyper-parameters by "
        f"evidence maximisation at depth {s.depth}: weight_var = {s.weight_var:.3f}, readout_var = "
        f"{s.readout_var:.3f}, noise = {s.noise:.1e}{bound}), and {s.laplace_accuracy_dnn:.1%} vs "
        f"{s.laplace_accuracy_rnn:.1%} for the softmax Laplace classifier. Feeding each image as a sequence of "
        f"its 8 rows and reading out at step 8 keeps them identical ({rl.accuracy_dnn:.1%} vs "
        f"{rl.accuracy_rnn:.1%}): inputs enter equal-time kernels the same way. Averaging the outputs of all "
        f"steps brings in the RNN's cross-time kernels C(t, s): the kernels then differ by up to "
        f"{sm.max_kernel_difference:.0%} (static image) and {rm.max_kernel_difference:.0%} (row sequence) of "
        f"the larger kernel's largest entry, test predictions differ for {sm.disagreement:.1%} and {rm.disagreement:.1%} of "
        f"the images (accuracy {sm.accuracy_dnn:.1%} vs {sm.accuracy_rnn:.1%} and {rm.accuracy_dnn:.1%} vs "
        f"{rm.accuracy_rnn:.1%}); right: the true-class scores per image leave the diagonal. scikit-learn's GP "
        f"with an evidence-optimised RBF kernel on the same split and targets reaches {pm(s.rbf_accuracy)} "
        f"(log evidence {s.rbf_log_evidence:.0f} vs {s.log_evidence:.0f} for the network kernel)."
    )
    return {SWEEPS_PNG: sweeps, COMPARISON_PNG: comparison}


# The study's plans: fast (the demo's default) and full (``netfield demo --full``); keyword arguments of
# netfield.gp.studies.digits_study.
FAST_PLAN = {"n_train": 300, "n_test": 400}
FULL_PLAN = {"n_train": 300, "n_test": 400}


def demo_section(out_dir, *, full: bool = False) -> dict:
    """Run the digits study, write the figures into ``out_dir`` and return them with their text.

    Returns:
        {"figures": [filenames], "paragraphs": {filename: text}, "numbers": {...}, "plan": text,
        "reproduce": API call} (JSON-serialisable).
    """
    out_dir = os.fspath(out_dir)
    os.makedirs(out_dir, exist_ok=True)
    plan = FULL_PLAN if full else FAST_PLAN
    study = digits_study(**plan)
    _sweeps_figure(study, os.path.join(out_dir, SWEEPS_PNG))
    _comparison_figure(study, os.path.join(out_dir, COMPARISON_PNG))
    numbers = _numbers(study)
    text = (f"{study.n_train} training and {study.n_test} test digits (one random split, seed {study.seed}); "
            f"weight_var sweep of {len(study.weight_vars)} values at depth {study.sweep_depth}, depths "
            f"{', '.join(str(int(d)) for d in study.depths)}; no sampling (exact GP posteriors): accuracies carry the "
            f"binomial standard error of {study.n_test} test images")
    reproduce = "netfield.gp.studies.digits_study(" + ", ".join(f"{k}={v!r}" for k, v in FULL_PLAN.items()) + ")"
    return {"figures": [SWEEPS_PNG, COMPARISON_PNG], "paragraphs": _paragraphs(study), "numbers": numbers,
            "plan": text, "reproduce": reproduce}


__all__ = ["COMPARISON_PNG", "SWEEPS_PNG", "demo_section"]
