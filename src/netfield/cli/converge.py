"""``netfield converge``: the DNN vs RNN convergence study (resumable), JSON and figures."""

from __future__ import annotations

import json
from pathlib import Path

from .common import (
    FORMATTER,
    CLIError,
    add_cluster,
    add_inputs,
    add_prior,
    cluster,
    examples,
    float_list,
    inputs,
    int_list,
    network,
)


def run(args) -> int:
    from .._runtime.checkpoint import ChunkStore, atomic_write
    from .._runtime.progress import ProgressBar
    from ..criticality import critical_weight_var
    from ..experiments.convergence import convergence_study
    from ..report.figures import FIGURES
    from ..report.summary import (
        chi1_values,
        convergence_block,
        depth_block,
        format_table,
        headline_rows,
        weight_var_block,
    )

    for wv in args.weight_vars:  # validate every network before sampling anything
        network(args, "dnn", wv)
    x = inputs(args)
    out = Path(args.out)
    if out.exists() and not out.is_dir():
        raise CLIError(f"--out {args.out!r} exists and is not a folder")
    total = 2 * len(args.weight_vars) * len(args.widths) * args.networks
    with ProgressBar(total, "networks", enabled=not args.quiet) as bar:
        study = convergence_study(
            x, activation=args.activation, depth=args.depth, weight_vars=args.weight_vars, bias_var=args.bias_var,
            input_var=args.input_var, readout_var=args.readout_var, readout_bias_var=args.readout_bias_var,
            widths=args.widths, networks=args.networks, seed=args.seed, chunk_size=args.chunk_size,
            store=ChunkStore(args.checkpoint or out / ".checkpoints"), resume=args.resume, progress=bar,
            **cluster(args),
        )
    wvs = study.settings.weight_vars
    chi1s = chi1_values(args.activation, wvs, args.bias_var)
    figures = {f"convergence_{wv:g}": convergence_block(study, wv, file=f"convergence_wv{wv:g}.png") for wv in wvs}
    if args.depth > 1:
        figures["depth"] = depth_block(study, wvs[0], chi1s)
    if len(wvs) > 1:
        try:
            critical = critical_weight_var(args.activation, args.bias_var)
        except ValueError:
            critical = None  # no edge of chaos for this activation / bias_var
        figures["weight_var"] = weight_var_block(study, chi1s, critical)
    rows = headline_rows(study, chi1s)
    summary = {"headline": rows, "figures": figures, **study.to_dict()}
    out.mkdir(parents=True, exist_ok=True)
    text = json.dumps(summary, indent=1, allow_nan=True)
    atomic_write(out / "convergence.json", lambda fh: fh.write(text), mode="w")
    if not args.no_plots:
        for name, data in figures.items():
            fig = FIGURES[name.split("_")[0] if name.startswith("convergence") else name](data)
            atomic_write(out / data["file"], lambda fh, fig=fig, data=data: fig.savefig(
                fh, format=Path(data["file"]).suffix.lstrip(".")))
    print(format_table(rows))
    print(f"wrote {out / 'convergence.json'}" + ("" if args.no_plots else f" and {len(figures)} figures"))
    return 0


def add_parser(sub):
    """Register ``converge`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("converge", help="DNN vs RNN convergence to the mean field", formatter_class=FORMATTER,
                       description="Distance between empirical and mean-field kernels of DNNs and RNNs against the "
                                   "width, fitted power laws and the RNN/DNN amplitude ratio, for every weight "
                                   "variance and step. Writes OUT/convergence.json and figures.",
                       epilog=examples("""
                           netfield converge                                  # erf, T=6, weight_var 1.5, n=16..1024
                           netfield converge --weight-vars 0.8,1.5,2.23,4 --depth 8 --widths 16,64,256 --out conv
                           netfield converge --out conv --resume              # continue an interrupted run"""))
    add_prior(p, weight_var=False, bias_var=0.5, depth=6)  # convergence_study's defaults
    add_inputs(p)
    p.add_argument("--weight-vars", type=float_list, default=(1.5,), help="comma-separated (default: 1.5)")
    p.add_argument("--widths", type=int_list, default=(16, 32, 64, 128, 256, 512, 1024),
                   help="comma-separated widths (default: 16,32,...,1024)")
    p.add_argument("--networks", type=int, default=32, help="networks per width (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--chunk-size", type=int, default=8, help="networks per checkpoint chunk (default: %(default)s)")
    p.add_argument("--checkpoint", metavar="DIR", help="checkpoint directory (default: OUT/.checkpoints)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks of an interrupted run")
    p.add_argument("--no-plots", action="store_true", help="write only convergence.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="netfield-converge", help="output folder (default: ./netfield-converge)")
    add_cluster(p)
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
