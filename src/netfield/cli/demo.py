"""``netfield demo``: the full report (figures, summary.json, index.html)."""

from __future__ import annotations

from .common import FORMATTER, CLIError, examples


def run(args) -> int:
    from ..report.demo import run_demo

    if args.networks is not None and args.networks < 2:
        raise CLIError(f"--networks must be an integer >= 2 (a standard error needs two networks), got {args.networks}")
    if args.seed < 0:
        raise CLIError(f"--seed must be an integer >= 0, got {args.seed}")
    run_demo(args.out, resume=args.resume, quiet=args.quiet, seed=args.seed, networks=args.networks,
             full=args.full, cache=not args.no_cache)
    return 0


def add_parser(sub):
    """Register ``demo`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("demo", help="the DNN-vs-RNN report (figures, summary.json, index.html)",
                       formatter_class=FORMATTER,
                       description="Reproduce 'finite RNNs converge slower to the mean field than DNNs' on digit "
                                   "images bundled with scikit-learn (no download), with the phase diagram, GP "
                                   "classification, 1/n, any-architecture and feature-learning sections: about 5.5 "
                                   "minutes of CPU on a first run, 3 on a second (compiled programs are cached), "
                                   "--full about 9. The report states each section's time, sample sizes "
                                   "and full-size command.",
                       epilog=examples("""
                           netfield demo
                           netfield demo --out /tmp/report --seed 3
                           netfield demo --full --out full-report             # the larger sample plans
                           netfield demo --full --out full-report --resume    # after an interruption
                           NETFIELD_NO_COMPILATION_CACHE=1 netfield demo       # same as --no-cache"""))
    p.add_argument("--out", default="netfield-report", help="report folder (default: ./netfield-report)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--networks", type=int, default=None,
                   help="networks per width of the convergence study (default: 32, the plan's)")
    p.add_argument("--full", action="store_true",
                   help="the full-size sample plans (widths to 512, more networks and posterior samples)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks and sections in OUT/.checkpoints")
    p.add_argument("--no-cache", action="store_true",
                   help="do not use JAX's persistent compilation cache (~/.cache/netfield/jax, or "
                        "$NETFIELD_CACHE_DIR/jax; also off with NETFIELD_NO_COMPILATION_CACHE=1)")
    p.add_argument("--quiet", action="store_true", help="no progress output and no table")
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
