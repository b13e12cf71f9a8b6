"""Trained finite networks against the infinite-width training theory (docs/training.md, "Checked against
trained networks").

A task of digit images (scikit-learn's bundled digits, standardised per pixel as
:func:`netfield.experiments.data.digits_inputs`), scalar targets +1 (even digit) / -1 (odd digit). For one
network, :func:`compare_training` trains ensembles of finite networks by full-batch gradient descent
(:func:`netfield.finite.training.train_ensemble`) at several widths and records their test outputs after
given step counts; the infinite-width prediction is ``netfield.train(..., dynamics="discrete")`` at the same
learning rate. Per width, step and test point the ensemble mean m and variance v are compared with the
theory's mean and variance (mu, s^2):

    z_mean = (m - mu) / sqrt(s^2 / R),       z_var = (v - s^2) / se(v),   se(v)^2 = (m4 - v^2 (R-3)/(R-1)) / R

(R networks, m4 the sample fourth central moment), aggregated as max |z| and as chi2 = mean over entries of
(z_mean^2 + z_var^2) / 2 (about 1 when the theory holds; it grows like R x bias^2 with the O(1/width)
finite-width bias). The relative discrepancies are rms_mean = sqrt(mean (m - mu)^2 / s^2) and
rel_var = mean |v / s^2 - 1|. After training, the test loss (1/2M) sum (f - y)^2 and the test error (sign of
f against the +-1 target, per network) of the trained networks are compared with the theory's
expectations (mean of ((mu - y)^2 + s^2) / 2, mean of Phi(-y mu / s)).

:func:`dnn_vs_rnn` extends the DNN-vs-RNN comparison to training: with the input at step 1 only and one
readout time the two NTKs (and NNGP kernels) are identical, hence so are the trained predictions at every
time; with inputs at every step, or readouts at several times, they differ.

Run as ``python -m netfield.experiments.training_study`` for the tables of docs/training.md (672 s on
2 shared cores; ``--quick`` for a one-minute version).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import numpy as np

from .._checks import check_positive_int
from ..finite.training import train_ensemble
from ..meanfield.kernels import kernel
from ..program.network import dnn, rnn
from ..training import train
from .data import digits_inputs


@dataclass(frozen=True, eq=False)
class DigitsTask:
    """Digit images split into training and test patterns, targets +1 (even digit) / -1 (odd digit).

    Attributes:
        x_train: (N, 64) standardised images; x_test: (M, 64).
        y_train: (N,) targets; y_test: (M,).
        labels: (N + M,) digit classes; indices: positions in ``load_digits()``.
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    labels: np.ndarray
    indices: np.ndarray


def digits_task(count: int = 12, train: int = 8) -> DigitsTask:
    """``count`` digit images (classes 0..9 cycled), the first ``train`` for training, the rest for testing.

    Example:
        >>> task = digits_task(12, 8)
        >>> task.x_train.shape, task.y_test.tolist()
        ((8, 64), [1.0, -1.0, 1.0, -1.0])
    """
    count = check_positive_int("count", count, minimum=2)
    train = check_positive_int("train", train)
    if train >= count:
        raise ValueError(f"train must be < count = {count} (at least one test image), got {train}")
    d = digits_inputs(count)
    y = np.where(d.labels % 2 == 0, 1.0, -1.0)
    return DigitsTask(d.x[:train], y[:train], d.x[train:], y[train:], d.labels, d.indices)


def as_sequence(x: np.ndarray, steps: int) -> np.ndarray:
    """(N, 64) images as (N, steps, 64 / steps) sequences: ``steps`` consecutive blocks of pixel rows
    (steps = 8: one image row per step)."""
    x = np.asarray(x, float)
    if x.shape[1] % steps:
        raise ValueError(f"steps must divide the input dimension {x.shape[1]}, got {steps}")
    return x.reshape(x.shape[0], steps, x.shape[1] // steps)


def _phi(z):
    return 0.5 * np.vectorize(math.erfc)(-np.asarray(z, float) / math.sqrt(2.0))


def ensemble_statistics(outputs: np.ndarray, mean: np.ndarray, var: np.ndarray) -> dict:
    """Compare the test outputs of R networks, (S, R, M), with a Gaussian prediction (mean, var), (S, M).

    Returns a dict of (S, M) arrays ``mean``, ``var`` (ensemble), ``z_mean``, ``z_var`` and the aggregates
    ``max_z_mean``, ``max_z_var``, ``chi2``, ``rms_mean``, ``rel_var`` (module docstring), over all entries.
    """
    f = np.asarray(outputs, float)
    r = f.shape[1]
    m, v = f.mean(axis=1), f.var(axis=1, ddof=1)
    m4 = ((f - m[:, None]) ** 4).mean(axis=1)
    se_v = np.sqrt(np.maximum(m4 - v**2 * (r - 3) / (r - 1), 1e-300) / r)
    z_mean = (m - mean) / np.sqrt(var / r)
    z_var = (v - var) / se_v
    return {"mean": m, "var": v, "z_mean": z_mean, "z_var": z_var,
            "max_z_mean": float(np.abs(z_mean).max()), "max_z_var": float(np.abs(z_var).max()),
            "chi2": float(((z_mean**2 + z_var**2) / 2).mean()),
            "rms_mean": float(np.sqrt(((m - mean) ** 2 / var).mean())), "rel_var": float(np.abs(v / var - 1).mean())}


@dataclass(frozen=True, eq=False)
class WidthComparison:
    """One width of :func:`compare_training`: ensemble statistics at each recorded step (after step 0)."""

    width: int
    networks: int
    outputs: np.ndarray  # (S, R, M) test outputs of the trained networks
    stats: dict        # ensemble_statistics at the steps (S, M) and per step (max |z|, ...)
    per_step: list     # one dict per step: max_z_mean, max_z_var, chi2, rms_mean, rel_var
    test_loss: tuple   # (S,) ensemble mean test loss and its standard error
    test_error: tuple  # (S,) ensemble mean test error and its standard error
    seconds: float


@dataclass(frozen=True, eq=False)
class TrainingComparison:
    """Trained finite networks vs ``netfield.train(..., dynamics="discrete")`` (:func:`compare_training`)."""

    name: str
    steps: tuple
    learning_rate: float
    max_learning_rate: float
    theory_mean: np.ndarray   # (S, M)
    theory_var: np.ndarray    # (S, M)
    theory_loss: np.ndarray   # (S,) expected test loss
    theory_error: np.ndarray  # (S,) expected test error of one trained network
    y_test: np.ndarray
    widths: list = field(default_factory=list)  # WidthComparison per width

    def rows(self) -> list:
        """One dict per (width, step): the table of docs/training.md."""
        out = []
        for w in self.widths:
            for j, s in enumerate(self.steps):
                out.append({
                    "arch": self.name, "width": w.width, "networks": w.networks, "step": int(s),
                    "theory_mean": float(np.sqrt((self.theory_mean[j] ** 2).mean())),
                    "ensemble_mean": float(np.sqrt((w.stats["mean"][j] ** 2).mean())),
                    "theory_std": float(np.sqrt(self.theory_var[j].mean())),
                    "ensemble_std": float(np.sqrt(w.stats["var"][j].mean())),
                    **w.per_step[j],
                    "theory_loss": float(self.theory_loss[j]), "ensemble_loss": float(w.test_loss[0][j]),
                    "ensemble_loss_se": float(w.test_loss[1][j]),
                    "theory_error": float(self.theory_error[j]), "ensemble_error": float(w.test_error[0][j]),
                    "ensemble_error_se": float(w.test_error[1][j]),
                })
        return out

    def to_dict(self) -> dict:
        return {"name": self.name, "steps": [int(s) for s in self.steps], "learning_rate": self.learning_rate,
                "max_learning_rate": self.max_learning_rate, "theory_mean": self.theory_mean.tolist(),
                "theory_var": self.theory_var.tolist(), "theory_loss": self.theory_loss.tolist(),
                "theory_error": self.theory_error.tolist(), "y_test": self.y_test.tolist(),
                "widths": [{"width": w.width, "networks": w.networks, "mean": w.stats["mean"].tolist(),
                            "var": w.stats["var"].tolist(), "per_step": w.per_step,
                            "test_loss": [list(map(float, a)) for a in w.test_loss],
                            "test_error": [list(map(float, a)) for a in w.test_error], "seconds": w.seconds}
                           for w in self.widths],
                "rows": self.rows()}


def theory_curves(prediction, y_test) -> tuple:
    """(mean (S, M), variance (S, M), expected test loss (S,), expected test error (S,)) of a
    :class:`~netfield.training.result.TrainingPrediction` with one output, targets +-1."""
    mean = prediction.mean[:, :, 0]
    var = np.diagonal(prediction.cov, axis1=1, axis2=2)
    y = np.asarray(y_test, float)
    loss = (((mean - y) ** 2 + var) / 2).mean(axis=1)
    error = _phi(-y * mean / np.sqrt(np.maximum(var, 1e-300))).mean(axis=1)
    return mean, var, loss, error


def ensemble_curves(outputs: np.ndarray, y_test) -> tuple:
    """((mean, se) test loss, (mean, se) test error) over networks of test outputs (S, R, M)."""
    f = np.asarray(outputs, float)
    y = np.asarray(y_test, float)
    r = f.shape[1]
    loss = ((f - y) ** 2 / 2).mean(axis=2)
    error = (np.sign(f) != y).mean(axis=2)
    return ((loss.mean(1), loss.std(1, ddof=1) / np.sqrt(r)), (error.mean(1), error.std(1, ddof=1) / np.sqrt(r)))


def compare_training(net, x_train, y_train, x_test, y_test, *, widths, networks, steps, learning_rate=None,
                     seed: int = 0, dtype: str = "float32", name: str = "", chunk_size=None,
                     progress=False) -> TrainingComparison:
    """Train ``networks`` finite networks per width and compare their test outputs with the theory.

    Args:
        net: the network; x_train, y_train (N,), x_test, y_test (M,): the task (targets +-1 for the error).
        widths: hidden widths; networks: networks per width (an int, or one per width).
        steps: recorded numbers of gradient steps (> 0, increasing).
        learning_rate: eta (default eta_max / 2 of the infinite-width NTK, ``netfield.train``'s default);
            must be < eta_max.
        seed: network i of width n uses fold_in(PRNGKey(seed + n), i) (independent ensembles per width).
        dtype: the finite networks' float type (float32: half the time, errors ~1e-6 of the outputs).

    Cost: one infinite-width prediction and, per width, networks x (max(steps) + 1) forward and backward
    passes (O(width^2) each for a hidden matrix); the largest width dominates.
    """
    steps = tuple(int(s) for s in steps)
    widths = [check_positive_int("width", w) for w in widths]
    counts = [networks] * len(widths) if isinstance(networks, (int, np.integer)) else list(networks)
    if len(counts) != len(widths):
        raise ValueError(f"networks must be an int or one count per width ({len(widths)}), got {networks!r}")
    pred = train(net, x_train, y_train, x_test, times=list(steps), learning_rate=learning_rate, dynamics="discrete")
    mean, var, loss, error = theory_curves(pred, y_test)
    out = TrainingComparison(name or net.name, steps, float(pred.learning_rate), float(pred.max_learning_rate),
                             mean, var, loss, error, np.asarray(y_test, float))
    for width, count in zip(widths, counts):
        start = time.perf_counter()
        result = train_ensemble(net, x_train, np.asarray(y_train, float), x_test, width, count, steps=list(steps),
                                learning_rate=pred.learning_rate, seed=seed + width, dtype=dtype,
                                chunk_size=chunk_size, progress=progress)
        f = result.test[:, :, :, 0]
        stats = ensemble_statistics(f, mean, var)
        per_step = [ensemble_statistics(f[j:j + 1], mean[j:j + 1], var[j:j + 1]) for j in range(len(steps))]
        per_step = [{k: s[k] for k in ("max_z_mean", "max_z_var", "chi2", "rms_mean", "rel_var")} for s in per_step]
        test_loss, test_error = ensemble_curves(f, y_test)
        out.widths.append(WidthComparison(width, count, f, stats, per_step, test_loss, test_error,
                                          time.perf_counter() - start))
    return out


def _relative(a, b) -> float:
    a, b = np.asarray(a, float), np.asarray(b, float)
    return float(np.linalg.norm(a - b) / np.linalg.norm(a))


def variable_lengths(x: np.ndarray, steps: int, first: int = 0) -> list:
    """(N, 64) images as ``steps`` blocks of rows (:func:`as_sequence`), image i (numbered from ``first``) cut to
    its first steps - (i % 2) blocks: sequences of two lengths, read out at two different steps."""
    seqs = as_sequence(x, steps)
    return [s[: steps - (first + i) % 2] for i, s in enumerate(seqs)]


def dnn_vs_rnn(task: DigitsTask, *, steps: int = 4, activation: str = "erf", weight_var: float = 1.5,
               bias_var: float = 0.1, train_steps: int = 100, keep_kernels: bool = False) -> list:
    """The seeds' DNN-vs-RNN comparison extended to training: one dict per input / readout case.

    Cases (``steps`` layers / time steps): ``"input at step 1"`` (x as (N, 64)); ``"inputs at every step"`` (the
    images as ``steps`` blocks of rows, :func:`as_sequence`): both read out at step T, identical kernels
    (the RNN's cross-time terms need two readout times); ``"inputs at every step, two lengths"``
    (:func:`variable_lengths`: each pattern read out at its own last step, T - 1 or T) and
    ``"input at step 1, readouts at every step"`` (``readout="all"``, kernels only): they differ. Each:
    relative Frobenius differences of the NTK and the NNGP kernel on training + test patterns,
    ||K_DNN - K_RNN||_F / ||K_DNN||_F; with one readout per pattern also the trained predictions after
    ``train_steps`` discrete steps at a common learning rate (the smaller eta_max / 2): the relative
    difference of the test means and standard deviations, and the expected test loss and test error of each.
    ``keep_kernels``: also the two NTK matrices (``ntk_dnn``, ``ntk_rnn``, nested lists).
    """
    nets = {"DNN": dnn(steps, activation, weight_var=weight_var, bias_var=bias_var),
            "RNN": rnn(steps, activation, weight_var=weight_var, bias_var=bias_var)}
    n = len(task.y_train)
    cases = (("input at step 1", task.x_train, task.x_test, "last"),
             ("inputs at every step", as_sequence(task.x_train, steps), as_sequence(task.x_test, steps), "last"),
             ("inputs at every step, two lengths", variable_lengths(task.x_train, steps),
              variable_lengths(task.x_test, steps, first=n), "last"),
             ("input at step 1, readouts at every step", task.x_train, task.x_test, "all"))
    rows = []
    for label, xtr, xte, readout in cases:
        x_all = xtr + xte if isinstance(xtr, list) else np.concatenate([xtr, xte])
        ntk = {k: np.asarray(kernel(net, x_all, readout=readout, kind="ntk")) for k, net in nets.items()}
        nngp = {k: np.asarray(kernel(net, x_all, readout=readout)) for k, net in nets.items()}
        row = {"case": label, "ntk_rel_diff": _relative(ntk["DNN"], ntk["RNN"]),
               "nngp_rel_diff": _relative(nngp["DNN"], nngp["RNN"])}
        if keep_kernels:
            row.update({"ntk_dnn": ntk["DNN"].tolist(), "ntk_rnn": ntk["RNN"].tolist()})
        if readout == "last":
            eta = min(n / np.linalg.eigvalsh(ntk[k][:n, :n])[-1] for k in nets)
            preds = {k: train(net, xtr, task.y_train, xte, times=[train_steps], learning_rate=eta,
                              dynamics="discrete") for k, net in nets.items()}
            curves = {k: theory_curves(p, task.y_test) for k, p in preds.items()}
            row.update({"learning_rate": float(eta), "train_steps": train_steps,
                        "mean_rel_diff": _relative(curves["DNN"][0], curves["RNN"][0]),
                        "std_rel_diff": _relative(np.sqrt(curves["DNN"][1]), np.sqrt(curves["RNN"][1])),
                        **{f"{k}_test_loss": float(c[2][-1]) for k, c in curves.items()},
                        **{f"{k}_test_error": float(c[3][-1]) for k, c in curves.items()}})
        rows.append(row)
    return rows


def format_comparison(rows: list) -> str:
    """The width x step table (markdown) of :meth:`TrainingComparison.rows`."""
    head = ("| arch | width | R | step | mean: theory / ensemble | std: theory / ensemble | max abs z mean | "
            "max abs z var | rms mean err / std | rel var err | test loss: theory / ensemble | "
            "test error: theory / ensemble |")
    lines = [head, "|" + "---|" * (head.count("|") - 1)]
    for r in rows:
        lines.append(
            f"| {r['arch']} | {r['width']} | {r['networks']} | {r['step']} | {r['theory_mean']:.3f} / "
            f"{r['ensemble_mean']:.3f} | {r['theory_std']:.3f} / {r['ensemble_std']:.3f} | {r['max_z_mean']:.2f} | "
            f"{r['max_z_var']:.2f} | {r['rms_mean']:.3f} | {r['rel_var']:.3f} | {r['theory_loss']:.3f} / "
            f"{r['ensemble_loss']:.3f} ± {r['ensemble_loss_se']:.3f} | {r['theory_error']:.3f} / "
            f"{r['ensemble_error']:.3f} ± {r['ensemble_error_se']:.3f} |")
    return "\n".join(lines)


def format_dnn_vs_rnn(rows: list) -> str:
    """The DNN-vs-RNN table (markdown) of :func:`dnn_vs_rnn`."""
    lines = [("| case | NTK rel. diff | NNGP rel. diff | trained mean rel. diff | test loss DNN / RNN | "
              "test error DNN / RNN |"), "|---|---|---|---|---|---|"]
    for r in rows:
        if "mean_rel_diff" in r:
            trained = (f"{r['mean_rel_diff']:.2g} | {r['DNN_test_loss']:.4f} / {r['RNN_test_loss']:.4f} | "
                       f"{r['DNN_test_error']:.4f} / {r['RNN_test_error']:.4f}")
        else:
            trained = "- | - | -"
        lines.append(f"| {r['case']} | {r['ntk_rel_diff']:.2g} | {r['nngp_rel_diff']:.2g} | {trained} |")
    return "\n".join(lines)


# The study of docs/training.md: DNN (depth 2) on the images, RNN (4 steps of 2 image rows each), both relu
# with weight_var 2 (its 1/width corrections are resolved at small widths with ~100 networks).
STUDY = {"count": 32, "train": 20, "widths": (64, 256, 1024), "networks": 64, "seed": 0}
QUICK = {"count": 12, "train": 8, "widths": (32, 128), "networks": 32, "seed": 0}
RNN_STEPS = 4


def study_networks() -> dict:
    """The two networks of the study: name -> (network, input transform)."""
    return {"DNN": (dnn(2, "relu", weight_var=2.0, bias_var=0.1), lambda x: x),
            "RNN": (rnn(RNN_STEPS, "relu", weight_var=2.0, bias_var=0.1), lambda x: as_sequence(x, RNN_STEPS))}


def study_steps(net, x_train, y_train, x_test) -> tuple:
    """Three recorded step counts at eta_max / 2: early, intermediate, and the step where the expected training
    residual has fallen below 1e-3 of the targets' norm (near convergence)."""
    pred = train(net, x_train, y_train, x_test, times=[0], dynamics="discrete")
    lam = np.linalg.eigvalsh(np.asarray(kernel(net, x_train, kind="ntk")))
    slowest = 1 - pred.learning_rate * lam[0] / len(y_train)
    last = int(np.ceil(np.log(1e-3) / np.log(slowest)))
    return (max(1, last // 20), max(2, last // 4), last)


def training_study(*, count: int = 32, train: int = 20, widths=(64, 256, 1024), networks: int = 64, seed: int = 0,
                   dtype: str = "float32", progress=False) -> dict:
    """The comparison of docs/training.md: both networks of :func:`study_networks` at ``widths`` on
    ``count`` digit images (``train`` of them for training), and :func:`dnn_vs_rnn`. Returns a dict with
    ``rows`` (:meth:`TrainingComparison.rows` of both), ``comparisons`` (their ``to_dict()``), ``dnn_vs_rnn``
    and ``seconds``."""
    start = time.perf_counter()
    task = digits_task(count, train)
    comparisons = []
    for name, (net, shape) in study_networks().items():
        xtr, xte = shape(task.x_train), shape(task.x_test)
        steps = study_steps(net, xtr, task.y_train, xte)
        comparisons.append(compare_training(net, xtr, task.y_train, xte, task.y_test, widths=widths,
                                            networks=networks, steps=steps, seed=seed, dtype=dtype, name=name,
                                            progress=progress))
    rows = [r for c in comparisons for r in c.rows()]
    return {"rows": rows, "comparisons": [c.to_dict() for c in comparisons], "dnn_vs_rnn": dnn_vs_rnn(task),
            "seconds": time.perf_counter() - start}


def main(argv=None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m netfield.experiments.training_study", description=__doc__.split("\n")[0])
    parser.add_argument("--quick", action="store_true", help="small settings (about a minute)")
    args = parser.parse_args(argv)
    result = training_study(**(QUICK if args.quick else STUDY), progress=True)
    print(format_comparison(result["rows"]))
    print()
    print(format_dnn_vs_rnn(result["dnn_vs_rnn"]))
    print(f"\n({result['seconds']:.0f} s)")


if __name__ == "__main__":
    main()


__all__ = [
    "QUICK",
    "STUDY",
    "DigitsTask",
    "TrainingComparison",
    "WidthComparison",
    "as_sequence",
    "compare_training",
    "digits_task",
    "dnn_vs_rnn",
    "ensemble_curves",
    "ensemble_statistics",
    "format_comparison",
    "format_dnn_vs_rnn",
    "study_networks",
    "study_steps",
    "theory_curves",
    "training_study",
    "variable_lengths",
]
