"""The outlier eigenvalue of a trained RNN's W: theory (F13) against posterior samples (docs/feature.md F13).

On the toy task of docs/feature.md section 4 (RNN erf, weight_var 1.5, kappa 0.1, T = 3, P = 2), for each
signal: the theory's leading eigenvalue of M = Q^-1 R at the broken solution
(:func:`netfield.feature.outlier.weight_outliers`) and the largest real eigenvalue of W of every HMC chain
of width-n networks (:func:`netfield.feature.posterior_samples`, the study's sampler settings). Writes
docs/results/feature_outlier.json (with one chain's whole spectrum per signal at the largest width) and
draws docs/figures/feature_outlier.png. About 5 minutes on 2 cores.

Writes --out after every sampled point; ``--resume`` keeps the points it holds (same task, network and
sampler) and samples only the missing (signal, width) pairs, e.g. a further width.

Usage: python scripts/feature_outlier.py [--signals 1.0 2.0 3.0] [--widths 256 512] [--out PATH] [--figure PATH]
                                         [--resume]
       python scripts/feature_outlier.py --plot-only   (the figure from the stored results)
"""

import argparse
import json
import os
import time

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

import netfield
from netfield.feature import posterior_samples
from netfield.feature.outlier import weight_outliers
from netfield.feature.study import SAMPLER, TOY, toy_task
from netfield.feature.transition import broken_solution


def plot(data, path):
    """Left: the largest real eigenvalue of W vs signal: the theory's outlier (F13, +- its error), the bulk
    edge sqrt(weight_var), and the sampled chains' mean +- standard error per width. Then (where a run
    stored them) one panel per signal: the whole spectrum of one sampled W at the largest width, with the
    bulk circle and the predicted outlier's modulus (dotted: +- |lambda|, the sampled side is compared by
    modulus)."""
    spectra = [p for p in data["points"] if p.get("spectrum")]
    fig, axes = plt.subplots(1, 1 + len(spectra), figsize=(6.5 + 3.4 * len(spectra), 4.8), layout="constrained",
                             squeeze=False, width_ratios=[1.6] + [1.0] * len(spectra))
    ax = axes[0, 0]
    edge = data["bulk_radius"]
    s = np.array([p["signal"] for p in data["points"]])
    th, the = np.array([p["theory"] for p in data["points"]]), np.array([p["theory_error"] for p in data["points"]])
    ax.errorbar(s, th, the, fmt="ks:", capsize=3, lw=1, ms=5, label="theory: leading eigenvalue of M = Q^-1 R (F13)")
    ax.axhline(edge, color="0.4", ls="--", lw=1, label=f"bulk edge sqrt(weight_var) = {edge:.3f}")
    widths = sorted({q["width"] for p in data["points"] for q in p["sampled"]})
    for k, w in enumerate(widths):
        pts = [(p["signal"], q) for p in data["points"] for q in p["sampled"] if q["width"] == w]
        ax.errorbar([a * (1 + 0.02 * (k - (len(widths) - 1) / 2)) for a, _ in pts], [q["mean"] for _, q in pts],
                    [q["se"] for _, q in pts], fmt="o", color=f"C{k}", capsize=2,
                    label=f"sampled W, n = {w} (mean of {len(pts[0][1]['extreme_real'])} chains)")
    ax.set_xlabel("signal strength s")
    ax.set_ylabel("largest real eigenvalue of W (modulus)")
    ax.set_title("the outlier of the trained recurrent matrix: predicted and sampled", fontsize=10)
    ax.legend(fontsize=8, loc="upper left")
    t = np.linspace(0, 2 * np.pi, 400)
    lim = 1.1 * max([edge] + [np.abs(np.asarray(p["spectrum"]["eigenvalues"])).max() for p in spectra]
                    + [p["theory"] for p in spectra])
    for k, p in enumerate(spectra):
        ax2 = axes[0, k + 1]
        ev = np.asarray(p["spectrum"]["eigenvalues"])
        ax2.plot(ev[:, 0], ev[:, 1], ".", ms=2, color="C0", alpha=0.7, label="eigenvalues of one sampled W")
        out = np.hypot(ev[:, 0], ev[:, 1]) > 1.05 * edge
        ax2.plot(ev[out, 0], ev[out, 1], "o", ms=6, mfc="none", color="C1", label="... outside 1.05 x the bulk")
        ax2.plot(edge * np.cos(t), edge * np.sin(t), "--", color="0.4", lw=1, label="bulk circle")
        for sign in (1, -1):
            ax2.axvline(sign * p["theory"], color="C3", ls=":", lw=1.2,
                        label="predicted outlier +- |lambda| (F13)" if sign == 1 else None)
        ax2.set_xlim(-lim, lim)
        ax2.set_ylim(-lim, lim)
        ax2.set_aspect("equal")
        ax2.set_xlabel("Re")
        ax2.set_ylabel("Im" if k == 0 else None)
        ax2.set_title(f"s = {p['signal']:g}, n = {p['spectrum']['width']}: |lambda| = {p['theory']:.2f} predicted",
                      fontsize=9)
        if k == 0:
            ax2.legend(fontsize=7, loc="upper left")
    fig.savefig(path, dpi=110)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--out", default=os.path.join("docs", "results", "feature_outlier.json"))
    parser.add_argument("--figure", default=os.path.join("docs", "figures", "feature_outlier.png"))
    parser.add_argument("--plot-only", action="store_true", help="draw the figure from --out without sampling")
    parser.add_argument("--resume", action="store_true",
                        help="keep the (signal, width) points that --out holds and sample only the missing ones")
    args = parser.parse_args()
    if args.plot_only:
        with open(args.out) as f:
            plot(json.load(f), args.figure)
        return
    x, y = toy_task()
    net = netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])
    out = {"task": "toy_task", "network": TOY, "sampler": SAMPLER, "bulk_radius": float(np.sqrt(TOY["weight_var"])),
           "points": [], "seconds": 0.0}
    if args.resume and os.path.exists(args.out):
        with open(args.out) as f:
            stored = json.load(f)
        if {k: stored.get(k) for k in ("task", "network", "sampler")} != {k: out[k] for k in ("task", "network", "sampler")}:
            raise SystemExit(f"--resume: {args.out} holds another task, network or sampler; use a new --out")
        out = stored
    points = {p["signal"]: p for p in out["points"]}

    def save():
        out["points"] = [points[s] for s in sorted(points)]
        tmp = f"{args.out}.tmp"
        with open(tmp, "w") as f:
            json.dump(out, f, indent=1)
        os.replace(tmp, args.out)

    for s in args.signals:
        start = time.perf_counter()
        entry = points.get(s)
        if entry is None:
            theory = weight_outliers(broken_solution(net, x, y, kappa=TOY["kappa"], signal=s, points=2**15))
            entry = points[s] = {"signal": s, "theory": float(np.abs(theory.eigenvalues[0])),
                                 "theory_error": float(theory.eigenvalue_errors[0]), "sampled": []}
        for n in args.widths:
            if any(q["width"] == n for q in entry["sampled"]):
                continue  # kept from the stored run (--resume)
            ps = posterior_samples(net, x, y, width=n, kappa=TOY["kappa"], signal=s, seed=0, progress=None, **SAMPLER)
            ev = np.asarray(ps.w_eigenvalues).reshape(-1, n)
            ext = [float(np.abs(e[np.abs(e.imag) < 1e-9].real).max()) for e in ev]
            entry["sampled"].append({"width": n, "extreme_real": ext, "mean": float(np.mean(ext)),
                                     "se": float(np.std(ext, ddof=1) / np.sqrt(len(ext)))})
            entry["sampled"].sort(key=lambda q: q["width"])
            if n == entry["sampled"][-1]["width"]:  # one chain's whole spectrum at the largest width, for the figure
                entry["spectrum"] = {"width": n, "eigenvalues": np.stack([ev[0].real, ev[0].imag], axis=1).tolist()}
            print(f"s = {s}: theory {entry['theory']:.3f} +- {entry['theory_error']:.3f}; n = {n}: "
                  f"{np.mean(ext):.3f} +- {entry['sampled'][-1]['se']:.3f} ({', '.join(f'{e:.3f}' for e in ext)})",
                  flush=True)
            out["seconds"] = out.get("seconds", 0.0) + time.perf_counter() - start
            start = time.perf_counter()
            save()  # after every sampled point: an interrupted run keeps it (--resume)
        save()
    plot(out, args.figure)


if __name__ == "__main__":
    main()
