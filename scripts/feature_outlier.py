"""The outlier eigenvalue of a trained RNN's W: theory (F13) against posterior samples (docs/feature.md F13).

On the toy task of docs/feature.md section 4 (RNN erf, weight_var 1.5, kappa 0.1, T = 3, P = 2), for each
signal: the theory's leading eigenvalue of M = Q^-1 R at the broken solution
(:func:`netfield.feature.outlier.weight_outliers`) and the largest real eigenvalue of W of every HMC chain
of width-n networks (:func:`netfield.feature.posterior_samples`, the study's sampler settings). Writes
docs/results/feature_outlier.json. About 5 minutes on 2 cores.

Usage: python scripts/feature_outlier.py [--signals 1.0 2.0 3.0] [--widths 256 512] [--out PATH]
"""

import argparse
import json
import os
import time

import numpy as np

import netfield
from netfield.feature import posterior_samples
from netfield.feature.outlier import weight_outliers
from netfield.feature.study import SAMPLER, TOY, toy_task
from netfield.feature.transition import broken_solution


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--signals", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--widths", type=int, nargs="+", default=[256, 512])
    parser.add_argument("--out", default=os.path.join("docs", "results", "feature_outlier.json"))
    args = parser.parse_args()
    x, y = toy_task()
    net = netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])
    out = {"task": "toy_task", "network": TOY, "sampler": SAMPLER, "bulk_radius": float(np.sqrt(TOY["weight_var"])),
           "points": []}
    start = time.perf_counter()
    for s in args.signals:
        theory = weight_outliers(broken_solution(net, x, y, kappa=TOY["kappa"], signal=s, points=2**15))
        entry = {"signal": s, "theory": float(np.abs(theory.eigenvalues[0])),
                 "theory_error": float(theory.eigenvalue_errors[0]), "sampled": []}
        for n in args.widths:
            ps = posterior_samples(net, x, y, width=n, kappa=TOY["kappa"], signal=s, seed=0, progress=None, **SAMPLER)
            ev = np.asarray(ps.w_eigenvalues).reshape(-1, n)
            ext = [float(np.abs(e[np.abs(e.imag) < 1e-9].real).max()) for e in ev]
            entry["sampled"].append({"width": n, "extreme_real": ext, "mean": float(np.mean(ext)),
                                     "se": float(np.std(ext, ddof=1) / np.sqrt(len(ext)))})
            print(f"s = {s}: theory {entry['theory']:.3f} +- {entry['theory_error']:.3f}; n = {n}: "
                  f"{np.mean(ext):.3f} +- {entry['sampled'][-1]['se']:.3f} ({', '.join(f'{e:.3f}' for e in ext)})",
                  flush=True)
        out["points"].append(entry)
    out["seconds"] = time.perf_counter() - start
    with open(args.out, "w") as f:
        json.dump(out, f, indent=1)


if __name__ == "__main__":
    main()
