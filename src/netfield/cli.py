"""``netfield`` command line: a thin layer over the public API.

Subcommands: ``kernel`` (mean-field kernel to .npy), ``sample`` (empirical kernels of sampled finite
networks to .npz, resumable), ``converge`` (DNN vs RNN convergence study, resumable) and ``demo`` (the
full report). Bad input prints ``netfield: error: <one line>`` to stderr and exits with status 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import textwrap
from pathlib import Path

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class CLIError(Exception):
    """A problem with the user's input, reported as one line."""


class _Parser(argparse.ArgumentParser):
    def error(self, message):  # one line instead of usage + message
        self.exit(EXIT_USAGE, f"netfield: error: {message} (see '{self.prog} --help')\n")


def _int_list(text: str) -> tuple:
    try:
        return tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _float_list(text: str) -> tuple:
    try:
        return tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _add_prior(p, *, weight_var=True, bias_var=0.0):
    g = p.add_argument_group("network")
    g.add_argument("--activation", default="erf", help="activation name: erf, relu, tanh, ... (default: erf)")
    g.add_argument("--depth", "--steps", dest="depth", type=int, default=3,
                   help="layers (DNN) = time steps (RNN) (default: %(default)s)")
    if weight_var:
        g.add_argument("--weight-var", type=float, default=1.0, help="weight variance (default: %(default)s)")
    g.add_argument("--bias-var", type=float, default=bias_var, help="bias variance (default: %(default)s)")
    g.add_argument("--input-var", type=float, default=1.0, help="input-weight variance (default: %(default)s)")
    g.add_argument("--readout-var", type=float, default=1.0, help="readout variance (default: %(default)s)")
    g.add_argument("--readout-bias-var", type=float, default=0.0, help="readout bias variance (default: %(default)s)")
    return g


def _add_inputs(p, name="--inputs"):
    p.add_argument(name, metavar="FILE", help="inputs (N, d) or (N, T, d) from .npy, .npz or .csv (N rows, d columns); "
                   "default: --digits standardised digit images from scikit-learn")
    p.add_argument("--key", help="array name inside an .npz holding several arrays")
    p.add_argument("--digits", type=int, default=8, help="number of digit images when no --inputs (default: 8)")


def _net(args, architecture, weight_var=None):
    import netfield

    build = netfield.dnn if architecture == "dnn" else netfield.rnn
    return build(args.depth, args.activation, weight_var=args.weight_var if weight_var is None else weight_var,
                 bias_var=args.bias_var, input_var=args.input_var, readout_var=args.readout_var,
                 readout_bias_var=args.readout_bias_var)


def _inputs(args, path=None):
    from .experiments.data import digits_inputs, load_inputs

    path = args.inputs if path is None else path
    if path:
        return load_inputs(path, args.key)
    return digits_inputs(args.digits).x


def _out_file(path: str, suffix: str) -> Path:
    p = Path(path)
    if p.suffix.lower() != suffix:
        raise CLIError(f"--out must end in {suffix}, got {path!r}")
    if p.parent and not p.parent.exists():
        raise CLIError(f"--out directory {str(p.parent)!r} does not exist")
    return p


# ------------------------------------------------------------------------------------------- kernel

def cmd_kernel(args) -> int:
    import numpy as np

    import netfield

    out = _out_file(args.out, ".npy")
    net = _net(args, args.arch)
    x1 = _inputs(args)
    x2 = _inputs(args, args.inputs2) if args.inputs2 else None
    k = np.asarray(netfield.kernel(net, x1, x2, readout=args.readout))
    np.save(out, k)
    print(f"wrote {out}: {k.shape} readout kernel ({args.readout}) of {net!r}")
    return 0


# ------------------------------------------------------------------------------------------- sample

def cmd_sample(args) -> int:
    import numpy as np

    from .experiments.checkpoint import ChunkStore, array_digest, run_chunks, run_key
    from .experiments.sampling import check_seed, preactivation_pairs, sample_range
    from .finite import mean_and_sem
    from .program import parse_inputs
    from .report.progress import ProgressBar

    out = _out_file(args.out, ".npz")
    net = _net(args, args.arch)
    x = _inputs(args)
    seed = check_seed(args.seed)
    pats = parse_inputs(x, net.steps, "inputs")
    pairs = preactivation_pairs(args.preactivations, int(pats.lengths.max()))
    store = ChunkStore(_checkpoint_dir(args))
    key = run_key(kind="ensemble-v1", net=repr(net), x=array_digest(pats.x), lengths=pats.lengths.tolist(),
                  width=args.width, seed=seed, readout=args.readout, pairs=pairs, dtype=args.dtype)

    def compute(first, count, tick):
        ens = sample_range(net, x, args.width, first, count, seed, readout=args.readout,
                           preactivations=list(pairs), dtype=args.dtype, on_network=tick)
        arrays = {"readout": ens.readout}
        arrays.update({f"preactivation_{t}_{s}": ens.preactivations[(t, s)] for t, s in pairs})
        return arrays

    with ProgressBar(args.networks, f"width {args.width}", enabled=not args.quiet) as bar:
        arrays = run_chunks(args.networks, args.chunk_size, compute, store=store, key=key, resume=args.resume,
                            progress=bar)
    mean, sem = mean_and_sem(arrays["readout"])
    meta = {"network": repr(net), "width": args.width, "networks": args.networks, "seed": seed,
            "readout": args.readout, "preactivation_pairs": [list(p) for p in pairs], "dtype": args.dtype}
    np.savez(out, readout_mean=mean, readout_sem=sem, meta=json.dumps(meta), **arrays)
    if not args.keep_checkpoints:
        for f in store.finished(key):
            f.unlink()
        if store.directory.is_dir() and not any(store.directory.iterdir()):
            store.directory.rmdir()
    print(f"wrote {out}: readout {arrays['readout'].shape} and {len(pairs)} pre-activation kernels of "
          f"{args.networks} networks of width {args.width}")
    return 0


# ------------------------------------------------------------------------------------------- converge

def cmd_converge(args) -> int:
    from .criticality import critical_weight_var
    from .experiments.checkpoint import ChunkStore
    from .experiments.convergence import convergence_study
    from .report.figures import FIGURES
    from .report.progress import ProgressBar
    from .report.summary import (
        chi1_values,
        convergence_block,
        depth_block,
        format_table,
        headline_rows,
        weight_var_block,
    )

    for wv in args.weight_vars:  # validate every network before sampling anything
        _net(args, "dnn", wv)
    x = _inputs(args)
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
    (out / "convergence.json").write_text(json.dumps(summary, indent=1, allow_nan=True), encoding="utf-8")
    if not args.no_plots:
        for name, data in figures.items():
            FIGURES[name.split("_")[0] if name.startswith("convergence") else name](data).savefig(out / data["file"])
    print(format_table(rows))
    print(f"wrote {out / 'convergence.json'}" + ("" if args.no_plots else f" and {len(figures)} figures"))
    return 0


# ------------------------------------------------------------------------------------------- demo

def cmd_demo(args) -> int:
    from .report.demo import run_demo

    run_demo(args.out, resume=args.resume, quiet=args.quiet, seed=args.seed, networks=args.networks)
    return 0


# ------------------------------------------------------------------------------------------- parser

def _examples(text: str) -> str:
    return "examples:\n" + textwrap.indent(textwrap.dedent(text).strip(), "  ")


def build_parser() -> argparse.ArgumentParser:
    fmt = argparse.RawDescriptionHelpFormatter
    parser = _Parser(prog="netfield", formatter_class=fmt,
                     description="Field theory of wide neural networks: mean-field kernels, sampled finite "
                                 "networks, and the DNN-vs-RNN convergence study.",
                     epilog=_examples("""
                         netfield demo                          # the full report in ./netfield-report/
                         netfield kernel --arch rnn --depth 5 --inputs x.npy --out k.npy
                         netfield sample --arch rnn --width 256 --networks 64 --out s.npz
                         netfield converge --weight-vars 0.8,1.5,4 --depth 6 --out conv/
                         netfield gp --data digits --arch rnn --readout last   # NNGP accuracy, log evidence
                         netfield nlo --arch rnn --depth 6 --activation tanh   # 1/n mean shift and fluctuations
                         netfield <command> --help              # options of one command"""))
    from . import __version__
    parser.add_argument("--version", action="version", version=f"netfield {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("kernel", help="mean-field (NNGP) readout kernel to .npy", formatter_class=fmt,
                       description="Mean-field readout kernel K(x1, x2) of a DNN or RNN (THEORY.md 2).",
                       epilog=_examples("""
                           netfield kernel --inputs x.npy --out k.npy                   # DNN, depth 3, erf
                           netfield kernel --arch rnn --depth 5 --activation tanh --weight-var 1.5 \\
                               --bias-var 0.5 --inputs seqs.npy --readout all --out k_all.npy
                           netfield kernel --inputs train.csv --inputs2 test.csv --out k_cross.npy"""))
    p.add_argument("--arch", choices=("dnn", "rnn"), default="dnn", help="architecture (default: dnn)")
    _add_prior(p)
    _add_inputs(p)
    p.add_argument("--inputs2", metavar="FILE", help="second inputs (default: the first; symmetric kernel)")
    p.add_argument("--readout", choices=("last", "all"), default="last",
                   help="'last': output at the last step (N, N); 'all': every step of every sequence (RNN)")
    p.add_argument("--out", default="kernel.npy", help="output .npy file (default: kernel.npy)")
    p.set_defaults(func=cmd_kernel)

    p = sub.add_parser("sample", help="empirical kernels of sampled finite networks to .npz", formatter_class=fmt,
                       description="Sample finite networks and record their empirical readout and pre-activation "
                                   "kernels. Finished chunks are checkpointed; --resume continues a killed run "
                                   "with identical results.",
                       epilog=_examples("""
                           netfield sample --arch rnn --depth 6 --width 256 --networks 128 --seed 1 --out s.npz
                           netfield sample --inputs x.npy --width 1024 --networks 500 --out big.npz   # Ctrl-C, then:
                           netfield sample --inputs x.npy --width 1024 --networks 500 --out big.npz --resume"""))
    p.add_argument("--arch", choices=("dnn", "rnn"), default="dnn", help="architecture (default: dnn)")
    _add_prior(p)
    _add_inputs(p)
    p.add_argument("--width", type=int, default=128, help="hidden width n (default: %(default)s)")
    p.add_argument("--networks", type=int, default=32, help="number of sampled networks (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--readout", choices=("last", "all"), default="last", help="readout kernel rows (default: last)")
    p.add_argument("--preactivations", choices=("none", "last", "equal", "all"), default="equal",
                   help="pre-activation kernels to keep (default: equal-time)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--chunk-size", type=int, default=16, help="networks per checkpoint chunk (default: %(default)s)")
    p.add_argument("--checkpoint", metavar="DIR", help="checkpoint directory (default: OUT.checkpoints)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks of an interrupted run")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep chunk files after success")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="samples.npz", help="output .npz (default: samples.npz)")
    p.set_defaults(func=cmd_sample)

    p = sub.add_parser("converge", help="DNN vs RNN convergence to the mean field", formatter_class=fmt,
                       description="Distance between empirical and mean-field kernels of DNNs and RNNs against the "
                                   "width, fitted power laws and the RNN/DNN amplitude ratio, for every weight "
                                   "variance and step. Writes OUT/convergence.json and figures.",
                       epilog=_examples("""
                           netfield converge                                  # erf, T=6, weight_var 1.5, n=16..1024
                           netfield converge --weight-vars 0.8,1.5,2.23,4 --depth 8 --widths 16,64,256 --out conv
                           netfield converge --out conv --resume              # continue an interrupted run"""))
    _add_prior(p, weight_var=False, bias_var=0.5)
    p.set_defaults(depth=6)
    _add_inputs(p)
    p.add_argument("--weight-vars", type=_float_list, default=(1.5,), help="comma-separated (default: 1.5)")
    p.add_argument("--widths", type=_int_list, default=(16, 32, 64, 128, 256, 512, 1024),
                   help="comma-separated widths (default: 16,32,...,1024)")
    p.add_argument("--networks", type=int, default=32, help="networks per width (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--chunk-size", type=int, default=8, help="networks per checkpoint chunk (default: %(default)s)")
    p.add_argument("--checkpoint", metavar="DIR", help="checkpoint directory (default: OUT/.checkpoints)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks of an interrupted run")
    p.add_argument("--no-plots", action="store_true", help="write only convergence.json")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="netfield-converge", help="output folder (default: ./netfield-converge)")
    p.set_defaults(func=cmd_converge)

    try:  # netfield.criticality registers its own subcommand (phase-diagram)
        from .criticality.cli import add_parser as add_criticality_parser
    except ImportError:  # pragma: no cover - the module is optional for the CLI to work
        add_criticality_parser = None
    if add_criticality_parser is not None:
        add_criticality_parser(sub)

    try:  # netfield.gp registers its own subcommand (gp)
        from .gp.cli import add_parser as add_gp_parser
    except ImportError:  # pragma: no cover - the module is optional for the CLI to work
        add_gp_parser = None
    if add_gp_parser is not None:
        add_gp_parser(sub)

    from .nlo.cli import add_parser as add_nlo_parser  # netfield.nlo registers `nlo`

    add_nlo_parser(sub)

    p = sub.add_parser("demo", help="the DNN-vs-RNN report (figures, summary.json, index.html)", formatter_class=fmt,
                       description="Reproduce 'finite RNNs converge slower to the mean field than DNNs' on digit "
                                   "images bundled with scikit-learn (no download), with the phase diagram, GP "
                                   "classification and 1/n sections; 2-3 minutes on 2 cores.",
                       epilog=_examples("""
                           netfield demo
                           netfield demo --out /tmp/report --seed 3
                           netfield demo --out /tmp/report --resume     # after an interruption"""))
    p.add_argument("--out", default="netfield-report", help="report folder (default: ./netfield-report)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--networks", type=int, default=32, help="networks per width (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks in OUT/.checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress output and no table")
    p.set_defaults(func=cmd_demo)
    return parser


def _checkpoint_dir(args) -> str:
    """Where a command keeps its finished chunks (for the interruption message)."""
    if getattr(args, "checkpoint", None):
        return str(args.checkpoint)
    if args.command == "sample":
        return f"{args.out}.checkpoints"
    if not getattr(args, "out", None):
        return "nowhere (pass --out DIR to keep finished chunks)"
    return str(Path(args.out) / ".checkpoints")


def _one_line(err: BaseException) -> str:
    text = " ".join(str(err).split()) or type(err).__name__
    if isinstance(err, KeyError):
        text = text.strip("'\"")
    return text


def main(argv=None) -> int:
    """Entry point of the ``netfield`` console script; returns the exit status."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exit_:  # --help, --version, or a usage error already reported in one line
        return int(exit_.code or 0)
    if args.command is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return args.func(args)
    except KeyboardInterrupt:
        print(f"\nnetfield: interrupted; finished chunks are kept in {_checkpoint_dir(args)}; run the same "
              f"command with --resume to continue", file=sys.stderr)
        return EXIT_INTERRUPTED
    except (CLIError, ValueError, TypeError, OSError) as err:  # bad input: one line, no traceback
        print(f"netfield: error: {_one_line(err)}", file=sys.stderr)
        return EXIT_USAGE


__all__ = ["build_parser", "main"]
