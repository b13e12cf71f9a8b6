"""Figures and demo-report section of the training study (:mod:`netfield.experiments.training_study`):
the DNN-vs-RNN neural tangent kernels, and trained finite networks against the infinite-width dynamics."""

from __future__ import annotations

import os
import time

import numpy as np
from matplotlib.figure import Figure

from ..training import train
from .training_study import (
    compare_training,
    digits_task,
    dnn_vs_rnn,
    study_networks,
    study_steps,
    theory_curves,
)

NTK_PNG = "training_ntk.png"
DYNAMICS_PNG = "training_dynamics.png"
# Fast plan (``netfield demo``): 12 digit images (8 for training), one width, 32 networks per architecture, float32,
# 12 recorded steps (about 12 s on 2 cores with an empty compilation cache). Full plan: widths 256 and 1024, 64
# networks.
FAST = {"widths": (256,), "networks": 32}
FULL = {"widths": (256, 1024), "networks": 64}
IMAGES, TRAIN = 12, 8
KERNEL_STEPS = 4
NTK_CASES = ("input at step 1", "inputs at every step", "inputs at every step, two lengths")
SEED = 0
COLORS = ("tab:blue", "tab:orange", "tab:green")


def plot_ntk(data: dict, path=None) -> Figure:
    """Scatter of Theta_RNN against Theta_DNN (all entries), one panel per input case; the diagonal = identical."""
    cases = data["ntk"]
    fig = Figure(figsize=(4.0 * len(cases), 3.8), layout="constrained")
    axes = fig.subplots(1, len(cases), squeeze=False)[0]
    for ax, (name, case), color in zip(axes, cases.items(), COLORS):
        d, r = np.asarray(case["dnn"]).ravel(), np.asarray(case["rnn"]).ravel()
        lo, hi = min(d.min(), r.min()), max(d.max(), r.max())
        ax.plot([lo, hi], [lo, hi], "k--", lw=0.8)
        ax.plot(d, r, "o", ms=3, color=color, alpha=0.7)
        ax.set_title(f"{name}\n||dTheta|| / ||Theta|| = {case['rel_diff']:.2g}", fontsize=9)
        ax.set_xlabel(r"$\Theta_{DNN}(x, x')$")
        ax.grid(alpha=0.3, lw=0.5)
    axes[0].set_ylabel(r"$\Theta_{RNN}(x, x')$")
    fig.suptitle("Neural tangent kernels of a DNN and an RNN (T = 4, erf) on 12 digit images")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_dynamics(data: dict, path=None) -> Figure:
    """Per architecture: the test loss and the mean output on two test images against the gradient step,
    trained finite networks (mean ± standard error) against the infinite-width curve (± one std shaded)."""
    archs = data["architectures"]
    fig = Figure(figsize=(10, 3.6 * len(archs)), layout="constrained")
    axes = fig.subplots(len(archs), 2, squeeze=False)
    for (ax_loss, ax_out), arch in zip(axes, archs):
        t = np.asarray(arch["theory_steps"])
        ax_loss.plot(t, arch["theory_loss"], "k-", lw=1.5, label="infinite width (netfield.train)")
        ax_out.set_prop_cycle(color=COLORS)
        for j, point in enumerate(arch["points"]):
            m, s = np.asarray(arch["theory_mean"])[:, point], np.sqrt(np.asarray(arch["theory_var"])[:, point])
            line, = ax_out.plot(t, m, "-", lw=1.5, label=f"test image {point} (target {arch['y_test'][point]:+.0f})")
            ax_out.fill_between(t, m - s, m + s, color=line.get_color(), alpha=0.15, lw=0)
        for k, w in enumerate(arch["widths"]):
            steps = np.asarray(arch["steps"])
            ax_loss.errorbar(steps, w["test_loss"][0], yerr=w["test_loss"][1], fmt="os"[k % 2], ms=4, capsize=2,
                             label=f"width {w['width']}, {w['networks']} trained networks")
            for j, point in enumerate(arch["points"]):
                mean = np.asarray(w["mean"])[:, point]
                se = np.sqrt(np.asarray(w["var"])[:, point] / w["networks"])
                ax_out.errorbar(steps, mean, yerr=se, fmt="os"[k % 2], ms=4, capsize=2, color=COLORS[j % len(COLORS)],
                                label=f"width {w['width']}" if j == 0 else None)
        ax_loss.set_yscale("log")
        ax_loss.set_ylabel("test loss (1/2M) sum (f - y)^2")
        ax_loss.set_title(f"{arch['name']}: test loss, eta = {arch['learning_rate']:.3g} (eta_max / 2)", fontsize=10)
        ax_out.set_title(f"{arch['name']}: mean test output ± one std (band: theory)", fontsize=10)
        ax_out.set_ylabel("f(x*)")
        for ax in (ax_loss, ax_out):
            ax.set_xlabel("gradient-descent step")
            ax.legend(fontsize=7)
            ax.grid(alpha=0.3, lw=0.5)
    fig.suptitle("Trained finite networks vs the infinite-width (NTK) dynamics, discrete gradient descent")
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def training_figures_data(*, widths=(256,), networks: int = 32, seed: int = SEED, points=(0, 1)) -> dict:
    """The numbers of both figures: NTK cases, and per architecture the theory at every step and the trained
    ensembles at 12 recorded steps."""
    task = digits_task(IMAGES, TRAIN)
    compared = dnn_vs_rnn(task, steps=KERNEL_STEPS, keep_kernels=True)
    ntk = {r["case"]: {"dnn": r.pop("ntk_dnn"), "rnn": r.pop("ntk_rnn"), "rel_diff": r["ntk_rel_diff"]}
           for r in compared if r["case"] in NTK_CASES}
    archs = []
    for name, (net, shape) in study_networks().items():
        xtr, xte = shape(task.x_train), shape(task.x_test)
        last = study_steps(net, xtr, task.y_train, xte)[-1]
        steps = sorted({int(s) for s in np.unique(np.round(np.geomspace(1, last, 11)))} | {0})
        c = compare_training(net, xtr, task.y_train, xte, task.y_test, widths=widths, networks=networks,
                             steps=steps, seed=seed, dtype="float32", name=name)
        grid = np.arange(last + 1)
        pred = train(net, xtr, task.y_train, xte, times=grid, learning_rate=c.learning_rate, dynamics="discrete")
        mean, var, loss, error = theory_curves(pred, task.y_test)
        d = c.to_dict()
        final = [w["per_step"][-1] for w in d["widths"]]
        archs.append({"name": name, "steps": d["steps"], "learning_rate": d["learning_rate"],
                      "max_learning_rate": d["max_learning_rate"], "y_test": d["y_test"], "points": list(points),
                      "theory_steps": grid.tolist(), "theory_mean": mean.tolist(), "theory_var": var.tolist(),
                      "theory_loss": loss.tolist(), "theory_error": error.tolist(),
                      "widths": d["widths"], "final": final, "rows": d["rows"]})
    return {"ntk": ntk, "dnn_vs_rnn": compared, "architectures": archs, "seed": seed}


def _paragraphs(data: dict) -> dict:
    ntk = data["ntk"]
    same = [name for name, c in ntk.items() if c["rel_diff"] < 1e-12]
    diff = {name: c["rel_diff"] for name, c in ntk.items() if c["rel_diff"] >= 1e-12}
    trained = next(r for r in data["dnn_vs_rnn"] if r["case"] == "inputs at every step, two lengths")
    ntk_text = (
        "Neural tangent kernel Theta(x, x') of a DNN (fresh weights in each of its 4 layers) against that of an RNN "
        "(one W, U, b shared by its 4 steps), erf, weight_var 1.5, bias_var 0.1, on 12 digit images (all entries "
        "of the 12 x 12 matrix; netfield.kernel(kind='ntk')). With " + " and with ".join(same) + " and one readout "
        "at the last step the two kernels are identical (relative difference 0 to machine precision): the RNN's "
        "extra tangent terms pair backward signals at different times, which are uncorrelated at infinite width, "
        "and its forward cross-time covariances never meet at a single readout time. So a DNN and an RNN trained "
        "by gradient descent at infinite width make identical predictions at every time. When patterns are read out "
        "at different steps (here images cut to 3 or 4 blocks of rows, each read out at its own last step) the "
        "cross-time covariances enter and the kernels differ: relative Frobenius difference "
        + ", ".join(f"{v:.2f}" for v in diff.values())
        + f"; trained for {trained['train_steps']} steps at a common learning rate, the test means differ by "
        f"{trained['mean_rel_diff']:.2f} (relative), and the expected test loss / error on 4 held-out images is "
        f"{trained['DNN_test_loss']:.3f} / {trained['DNN_test_error']:.3f} (DNN) vs {trained['RNN_test_loss']:.3f} / "
        f"{trained['RNN_test_error']:.3f} (RNN). Computed in {data['seconds']:.0f} s together with the next figure."
    )
    parts = []
    for a in data["architectures"]:
        w = a["widths"][-1]
        parts.append(
            f"{a['name']} (width {w['width']}, {w['networks']} networks, eta = {a['learning_rate']:.3g} = eta_max / 2, "
            f"{a['steps'][-1]} steps): at the last step the test loss is {w['test_loss'][0][-1]:.3f} ± "
            f"{w['test_loss'][1][-1]:.3f} against {a['theory_loss'][-1]:.3f} at infinite width, the test error "
            f"{w['test_error'][0][-1]:.3f} ± {w['test_error'][1][-1]:.3f} against {a['theory_error'][-1]:.3f}, and "
            f"the largest deviation of the ensemble mean / variance from the theory over the 4 test images and all "
            f"recorded steps is {max(p['max_z_mean'] for p in w['per_step']):.1f} / "
            f"{max(p['max_z_var'] for p in w['per_step']):.1f} standard errors")
    dyn_text = (
        "Finite networks trained by full-batch gradient descent (netfield.finite.train_ensemble, NTK "
        "parameterization, float32) against the infinite-width linearised dynamics (netfield.train(..., "
        "dynamics='discrete'), docs/training.md T5-T6) at the same learning rate. Task: 8 digit images for training, "
        "4 for testing, targets +1 for an even digit and -1 for an odd one. DNN: depth 2, relu, weight_var 2, "
        "bias_var 0.1, on the 64 pixels; RNN: relu, weight_var 2, bias_var 0.1, reading each image as 4 blocks of 2 "
        "pixel rows (input at every step). Left: test loss (markers: mean ± standard error over networks; line: the "
        "theory's expected loss). Right: mean output on two test images (markers: ensemble mean ± standard error; "
        "line and band: theory mean ± one standard deviation over initialisations). "
        + "; ".join(parts) + ". tests/training/test_trained_ensembles.py checks the agreement within 4 standard "
        "errors at widths to 256 with 128 networks, and that the discrepancy shrinks with the width."
    )
    return {NTK_PNG: ntk_text, DYNAMICS_PNG: dyn_text}


def demo_section(out_dir, *, full: bool = False) -> dict:
    """Run the training study (fast: one width 256, 32 networks; ``full``: widths 256 and 1024, 64 networks),
    write both figures, return {figures, paragraphs, numbers, plan, reproduce}."""
    out_dir = os.fspath(out_dir)
    if not os.path.isdir(out_dir):
        raise ValueError(f"out_dir must be an existing folder, got {out_dir!r}")
    start = time.perf_counter()
    plan_ = FULL if full else FAST
    data = training_figures_data(**plan_)
    data["seconds"] = time.perf_counter() - start
    plot_ntk(data, os.path.join(out_dir, NTK_PNG))
    plot_dynamics(data, os.path.join(out_dir, DYNAMICS_PNG))
    plan = (f"DNN and RNN, {IMAGES} digit images ({TRAIN} for training); widths {', '.join(map(str, plan_['widths']))} "
            f"with {plan_['networks']} trained networks each, 12 recorded steps; NTKs of 3 input cases")
    reproduce = ("netfield.experiments.training_study.training_study(count=32, train=20, widths=(64, 256, 1024), "
                 "networks=64, seed=0)")
    return {"figures": [NTK_PNG, DYNAMICS_PNG], "paragraphs": _paragraphs(data), "numbers": data, "plan": plan,
            "reproduce": reproduce}


__all__ = ["DYNAMICS_PNG", "FAST", "FULL", "NTK_PNG", "demo_section", "plot_dynamics", "plot_ntk",
           "training_figures_data"]
