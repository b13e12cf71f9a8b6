"""``netfield feature``: feature-learning theory of muP networks vs posterior sampling (resumable)."""

from __future__ import annotations

import contextlib
import json
import math
from pathlib import Path

from .common import (
    FORMATTER,
    CLIError,
    add_arch,
    add_cluster,
    check_output_file,
    cluster,
    examples,
    network,
    one_line,
)

FEATURE_EXAMPLES = """
    netfield feature                                   # RNN, T=3, erf, toy task: q vs signal, critical signal
    netfield feature --arch dnn --signal 0.5 1.0      # the DNN: no cross-time order, no transition
    netfield feature --signal 0.2 1.0 --width 64 --samples 300 --out feature.json   # theory vs HMC sampling
    netfield feature --width 64 --checkpoint-dir ckpt --out f.json --resume          # continue a killed run
    netfield feature --width 256 --chains 4 --chain-group 1 --workers 2             # one task per chain
    netfield feature --data task.npz --supervised-steps 1 3 --steps 3                # own x, y (y: (2, P))
    netfield feature --data digits.npz --steps 5 --rule mcmc --points 16384 --checkpoint-dir ck   # 20 x 5: chains"""

FEATURE_NOTES = """

Theory (docs/feature.md): the posterior saddle point of a muP network at each signal strength s
(targets sqrt(s) y, likelihood variance kappa / n), the leading eigenvalue of its cross-time Jacobian
(F9; the RNN's transition is where it crosses 1), and the cross-time order parameter q (F11) on the
solution the RNN settles on (0 below the transition, and always for the DNN). --width also samples
finite networks of that width at every signal (HMC, readout integrated out) and prints their q
(from the sampled K and K^2) with its autocorrelation time tau in HMC iterations.
With --rule mcmc (and by default above T P = 24 trajectory dimensions) the single-site averages come
from Markov chains with a stated error (F8c, for tens of patterns and steps): the table then gives q of
the solution reached, the kernel's numerical error and the chains' R-hat; the eigenvalue and the
critical signal need a quadrature rule (qmc / hermite, T P <= 24).
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
        raise CLIError(f"--data {args.data!r} could not be read: {one_line(err)}") from None


def _feature_checks(args):
    """Validate every option before any computation: (net, x, y, signals, supervised steps)."""
    from ..feature import build_problem
    from ..feature.theory import resolve_rule

    if args.out:
        check_output_file(args.out, "--out", (".json",))
    _check_positive("--kappa", args.kappa)
    for s in args.signal:
        _check_positive("--signal", s)
    if len(set(args.signal)) != len(args.signal):
        raise CLIError(f"--signal values must be distinct, got {' '.join(f'{s:g}' for s in args.signal)}")
    for option, value, minimum in (("--steps", args.depth, 1), ("--points", args.points, 1), ("--seed", args.seed, 0),
                                   ("--refine", args.refine, 0), ("--replicates", args.replicates, 2),
                                   ("--chains", args.chains, 1), ("--samples", args.samples, 1),
                                   ("--thin", args.thin, 1), ("--burn-in", args.burn_in, 0)):
        if value < minimum:
            raise CLIError(f"{option} must be an integer >= {minimum}, got {value}")
    if not (math.isfinite(args.rtol) and args.rtol >= 0):
        raise CLIError(f"--rtol must be a finite number >= 0 (0: no tolerance), got {args.rtol:g}")
    if args.width is not None and args.width < 1:
        raise CLIError(f"--width must be an integer >= 1, got {args.width}")
    if args.chain_group is not None and not 1 <= args.chain_group <= args.chains:
        raise CLIError(f"--chain-group must be an integer between 1 and --chains ({args.chains}), got {args.chain_group}")
    cluster(args)
    if args.checkpoint_dir is not None and Path(args.checkpoint_dir).exists() and not Path(args.checkpoint_dir).is_dir():
        raise CLIError(f"--checkpoint-dir {args.checkpoint_dir!r} exists and is not a folder")
    if args.resume and args.checkpoint_dir is None:
        raise CLIError("--resume needs --checkpoint-dir DIR (where the interrupted run left its checkpoints)")
    T = args.depth
    steps = (T,) if args.supervised_steps is None else tuple(args.supervised_steps)
    if any(not 1 <= t <= T for t in steps) or len(set(steps)) != len(steps):
        raise CLIError(f"--supervised-steps must be distinct steps in 1..{T} (--steps), "
                       f"got {' '.join(map(str, steps))}")
    net = network(args, args.arch)
    x, y = _feature_data(args, len(steps))
    try:  # shapes of x and y (cheap: builds the problem of the first signal with no nodes, solves nothing)
        probe = build_problem(net, x, y, kappa=args.kappa, signal=min(args.signal), supervised_steps=steps,
                              points=args.points, seed=args.seed, rule="mcmc")
    except (ValueError, TypeError) as err:
        where = f"--data {args.data!r}" if args.data else "the built-in task"
        raise CLIError(f"{where}: {one_line(err)}") from None
    sampled_theory = not probe.linear and resolve_rule(args.rule, args.points, probe.T, probe.P)[0] == "mcmc"
    if args.checkpoint_dir is not None and args.width is None and not sampled_theory:
        raise CLIError("--checkpoint-dir needs --width (the sampler's checkpoints) or --rule mcmc (the theory's)")
    return net, x, y, tuple(sorted(args.signal)), steps, sampled_theory


def _critical_signal(net, x, y, branch, args, steps):
    """The RNN's critical signal (F9) and its numerical error: transition() on the first pair of scanned
    signals whose leading eigenvalue brackets 1 (both None when none brackets)."""
    from ..feature import transition

    lam = branch.eigenvalue
    for i in range(len(lam) - 1):
        if lam[i] < 1.0 <= lam[i + 1]:
            scan = transition(net, x, y, kappa=args.kappa, signals=branch.signals[i:i + 2], refine=args.refine,
                              points=args.points, seed=args.seed, supervised_steps=steps, progress=not args.quiet,
                              replicates=args.replicates, rtol=args.rtol or None, rule=args.rule)
            return scan.critical_signal, scan.critical_signal_error
    return None, None


def _table(head: str, rows: list, sampled) -> str:
    """The printed table: ``rows`` (one string per signal) with, after --width, the sampled q and tau."""
    if sampled:
        head += f" {'q sampled':>10s} {'tau':>7s}"
        rows = [row + f" {entry['order']:10.4f} {entry['tau']:7.1f}" for row, entry in zip(rows, sampled)]
    return "\n".join([head, *rows])


def _feature_table(branch, sampled) -> str:
    rows = [f"{s:8.4g} {branch.eigenvalue[i]:11.4f} {branch.order[i]:9.4f}" for i, s in enumerate(branch.signals)]
    return _table(f"{'signal':>8s} {'eigenvalue':>11s} {'q theory':>9s}", rows, sampled)


def _sampled_branch(net, x, y, signals, steps, args, stages) -> dict:
    """The saddle point at every signal by Markov chains (F8c): q of the solution reached, the largest
    numerical error of its kernel relative to the kernel's scale, and the chains' diagnostics."""
    from ..feature import posterior_kernels
    from ..feature.transition import order_parameter

    rows = {"rule": "mcmc", "signals": list(signals), "order": [], "order_noise": [], "kernel_error": [], "rhat": [],
            "ess": [], "draws": [], "seconds": []}
    ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else None
    for s in signals:
        stages(f"theory: sampled saddle point at signal {s:g} (Markov chains, up to {args.points} draws)")
        r = posterior_kernels(net, x, y, kappa=args.kappa, signal=s, supervised_steps=steps, points=args.points,
                              seed=args.seed, rule="mcmc", progress=not args.quiet,
                              checkpoint=None if ckpt is None else ckpt / f"theory_{s!r}.npz", resume=args.resume)
        scale = float(abs(r.kernel).max())
        rows["order"].append(order_parameter(r.kernel, train_patterns=r.problem.P_train, free=r.problem.free))
        # the value q takes from the kernel's numerical noise alone (q^2 averages squared entries, so noise
        # adds to it): K_ts^2 replaced by its error^2; a q below this floor is consistent with q = 0
        rows["order_noise"].append(order_parameter(r.kernel, r.kernel_error ** 2, train_patterns=r.problem.P_train,
                                                   free=r.problem.free))
        rows["kernel_error"].append(float(r.kernel_error.max()) / scale)
        rows["rhat"].append(float(r.sampling["rhat"]))
        rows["ess"].append(float(r.sampling["ess"]))
        rows["draws"].append(int(r.sampling["samples"]))
        rows["seconds"].append(float(sum(rnd["sample_s"] + rnd["solve_s"] for rnd in r.sampling["rounds"])))
    return rows


def _sampled_table(theory, sampled) -> str:
    rows = [f"{s:8.4g} {theory['order'][i]:9.4f} {theory['order_noise'][i]:8.4f} {theory['kernel_error'][i]:10.2e} "
            f"{theory['rhat'][i]:7.4f} {theory['draws'][i]:7d}" for i, s in enumerate(theory["signals"])]
    return _table(f"{'signal':>8s} {'q theory':>9s} {'q noise':>8s} {'kernel err':>10s} {'R-hat':>7s} {'draws':>7s}",
                  rows, sampled)


def run(args) -> int:
    from .._runtime.progress import ProgressBar, Stages
    from ..distributed import executor
    from ..feature import posterior_samples
    from ..feature.transition import broken_branch, order_parameter
    from ..program.shape import chain_of

    net, x, y, signals, steps, sampled_theory = _feature_checks(args)
    P = len(x)
    chain = chain_of(net, x)
    shared = chain is not None and chain.shared   # weight sharing (an RNN) is what makes the transition
    theory_stages = len(signals) if sampled_theory else 1 + shared
    stages = Stages(theory_stages + (len(signals) if args.width else 0), enabled=not args.quiet)
    critical = critical_error = branch = rows = None
    if sampled_theory:
        rows = _sampled_branch(net, x, y, signals, steps, args, stages)
    else:
        stages(f"theory: saddle points at {len(signals)} signal(s)")
        branch = broken_branch(net, x, y, kappa=args.kappa, signals=signals, points=args.points, seed=args.seed,
                               supervised_steps=steps, progress=not args.quiet, rule=args.rule)
        if shared:
            stages("theory: critical signal")
            critical, critical_error = _critical_signal(net, x, y, branch, args, steps)
    sampled = None
    if args.width:
        sampled = []
        ckpt = Path(args.checkpoint_dir) if args.checkpoint_dir else None
        where = cluster(args)
        with contextlib.ExitStack() as stack:
            # one executor for every signal (a local cluster started once), none without --scheduler / --workers
            client = stack.enter_context(executor(**where)) if any(v is not None for v in where.values()) else None
            for s in signals:
                stages(f"sampling width {args.width} at signal {s:g} ({args.burn_in} burn-in iterations, then "
                       f"{args.samples} samples x {args.thin})")
                with ProgressBar(args.samples, f"signal {s:g}", enabled=not args.quiet) as bar:
                    post = posterior_samples(net, x, y, width=args.width, kappa=args.kappa, signal=s,
                                             supervised_steps=steps, chains=args.chains, samples=args.samples,
                                             thin=args.thin, burn_in=args.burn_in, seed=args.seed,
                                             checkpoint=None if ckpt is None else ckpt / f"feature_{s!r}.npz",
                                             resume=args.resume, progress=bar,
                                             chain_group=args.chain_group, client=client)
                q = order_parameter(post.kernel, post.kernel_sq, train_patterns=P)
                sampled.append({"signal": s, "order": q, **post.to_dict()})
    print(f"feature learning of {net!r}: kappa {args.kappa:g}, {P} patterns, supervised steps "
          f"{', '.join(map(str, steps))}" + (f", sampled width {args.width}" if args.width else ""))
    print(_sampled_table(rows, sampled) if sampled_theory else _feature_table(branch, sampled))
    if not shared:
        print("no transition (no weight sharing across steps: the transition is RNN-only)")
    elif sampled_theory:
        print("q theory: the order parameter of the saddle point the Markov-chain solver reached (F8c); q noise: "
              "the value the kernel's numerical error alone gives it (a q below it is consistent with 0); kernel "
              "err: its largest error relative to the kernel's scale; the eigenvalue and the critical signal need "
              "--rule qmc or hermite (T P <= 24)")
    elif critical is not None:
        print(f"critical signal (theory): {critical:.4g} ± {critical_error:.2g} (numerical error over "
              f"{args.replicates} QMC scramblings)")
    else:
        above = branch.eigenvalue[0] >= 1.0
        print(f"critical signal (theory): not in the scanned signals (leading eigenvalue "
              f"{'>= 1 from' if above else '< 1 up to'} signal {signals[0 if above else -1]:g})")
    if args.out:
        config = {"network": repr(net), "arch": args.arch, "steps": args.depth, "activation": args.activation,
                  "weight_var": args.weight_var, "bias_var": args.bias_var, "input_var": args.input_var,
                  "readout_var": args.readout_var, "kappa": args.kappa, "signals": list(signals),
                  "data": args.data, "supervised_steps": list(steps), "points": args.points, "seed": args.seed,
                  "rule": args.rule,
                  "replicates": args.replicates, "rtol": args.rtol,
                  "width": args.width, "chains": args.chains, "samples": args.samples, "thin": args.thin,
                  "burn_in": args.burn_in, "chain_group": args.chain_group}
        payload = {"config": config, "theory": rows if sampled_theory else branch.to_dict(), "critical_signal": critical,
                   "critical_signal_error": critical_error, "sampling": sampled}
        from .._runtime.checkpoint import atomic_write

        text = json.dumps(payload, indent=1)  # all of it before the file is touched; then written atomically
        atomic_write(args.out, lambda fh: fh.write(text), mode="w")
        print(f"wrote {args.out}")
    return 0


def add_parser(sub):
    """Register ``feature`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("feature", help="feature learning of muP networks: cross-time order vs signal, theory and "
                       "sampling", formatter_class=FORMATTER,
                       description="Feature-learning theory of a trained (Bayesian, muP) DNN or RNN: the posterior "
                                   "saddle point vs the signal strength, the RNN-only cross-time transition, and "
                                   "optionally HMC samples of finite networks (docs/feature.md).",
                       epilog=examples(FEATURE_EXAMPLES) + FEATURE_NOTES)
    add_arch(p, "rnn")
    g = p.add_argument_group("network")
    g.add_argument("--steps", "--depth", dest="depth", type=int, default=3, metavar="T",
                   help="time steps (RNN) = layers (DNN) (default: %(default)s)")
    g.add_argument("--activation", default="erf", metavar="NAME",
                   help="activation name: erf, tanh, linear, ... (default: erf)")
    g.add_argument("--weight-var", type=float, default=1.5,
                   help="weight variance (default: %(default)s, not netfield.rnn's 1.0: the toy task of "
                        "docs/feature.md, netfield.feature.study.TOY, whose RNN has a transition in the scanned signals)")
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
                   "(default: %(default)s, the feature study's of docs/feature.md; the API's transition / "
                   "broken_branch default to 2**13, faster and less accurate)")
    g.add_argument("--rule", choices=("auto", "qmc", "hermite", "mcmc"), default="auto",
                   help="single-site averages: tensor Gauss-Hermite, scrambled Sobol (QMC), or Markov chains with "
                   "reweighting (mcmc: tens of patterns and steps, docs/feature.md F8c; --points then counts the "
                   "final rounds' draws and --checkpoint-dir keeps each signal's solve); auto: Gauss-Hermite when "
                   ">= 6 nodes per dimension, QMC up to T P = 24, mcmc above (default: %(default)s)")
    g.add_argument("--refine", type=int, default=4, help="regula-falsi steps locating the critical signal "
                   "(default: %(default)s)")
    g.add_argument("--replicates", type=int, default=4, help="independently scrambled QMC node sets behind the "
                   "critical signal's error estimate (default: %(default)s; seeds --seed, --seed + 1, ...)")
    g.add_argument("--rtol", type=float, default=0.01, help="relative tolerance of the critical signal: its points "
                   "are raised x4 (up to 2**17) until its estimated error is below it, else a warning (default: "
                   "%(default)s; 0: one pass at --points)")
    g.add_argument("--seed", type=int, default=0, help="seed of the quadrature and the sampler (default: 0)")
    g = p.add_argument_group("sampling finite networks (HMC)")
    g.add_argument("--width", type=int, help="also sample networks of this width at every signal")
    # the sampler settings are the feature study's (netfield.feature.study.SAMPLER, docs/feature.md), not
    # posterior_samples' defaults (200 samples x 10, burn-in 500): each help says so
    g.add_argument("--chains", type=int, default=4, help="independent chains (default: %(default)s)")
    g.add_argument("--samples", type=int, default=300, help="measurements per chain (default: %(default)s, the feature study's; posterior_samples: 200)")
    g.add_argument("--thin", type=int, default=2, help="HMC iterations per measurement (default: %(default)s, the feature study's; posterior_samples: 10)")
    g.add_argument("--burn-in", type=int, default=300, help="discarded HMC iterations (default: %(default)s, the feature study's; posterior_samples: 500)")
    g.add_argument("--chain-group", type=int, default=None, metavar="G",
                   help="chains run together in one program (default: all --chains); the groups are run one "
                        "after another, or as one Dask task each with --workers / --scheduler (the same "
                        "numbers either way for the same G)")
    g.add_argument("--checkpoint-dir", metavar="DIR", help="sampler checkpoints, DIR/feature_<signal>.npz "
                   "(with --chain-group: DIR/feature_<signal>.chains-<a>-<b>.npz per group); with --rule mcmc also "
                   "the theory's, DIR/theory_<signal>.npz, written after every sampling round")
    g.add_argument("--resume", action="store_true", help="continue from the checkpoints in --checkpoint-dir")
    add_cluster(p)
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.add_argument("--out", metavar="FILE.json", help="write config, theory, critical signal and samples here")
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
