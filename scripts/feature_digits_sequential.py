"""Generalisation to unsupervised steps on digits read row by row: RNN against DNN, theory (Markov-chain
saddle point) against HMC-sampled networks (issue 23 item 4; docs/feature.md section 10).

    python scripts/feature_digits_sequential.py [--out docs/results/feature_digits_sequential.json]

Writes the study (:func:`netfield.feature.study.digits_sequential_study`, its defaults: 20 training and 8
test digits, 5 steps, the target at step 5 only, kappa 0.1, signal 1, n = 256) and prints the test error per
step. A few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import os

import numpy as np

from netfield.feature.study import digits_sequential_study


def table(r: dict) -> str:
    steps = len(r["rnn"]["theory_mse"])
    lines = ["| step | supervised | RNN theory | RNN sampled | DNN theory | DNN sampled |", "|---|---|---|---|---|---|"]
    for t in range(steps):
        cells = [str(t + 1), "yes" if t + 1 in r["supervised_steps"] else "no"]
        for arch in ("rnn", "dnn"):
            a = r[arch]
            cells += [f"{a['theory_mse'][t]:.3f}", f"{a['sampled_mse'][t]:.3f} +- {a['sampled_mse_se'][t]:.3f}"]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default=os.path.join("docs", "results", "feature_digits_sequential.json"))
    args = parser.parse_args(argv)
    r = digits_sequential_study()
    with open(args.out, "w") as f:
        json.dump(r, f, indent=1)
    print(table(r))
    for arch in ("rnn", "dnn"):
        print(arch, "max |z| theory vs sampled:", round(r[arch]["max_abs_z"], 2), "max |diff|:",
              round(r[arch]["max_abs_difference"], 4), "R-hat:", round(r[arch]["sampled_rhat"], 3))
    print(f"{r['seconds']:.0f} s; test predictions (theory, RNN): {np.round(r['rnn']['theory_prediction'], 2)}")


if __name__ == "__main__":
    main()
