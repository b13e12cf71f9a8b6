"""``netfield train``: outputs of an infinitely wide network trained by gradient descent (docs/training.md).

Reads training and test data from one .npz file (arrays ``x``, ``y``, ``x_test``, optionally ``y_test``,
as ``netfield gp --data``), runs :func:`netfield.train` and writes the
:class:`~netfield.training.TrainingPrediction` (``netfield.load(path)`` reads it back). Prints per time
the expected training loss, the mean predictive standard deviation at the test points and,
with ``y_test``, the test RMSE of the mean. Bad input: one line ``netfield: error: ...``, exit status 2.
"""

from __future__ import annotations

import os
import re

from .common import FORMATTER, add_arch, add_prior, examples, float_list, network, out_file

DYNAMICS = ("flow", "discrete")  # netfield.training.DYNAMICS (not imported: the CLI loads the library lazily)
PARAMETERIZATIONS = ("ntk", "standard")


def add_parser(sub):
    """Register ``train`` on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = sub.add_parser("train", help="infinite-width training dynamics (NTK): outputs during gradient descent",
                       formatter_class=FORMATTER,
                       description="Mean and covariance of the outputs of an infinitely wide network trained by "
                                   "gradient descent on the squared loss, at the given times (docs/training.md).\n"
                                   "--data FILE.npz holds arrays x (N, d) or (N, T, d), y (N,) or (N, K), x_test and "
                                   "optionally y_test.",
                       epilog=examples("""
                           netfield train --data task.npz --times 0,10,100,inf --out pred.npz
                           netfield train --data task.npz --arch rnn --depth 4 --dynamics discrete \\
                               --times 0,1,10,100 --learning-rate 0.5 --out pred.npz
                           netfield train --data task.npz --parameterization standard --width 512 --times inf"""))
    p.add_argument("--data", required=True, metavar="FILE", help=".npz with arrays x, y, x_test (and optionally y_test)")
    add_arch(p, "dnn")
    add_prior(p, arch_defaults=True)
    p.add_argument("--times", type=float_list, default=(0.0, 1.0, 10.0, 100.0, float("inf")), metavar="T1,T2,...",
                   help="comma-separated times >= 0, 'inf' for the end of training; steps for --dynamics discrete "
                        "(default: 0,1,10,100,inf)")
    p.add_argument("--learning-rate", type=float, metavar="ETA",
                   help="eta (default: eta_max / 2 = N / lambda_max of the NTK; for gradient flow only eta * t matters)")
    p.add_argument("--dynamics", choices=DYNAMICS, default="flow",
                   help="gradient flow or discrete gradient descent (default: %(default)s)")
    p.add_argument("--parameterization", choices=PARAMETERIZATIONS, default="ntk",
                   help="parameterization of the trained weights (default: %(default)s)")
    p.add_argument("--width", type=int, help="hidden width, for --parameterization standard")
    p.add_argument("--allow-unstable", action="store_true",
                   help="compute discrete gradient descent with eta >= eta_max at finite times (it diverges)")
    p.add_argument("--out", default="train.npz", help="the prediction, a netfield result file (default: train.npz)")
    p.add_argument("--quiet", action="store_true", help="no summary table")
    p.set_defaults(func=run)
    return p


def load_data(path: str):
    """(x, y, x_test, y_test or None) from ``--data``: a .npz file with arrays x, y, x_test[, y_test]."""
    import numpy as np

    if os.path.splitext(path)[1].lower() != ".npz":
        raise ValueError(f"--data must be a .npz file with arrays x, y, x_test, got {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"--data {path!r} does not exist")
    try:
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y", "x_test") if k not in f.files]
            if missing:
                raise ValueError(f"--data {path!r} must hold arrays x, y and x_test (optionally y_test); missing "
                                 f"{', '.join(missing)} (it has {', '.join(sorted(f.files)) or 'none'})")
            x, y, x_test = (np.asarray(f[k]) for k in ("x", "y", "x_test"))
            y_test = np.asarray(f["y_test"]) if "y_test" in f.files else None
    except (OSError, EOFError) as err:
        raise ValueError(f"--data {path!r} could not be read: {err}") from None
    for name, arr in (("y", y), ("y_test", y_test)):
        if arr is not None and arr.dtype.kind not in "iuf":
            raise ValueError(f"--data {path!r}: {name} must hold numbers (regression targets), got dtype {arr.dtype}")
    if y.ndim not in (1, 2) or len(y) != len(x):
        raise ValueError(f"--data {path!r}: y must have shape (N,) or (N, K) with N = {len(x)} rows of x, got "
                         f"{y.shape}")
    if y_test is not None and (len(y_test) != len(x_test) or y_test.shape[1:] != y.shape[1:]):
        raise ValueError(f"--data {path!r}: y_test must have shape {(len(x_test),) + y.shape[1:]} (one row per x_test "
                         f"pattern, as y), got {y_test.shape}")
    return x, y.astype(np.float64), x_test, None if y_test is None else y_test.astype(np.float64)


def run(args) -> int:
    import numpy as np

    from ..training import train

    out = out_file(args.out, ".npz")
    if args.width is not None and args.width < 1:
        raise ValueError(f"--width must be an integer >= 1, got {args.width}")
    x, y, x_test, y_test = load_data(args.data)
    net = network(args, args.arch)
    try:
        pred = train(net, x, y, x_test, times=args.times, learning_rate=args.learning_rate, dynamics=args.dynamics,
                     parameterization=args.parameterization, width=args.width, allow_unstable=args.allow_unstable)
    except (TypeError, ValueError) as err:  # the API's argument names -> the arrays of --data
        text = str(err)
        for api, option in (("x_train", "--data x"), ("x_test", "--data x_test"), ("y_train", "--data y")):
            text = re.sub(rf"\b{api}\b", option, text)
        raise type(err)(text) from None
    path = pred.save(out, network=net)
    if not args.quiet:
        y2 = y[:, None] if y.ndim == 1 else y
        print(f"{args.dynamics} on {len(x)} training / {len(x_test)} test points of {net!r}: learning rate "
              f"{pred.learning_rate:.4g} (eta_max {pred.max_learning_rate:.4g})")
        header = f"{'t':>10} {'E[train loss]':>14} {'test std':>10}" + (f" {'test RMSE':>10}" if y_test is not None else "")
        print(header)
        std = pred.std()
        for i, t in enumerate(pred.times):
            # E[L] = (1/2N) (sum_ak (mean - y)^2 + K tr cov): docs/training.md (T1), (T8)
            loss = 0.5 * (np.sum((pred.train_mean[i] - y2) ** 2) + y2.shape[1] * np.trace(pred.train_cov[i])) / len(y2)
            row = f"{t:>10.4g} {loss:>14.4g} {std[i].mean():>10.4g}"
            if y_test is not None:
                yt = y_test[:, None] if y_test.ndim == 1 else y_test
                row += f" {np.sqrt(np.mean((pred.mean[i] - yt) ** 2)):>10.4g}"
            print(row)
    print(f"wrote {path}")
    return 0


__all__ = ["add_parser", "load_data", "run"]
