"""Command line: ``netfield gp`` (registered by the main CLI through :func:`add_parser`).

Bayesian inference with a network's NNGP kernel on scikit-learn's digits or on a data file: GP
regression, classification by regression on centred one-hot labels or by the softmax Laplace
classifier, optional evidence maximisation; prints accuracy (or RMSE / R^2) and the log evidence and
writes the test predictions. Bad input raises ValueError, which the main CLI reports as one line
``netfield: error: ...`` with exit status 2.

The options share the vocabulary and defaults of :class:`netfield.gp.NNGPClassifier`: ``--method``
``regression`` (default) or ``laplace`` (the old spelling ``onehot`` still works, with a one-line
deprecation note on stderr), inputs standardised with training statistics unless
``--no-standardize``.

Example:
    netfield gp --data digits --arch rnn --readout last --out pred.npz
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import os
import sys

from .common import add_arch, add_prior, check_output_file, network

EXAMPLE = """examples:
  netfield gp                                              # digits, DNN depth 3, 500 training images
  netfield gp --data digits --arch rnn --readout last --out rnn.npz   # same accuracy as --arch dnn
  netfield gp --data digits --arch rnn --rows-as-sequence --depth 8 --readout mean
  netfield gp --data digits --method laplace --readout-var 10 --optimize readout_var
  netfield gp --data data.csv --task regress --optimize --out pred.csv --json fit.json

--data FILE: .npz with arrays x (N, d) or (N, T, d) and y (N,), optionally x_test and y_test; or
.csv with the features in the first columns and the label / target in the last (header line allowed).
Without x_test the data are split at random (stratified for classification) by --test-fraction.
Features are centred and scaled with training statistics (netfield.gp.input_scaling, as the
estimators' standardize=True) unless --no-standardize.
--optimize shows the evidence evaluations counted on stderr (--quiet: none); each costs ms at 500
training patterns, seconds at a few thousand."""

METHODS = ("regression", "laplace")  # netfield.gp.sklearn.METHODS (not imported: the CLI loads the library lazily)
OLD_METHODS = {"onehot": "regression"}  # deprecated spelling -> the API's name
DATA_SUFFIXES = (".npz", ".csv")
OUT_SUFFIXES = (".npz", ".csv")
MAX_CLASSES = 20  # integer labels with at most this many values are classified by default


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``gp`` subcommand on an argparse subparsers object (default ``func``: :func:`run`)."""
    p = subparsers.add_parser(
        "gp", help="NNGP regression / classification: accuracy, log evidence, predictions",
        description="Bayesian inference with the NNGP kernel of a DNN or RNN "
                    "(docs/theory.md 2.3):\naccuracy or "
                    "RMSE / R^2 on a test set, the log evidence and the hyper-parameters used.",
        epilog=EXAMPLE, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", default="digits", metavar="digits|FILE", help="'digits' (scikit-learn's, no download) or a .npz / .csv file "
                   "(default: digits)")
    add_arch(p, "dnn")
    add_prior(p, arch_defaults=True)
    p.add_argument("--readout", choices=("last", "mean"), default="last",
                   help="output at the last step, or averaged over all steps (default: last)")
    seq = p.add_mutually_exclusive_group()
    seq.add_argument("--time-steps", type=int, metavar="T", help="read each (N, d) pattern as T steps of d/T features")
    seq.add_argument("--rows-as-sequence", action="store_true",
                     help="read each pattern of d = r*r features as an r x r image fed row by row (digits: 8 rows)")
    p.add_argument("--task", choices=("auto", "classify", "regress"), default="auto",
                   help=f"default: classify integer or text labels with at most {MAX_CLASSES} values, else regress")
    p.add_argument("--method", type=_method, default=METHODS[0], metavar="{" + ",".join(METHODS) + "}",
                   help="classifier: GP regression on centred one-hot labels, or softmax Laplace (as "
                        "netfield.gp.NNGPClassifier; default: %(default)s; 'onehot' is a deprecated alias of "
                        "'regression')")
    p.add_argument("--noise", type=float, default=1e-2, metavar="VAR", help="noise variance of GP regression (default: %(default)s)")
    p.add_argument("--optimize", nargs="?", const="default", metavar="NAMES",
                   help="maximise the evidence first; alone: weight_var, bias_var, input_var, readout_var (and "
                        "noise) where > 0; or comma-separated names")
    p.add_argument("--test-fraction", type=float, default=0.25, metavar="F", help="test share without x_test (default: 0.25)")
    p.add_argument("--train-size", type=int, metavar="N", help="random subset of the training set (default: 500 for digits, "
                   "all for a file)")
    p.add_argument("--standardize", action=argparse.BooleanOptionalAction, default=True,
                   help="centre features and scale mean |x|^2/d to 1 with training statistics (default: on, as "
                        "the estimators' standardize=True)")
    p.add_argument("--seed", type=int, default=0, help="split, subset and Laplace Monte Carlo seed (default: 0)")
    p.add_argument("--out", metavar="FILE", help="test predictions (.npz or .csv)")
    p.add_argument("--json", metavar="FILE", help="the printed numbers as JSON")
    p.add_argument("--quiet", action="store_true", help="no progress output")
    p.set_defaults(func=run)
    return p


def _method(text: str) -> str:
    """--method: the API's names; the old 'onehot' maps to 'regression' with a one-line note."""
    if text in OLD_METHODS:
        print(f"netfield: note: --method {text} is deprecated; use --method {OLD_METHODS[text]} (the same "
              f"method, netfield.gp.NNGPClassifier's name)", file=sys.stderr)
        return OLD_METHODS[text]
    if text not in METHODS:
        raise argparse.ArgumentTypeError(f"invalid choice: {text!r} (choose from {', '.join(METHODS)})")
    return text


# ---- data ----------------------------------------------------------------------------------------

def _load(path: str):
    """(x, y, x_test or None, y_test or None) from 'digits', a .npz or a .csv file."""
    import numpy as np

    if path == "digits":
        from sklearn.datasets import load_digits

        x, y = load_digits(return_X_y=True)
        return x / 16.0, y, None, None
    ext = os.path.splitext(path)[1].lower()
    if ext not in DATA_SUFFIXES:
        raise ValueError(f"--data must be 'digits' or a file ending in .npz or .csv, got {path!r}")
    if not os.path.isfile(path):
        raise ValueError(f"--data {path!r} does not exist (give 'digits' or a .npz / .csv file)")
    try:
        if ext == ".csv":
            return (*_read_csv(path), None, None)
        with np.load(path, allow_pickle=False) as f:
            missing = [k for k in ("x", "y") if k not in f.files]
            if missing or (("x_test" in f.files) != ("y_test" in f.files)):
                raise ValueError(f"--data {path!r} must hold arrays x and y (and optionally both x_test and "
                                 f"y_test), got {sorted(f.files)}")
            return tuple(f[k] if k in f.files else None for k in ("x", "y", "x_test", "y_test"))
    except (OSError, EOFError) as err:
        raise ValueError(f"--data {path!r} could not be read: {err}") from None


def _read_csv(path):
    """Features = all columns but the last (floats); labels = the last; a first line that is not
    numeric is a header."""
    import numpy as np

    from ..experiments.data import csv_rows, is_numeric

    rows = csv_rows(path, slice(None, -1))
    if not rows or len(rows[0]) < 2:
        raise ValueError(f"--data {path!r} needs at least one row of feature columns plus a label column")
    for i, r in enumerate(rows):
        if len(r) != len(rows[0]) or not is_numeric(r[:-1]):
            raise ValueError(f"--data {path!r}: row {i + 1} of the data must have {len(rows[0]) - 1} numeric "
                             f"features and a label, got {r!r}")
    y = [r[-1].strip() for r in rows]
    return np.array([[float(c) for c in r[:-1]] for r in rows]), (np.array(y, float) if is_numeric(y) else np.array(y))


def _check_arrays(path, x, y, name_x="x", name_y="y"):
    import numpy as np

    try:
        x = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError):
        raise ValueError(f"--data {path!r}: {name_x} must be numeric, got dtype {np.asarray(x).dtype}") from None
    y = np.asarray(y)
    y = y[:, 0] if y.ndim == 2 and y.shape[1] == 1 else y
    if x.ndim not in (2, 3) or min(x.shape) < 1:
        raise ValueError(f"--data {path!r}: {name_x} must have shape (N, d) or (N, T, d), got {x.shape}")
    if y.ndim != 1 or len(y) != len(x):
        raise ValueError(f"--data {path!r}: {name_y} must hold one label / target per pattern ({len(x)}), "
                         f"got shape {y.shape}")
    for name, arr in ((name_x, x), (name_y, y)):
        if arr.dtype.kind in "fc" and not np.isfinite(arr).all():
            where = tuple(int(i) for i in np.argwhere(~np.isfinite(arr))[0])
            raise ValueError(f"--data {path!r}: {name} must contain only finite numbers, got {arr[where]} at "
                             f"index {where}")
    return x, y


def _task(args, y):
    """'classify' or 'regress', and the labels as integers where they are integer-valued."""
    import numpy as np

    numeric = y.dtype.kind in "iuf"
    integral = numeric and bool(np.all(np.mod(y, 1) == 0))
    task = args.task
    if task == "auto":
        task = "classify" if not numeric or (integral and len(np.unique(y)) <= MAX_CLASSES) else "regress"
    if task == "regress" and args.method == "laplace":
        how = "--task regress" if args.task == "regress" else f"--task auto (the targets of --data {args.data!r} are real numbers)"
        raise ValueError(f"--method laplace is a classifier (softmax Laplace) and {how} means GP regression, which has "
                         f"no method choice; drop --method or use --task classify")
    if task == "regress" and not numeric:
        raise ValueError(f"--task regress needs numeric targets, got labels such as {y[0]!r} in --data {args.data!r}")
    if task == "classify":
        y = y.astype(np.int64) if integral else y
        if y.dtype.kind == "f":
            y = y.astype(str)
        classes = np.unique(y)
        if len(classes) < 2:
            raise ValueError(f"--data {args.data!r} has one class only ({classes.tolist()}); classification needs "
                             f"at least 2 (or use --task regress)")
    return task, (y if task == "classify" else y.astype(np.float64))


def _split(args, x, y, classify):
    """Train / test split (stratified for classification) and the optional training subset."""
    from sklearn.model_selection import train_test_split

    if not 0 < args.test_fraction < 1:
        raise ValueError(f"--test-fraction must be between 0 and 1 (exclusive), got {args.test_fraction!r}")
    try:
        x_tr, x_te, y_tr, y_te = train_test_split(x, y, test_size=args.test_fraction, random_state=args.seed,
                                                  stratify=y if classify else None)
    except ValueError as err:
        raise ValueError(f"--test-fraction {args.test_fraction!r}: cannot split --data {args.data!r}: {err}") from None
    return x_tr, y_tr, x_te, y_te


def _subset(args, x, y, classify):
    from sklearn.model_selection import train_test_split

    size = args.train_size if args.train_size is not None else (500 if args.data == "digits" else None)
    if size is None or size == len(x):
        return x, y
    if not 2 <= size <= len(x):
        raise ValueError(f"--train-size must be an integer from 2 to the {len(x)} training patterns, got {size!r}")
    try:
        x, _, y, _ = train_test_split(x, y, train_size=size, random_state=args.seed, stratify=y if classify else None)
    except ValueError as err:
        raise ValueError(f"--train-size {size}: {err}") from None
    return x, y


def _standardize(x_tr, x_te):
    """Centre each feature and scale all by one number so that mean |x|^2 / d = 1 (training set)."""
    from ..gp.sklearn import input_scaling

    mean, scale = input_scaling(x_tr)
    return (x_tr - mean) / scale, (x_te - mean) / scale


def _sequences(args, x):
    """(N, d) -> (N, T, d/T) for --time-steps / --rows-as-sequence; sequences need --depth >= T."""
    t = args.time_steps
    if args.rows_as_sequence:
        t = math.isqrt(x.shape[-1]) if x.ndim == 2 else 0
        if x.ndim != 2 or t * t != x.shape[1]:
            raise ValueError(f"--rows-as-sequence needs (N, d) patterns with d a square number (r x r images), "
                             f"got shape {x.shape}")
    if t is not None:
        if x.ndim != 2 or t < 1 or x.shape[1] % t:
            raise ValueError(f"--time-steps must be an integer >= 1 dividing the number of features of (N, d) "
                             f"patterns, got {t} for shape {x.shape}")
        x = x.reshape(x.shape[0], t, x.shape[1] // t)
    if x.ndim == 3 and args.depth < x.shape[1]:
        raise ValueError(f"--depth must be >= the {x.shape[1]} input steps (each step of the network reads "
                         f"one), got {args.depth}")
    return x


def prepare(args):
    """(task, x_train, y_train, x_test, y_test) after loading, checking, splitting and scaling."""
    import numpy as np

    x, y, x_te, y_te = _load(args.data)
    x, y = _check_arrays(args.data, x, y)
    if x_te is not None:
        x_te, y_te = _check_arrays(args.data, x_te, y_te, "x_test", "y_test")
        if x_te.shape[1:] != x.shape[1:]:
            raise ValueError(f"--data {args.data!r}: x_test patterns must have the shape of x's, {x.shape[1:]}, "
                             f"got {x_te.shape[1:]}")
        if y_te.dtype.kind in "iuf" and y.dtype.kind not in "iuf":
            y_te = y_te.astype(str)
    task, labels = _task(args, y if y_te is None else np.concatenate([y, y_te]))
    classify = task == "classify"
    if x_te is None:
        x_tr, y_tr, x_te, y_te = _split(args, x, labels, classify)
    else:
        x_tr, y_tr, y_te = x, labels[:len(x)], labels[len(x):]
    x_tr, y_tr = _subset(args, x_tr, y_tr, classify)
    if classify and len(np.unique(y_tr)) < 2:
        raise ValueError(f"--data {args.data!r}: the training set has one class only; classification needs at least 2")
    if args.standardize:
        x_tr, x_te = _standardize(x_tr, x_te)
    return task, _sequences(args, x_tr), y_tr, _sequences(args, x_te), y_te


# ---- inference -----------------------------------------------------------------------------------

def _optimize_params(args, laplace):
    from ..program import HYPER_PARAMETERS

    if args.optimize is None or args.optimize == "default":
        return args.optimize
    allowed = HYPER_PARAMETERS + (() if laplace else ("noise",))
    names = tuple(n.strip() for n in args.optimize.split(",") if n.strip())
    if not names or any(n not in allowed for n in names):
        raise ValueError(f"--optimize takes comma-separated names among {', '.join(allowed)}, got {args.optimize!r}")
    return names


def fit_and_predict(args, task, x_tr, y_tr, x_te):
    """Fit the GP (after optional evidence maximisation) and predict the test set.

    Returns (predictions dict, log evidence, network, noise or None, EvidenceFit or None).
    """
    import numpy as np

    from ..gp import (
        class_indicators,
        fit_network,
        gram_matrix,
        kernel_diag,
        laplace_latent_numpy,
        laplace_mode_numpy,
        laplace_predictor_numpy,
        maximize_evidence,
        maximize_laplace_evidence,
        network_kernel,
        one_hot,
        softmax_expectation,
    )

    if not (math.isfinite(args.noise) and args.noise > 0):
        raise ValueError(f"--noise must be a finite number > 0, got {args.noise!r}")
    net, noise, laplace = network(args, args.arch), args.noise, task == "classify" and args.method == "laplace"
    params = _optimize_params(args, laplace)
    params = None if params == "default" else params
    evidence_fit = None
    if laplace:
        indicators, classes = class_indicators(y_tr)
        if args.optimize:
            evidence_fit = _wrap("--optimize", maximize_laplace_evidence, net, x_tr, indicators, params=params,
                                 readout=args.readout, progress=not args.quiet)
            net = evidence_fit.network
        k = gram_matrix(net, x_tr, args.readout)
        mode = laplace_mode_numpy(k, indicators)
        if not bool(mode.converged):
            print(f"note: the Laplace mode search did not converge in {int(mode.iterations)} Newton iterations")
        predictor = laplace_predictor_numpy(k, indicators, mode.f)
        proba = []
        for i0 in range(0, len(x_te), 512):
            xb = x_te[i0:i0 + 512]
            mean, cov = laplace_latent_numpy(predictor, np.asarray(network_kernel(net, xb, x_tr, args.readout)),
                                             kernel_diag(net, xb, args.readout))
            proba.append(softmax_expectation(mean, cov, n_samples=1000, seed=args.seed))
        proba = np.concatenate(proba)
        pred = {"y_pred": classes[np.argmax(proba, axis=1)], "proba": proba, "classes": classes}
        return pred, float(mode.log_marginal_likelihood), net, None, evidence_fit
    targets, classes = one_hot(y_tr) if task == "classify" else (y_tr, None)
    if args.optimize:
        evidence_fit = _wrap("--optimize", maximize_evidence, net, x_tr, targets, noise=noise, params=params,
                             readout=args.readout, progress=not args.quiet)
        net, noise = evidence_fit.network, evidence_fit.noise
    model = fit_network(net, x_tr, targets, noise=noise, readout=args.readout)
    post = model.predict(x_te, return_var=True)
    pred = {"mean": np.asarray(post.mean), "var": np.asarray(post.var)}
    if classes is not None:
        pred.update(y_pred=classes[np.argmax(pred["mean"], axis=1)], classes=classes)
    return pred, float(model.log_marginal_likelihood), net, noise, evidence_fit


def _wrap(option, fn, *args, **kw):
    try:
        return fn(*args, **kw)
    except ValueError as err:
        raise ValueError(f"{option}: {err}") from None


# ---- output --------------------------------------------------------------------------------------

def _write_predictions(path, y_test, pred):
    import numpy as np

    columns = {"y_true": np.asarray(y_test)}
    columns.update({k: v for k, v in pred.items() if k != "classes"})
    if path.lower().endswith(".npz"):
        np.savez(path, **columns, **({"classes": pred["classes"]} if "classes" in pred else {}))
        return
    names, cols = [], []
    for key, v in columns.items():
        v = np.asarray(v)
        if v.ndim == 2:
            labels = pred.get("classes", range(v.shape[1]))
            names += [f"{key}_{c}" for c in labels]
            cols += list(v.T)
        else:
            names.append(key)
            cols.append(v)
    with open(path, "w", newline="", encoding="utf-8") as fh:
        w = csv.writer(fh)
        w.writerow(names)
        w.writerows(zip(*[[repr(float(c)) if np.asarray(col).dtype.kind == "f" else str(c) for c in col]
                          for col in cols]))


def summary(args, task, n_train, n_test, y_test, pred, evidence, net, noise, evidence_fit) -> dict:
    """The numbers printed by ``netfield gp`` (also written by --json)."""
    import numpy as np

    from ..program import HYPER_PARAMETERS

    activation = dict(net.options).get("activation")  # the builder's default when --activation is not given
    out = {"data": args.data, "task": task, "arch": args.arch, "depth": args.depth,
           "activation": getattr(activation, "name", activation),
           "readout": args.readout, "n_train": n_train, "n_test": n_test}
    if task == "classify":
        out["method"] = args.method
        out["classes"] = np.asarray(pred["classes"]).tolist()
        out["accuracy"] = float(np.mean(pred["y_pred"] == y_test))
    else:
        resid = pred["mean"] - y_test
        out["rmse"] = float(np.sqrt(np.mean(resid ** 2)))
        out["r2"] = float(1.0 - np.sum(resid ** 2) / np.sum((y_test - y_test.mean()) ** 2))
    out["log_evidence"] = evidence
    out["hyper_parameters"] = {k: float(net.hyper(k)) for k in HYPER_PARAMETERS}
    if noise is not None:
        out["hyper_parameters"]["noise"] = float(noise)
    out["optimize"] = None if evidence_fit is None else {
        "params": list(evidence_fit.params), "initial_log_evidence": evidence_fit.initial_log_evidence,
        "log_evidence": evidence_fit.log_evidence, "iterations": evidence_fit.iterations,
        "converged": evidence_fit.converged, "at_bound": list(evidence_fit.at_bound)}
    return out


def format_summary(s: dict) -> str:
    """One short two-column table."""
    if s["task"] == "classify":
        how = "one-hot regression" if s["method"] == "regression" else "softmax Laplace"
        task = f"classify, {len(s['classes'])} classes, {how}"
        scores = [("accuracy", f"{s['accuracy']:.4f}")]
        kind = "Laplace approximation" if s["method"] == "laplace" else "GP marginal likelihood"
    else:
        task, kind = "regress", "GP marginal likelihood"
        scores = [("RMSE", f"{s['rmse']:.6g}"), ("R^2", f"{s['r2']:.4f}")]
    rows = [("data", s["data"]), ("task", task),
            ("arch", f"{s['arch']}, depth {s['depth']}, {s['activation']}, readout {s['readout']}"),
            ("n_train", str(s["n_train"])), ("n_test", str(s["n_test"])), *scores,
            ("log evidence", f"{s['log_evidence']:.6g} ({kind})")]
    opt = s["optimize"]
    if opt is not None:
        bound = f"; at bound: {', '.join(opt['at_bound'])}" if opt["at_bound"] else ""
        text = f"{opt['initial_log_evidence']:.6g} -> {opt['log_evidence']:.6g} in {opt['iterations']} L-BFGS-B"
        rows.append(("optimize", f"{text} iterations{bound}"))
    for k, v in s["hyper_parameters"].items():
        mark = " (optimised)" if opt is not None and k in opt["params"] else ""
        rows.append((k, f"{v:.6g}{mark}"))
    width = max(len(k) for k, _ in rows) + 2
    return "\n".join(f"{k:<{width}}{v}" for k, v in rows)


def run(args) -> int:
    """``netfield gp``: fit, print the table, write --out / --json. Returns the exit status."""
    if args.out is not None:
        check_output_file(args.out, "--out", OUT_SUFFIXES)
    if args.json is not None:
        check_output_file(args.json, "--json", (".json",))
    if not 0 <= args.seed < 2**32:  # it seeds scikit-learn's splits (random_state)
        raise ValueError(f"--seed must be an integer in [0, 2**32), got {args.seed}")
    task, x_tr, y_tr, x_te, y_te = prepare(args)
    pred, evidence, net, noise, evidence_fit = fit_and_predict(args, task, x_tr, y_tr, x_te)
    s = summary(args, task, len(x_tr), len(x_te), y_te, pred, evidence, net, noise, evidence_fit)
    print(format_summary(s))
    if args.out is not None:
        _write_predictions(args.out, y_te, pred)
        print(f"wrote {args.out}: test predictions")
    if args.json is not None:
        with open(args.json, "w", encoding="utf-8") as fh:
            json.dump(s, fh, indent=1)
        print(f"wrote {args.json}")
    return 0


__all__ = ["add_parser", "fit_and_predict", "format_summary", "prepare", "run", "summary"]
