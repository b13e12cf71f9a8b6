"""Command line: ``netfield nlo`` (registered by the main CLI through :func:`add_parser`).

Example:
    netfield nlo --arch rnn --depth 6 --activation tanh --weight-var 1.5 --bias-var 0.5 --input-var 0.5
"""

from __future__ import annotations

import argparse
import json

import numpy as np

from .common import (
    add_arch,
    add_cluster,
    add_prior,
    check_output_file,
    cluster,
    float_list,
    input_file,
    int_list,
    network,
)

EXAMPLE = """examples:
  netfield nlo --arch rnn --depth 6 --activation tanh --weight-var 1.5 --bias-var 0.5 --input-var 0.5
  netfield nlo --arch dnn --depth 4 --inputs x.npy --json nlo.json           # every entry, two or more inputs
  netfield nlo --arch rnn --depth 4 --simulate --widths 32,64,128 --networks 4000 --out sim/   # with the oracle
  netfield nlo --figure fluct.png --depth 8                                  # DNN vs RNN fluctuations vs t

Without --inputs the input is the single pattern x = 1 (d = 1) at step 1. Printed per kernel entry: the
mean-field value K*, lim n (E[K^] - K*) and lim n Var(K^) (docs/nlo.md); --simulate adds the same limits
measured on sampled networks (Richardson fits over --widths) with standard errors."""


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``nlo`` on an argparse subparsers object (default ``func`` is :func:`run`)."""
    p = subparsers.add_parser(
        "nlo", help="1/n corrections of DNN / RNN kernels: mean shift and fluctuations, theory and simulation",
        description="Next-to-leading-order (1/n) statistics of the conditional kernels of a DNN or RNN "
                    "(docs/theory.md 4.1): one-loop theory, optionally checked against sampled networks. "
                    "The network defaults are the ordered setting of docs/nlo.md (tanh, weight_var 1.5, bias_var "
                    "0.5, input_var 0.5, 6 steps), where the RNN's fluctuations differ from the DNN's; not the "
                    "builders' defaults.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_arch(p, "rnn")
    add_prior(p)
    p.set_defaults(activation="tanh", weight_var=1.5, bias_var=0.5, input_var=0.5, depth=6)  # docs/nlo.md's setting
    p.add_argument("--inputs", metavar="FILE", help="inputs (N, d) or (N, T, d) from .npy/.npz/.csv (default: x = 1)")
    p.add_argument("--key", help="array name inside an .npz holding several arrays")
    p.add_argument("--simulate", action="store_true", help="also measure the limits on sampled networks")
    p.add_argument("--widths", type=int_list, default=(32, 64, 128, 256), help="simulation widths (default 32,...,256)")
    p.add_argument("--networks", type=int_list, default=(2000,),
                   help="networks per width: one number or one per width (default 2000)")
    p.add_argument("--seed", type=int, default=0, help="simulation seed (default 0)")
    p.add_argument("--out", metavar="DIR", help="checkpoint folder of the simulation (resumable with --resume)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks in OUT/.checkpoints")
    p.add_argument("--json", metavar="FILE", help="write all numbers (theory, simulation) to this .json file")
    p.add_argument("--figure", metavar="FILE", help="draw n Var(K_tt)/K_tt^2 vs t for DNN and RNN (ordered: the "
                   "given weight_var / bias_var; chaotic: --chaotic) to this .png/.pdf/.svg")
    p.add_argument("--chaotic", type=float_list, default=(4.0, 0.3), help="weight_var,bias_var of the figure's "
                   "second regime (default 4,0.3)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_cluster(p)
    p.set_defaults(func=run)
    return p


def _table(result, sim=None) -> str:
    labels = result.observables.labels()
    head = f"{'entry':14s} {'K*':>10s} {'n(E-K*)':>10s} {'n Var':>10s}"
    if sim is not None:
        head += f"   {'sampled n(E-K*)':>20s} {'sampled n Var':>20s}"
    rows = [head]
    for i, lab in enumerate(labels):
        row = f"{lab:14s} {result.kernel[i]:10.5f} {result.mean_shift[i]:+10.5f} {result.variance[i]:10.5f}"
        if sim is not None:
            row += (f"   {sim.shift[i]:+10.4f} +- {sim.shift_se[i]:6.4f} "
                    f"{sim.variance_limit[i]:10.4f} +- {sim.variance_limit_se[i]:6.4f}")
        rows.append(row)
    return "\n".join(rows)


def run(args) -> int:
    """Compute, print, and write what was asked. Returns the exit status (errors raise ValueError)."""
    from ..nlo.oneloop import nlo

    if args.json:
        check_output_file(args.json, "--json", (".json",))
    if args.figure:
        check_output_file(args.figure, "--figure", (".png", ".pdf", ".svg"))
    networks = args.networks[0] if len(args.networks) == 1 else args.networks
    x = input_file(args.inputs, args.key, "--inputs") if args.inputs else np.ones((1, 1))
    net = network(args, args.arch)
    result = nlo(net, x)
    sim = None
    if args.simulate:
        sim = _simulate(args, net, x, networks)
    print(f"1/n statistics of {net!r} ({len(result.kernel)} entries; K(t,s|a,b): steps t, s, patterns a, b)")
    print(_table(result, sim))
    payload = {"network": repr(net), "theory": result.to_dict(), "simulation": sim.to_dict() if sim else None}
    if args.figure:
        from ..nlo.figures import plot_fluctuations
        from ..nlo.study import fluctuation_study

        if len(args.chaotic) != 2:
            raise ValueError(f"--chaotic must be weight_var,bias_var, got {args.chaotic!r}")
        activation = dict(net.options).get("activation")  # the network's (the builder's default if not given)
        study = fluctuation_study(getattr(activation, "name", activation),
                                  settings=(("first", float(net.hyper("weight_var")), float(net.hyper("bias_var"))),
                                            ("second", *args.chaotic)),
                                  steps=args.depth, widths=args.widths, networks=networks, seed=args.seed,
                                  input_var=float(net.hyper("input_var")), simulate_networks=args.simulate,
                                  progress=not args.quiet)
        from pathlib import Path

        from .._runtime.checkpoint import atomic_write

        fig = plot_fluctuations(study)
        atomic_write(args.figure, lambda fh: fig.savefig(fh, format=Path(args.figure).suffix.lstrip(".").lower(),
                                                         dpi=110))
        payload["figure"] = study.to_dict()
        print(f"wrote {args.figure}")
    if args.json:
        from .._runtime.checkpoint import atomic_write

        text = json.dumps(payload, indent=1)
        atomic_write(args.json, lambda fh: fh.write(text), mode="w")
        print(f"wrote {args.json}")
    return 0


def _simulate(args, net, x, networks):
    from pathlib import Path

    from .._runtime.checkpoint import ChunkStore
    from .._runtime.progress import ProgressBar
    from ..nlo.simulate import simulate

    store = ChunkStore(Path(args.out) / ".checkpoints") if args.out else None
    if args.resume and store is None:
        raise ValueError("--resume needs --out DIR (where the finished chunks of the interrupted run are)")
    counts = [networks] * len(args.widths) if np.ndim(networks) == 0 else list(networks)
    with ProgressBar(int(sum(counts)), "networks", enabled=not args.quiet) as bar:
        return simulate(net, x, widths=args.widths, networks=networks, seed=args.seed, store=store,
                        resume=args.resume, progress=bar, **cluster(args))

__all__ = ["add_parser", "run"]
