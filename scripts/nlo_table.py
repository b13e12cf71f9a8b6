"""Print the README's NLO table: theory vs simulation of n (E - K*) and n Var of K^_TT, T = 2..6.

tanh, weight_var 1.5, bias_var 0.5, x = 1 (d = 1) at t = 1 with input_var 0.5, shared bias (RNN).
Usage: python scripts/nlo_table.py [--networks 6000,3000,1500,800] [--seed 11]
"""

import argparse

import numpy as np

import netfield
from netfield.nlo import simulate


def main():
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--networks", default="6000,3000,1500,800")
    p.add_argument("--seed", type=int, default=11)
    args = p.parse_args()
    networks = tuple(int(v) for v in args.networks.split(","))
    widths, x = (32, 64, 128, 256), np.ones((1, 1))
    rows = {}
    for arch in ("dnn", "rnn"):
        net = getattr(netfield, arch)(6, "tanh", weight_var=1.5, bias_var=0.5, input_var=0.5)
        th, sim = netfield.one_loop(net, x), simulate(net, x, widths=widths, networks=networks, seed=args.seed + (arch == "rnn"))
        for T in range(2, 7):
            i = th.index("hidden", T, T)
            rows[(arch, T)] = (th.kernel[i], th.mean_shift[i], sim.shift[i], sim.shift_se[i], th.variance[i],
                               sim.variance_limit[i], sim.variance_limit_se[i])
    print("| T | arch | K*_TT | n (E - K*) theory | n (E - K*) simulation | n Var theory | n Var simulation |")
    print("|---|---|---|---|---|---|---|")
    for T in range(2, 7):
        for arch in ("dnn", "rnn"):
            k, s, ss, sse, v, vs, vse = rows[(arch, T)]
            print(f"| {T} | {arch.upper()} | {k:.4f} | {s:+.4f} | {ss:+.3f} +- {sse:.3f} | {v:.4f} | {vs:.4f} +- {vse:.4f} |")


if __name__ == "__main__":
    main()
