"""``netfield sample``: empirical kernels of sampled finite networks to .npz (resumable)."""

from __future__ import annotations

import json

from .common import (
    FORMATTER,
    add_arch,
    add_cluster,
    add_inputs,
    add_prior,
    checkpoint_dir,
    cluster,
    examples,
    inputs,
    network,
    out_file,
)


def run(args) -> int:
    import numpy as np

    from .._runtime.checkpoint import ChunkStore, array_digest, atomic_write, run_chunks, run_key
    from .._runtime.limits import check_memory
    from .._runtime.progress import ProgressBar
    from .._runtime.seeds import check_seed
    from ..experiments.sampling import preactivation_pairs, sample_range
    from ..finite import mean_and_sem
    from ..finite.sampler import sampling_method, tap_steps
    from ..meanfield.result import readout_rows

    out = out_file(args.out, ".npz")
    where = cluster(args)
    net = network(args, args.arch)
    x = inputs(args)
    seed = check_seed(args.seed)
    net.check_inputs(x, "--inputs")
    program = net.program(x)
    pairs = preactivation_pairs(args.preactivations, tap_steps(program))
    method = sampling_method(program, args.width, args.method)  # resolved: chunks of two methods never mix
    outputs, patterns = len(readout_rows(program, args.readout)), max(program.spaces.values())
    check_memory("networks", args.networks, 8 * args.networks * (outputs ** 2 + len(pairs) * patterns ** 2),
                 f"the empirical kernels of {args.networks} networks (float64 arrays of shape (networks, M, M))")
    lengths = [len(r) for r in x] if isinstance(x, list) else list(np.shape(x))
    store = ChunkStore(checkpoint_dir(args))
    feeds = np.concatenate([np.ravel(f) for f in program.feeds])
    key = run_key(kind="ensemble-v2", net=repr(net), x=array_digest(feeds), lengths=lengths,
                  width=args.width, seed=seed, readout=args.readout, pairs=pairs, dtype=args.dtype, method=method)

    def compute(first, count, tick):
        ens = sample_range(net, x, args.width, first, count, seed, readout=args.readout,
                           preactivations=list(pairs), dtype=args.dtype, on_network=tick, method=method)
        arrays = {"readout": ens.readout}
        arrays.update({f"preactivation_{t}_{s}": ens.preactivations[(t, s)] for t, s in pairs})
        return arrays

    with ProgressBar(args.networks, f"width {args.width}", enabled=not args.quiet) as bar:
        arrays = run_chunks(args.networks, args.chunk_size, compute, store=store, key=key, resume=args.resume,
                            progress=bar, **where)
    mean, sem = mean_and_sem(arrays["readout"])
    meta = {"network": repr(net), "width": args.width, "networks": args.networks, "seed": seed,
            "readout": args.readout, "preactivation_pairs": [list(p) for p in pairs], "dtype": args.dtype,
            "method": method}
    atomic_write(out, lambda fh: np.savez(fh, readout_mean=mean, readout_sem=sem, meta=json.dumps(meta), **arrays))
    if not args.keep_checkpoints:
        for f in store.finished(key):
            f.unlink()
        if store.directory.is_dir() and not any(store.directory.iterdir()):
            store.directory.rmdir()
    print(f"wrote {out}: readout {arrays['readout'].shape} and {len(pairs)} pre-activation kernels of "
          f"{args.networks} networks of width {args.width}")
    return 0


def add_parser(sub):
    """Register ``sample`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("sample", help="empirical kernels of sampled finite networks to .npz",
                       formatter_class=FORMATTER,
                       description="Sample finite networks and record their empirical readout and pre-activation "
                                   "kernels. Finished chunks are checkpointed; --resume continues a killed run "
                                   "with identical results.",
                       epilog=examples("""
                           netfield sample --arch rnn --depth 6 --width 256 --networks 128 --seed 1 --out s.npz
                           netfield sample --inputs x.npy --width 1024 --networks 500 --out big.npz   # Ctrl-C, then:
                           netfield sample --inputs x.npy --width 1024 --networks 500 --out big.npz --resume
                           netfield sample --width 1024 --networks 10000 --workers 2 --out many.npz   # chunks on Dask"""))
    add_arch(p, "dnn")
    add_prior(p, arch_defaults=True)
    add_inputs(p)
    p.add_argument("--width", type=int, default=128, help="hidden width n (default: %(default)s)")
    p.add_argument("--networks", type=int, default=32, help="number of sampled networks (default: %(default)s)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default: %(default)s)")
    p.add_argument("--readout", choices=("last", "all"), default="last", help="readout kernel rows (default: last)")
    p.add_argument("--preactivations", choices=("none", "last", "equal", "all"), default="equal",
                   help="pre-activation kernels to keep (default: equal-time)")
    p.add_argument("--dtype", choices=("float64", "float32"), default="float64")
    p.add_argument("--method", choices=("auto", "conditional", "weights"), default="auto",
                   help="sample weight matrices, or (DNN / RNN) each step's pre-activations by exact Gaussian "
                        "conditioning; auto: conditioning where cheaper, N (x steps for an RNN) < width "
                        "(default: %(default)s)")
    p.add_argument("--chunk-size", type=int, default=16, help="networks per checkpoint chunk (default: %(default)s)")
    p.add_argument("--checkpoint", metavar="DIR", help="checkpoint directory (default: OUT.checkpoints)")
    p.add_argument("--resume", action="store_true", help="reuse finished chunks of an interrupted run")
    p.add_argument("--keep-checkpoints", action="store_true", help="keep chunk files after success")
    p.add_argument("--quiet", action="store_true", help="no progress bar")
    p.add_argument("--out", default="samples.npz", help="output .npz (default: samples.npz)")
    add_cluster(p)
    p.set_defaults(func=run)
    return p


__all__ = ["add_parser", "run"]
