"""``netfield`` command line: a thin layer over the public API.

Subcommands: ``kernel`` (mean-field kernel to .npy), ``sample`` (empirical kernels of sampled finite
networks to .npz, resumable), ``converge`` (DNN vs RNN convergence study, resumable), ``feature``
(feature-learning theory of muP networks vs posterior sampling, resumable) and ``demo`` (the full
report); ``phase-diagram``, ``gp`` and ``nlo`` are registered by their packages. Bad input prints
``netfield: error: <one line>`` to stderr and exits with status 2.
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


# ------------------------------------------------------------------------------------------- feature

FEATURE_EXAMPLES = """
    netfield feature                                   # RNN, T=3, erf, toy task: q vs signal, critical signal
    netfield feature --arch dnn --signal 0.5 1.0      # the DNN: no cross-time order, no transition
    netfield feature --signal 0.2 1.0 --width 64 --samples 300 --out feature.json   # theory vs HMC sampling
    netfield feature --width 64 --checkpoint-dir ckpt --out f.json --resume          # continue a killed run
    netfield feature --data task.npz --supervised-steps 1 3 --steps 3                # own x, y (y: (2, P))"""

FEATURE_NOTES = """

Theory (docs/feature.md): the posterior saddle point of a muP network at each signal strength s
(targets sqrt(s) y, likelihood variance kappa / n), the leading eigenvalue of its cross-time Jacobian
(F9; the RNN's transition is where it crosses 1), and the cross-time order parameter q (F11) on the
solution the RNN settles on (0 below the transition, and always for the DNN). --width also samples
finite networks of that width at every signal (HMC, readout integrated out) and prints their q
(from the sampled K and K^2) with its autocorrelation time tau in HMC iterations.
Default task: x = numpy.random.default_rng(0).normal(size=(2, 3)), y = [1, -1] (the same targets at
every supervised step)."""


def _check_positive(option: str, value: float) -> float:
    import math

    if not math.isfinite(value) or value <= 0:
        raise CLIError(f"{option} must be a finite number > 0, got {value:g}")
    return value


def _feature_data(args, supervised: int):
    """(x, y) from --data FILE.npz (arrays x and y) or the built-in toy task."""
    import numpy as np

    if args.data is None:
        x = np.random.default_rng(0).normal(size=(2, 3))
        return x, np.tile([1.0, -1.0], (supervised, 1)) if supervised > 1 else np.array([1.0, -1.0])
    path = Path(args.data)
    if path.suffix.lower() != ".npz":
        raise CLIError(f"--data must be an .npz file with arrays x and y, got {args.data!r}")
    if not path.is_file():
        raise CLIError(f"--data {args.data!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as data:
            missing = [name for name in ("x", "y") if name not in data.files]
            if missing:
                raise CLIError(f"--data {args.data!r} must hold arrays 'x' and 'y', has {sorted(data.files)}")
            return np.asarray(data["x"]), np.asarray(data["y"])
    except (OSError, ValueError) as err:  # not a zip file, pickled objects, ...
        raise CLIError(f"--data {args.data!r} could not be read: {_one_line(err)}") from None


def _feature_checks(args):
    """Validate every option before any computation: (net, x, y, signals, supervised steps)."""
    from ._checks import check_output_file
    from .feature import build_problem

    if args.out:
        check_output_file(args.out, "--out", (".json",))
    _check_positive("--kappa", args.kappa)
    for s in args.signal:
        _check_positive("--signal", s)
    if len(set(args.signal)) != len(args.signal):
        raise CLIError(f"--signal values must be distinct, got {' '.join(f'{s:g}' for s in args.signal)}")
    for option, value, minimum in (("--steps", args.depth, 1), ("--points", args.points, 1), ("--seed", args.seed, 0),
                                   ("--refine", args.refine, 0), ("--chains", args.chains, 1), ("--samples", args.samples, 1),
                                   ("--thin", args.thin, 1), ("--burn-in", args.burn_in, 0)):
        if value < minimum:
            raise CLIError(f"{option} must be an integer >= {minimum}, got {value}")
    if args.width is not None and args.width < 1:
        raise CLIError(f"--width must be an integer >= 1, got {args.width}")
    if args.checkpoint_dir is not None:
        if args.width is None:
            raise CLIError("--checkpoint-dir needs --width (it holds the sampler's checkpoints)")
        if Path(args.checkpoint_dir).exists() and not Path(args.checkpoint_dir).is_dir():
            raise CLIError(f"--checkpoint-dir {args.checkpoint_dir!r} exists and is not a folder")
    if args.resume and args.checkpoint_dir is None:
        raise CLIError("--resume needs --checkpoint-dir DIR (where the interrupted run left its checkpoints)")
    T = args.depth
    steps = (T,) if args.supervised_steps is None else tuple(args.supervised_steps)
    if any(not 1 <= t <= T for t in steps) or len(set(steps)) != len(steps):
        raise CLIError(f"--supervised-steps must be distinct steps in 1..{T} (--steps), "
                       f"got {' '.join(map(str, steps))}")
    net = _net(args, args.arch)
    x, y = _feature_data(args, len(steps))
    try:  # shapes of x and y (cheap: builds the problem of the first signal, solves nothing)
        build_problem(net, x, y, kappa=args.kappa, signal=min(args.signal), supervised_steps=steps,
                      points=args.points, seed=args.seed)
    except (ValueError, TypeError) as err:
        where = f"--data {args.data!r}" if args.data else "the built-in task"
        raise CLIError(f"{where}: {_one_line(err)}") from None
    return net, x, y, tuple(sorted(args.signal)), steps


def _critical_signal(net, x, y, branch, args, steps):
    """The RNN's critical signal (F9): transition() on the first pair of scanned signals whose leading
    eigenvalue brackets 1 (the scan's eigenvalues are the branch's; None when none brackets)."""
    from .feature import transition

    lam = branch.eigenvalue
    for i in range(len(lam) - 1):
        if lam[i] < 1.0 <= lam[i + 1]:
            scan = transition(net, x, y, kappa=args.kappa, signals=branch.signals[i:i + 2], refine=args.refine,
                              points=args.points, seed=args.seed, supervised_steps=steps)
            return scan.critical_signal
    return None


def _feature_table(branch, sampled) -> str:
    head = f"{'signal':>8s} {'eigenvalue':>11s} {'q theory':>9s}"
    if sampled:
        head += f" {'q sampled':>10s} {'tau':>7s}"
    rows = [head]
    for i, s in enumerate(branch.signals):
        row = f"{s:8.4g} {branch.eigenvalue[i]:11.4f} {branch.order[i]:9.4f}"
        if sampled:
            row += f" {sampled[i]['order']:10.4f} {sampled[i]['tau']:7.1f}"
        rows.append(row)
    return "\n".join(rows)


def cmd_feature(args) -> int:
    from .feature import posterior_samples
    from .feature.transition import broken_branch, order_parameter
    from .report.progress import ProgressBar, Stages

    net, x, y, signals, steps = _feature_checks(args)
    P = len(x)
    stages = Stages(1 + (args.arch == "rnn") + (len(signals) if args.width else 0), enabled=not args.quiet)
    stages(f"theory: saddle points at {len(signals)} signal(s)")
    branch = broken_branch(net, x, y, kappa=args.kappa, signals=signals, points=args.points, seed=args.seed,
                           supervised_steps=steps)
    critical = None
    if args.arch == "rnn":
        stages("theory: critical signal")
        critical = _critical_signal(net, x, y, branch, args, steps)
    sampled = None
    if args.width:
        sampled = []
        ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else None
        for s in signals:
            stages(f"sampling width {args.width} at signal {s:g} ({args.burn_in} burn-in iterations, then "
                   f"{args.samples} samples x {args.thin})")
            with ProgressBar(args.samples, f"signal {s:g}", enabled=not args.quiet) as bar:
                post = posterior_samples(net, x, y, width=args.width, kappa=args.kappa, signal=s,
                                         supervised_steps=steps, chains=args.chains, samples=args.samples,
                                         thin=args.thin, burn_in=args.burn_in, seed=args.seed,
                                         checkpoint=None if ckpt is None else ckpt / f"feature_{s!r}.npz",
                                         resume=args.resume, progress=bar)
            q = order_parameter(post.kernel, post.kernel_sq, train_patterns=P)
            sampled.append({"signal": s, "order": q, **post.to_dict()})
    print(f"feature learning of {net!r}: kappa {args.kappa:g}, {P} patterns, supervised steps "
          f"{', '.join(map(str, steps))}" + (f", sampled width {args.width}" if args.width else ""))
    print(_feature_table(branch, sampled))
    if args.arch == "dnn":
        print("no transition (DNN)")
    elif critical is not None:
        print(f"critical signal (theory): {critical:.4g}")
    else:
        above = branch.eigenvalue[0] >= 1.0
        print(f"critical signal (theory): not in the scanned signals (leading eigenvalue "
              f"{'>= 1 from' if above else '< 1 up to'} signal {signals[0 if above else -1]:g})")
    if args.out:
        config = {"network": repr(net), "arch": args.arch, "steps": args.depth, "activation": args.activation,
                  "weight_var": args.weight_var, "bias_var": args.bias_var, "input_var": args.input_var,
                  "readout_var": args.readout_var, "kappa": args.kappa, "signals": list(signals),
                  "data": args.data, "supervised_steps": list(steps), "points": args.points, "seed": args.seed,
                  "width": args.width, "chains": args.chains, "samples": args.samples, "thin": args.thin,
                  "burn_in": args.burn_in}
        payload = {"config": config, "theory": branch.to_dict(), "critical_signal": critical, "sampling": sampled}
        with open(args.out, "w", encoding="utf-8") as fh:
            json.dump(payload, fh, indent=1)
        print(f"wrote {args.out}")
    return 0


def _add_feature_parser(sub, fmt):
    p = sub.add_parser("feature", help="feature learning of muP networks: cross-time order vs signal, theory and "
                       "sampling", formatter_class=fmt,
                       description="Feature-learning theory of a trained (Bayesian, muP) DNN or RNN: the posterior "
                                   "saddle point vs the signal strength, the RNN-only cross-time transition, and "
                                   "optionally HMC samples of finite networks (docs/feature.md).",
                       epilog=_examples(FEATURE_EXAMPLES) + FEATURE_NOTES)
    p.add_argument("--arch", choices=("rnn", "dnn"), default="rnn", help="architecture (default: rnn)")
    g = p.add_argument_group("network")
    g.add_argument("--steps", "--depth", dest="depth", type=int, default=3, metavar="T",
                   help="time steps (RNN) = layers (DNN) (default: %(default)s)")
    g.add_argument("--activation", default="erf", metavar="NAME",
                   help="activation name: erf, tanh, linear, ... (default: erf)")
    g.add_argument("--weight-var", type=float, default=1.5, help="weight variance (default: %(default)s)")
    g.add_argument("--bias-var", type=float, default=0.0, help="bias variance (default: %(default)s)")
    g.add_argument("--input-var", type=float, default=1.0, help="input-weight variance (default: %(default)s)")
    g.add_argument("--readout-var", type=float, default=1.0, help="readout variance (default: %(default)s)")
    p.set_defaults(readout_bias_var=0.0)  # not part of the feature-learning model
    g = p.add_argument_group("task and theory")
    g.add_argument("--kappa", type=float, default=0.1, help="likelihood variance times the width (default: 0.1)")
    g.add_argument("--signal", type=float, nargs="+", default=[0.2, 0.6, 1.0], metavar="S",
                   help="signal strengths s > 0: targets sqrt(s) y (default: 0.2 0.6 1.0)")
    g.add_argument("--data", metavar="FILE.npz", help="arrays x (P, d) or (P, T_in, d) and y (P,) or "
                   "(len(supervised steps), P) (default: the built-in toy task, 2 patterns)")
    g.add_argument("--supervised-steps", type=int, nargs="+", metavar="t",
                   help="steps 1..T with a target, one row of y each (default: the last step)")
    g.add_argument("--points", type=int, default=32768, help="quadrature points of the single-site averages "
                   "(default: %(default)s)")
    g.add_argument("--refine", type=int, default=4, help="regula-falsi steps locating the critical signal "
                   "(default: %(default)s)")
    g.add_argument("--seed", type=int, default=0, help="seed of the quadrature and the sampler (default: 0)")
    g = p.add_argument_group("sampling finite networks (HMC)")
    g.add_argument("--width", type=int, help="also sample networks of this width at every signal")
    g.add_argument("--chains", type=int, default=4, help="independent chains (default: %(default)s)")
    g.add_argument("--samples", type=int, default=300, help="measurements per chain (default: %(default)s)")
    g.add_argument("--thin", type=int, default=2, help="HMC iterations per measurement (default: %(default)s)")
    g.add_argument("--burn-in", type=int, default=300, help="discarded HMC iterations (default: %(default)s)")
    g.add_argument("--checkpoint-dir", metavar="DIR", help="sampler checkpoints, DIR/feature_<signal>.npz")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoints in --checkpoint-dir")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--out", metavar="FILE.json", help="write config, theory, critical signal and samples here")
    p.set_defaults(func=cmd_feature)
    return p


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
                         netfield feature --signal 0.2 1.0 --width 64   # feature learning: theory vs sampling
                         netfield <command> --help              # options of one command"""))
    from . import __version__
    parser.add_argument("--version", action="version", version=f"netfield {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    p = sub.add_parser("kernel", help="mean-field (NNGP) readout kernel to .npy", formatter_class=fmt,
                       description="Mean-field readout kernel K(x1, x2) of a DNN or RNN (docs/theory.md 2).",
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
    _add_feature_parser(sub, fmt)

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
    if args.command == "feature":
        return args.checkpoint_dir or "nowhere (pass --checkpoint-dir DIR to keep the sampler's state)"
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
