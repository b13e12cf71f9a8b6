"""``netfield kernel``: the mean-field readout kernel (NNGP or NTK) of any network to .npy."""

from __future__ import annotations

from .common import FORMATTER, add_arch, add_inputs, add_prior, examples, inputs, network, out_file


def run(args) -> int:
    import numpy as np

    from ..meanfield import kernel

    out = out_file(args.out, ".npy")
    net = network(args, args.arch)
    x1 = inputs(args)
    x2 = inputs(args, args.inputs2) if args.inputs2 else None
    k = np.asarray(kernel(net, x1, x2, readout=args.readout, kind=args.kind, parameterization=args.parameterization,
                          width=args.width))
    np.save(out, k)
    what = "NNGP" if args.kind == "nngp" else f"NTK ({args.parameterization} parameterization)"
    print(f"wrote {out}: {k.shape} {what} readout kernel ({args.readout}) of {net!r}")
    return 0


def add_parser(sub):
    """Register ``kernel`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("kernel", help="mean-field readout kernel (NNGP or NTK) to .npy", formatter_class=FORMATTER,
                       description="Mean-field readout kernel K(x1, x2) of any network (docs/theory.md 2), or its "
                                   "neural tangent kernel (--kind ntk, docs/ntk.md).",
                       epilog=examples("""
                           netfield kernel --inputs x.npy --out k.npy                   # DNN, depth 3, erf
                           netfield kernel --arch rnn --depth 5 --activation tanh --weight-var 1.5 \\
                               --bias-var 0.5 --inputs seqs.npy --readout all --out k_all.npy
                           netfield kernel --inputs train.csv --inputs2 test.csv --out k_cross.npy
                           netfield kernel --kind ntk --arch gru --depth 4 --inputs seqs.npy --out ntk.npy
                           netfield kernel --kind ntk --parameterization standard --width 512 --inputs x.npy"""))
    add_arch(p, "dnn")
    add_prior(p, arch_defaults=True)
    add_inputs(p)
    p.add_argument("--inputs2", metavar="FILE", help="second inputs (default: the first; symmetric kernel)")
    p.add_argument("--readout", choices=("last", "all"), default="last",
                   help="'last': output at the last step (N, N); 'all': every step of every sequence (RNN)")
    p.add_argument("--kind", choices=("nngp", "ntk"), default="nngp",
                   help="'nngp': the output covariance (default); 'ntk': the neural tangent kernel")
    p.add_argument("--parameterization", choices=("ntk", "standard"), default="ntk",
                   help="of the NTK: 'ntk' (default; neural-tangents' default) or 'standard' (needs --width)")
    p.add_argument("--width", type=int, default=None,
                   help="hidden width n for --parameterization standard (its NTK grows like n)")
    p.add_argument("--out", default="kernel.npy", help="output .npy file (default: kernel.npy)")
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
