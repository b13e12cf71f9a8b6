"""``netfield kernel``: the mean-field readout kernel (NNGP or NTK) of any network to .npy, or in tiles
(on Dask workers) to a Zarr store."""

from __future__ import annotations

from pathlib import Path

from .common import (
    FORMATTER,
    CLIError,
    add_arch,
    add_cluster,
    add_inputs,
    add_prior,
    cluster,
    examples,
    inputs,
    network,
    out_file,
)


def _zarr_out(path: str) -> Path:
    p = Path(path)
    if not p.parent.is_dir():
        raise CLIError(f"--out directory {str(p.parent)!r} does not exist")
    if p.exists() and not (p / "zarr.json").is_file():
        raise CLIError(f"--out {path!r} exists and is not a Zarr store written by netfield; choose another path")
    return p


def run(args) -> int:
    import numpy as np

    from ..meanfield import kernel

    zarr = args.out.lower().rstrip("/").endswith(".zarr")
    out = _zarr_out(args.out) if zarr else out_file(args.out, ".npy")
    if args.tile is not None and args.tile < 1:
        raise CLIError(f"--tile must be an integer >= 1 (patterns per tile), got {args.tile}")
    net = network(args, args.arch)
    x1 = inputs(args)
    x2 = inputs(args, args.inputs2, "--inputs2") if args.inputs2 else None
    options = {"readout": args.readout, "kind": args.kind, "parameterization": args.parameterization,
               "width": args.width}
    where = cluster(args)
    tiled = zarr or args.tile is not None or any(v is not None for v in where.values())
    extra = {"tile": args.tile, "out": str(out) if zarr else None, "progress": not args.quiet, **where}
    k = kernel(net, x1, x2, **options, **(extra if tiled else {}))
    what = "NNGP" if args.kind == "nngp" else f"NTK ({args.parameterization} parameterization)"
    if not zarr:
        k = np.asarray(k)
        np.save(out, k)
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
                           netfield kernel --kind ntk --parameterization standard --width 512 --inputs x.npy
                           netfield kernel --inputs big.npy --out K.zarr --workers 2     # tiles on Dask, resumable
                           netfield kernel --inputs big.npy --out K.zarr --scheduler tcp://head:8786"""))
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
    p.add_argument("--out", default="kernel.npy",
                   help="output .npy file (default: kernel.npy), or a .zarr store written tile by tile (resumable: "
                        "run the same command again to finish an interrupted one)")
    p.add_argument("--tile", type=int, default=None,
                   help="patterns per tile (default 2048 when tiled: with --out *.zarr, --workers or --scheduler)")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    add_cluster(p)
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
