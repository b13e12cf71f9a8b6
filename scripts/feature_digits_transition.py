"""Theory against sampled networks at research scale: 20 digit images x 5 steps (docs/feature.md section 9,
issue 23 item 3).

Runs :func:`netfield.feature.study.digits_transition_study` (RNN erf, weight_var 1.5, kappa 0.1; whole
8 x 8 images of 3 and 8 at step 1, target at step 5, 8 test images): the Markov-chain saddle point
(F8c) at every signal, HMC-sampled networks at widths 256 and 512 at four signals and at 1024 above the
transition; writes docs/results/feature_digits_transition.json after every point (a rerun
resumes from it), prints the markdown tables of docs/feature.md and draws
docs/figures/feature_digits_transition.png. About an hour on 2 cores.

Usage: python scripts/feature_digits_transition.py [--out PATH] [--figure PATH]
"""

import argparse
import os
import platform

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import netfield
from netfield.feature.study import digits_transition_study


def tables(data):
    """The theory's q^2 per signal (both solution sets) with the sampled q^2 per width; then every sampled
    point against the followed branch (and the lazy-start solution)."""
    widths = sorted({e["width"] for e in data["samples"]})
    rows = ["| signal | theory q^2 (lazy start) | theory q^2 (branch) | " + " | ".join(f"n = {w}: q^2" for w in widths)
            + " |", "|---" * (3 + len(widths)) + "|"]
    for key, t in sorted(data["theory"].items(), key=lambda kv: kv[1]["signal"]):
        b = data["branch"].get(key)
        cells = []
        for w in widths:
            e = next((e for e in data["samples"] if e["width"] == w and e["signal"] == t["signal"]), None)
            cells.append("" if e is None else f"{e['order_sq']:.4f} +- {e['order_sq_se']:.4f}")
        rows.append(f"| {t['signal']:g} | {t['order_sq']:.4f} +- {t['order_sq_se']:.4f} | "
                    + ("" if b is None else f"{b['order_sq']:.4f} +- {b['order_sq_se']:.4f}") + " | "
                    + " | ".join(cells) + " |")
    rows += ["", ("| signal | width | q^2 z (branch) | kernel rms z | kernel max z | kernel rel. deviation | "
                  "prediction rms z | prediction max z | kernel rms z (lazy start) | R-hat | seconds |"),
             "|---|---|---|---|---|---|---|---|---|---|---|"]
    for e in sorted(data["samples"], key=lambda e: (e["signal"], e["width"])):
        b, t = e.get("vs_branch", {}), e.get("vs_theory", {})
        rows.append(f"| {e['signal']:g} | {e['width']} | {b.get('order_sq_z', float('nan')):.1f} | "
                    f"{b.get('kernel_rms_z', float('nan')):.2f} | {b.get('kernel_max_abs_z', float('nan')):.2f} | "
                    f"{b.get('kernel_relative_deviation', float('nan')):.4f} | {b.get('prediction_rms_z', float('nan')):.2f} | "
                    f"{b.get('prediction_max_abs_z', float('nan')):.2f} | {t.get('kernel_rms_z', float('nan')):.2f} | "
                    f"{e['rhat']:.3f} | {e['seconds']:.0f} |")
    return "\n".join(rows)


def plot(data, path):
    """Left: q^2 vs signal: the theory's two solution sets (lazy start; the branch followed from its
    start, +- errors; the noise floor dotted) with the sampled networks per width. Right: sqrt(n) q^2 of
    the sampled networks (curves of two widths cross at s*) with the theory's onset of the branch."""
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(12, 4.6), layout="constrained")
    for name, style, label in (("theory", "s", "theory, each signal solved from the lazy point (either branch)"),
                               ("branch", "-", "theory, the branch followed in the signal")):
        th = sorted(data[name].values(), key=lambda t: t["signal"])
        if not th:
            continue
        ax.errorbar([t["signal"] for t in th], [t["order_sq"] for t in th], [t["order_sq_se"] for t in th],
                    fmt=style, color="0.45" if name == "theory" else "k", lw=1.5, ms=5, capsize=2, label=label)
    th = sorted(data["theory"].values(), key=lambda t: t["signal"])
    ax.plot([t["signal"] for t in th], [t["order_sq_floor"] for t in th], ":", color="0.7", label="noise floor of q$^2$")
    widths = sorted({e["width"] for e in data["samples"]})
    for k, w in enumerate(widths):
        es = sorted((e for e in data["samples"] if e["width"] == w), key=lambda e: e["signal"])
        ax.errorbar([e["signal"] for e in es], [e["order_sq"] for e in es], [e["order_sq_se"] for e in es], fmt="o",
                    color=f"C{k}", ms=5, capsize=2, label=f"sampled RNN, n = {w}")
        ax2.errorbar([e["signal"] for e in es], [np.sqrt(w) * e["order_sq"] for e in es],
                     [np.sqrt(w) * e["order_sq_se"] for e in es], fmt="o-", color=f"C{k}", ms=5, capsize=2,
                     label=f"n = {w}")
    for c in data.get("crossings", []):
        if c["signal"] is not None:
            ax2.axvline(c["signal"], color="C2", ls=":", lw=1.2,
                        label=f"crossing of n = {c['widths'][0]}, {c['widths'][1]}: s = {c['signal']:.3f}")
    crit, err = data.get("branch_critical_signal") or (None, None)
    for a in (ax, ax2):
        if crit is not None:
            a.axvline(crit, color="C3", ls="--", lw=1, label=f"onset of the branch s* = {crit:.3f} +- {err:.3f}")
        a.set_xlabel("signal strength s")
        a.set_xscale("log")
        a.legend(fontsize=7.5, loc="upper left")
    ax.set_ylabel("cross-time order parameter q$^2$")
    ax.set_title("20 digit images, T = 5: q$^2$ vs signal (theory and sampled networks)", fontsize=10)
    ax2.set_ylabel("sqrt(n) q$^2$ (sampled)")
    ax2.set_title("finite-size scaling: the curves of two widths cross at s*", fontsize=10)
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/results/feature_digits_transition.json")
    p.add_argument("--figure", default="docs/figures/feature_digits_transition.png")
    args = p.parse_args()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    load = os.getloadavg()
    data = digits_transition_study(out=args.out, progress=lambda k: print(".", end="", flush=True))
    print()
    print(f"netfield {netfield.__version__}, {platform.platform()}, {os.cpu_count()} CPUs, load at start "
          f"{load[0]:.2f}, {data['seconds']:.0f} s")
    for name in ("theory", "branch"):
        print(f"{name}: onset of q^2 at {data.get(name + '_critical_signal')}")
    for c in data["crossings"]:
        print(f"sampled: sqrt(n) q^2 of n = {c['widths'][0]} and {c['widths'][1]} cross at {c['signal']}")
    print(tables(data))
    plot(data, args.figure)


if __name__ == "__main__":
    main()
