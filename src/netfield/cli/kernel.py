"""``netfield kernel``: the mean-field (NNGP) readout kernel of a DNN or RNN to .npy."""

from __future__ import annotations

from .common import FORMATTER, add_arch, add_inputs, add_prior, examples, inputs, network, out_file


def run(args) -> int:
    import numpy as np

    from ..meanfield import kernel

    out = out_file(args.out, ".npy")
    net = network(args, args.arch)
    x1 = inputs(args)
    x2 = inputs(args, args.inputs2) if args.inputs2 else None
    k = np.asarray(kernel(net, x1, x2, readout=args.readout))
    np.save(out, k)
    print(f"wrote {out}: {k.shape} readout kernel ({args.readout}) of {net!r}")
    return 0


def add_parser(sub):
    """Register ``kernel`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("kernel", help="mean-field (NNGP) readout kernel to .npy", formatter_class=FORMATTER,
                       description="Mean-field readout kernel K(x1, x2) of a DNN or RNN (docs/theory.md 2).",
                       epilog=examples("""
                           netfield kernel --inputs x.npy --out k.npy                   # DNN, depth 3, erf
                           netfield kernel --arch rnn --depth 5 --activation tanh --weight-var 1.5 \\
                               --bias-var 0.5 --inputs seqs.npy --readout all --out k_all.npy
                           netfield kernel --inputs train.csv --inputs2 test.csv --out k_cross.npy"""))
    add_arch(p, "dnn")
    add_prior(p, arch_defaults=True)
    add_inputs(p)
    p.add_argument("--inputs2", metavar="FILE", help="second inputs (default: the first; symmetric kernel)")
    p.add_argument("--readout", choices=("last", "all"), default="last",
                   help="'last': output at the last step (N, N); 'all': every step of every sequence (RNN)")
    p.add_argument("--out", default="kernel.npy", help="output .npy file (default: kernel.npy)")
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
