"""Figures: the phase diagram (maps of lambda_max and xi_c with the critical line) and the
finite-width study (measured Lyapunov exponents and correlation decay vs width, DNN vs RNN)."""

from __future__ import annotations

import numpy as np

from .finite_width import WidthStudy
from .phase_diagram import PhaseDiagram


def _figure(**kwargs):
    """A matplotlib Figure without pyplot (no backend, no global state: safe on headless machines)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _line(ax, line, label=True):
    if len(line) == 0:
        return
    w, b, ok = line.weight_var, line.bias_var, line.q_stable
    ax.plot(w, b, color="k", lw=2.5, label="critical line $\\chi_1 = 1$ (continuation)" if label else None)
    if (~ok).any():
        ax.plot(w[~ok], b[~ok], "x", color="k", ms=4, label="q* unstable" if label else None)


def plot_phase_diagram(pd: PhaseDiagram, path=None, *, xi_max: float = 100.0, marks=()):
    """Two panels over (weight_var, bias_var): lambda_max = (1/2) ln chi_1 and xi_c, with the critical
    line traced by continuation. ``marks``: (weight_var, bias_var, label) points to annotate.

    Returns the matplotlib Figure (saved to ``path`` if given).
    """
    from matplotlib.colors import LogNorm, TwoSlopeNorm

    fig = _figure(figsize=(11.5, 4.6), layout="constrained")
    axes = fig.subplots(1, 2)
    W, B = np.meshgrid(pd.weight_var, pd.bias_var)
    unbounded = pd.phase == 3

    lam = np.where(np.isfinite(pd.lyapunov), pd.lyapunov, np.nan)
    lam = np.ma.masked_invalid(lam)
    vals = lam.filled(np.nan)
    vmin = min(float(np.nanmin(vals)), -1e-6) if lam.count() else -1.0
    vmax = max(float(np.nanmax(vals)), 1e-6) if lam.count() else 1.0
    norm = TwoSlopeNorm(vcenter=0.0, vmin=vmin, vmax=vmax)
    m0 = axes[0].pcolormesh(W, B, lam, cmap="RdBu_r", norm=norm, shading="auto")
    finite = np.isfinite(pd.lyapunov) & ~unbounded
    grid_contour = finite.any() and pd.lyapunov[finite].min() < 0 < pd.lyapunov[finite].max()
    fig.colorbar(m0, ax=axes[0], label="$\\lambda_{max} = \\frac{1}{2}\\ln\\chi_1$ per layer")
    axes[0].set_title(f"{pd.activation}: Lyapunov exponent (blue ordered, red chaotic)")

    xi = np.where(np.isfinite(pd.xi_c), np.clip(pd.xi_c, 1e-2, xi_max), xi_max)
    xi = np.ma.masked_where(unbounded, xi)
    lo = max(1e-2, float(np.nanmin(xi.filled(np.nan)))) if xi.count() else 1e-2
    m1 = axes[1].pcolormesh(W, B, xi, cmap="viridis", norm=LogNorm(vmin=lo, vmax=xi_max), shading="auto")
    fig.colorbar(m1, ax=axes[1], label=f"$\\xi_c = -1/\\ln\\chi_c$ (layers, clipped at {xi_max:g})")
    axes[1].set_title(f"{pd.activation}: correlation depth scale $\\xi_c$")

    for k, ax in enumerate(axes):
        if unbounded.any():
            ax.contourf(W, B, unbounded.astype(float), levels=[0.5, 1.5], colors="none", hatches=["//"])
            ax.contour(W, B, unbounded.astype(float), levels=[0.5], colors="0.3", linewidths=0.8)
            ax.plot([], [], color="0.3", lw=0.8, label="q* = inf (length diverges)")
        _line(ax, pd.line, label=(k == 0))
        if k == 0 and grid_contour:   # drawn over the traced line: the two must coincide
            ax.contour(W, B, np.where(finite, pd.lyapunov, np.nan), levels=[0.0], colors="w",
                       linestyles="dashed", linewidths=1.0)
            ax.plot([], [], linestyle="dashed", color="0.5", label="$\\lambda = 0$ contour of the grid (check)")
        for w, b, text in marks:
            ax.plot([w], [b], "o", color="gold", mec="k", ms=6)
            ax.annotate(text, (w, b), textcoords="offset points", xytext=(6, 6), fontsize=8)
        ax.set_xlabel("weight_var $\\sigma_w^2$")
        ax.set_ylabel("bias_var $\\sigma_b^2$" + (f" (+ drive {pd.drive:g})" if pd.drive else ""))
        ax.set_xlim(pd.weight_var[0], pd.weight_var[-1])
        ax.set_ylim(pd.bias_var[0], pd.bias_var[-1])
    axes[0].legend(loc="upper left", fontsize=8, framealpha=0.85)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig


def plot_width_study(studies, path=None, *, labels=None):
    """Four panels comparing sampled networks with the theory as the width grows:

    (a) measured Lyapunov exponent vs 1/n with a + b/n fits, the mean-field value and, for DNNs,
        the analytic 1/n line (C14); (b) the typical per-layer convergence rate of the correlation
        gap vs 1/n with chi_c; (c) the 1/n coefficient of E[ln(1 - c_t)] vs depth t (the T/n growth),
        with the DNN prediction 2 kappa (t - 1); (d) the same for the mean gap E[1 - c_t] (relative).

    Args:
        studies: list of :class:`WidthStudy` (e.g. a DNN and an RNN with the same hyper-parameters).
        labels: legend labels (default: architecture and input drive).
    """
    studies = list(studies)
    if not studies or not all(isinstance(s, WidthStudy) for s in studies):
        raise TypeError("studies must be a non-empty list of WidthStudy")
    if labels is None:
        labels = [f"{s.architecture.upper()}" + (f", drive {s.input_power:g}" if s.input_power else "")
                  for s in studies]
    s0 = studies[0]
    setting = ", ".join(f"{k} = {v:g}" for k, v in (("weight_var", s0.weight_var), ("bias_var", s0.bias_var))
                        if v is not None)
    title = ", ".join(part for part in (s0.activation, setting) if part)
    colors = ["C0", "C3", "C2", "C1", "C4"]
    fig = _figure(figsize=(11.5, 8.2), layout="constrained")
    axes = fig.subplots(2, 2)
    ax = axes[0, 0]
    for s, lab, col in zip(studies, labels, colors):
        x = 1.0 / s.widths
        ax.errorbar(x, s.lyapunov, yerr=s.lyapunov_sem, fmt="o", color=col, capsize=3, label=f"{lab}: sampled")
        xs = np.linspace(0, x.max() * 1.05, 50)
        f = s.lyapunov_fit
        ax.plot(xs, f.a + f.b * xs, "-", color=col, lw=1,
                label=f"{lab}: fit a + b/n, b = {f.b:.2f} $\\pm$ {f.b_err:.2f}")
        if s.lyapunov_theory is not None:
            ax.plot([0], [s.lyapunov_theory], "*", color=col, ms=12, mec="k")
        if s.lyapunov_kappa is not None:
            ax.plot(xs, s.lyapunov_theory + s.lyapunov_kappa * xs, "--", color=col, lw=1.5,
                    label=f"{lab}: theory (C14), $\\kappa$ = {s.lyapunov_kappa:.2f}")
    ax.set_xlabel("1 / width")
    ax.set_ylabel("$\\lambda$ per layer / step")
    ax.set_title("(a) Lyapunov exponent (tangent vectors); star: $\\frac{1}{2}\\ln\\chi_1$")
    ax.legend(fontsize=7)

    ax = axes[0, 1]
    for s, lab, col in zip(studies, labels, colors):
        if s.typical_rate is None:
            continue
        x = 1.0 / s.widths
        ax.errorbar(x, s.typical_rate, yerr=s.typical_rate_sem, fmt="o", color=col, capsize=3,
                    label=f"{lab}: typical, b = {s.typical_rate_fit.b:.2f} $\\pm$ {s.typical_rate_fit.b_err:.2f}")
        ax.errorbar(x, s.rate, yerr=s.rate_sem, fmt="s", mfc="none", color=col, capsize=3,
                    label=f"{lab}: mean gap, b = {s.rate_fit.b:.2f} $\\pm$ {s.rate_fit.b_err:.2f}")
        xs = np.linspace(0, x.max() * 1.05, 50)
        ax.plot(xs, s.typical_rate_fit.predict(1.0 / np.maximum(xs, 1e-12)), "-", color=col, lw=1)
        ax.plot(xs, s.rate_fit.predict(1.0 / np.maximum(xs, 1e-12)), ":", color=col, lw=1)
        if s.lyapunov_kappa is not None:
            ax.plot(xs, s.rate_theory * (1 + 2 * s.lyapunov_kappa * xs), "--", color=col, lw=1.5,
                    label=f"{lab}: $\\chi_c (1 + 2\\kappa/n)$")
        if s.rate_theory is not None:
            ax.plot([0], [s.rate_theory], "*", color="k", ms=12)
    ax.set_xlabel("1 / width")
    ax.set_ylabel("per-layer rate of $1 - c_t$")
    ax.set_title("(b) correlation convergence rate; star: $\\chi_c$ ($\\xi_c = -1/\\ln$ rate)")
    ax.legend(fontsize=7)

    ax = axes[1, 0]
    for s, lab, col in zip(studies, labels, colors):
        if s.typical_depth_b is None:
            continue
        t = np.arange(1, s.steps + 1)
        ax.plot(t, s.typical_depth_b, "-", color=col, label=f"{lab}: sampled (fit per depth)")
        ax.fill_between(t, s.typical_depth_b - s.typical_depth_b_sem, s.typical_depth_b + s.typical_depth_b_sem,
                        color=col, alpha=0.2)
        if s.lyapunov_kappa is not None:
            ax.plot(t, 2 * s.lyapunov_kappa * (t - 1), "--", color=col, lw=1.5,
                    label=f"{lab}: $2\\kappa (t - 1)$ from (C14)")
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_xlabel("depth / time step t")
    ax.set_ylabel("n [E ln(1 - c_t) - ln(1 - c_t)$_{MF}$]  (1/n coefficient)")
    ax.set_title("(c) typical correlation gap: the O(t/n) correction")
    ax.legend(fontsize=7)

    ax = axes[1, 1]
    for s, lab, col in zip(studies, labels, colors):
        if s.depth_b is None:
            continue
        t = np.arange(1, s.steps + 1)
        ax.plot(t, s.depth_b, "-", color=col, label=lab)
        ax.fill_between(t, s.depth_b - s.depth_b_sem, s.depth_b + s.depth_b_sem, color=col, alpha=0.2)
    ax.axhline(0, color="0.5", lw=0.5)
    ax.set_yscale("symlog", linthresh=10)
    ax.set_xlabel("depth / time step t")
    ax.set_ylabel("n [E(1 - c_t) / (1 - c_t)$_{MF}$ - 1]  (1/n coefficient)")
    ax.set_title("(d) mean correlation gap (the mean kernel)")
    ax.legend(fontsize=7)
    fig.suptitle(f"{title}: sampled networks ({s0.networks} per width)"
                 + (" vs mean field" if s0.lyapunov_theory is not None else ""), fontsize=11)
    if path is not None:
        fig.savefig(path, dpi=110)
    return fig
