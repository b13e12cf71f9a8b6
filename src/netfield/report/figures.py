"""The demo's figures, each drawn only from its block of ``summary.json``.

Every function takes the JSON-ready dict that the report stores under ``summary["figures"][name]``
and returns a :class:`matplotlib.figure.Figure` (Agg canvas, no pyplot state). Drawing from the
stored numbers alone guarantees that the report's figures show exactly the numbers in
``summary.json`` (checked in ``tests/report/test_demo_report.py``).
"""

from __future__ import annotations

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.colors import TwoSlopeNorm
from matplotlib.figure import Figure
from matplotlib.ticker import NullLocator

COLORS = {"dnn": "tab:blue", "rnn": "tab:red"}
NAMES = {"dnn": "DNN", "rnn": "RNN"}
KERNEL_TITLES = {"readout": "readout kernel K", "preactivation": "pre-activation kernel C(T,T)"}


def _figure(width: float, height: float) -> Figure:
    fig = Figure(figsize=(width, height), dpi=110, layout="constrained")
    FigureCanvasAgg(fig)
    return fig


def _matrix(ax, fig, m, title, labels=None, cmap="viridis", vmin=None, vmax=None, diverging=False, ticks=None):
    m = np.asarray(m, float)
    norm = None
    if diverging:
        bound = max(float(np.max(np.abs(m))), 1e-300)
        norm = TwoSlopeNorm(vcenter=0.0, vmin=-bound, vmax=bound)
        cmap = "RdBu_r"
    im = ax.imshow(m, cmap=cmap, vmin=None if norm else vmin, vmax=None if norm else vmax, norm=norm,
                   interpolation="nearest")
    ax.set_title(title, fontsize=9)
    ticks = ticks if ticks is not None else labels
    if ticks is not None:
        ax.set_xticks(range(len(ticks)), [str(v) for v in ticks], fontsize=7)
        ax.set_yticks(range(len(ticks)), [str(v) for v in ticks], fontsize=7)
    fig.colorbar(im, ax=ax, shrink=0.8)
    return im


def difference_text(max_abs_difference: float) -> str:
    """The text that replaces the (empty) map of RNN - DNN mean-field kernels."""
    return (f"RNN - DNN mean-field kernel:\nmax |difference| = {max_abs_difference:.1e}\n\n"
            + ("identical (a map would be blank)" if max_abs_difference < 1e-12 else "see summary.json"))


def _difference_panel(ax, max_abs_difference: float) -> None:
    """The difference of the two mean-field kernels as a number instead of a blank map."""
    ax.text(0.5, 0.5, difference_text(max_abs_difference), ha="center", va="center", fontsize=11,
            transform=ax.transAxes)
    ax.set_axis_off()


def kernels_figure(data: dict) -> Figure:
    """Mean-field readout kernels of DNN and RNN (identical) and their finite-width fluctuations."""
    fig = _figure(11.5, 7.0)
    axes = fig.subplots(2, 3)
    labels = data["labels"]
    lo = min(np.min(data["mft_dnn"]), np.min(data["mft_rnn"]))
    hi = max(np.max(data["mft_dnn"]), np.max(data["mft_rnn"]))
    _matrix(axes[0, 0], fig, data["mft_dnn"], "DNN mean-field K (digit images)", labels, vmin=lo, vmax=hi)
    _matrix(axes[0, 1], fig, data["mft_rnn"], "RNN mean-field K", labels, vmin=lo, vmax=hi)
    _difference_panel(axes[0, 2], data["max_abs_difference"])
    s_hi = max(np.max(data["std_dnn"]), np.max(data["std_rnn"]))
    n, k = data["width"], data["networks"]
    _matrix(axes[1, 0], fig, data["std_dnn"], f"DNN: std of K over {k} networks, n={n}", labels,
            cmap="magma", vmin=0, vmax=s_hi)
    _matrix(axes[1, 1], fig, data["std_rnn"], f"RNN: std of K over {k} networks, n={n}", labels,
            cmap="magma", vmin=0, vmax=s_hi)
    _matrix(axes[1, 2], fig, data["std_ratio"], "std ratio RNN / DNN (>1: RNN fluctuates more)", labels,
            cmap="PuOr_r", vmin=0, vmax=2)
    for ax in (*axes[0, :2], *axes[1]):
        ax.set_xlabel("digit", fontsize=8)
        ax.set_ylabel("digit", fontsize=8)
    fig.suptitle(f"Readout kernels at step T={data['step']} (weight_var={data['weight_var']}, "
                 f"bias_var={data['bias_var']})", fontsize=11)
    return fig


def cross_time_figure(data: dict) -> Figure:
    """The RNN's two-time kernel C(t, s) (mean field and sampled) next to the DNN's (zero off-diagonal)."""
    fig = _figure(13.0, 3.9)
    axes = fig.subplots(1, 4)
    steps = data["steps"]
    lo = min(np.min(data["mft_rnn"]), np.min(data["empirical_rnn"]), np.min(data["empirical_dnn"]))
    hi = max(np.max(data["mft_rnn"]), np.max(data["empirical_rnn"]), np.max(data["empirical_dnn"]))
    n, k = data["width"], data["networks"]
    _matrix(axes[0], fig, data["mft_rnn"], "RNN mean field C(t,s)", ticks=steps, vmin=lo, vmax=hi)
    _matrix(axes[1], fig, data["empirical_rnn"], f"RNN sampled, n={n}, mean of {k}", ticks=steps, vmin=lo, vmax=hi)
    _matrix(axes[2], fig, data["empirical_dnn"], f"DNN sampled, n={n}, mean of {k}", ticks=steps, vmin=lo, vmax=hi)
    for ax in axes[:3]:
        ax.set_xlabel("step s")
        ax.set_ylabel("step t")
    mem = data["memory"]
    ax = axes[3]
    s = mem["s"]
    ax.plot(s, mem["mft_rnn"], "-", color=COLORS["rnn"], label="RNN mean field")
    ax.errorbar(s, mem["rnn_mean"], yerr=mem["rnn_sem"], fmt="o", color=COLORS["rnn"], ms=4, capsize=2,
                label=f"RNN sampled (n={n})")
    ax.plot(s, mem["mft_dnn"], "--", color=COLORS["dnn"], label="DNN mean field")
    ax.errorbar(s, mem["dnn_mean"], yerr=mem["dnn_sem"], fmt="s", color=COLORS["dnn"], ms=4, capsize=2,
                label=f"DNN sampled (n={n})")
    ax.set_xlabel("step s")
    ax.set_ylabel(f"C(T={steps[-1]}, s)")
    ax.set_title("memory of the last step", fontsize=9)
    ax.axhline(0, color="gray", lw=0.5)
    ax.legend(fontsize=7)
    fig.suptitle(f"Cross-time pre-activation kernel of digit '{data['label']}' (weight_var={data['weight_var']}, "
                 f"bias_var={data['bias_var']}): shared weights and bias correlate time steps", fontsize=10)
    return fig


def _curve_label(arch: str, curve: dict) -> str:
    fit = curve["fit"]
    return f"{NAMES[arch]}: exponent {fit['exponent']:.3f} ± {fit['exponent_se']:.3f}"


def convergence_figure(data: dict) -> Figure:
    """Distance to the mean field vs width (log-log) with fits, and sqrt(n) x distance with amplitudes."""
    fig = _figure(11.0, 8.0)
    axes = fig.subplots(2, 2)
    for col, panel in enumerate(data["panels"]):
        top, bottom = axes[0, col], axes[1, col]
        for arch in ("dnn", "rnn"):
            c = panel[arch]
            n = np.asarray(c["widths"], float)
            top.errorbar(c["widths"], c["mean"], yerr=c["sem"], fmt="o", color=COLORS[arch], capsize=3,
                         label=_curve_label(arch, c))
            grid = np.geomspace(n.min(), n.max(), 50)
            fit = c["fit"]
            top.plot(grid, fit["prefactor"] * grid ** fit["exponent"], "-", color=COLORS[arch], lw=1, alpha=0.8)
            bottom.errorbar(c["widths"], c["scaled_mean"], yerr=c["scaled_sem"], fmt="o", color=COLORS[arch],
                            capsize=3, label=f"{NAMES[arch]}: A = {c['amplitude']['prefactor']:.3f} ± "
                                               f"{c['amplitude']['prefactor_se']:.3f}")
            a, se = c["amplitude"]["prefactor"], c["amplitude"]["prefactor_se"]
            bottom.axhspan(a - se, a + se, color=COLORS[arch], alpha=0.15)
            bottom.axhline(a, color=COLORS[arch], lw=1)
        ref = panel["dnn"]
        n0, y0 = ref["widths"][0], ref["mean"][0]
        grid = np.geomspace(min(ref["widths"]), max(ref["widths"]), 50)
        top.plot(grid, y0 * (grid / n0) ** -0.5, ":", color="gray", label="slope -1/2")
        top.set_xscale("log")
        top.set_yscale("log")
        top.set_xlabel("width n")
        top.set_ylabel("mean of ||K_emp - K_mft||_F / ||K_mft||_F")
        top.set_title(f"{KERNEL_TITLES[panel['kernel']]}: RNN/DNN = {panel['ratio']:.2f} ± {panel['ratio_se']:.2f}",
                      fontsize=10)
        top.legend(fontsize=8)
        bottom.set_xscale("log")
        for ax in (top, bottom):
            ax.set_xticks(ref["widths"], [str(w) for w in ref["widths"]])
            ax.minorticks_off() if ax is bottom else ax.xaxis.set_minor_locator(NullLocator())
        bottom.set_xlabel("width n")
        bottom.set_ylabel("sqrt(n) x mean distance")
        bottom.set_title("amplitude A = lim sqrt(n) E[distance] (bands: fit ± 1 s.e.)", fontsize=10)
        bottom.set_ylim(bottom=0)
        bottom.legend(fontsize=8)
    fig.suptitle(f"Convergence to the mean field at step T={data['step']} (weight_var={data['weight_var']}, "
                 f"bias_var={data['bias_var']}; mean ± s.e. over {data['networks']} networks per point)", fontsize=11)
    return fig


def weight_var_figure(data: dict) -> Figure:
    """Amplitudes and the RNN/DNN ratio against the weight variance (ordered / critical / chaotic)."""
    fig = _figure(11.0, 4.4)
    axes = fig.subplots(1, 2)
    wv = data["weight_vars"]
    crit = data["critical_weight_var"]
    styles = {"readout": ("o", "-"), "preactivation": ("s", "--")}
    for kernel in ("readout", "preactivation"):
        d = data[kernel]
        marker, line = styles[kernel]
        for arch in ("dnn", "rnn"):
            axes[0].errorbar(wv, d[f"{arch}_amplitude"], yerr=d[f"{arch}_amplitude_se"], fmt=marker + line,
                             color=COLORS[arch], capsize=3, ms=4, label=f"{NAMES[arch]}, {kernel}")
        axes[1].errorbar(wv, d["ratio"], yerr=d["ratio_se"], fmt=marker + line, color="k" if kernel == "readout"
                         else "tab:purple", capsize=3, ms=4, label=f"{kernel} kernel")
    for ax in axes:
        if crit is not None:
            ax.axvline(crit, color="gray", ls=":", label=f"edge of chaos (chi_1 = 1), weight_var = {crit:.2f}")
        ax.set_xscale("log")
        ax.set_xticks(wv, [f"{w:g}\n({r})" for w, r in zip(wv, data["regimes"])], fontsize=7)
        ax.minorticks_off()
        ax.set_xlabel("weight_var (regime)")
    axes[0].set_ylabel("amplitude A = lim sqrt(n) E[distance]")
    axes[0].set_title(f"convergence amplitude at step T={data['step']}", fontsize=10)
    axes[0].legend(fontsize=7)
    axes[1].axhline(1.0, color="gray", lw=1)
    axes[1].set_ylabel("A_RNN / A_DNN")
    axes[1].set_title("how much slower the RNN converges (> 1: slower)", fontsize=10)
    axes[1].legend(fontsize=7)
    fig.suptitle(f"Dependence on the weight prior (bias_var={data['bias_var']})", fontsize=11)
    return fig


def depth_figure(data: dict) -> Figure:
    """Amplitudes against the depth / number of time steps t, and the RNN/DNN ratio for each weight_var."""
    fig = _figure(11.0, 4.4)
    axes = fig.subplots(1, 2)
    steps = data["steps"]
    amp = data["amplitude"]
    for arch in ("dnn", "rnn"):
        axes[0].errorbar(steps, amp[arch], yerr=amp[f"{arch}_se"], fmt="o-", color=COLORS[arch], capsize=3,
                         label=NAMES[arch])
    axes[0].set_xlabel("depth / time step t")
    axes[0].set_ylabel("amplitude A = lim sqrt(n) E[distance]")
    axes[0].set_title(f"readout kernel, weight_var={data['weight_var']}", fontsize=10)
    axes[0].set_ylim(bottom=0)
    axes[0].legend(fontsize=8)
    cmap = ["tab:green", "tab:orange", "tab:purple", "tab:brown", "tab:pink", "tab:olive"]
    for i, row in enumerate(data["ratio"]):
        offset = (i - (len(data["ratio"]) - 1) / 2) * 0.06
        axes[1].errorbar(np.asarray(steps) + offset, row["ratio"], yerr=row["ratio_se"], fmt="o-",
                         color=cmap[i % len(cmap)], capsize=2, ms=4,
                         label=f"weight_var={row['weight_var']:g} ({row['regime']})")
    axes[1].axhline(1.0, color="gray", lw=1)
    axes[1].set_xlabel("depth / time step t")
    axes[1].set_ylabel("A_RNN / A_DNN (readout kernel)")
    axes[1].set_title("RNN/DNN amplitude ratio grows with t", fontsize=10)
    axes[1].legend(fontsize=7)
    for ax in axes:
        ax.set_xticks(steps)
    fig.suptitle(f"Dependence on depth / number of time steps (bias_var={data['bias_var']})", fontsize=11)
    return fig


FIGURES = {
    "kernels": kernels_figure,
    "cross_time": cross_time_figure,
    "convergence": convergence_figure,
    "weight_var": weight_var_figure,
    "depth": depth_figure,
}


def save(fig: Figure, path) -> None:
    fig.savefig(path)
