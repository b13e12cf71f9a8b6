"""The muP saddle point at research scale by Markov chains (docs/feature.md section 7, issue 23).

Solves the saddle point of an RNN (erf, weight_var 1.5, target at the last step) on the digits task
read row by row (:func:`netfield.feature.study.digit_rows_task`: P sequences of T <= 8 steps) or on the
synthetic sequential task (:func:`netfield.feature.study.sequential_task`, any T) with ``rule="mcmc"``,
and writes the timings, every sampling round's diagnostics and the kernel's error to
docs/results/feature_scale_<task>_P<P>_T<T>.json.

Usage: python scripts/feature_scale.py [--task digits|sequential] [--patterns 20] [--steps 5] [--draws 131072] [--kappa 0.1]
       [--signal 1.0] [--seed 0] [--out PATH] [--checkpoint FILE.npz]
"""

import argparse
import json
import os
import platform
import time

import numpy as np

import netfield
from netfield.feature import posterior_kernels
from netfield.feature.study import digit_rows_task, sequential_task


def relative_kernel_error(kernel, error):
    """Largest error of a kernel entry relative to the kernel scale of its block, sqrt(K_tt,max K_ss,max)."""
    T = kernel.shape[0]
    scale = [np.abs(np.diagonal(kernel[t, t])).max() for t in range(T)]
    return float(max((error[t, s] / np.sqrt(scale[t] * scale[s])).max() for t in range(T) for s in range(T)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--task", choices=("digits", "sequential"), default="digits",
                        help="digit_rows_task (steps <= 8) or the synthetic sequential_task (any steps)")
    parser.add_argument("--patterns", type=int, default=20)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--draws", type=int, default=2**18)
    parser.add_argument("--kappa", type=float, default=0.1)
    parser.add_argument("--signal", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out")
    parser.add_argument("--checkpoint", help="a .npz file written after every round; a rerun resumes from it")
    args = parser.parse_args()
    out = args.out or os.path.join("docs", "results", f"feature_scale_{args.task}_P{args.patterns}_T{args.steps}.json")
    if args.task == "digits":
        x, labels, _, _ = digit_rows_task(P_train=args.patterns, P_test=0, steps=args.steps)
        task = {"name": "digit_rows_task", "patterns": args.patterns, "steps": args.steps, "classes": [3, 8]}
    else:
        x, labels, _, _ = sequential_task(P_train=args.patterns, P_test=0, steps=args.steps)
        task = {"name": "sequential_task", "patterns": args.patterns, "steps": args.steps, "d": 3, "seed": 1}
    net = netfield.rnn(args.steps, "erf", weight_var=1.5)
    load = os.getloadavg()
    start = time.perf_counter()
    r = posterior_kernels(net, x, labels, kappa=args.kappa, signal=args.signal, points=args.draws, seed=args.seed,
                          rule="mcmc", checkpoint=args.checkpoint, resume=args.checkpoint is not None)
    seconds = time.perf_counter() - start
    rounds = r.sampling["rounds"]
    result = {
        "task": task,
        "network": {"arch": "rnn", "activation": "erf", "weight_var": 1.5}, "kappa": args.kappa,
        "signal": args.signal, "draws": args.draws, "seed": args.seed,
        "machine": {"platform": platform.platform(), "cpus": os.cpu_count(), "load_before": load,
                    "load_after": os.getloadavg()},
        "netfield": netfield.__version__, "seconds": seconds,
        "seconds_sampling": sum(e["sample_s"] for e in rounds), "seconds_solving": sum(e["solve_s"] for e in rounds),
        "seconds_error": sum(e.get("error_s", 0.0) for e in rounds),
        "converged": bool(r.converged), "z": r.sampling["z"], "rhat": r.sampling["rhat"], "ess": r.sampling["ess"],
        "groups": r.sampling["groups"], "groups_unsolved": r.sampling["groups_unsolved"], "rounds": list(rounds),
        "kernel_relative_error": relative_kernel_error(r.kernel, r.kernel_error),
        "kernel_change_from_gp": float(np.abs(r.kernel - r.gp_kernel).max()),
        "kernel": np.round(r.kernel, 7).tolist(), "kernel_error": np.round(r.kernel_error, 7).tolist(),
    }
    os.makedirs(os.path.dirname(out) or ".", exist_ok=True)
    with open(out, "w") as f:
        json.dump(result, f)
    print(f"P = {args.patterns}, T = {args.steps}, {args.draws} draws: {seconds:.0f} s (load {load[0]:.2f}), "
          f"converged {r.converged} (move {r.sampling['z']:.2f} errors), kernel error "
          f"{result['kernel_relative_error']:.2e} of the kernel scale, R-hat {r.sampling['rhat']:.4f}; {out}")


if __name__ == "__main__":
    main()
