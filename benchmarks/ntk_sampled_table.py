"""Sampled-vs-analytic NTK per architecture: max |z| at the largest width and the 1/width slope.

The cases of tests/meanfield/test_ntk_sampled.py (RNN with inputs at every step on ragged sequences,
readout="all"; GRU; LSTM; transformer; batch-norm MLP; conv net with global average pooling; DNN) at
larger settings (default: widths 64..1024, 64 networks per width), through
netfield.experiments.architectures.architecture_convergence(kind="ntk"):

- max |z|: over the distinct entries of (mean empirical NTK - analytic NTK) / sqrt(sem^2 + err^2) at the
  largest width, err the analytic kernel's numerical (quasi-Monte-Carlo) error estimate;
- slope: weighted log-log fit of E||Theta^ - Theta||_F^2 / ||Theta||_F^2 against the width (expected -1),
  with its (Birge-inflated) standard error;
- teeth: max |z| of the same means against a wrong theory (1.1 Theta; the NNGP kernel in place of Theta);
- RNN = DNN (N11): an RNN with the input at step 1 only, read out at the last step, sampled at the
  largest width against the DNN's analytic NTK, and against the DNN ensemble (difference of the means).

Not a test: nothing is asserted. Prints a markdown table; ``--out FILE.json`` also keeps the numbers.

    PYTHONPATH=src python benchmarks/ntk_sampled_table.py [--widths 64,128,256,512,1024] [--networks 64]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time

import numpy as np

import netfield as nf
from netfield.experiments.architectures import architecture_convergence


def cases():
    """name: (network, inputs, readout): the test's cases (same seed, same inputs)."""
    rng = np.random.default_rng(7)
    dnn = nf.dnn(3, "erf", weight_var=1.5, bias_var=0.3, readout_bias_var=0.1)
    return {
        "rnn (ragged T=2,3,2, readout all)": (
            nf.rnn(3, "erf", weight_var=1.5, bias_var=0.3, readout_bias_var=0.1),
            [rng.normal(size=(2, 3)), rng.normal(size=(3, 3)), rng.normal(size=(2, 3))], "all"),
        "gru (T=2)": (nf.gru(2), rng.normal(size=(3, 2, 3)), "last"),
        "lstm (T=2)": (nf.lstm(2), rng.normal(size=(3, 2, 3)), "last"),
        "transformer (1 block, 3 tokens)": (nf.transformer(1, "relu", tie_query_key=True),
                                            rng.normal(size=(3, 3, 3)), "last"),
        "batchnorm mlp (batch 8)": (nf.batchnorm_mlp(2, "relu"), rng.normal(size=(8, 8)), "last"),
        "conv 1-D, global avg (control)": (nf.conv(2, "relu", filter_shape=(3,)), rng.normal(size=(3, 4, 3)),
                                           "last"),
        "dnn depth 3 (control)": (dnn, rng.normal(size=(3, 3)), "last"),
    }


def max_abs_z(mean, sem, theory, err=0.0):
    z = (mean - np.asarray(theory)) / np.sqrt(sem**2 + np.asarray(err) ** 2)
    return float(np.abs(z[np.triu_indices(z.shape[0])]).max())


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--widths", default="64,128,256,512,1024")
    ap.add_argument("--networks", type=int, default=64)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--cases", default=None, help="comma-separated name prefixes (default: all)")
    ap.add_argument("--out", default=None, help="also write the numbers to this JSON file")
    args = ap.parse_args(argv)
    widths = tuple(int(w) for w in args.widths.split(","))
    selected = cases()
    if args.cases:
        selected = {k: v for k, v in selected.items() if any(k.startswith(p) for p in args.cases.split(","))}
    rows, start, dnn_result = [], time.perf_counter(), None
    for name, (net, x, readout) in selected.items():
        t0 = time.perf_counter()
        r = architecture_convergence(net, x, widths, args.networks, args.seed, name=name.split()[0], kind="ntk",
                                     readout=readout, progress=False)
        nngp = np.asarray(nf.kernel(net, x, readout=readout))
        rows.append({
            "name": name, "rows": int(r.theory.shape[0]), "max_abs_z": r.max_abs_z, "slope": r.slope,
            "slope_se": r.slope_se, "chi2": r.fit.chi2, "dof": r.fit.dof,
            "n_d2_largest": r.d2_mean[-1] * widths[-1], "d2_mean": list(r.d2_mean), "d2_sem": list(r.d2_sem),
            "theory_error_max": float(r.theory_error.max()), "sem_max": float(r.kernel_sem.max()),
            "theta_max": float(np.abs(r.theory).max()), "backends": r.backends,
            "z_wrong_1.1": max_abs_z(r.mean_kernel, r.kernel_sem, 1.1 * r.theory, r.theory_error),
            "z_wrong_nngp": max_abs_z(r.mean_kernel, r.kernel_sem, nngp, r.theory_error),
            "seconds": time.perf_counter() - t0,
        })
        if name.startswith("dnn"):
            dnn_result, dnn_x = r, x
        print(f"{name}: done in {rows[-1]['seconds']:.0f} s", flush=True)
    identity = None
    if dnn_result is not None:  # N11: RNN with the input at step 1 only == DNN
        rnn = nf.rnn(3, "erf", weight_var=1.5, bias_var=0.3, readout_bias_var=0.1)
        theory = np.asarray(nf.kernel(rnn, dnn_x, kind="ntk"))
        ens = nf.sample(rnn, dnn_x, widths[-1], args.networks, seed=args.seed + 1, ntk=True, preactivations="none")
        mean, sem = ens.ntk_stats()
        d = dnn_result
        identity = {
            "analytic_rnn_minus_dnn": float(np.abs(theory - d.theory).max()),
            "z_rnn_vs_theory": max_abs_z(mean, sem, theory),
            "z_dnn_vs_theory": max_abs_z(d.mean_kernel, d.kernel_sem, theory),
            "z_rnn_minus_dnn": max_abs_z(mean - d.mean_kernel, np.sqrt(sem**2 + d.kernel_sem**2), 0.0),
        }
    print(f"\nSampled vs analytic NTK (NTK parameterization), widths {list(widths)}, {args.networks} networks "
          f"per width, seed {args.seed}; max |z| at width {widths[-1]}; slope of E d2 vs width (expect -1)\n")
    print("| architecture | rows | max abs z | slope +- s.e. | chi2/dof | n E[d2] at max width | "
          "analytic err / max Theta | z (1.1 Theta) | z (NNGP) |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['name']} | {r['rows']} | {r['max_abs_z']:.2f} | {r['slope']:.3f} +- {r['slope_se']:.3f} | "
              f"{r['chi2']:.1f}/{r['dof']} | {r['n_d2_largest']:.2f} | {r['theory_error_max'] / r['theta_max']:.1e} | "
              f"{r['z_wrong_1.1']:.1f} | {r['z_wrong_nngp']:.1f} |")
    if identity:
        print(f"\nRNN (input at step 1 only, last-step readout) = DNN, width {widths[-1]}: analytic |RNN - DNN| = "
              f"{identity['analytic_rnn_minus_dnn']:.1e}; max |z| RNN ensemble vs analytic "
              f"{identity['z_rnn_vs_theory']:.2f}, DNN ensemble vs analytic {identity['z_dnn_vs_theory']:.2f}, "
              f"RNN - DNN means {identity['z_rnn_minus_dnn']:.2f}")
    total = time.perf_counter() - start
    print(f"\n{total:.0f} s on {platform.node()} ({os.cpu_count()} cores, load {os.getloadavg()[0]:.1f})")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"widths": list(widths), "networks": args.networks, "seed": args.seed, "rows": rows,
                       "rnn_dnn_identity": identity, "seconds": total}, fh, indent=1)


if __name__ == "__main__":
    main()
