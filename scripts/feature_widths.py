"""The feature-learning transition located by posterior sampling (docs/feature.md section 5).

Runs :func:`netfield.feature.study.width_study` (RNN, the demo's toy task; HMC at widths 128-1024;
about 20 minutes on 2 cores), writing its results after every sampled point to
docs/results/feature_widths.json (a rerun resumes from it), then draws
docs/figures/feature_widths.png and prints the markdown table of docs/feature.md.

Usage: python scripts/feature_widths.py [--out docs/results/feature_widths.json] [--figure PATH]
"""

import argparse
import os

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from netfield.feature.figures import theory_curve
from netfield.feature.study import width_study


def _critical(data):
    err = data.get("critical_signal_error")
    return f"{data['critical_signal']:.4f}" + ("" if err is None else f" +- {err:.4f}")


def plot(data, path):
    fig, (ax, ax2) = plt.subplots(1, 2, figsize=(11, 4.2))
    widths = sorted({e["width"] for e in data["samples"]})
    theory = {"signals": data["theory"].get("signals", data["signals"]), **data["theory"]}
    s_th, q2_th, q2_se = theory_curve({"theory": {"rnn": theory}, "critical_signal": data["critical_signal"]})
    for k, w in enumerate(widths):
        es = sorted((e for e in data["samples"] if e["width"] == w), key=lambda e: e["signal"])
        s = np.array([e["signal"] for e in es])
        ax.errorbar(s, np.sqrt(w) * np.array([e["order_sq"] for e in es]),
                    np.sqrt(w) * np.array([e["order_sq_se"] for e in es]), fmt="o-", color=f"C{k}", ms=4,
                    label=f"sampled n = {w}")
        ax2.errorbar(s, [e["order_sq"] for e in es], [e["order_sq_se"] for e in es], fmt="o", color=f"C{k}", ms=4,
                     label=f"sampled n = {w}")
    ax2.plot(s_th, q2_th, "k-", lw=1.2, label=f"theory (n -> infinity), {len(theory['signals'])} signals")
    ax2.fill_between(s_th, q2_th - q2_se, q2_th + q2_se, color="k", alpha=0.15, lw=0,
                     label=f"theory +- s.e. over {len(data['seeds'])} QMC scramblings")
    for a in (ax, ax2):
        if data["critical_signal"]:
            a.axvline(data["critical_signal"], color="C3", ls=":", lw=0.8, label=f"theory s* = {_critical(data)}")
        a.set_xlabel("signal strength s")
        a.legend(fontsize=7)
    ax.set_ylabel("sqrt(n) q^2  (curves cross at s*)")
    ax2.set_ylabel("q^2 = <K_23^2> / (K_22 K_33)")
    ax.set_title("finite-size crossing of sqrt(n) q^2")
    ax2.set_title("order parameter vs signal and width")
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default="docs/results/feature_widths.json")
    p.add_argument("--figure", default="docs/figures/feature_widths.png")
    args = p.parse_args()
    os.makedirs(os.path.dirname(args.out) or ".", exist_ok=True)
    data = width_study(out=args.out, progress=lambda k: print(".", end="", flush=True))
    print()
    plot(data, args.figure)
    print(f"theory: critical signal s* = {_critical(data)}")
    print("| signal | theory q^2 | s.e. |")
    print("|---|---|---|")
    for sig, q, se in zip(data["theory"]["signals"], data["theory"]["order"], data["theory"]["order_se"]):
        print(f"| {sig:g} | {q * q:.5f} | {2 * q * se:.5f} |")
    for c in data["crossings"]:
        sig = "none in range" if c["signal"] is None else f"{c['signal']:.4f}"
        print(f"sampling: crossing of sqrt(n) q^2 between n = {c['widths'][0]} and {c['widths'][1]}: {sig}")
    print("| signal | n | sampled q^2 | theory q^2 | n q^2 | sqrt(n) q^2 | tau |")
    print("|---|---|---|---|---|---|---|")
    for e in sorted(data["samples"], key=lambda e: (e["signal"], e["width"])):
        n = e["width"]
        print(f"| {e['signal']:g} | {n} | {e['order_sq']:.4f} ± {e['order_sq_se']:.4f} | {e['theory_order_sq']:.4f} | "
              f"{n * e['order_sq']:.2f} | {np.sqrt(n) * e['order_sq']:.3f} | {e['tau']:.1f} |")
    print(f"({data['seconds']:.0f} s)")


if __name__ == "__main__":
    main()
