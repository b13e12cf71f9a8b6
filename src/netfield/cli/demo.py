"""``netfield demo``: the full report (figures, summary.json, index.html)."""

from __future__ import annotations

from .common import FORMATTER, examples


def run(args) -> int:
    from ..report.demo import run_demo

    run_demo(args.out, resume=args.resume, quiet=args.quiet, seed=args.seed, networks=args.networks)
    return 0


def add_parser(sub):
    """Register ``demo`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("demo", help="the DNN-vs-RNN report (figures, summary.json, index.html)",
                       formatter_class=FORMATTER,
                       description="Reproduce 'finite RNNs converge slower to the mean field than DNNs' on digit "
                                   "images bundled with scikit-learn (no download), with the phase diagram, GP "
                                   "classification and 1/n sections; 2-3 minutes on 2 cores.",
                       epilog=examples("""
                           netfield demo
                           netfield demo --out /tmp/report --seed 3
                           netfield demo --out /tmp/report --resume     # after an interruption"""))
    p.add_argument("--out", default="netfield-report", help="report folder (default: ./netfield-report)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--networks", type=int, default=32, help="networks per width (default: %(default)s)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks in OUT/.checkpoints")
    p.add_argument("--quiet", action="store_true", help="no progress output and no table")
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
