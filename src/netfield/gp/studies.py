"""The seed paper's classification claim as a study on scikit-learn's digits (docs/theory.md 2.2, 2.3).

Claim (paper A): with the readout at a single layer / time, the NNGP kernels of a DNN and of an RNN
are identical, hence so are Bayesian predictions and test accuracy. Reading the RNN out at several
times (its cross-time kernels C(t, s), t != s, enter) makes them differ.

:func:`digits_study` measures on one random split of the 8 x 8 digits (1797 images, 10 classes):

1. evidence maximisation (L-BFGS-B, gradients through the kernel) of weight_var, readout_var and
   noise for GP regression on centred one-hot labels (docs/theory.md 2.3) at a base depth;
2. DNN vs RNN at a single readout: test accuracy, max |difference| of the predictions; the RNN kernel
   is also recomputed by the generic master-theorem interpreter (weight sharing explicit) as a check
   independent of the fused fast path; the same for the multi-class softmax Laplace classifier;
3. readouts where they differ: outputs averaged over all steps, with static images (input at step 1)
   and with each image as a sequence of its 8 rows (row t enters at step t), and the row sequence
   read out at its last step only (identical again: inputs enter equal-time kernels identically);
4. accuracy and evidence vs depth and vs weight_var (order -> chaos; chi_1 = 1 marked);
5. scikit-learn's GaussianProcessRegressor with a (constant * RBF + white) kernel, evidence-optimised
   on the same split and targets.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

import jax
import numpy as np
from scipy.optimize import minimize_scalar
from sklearn.datasets import load_digits
from sklearn.exceptions import ConvergenceWarning

from .._checks import check_positive_int, check_variance
from ..criticality import critical_weight_var
from ..meanfield import kernel as _kernel
from ..program import dnn, rnn
from ._threads import blas_threads
from .classify import (
    class_indicators,
    laplace_latent_numpy,
    laplace_mode_numpy,
    laplace_predictor_numpy,
    one_hot,
    softmax_expectation,
)
from .gram import network_kernel
from .optimize import maximize_evidence, with_depth
from .regression import fit_kernel


@dataclass(frozen=True)
class DigitsSplit:
    """Train / test split of scikit-learn's digits.

    Pixels are divided by 16, centred with the training mean and scaled so that the mean of
    |x|^2 / d over the training images is 1 (inputs are divided by d in the network, docs/theory.md 1).
    """

    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    classes: np.ndarray


def digits_split(n_train: int = 300, n_test: int = 400, seed: int = 0) -> DigitsSplit:
    """A random train / test split of the digits (1797 images of 8 x 8 pixels)."""
    n_train = check_positive_int("n_train", n_train, minimum=10)
    n_test = check_positive_int("n_test", n_test)
    x, y = load_digits(return_X_y=True)
    if n_train + n_test > len(x):
        raise ValueError(f"n_train + n_test must be <= {len(x)} (the digits), got {n_train} + {n_test}")
    perm = np.random.default_rng(seed).permutation(len(x))
    tr, te = perm[:n_train], perm[n_train:n_train + n_test]
    x = x / 16.0
    x = x - x[tr].mean(axis=0)
    x = x / np.sqrt(np.mean(np.sum(x[tr] ** 2, axis=1)) / x.shape[1])
    return DigitsSplit(x[tr], y[tr], x[te], y[te], np.unique(y))


@dataclass(frozen=True)
class ReadoutComparison:
    """DNN vs RNN with one input form and readout.

    Attributes:
        name, description: what was compared.
        accuracy_dnn, accuracy_rnn: test accuracy.
        disagreement: fraction of test images whose predicted class differs.
        max_prediction_difference: max |mean_DNN - mean_RNN| over test images and classes.
        max_kernel_difference: max |K_DNN - K_RNN| / max(max |K_DNN|, max |K_RNN|), train and test.
        true_class_score_dnn, true_class_score_rnn: (n_test,) posterior mean of the true class.
    """

    name: str
    description: str
    accuracy_dnn: float
    accuracy_rnn: float
    disagreement: float
    max_prediction_difference: float
    max_kernel_difference: float
    true_class_score_dnn: np.ndarray
    true_class_score_rnn: np.ndarray


@dataclass(frozen=True)
class DigitsStudy:
    """Numbers of :func:`digits_study` (accuracies are fractions of the test set).

    ``depth_curves`` maps "ordered", "evidence-optimal", "chaotic" to (weight_var, accuracy per depth,
    log evidence per depth) of DNNs at ``depths``; ``accuracy_vs_depth_rnn`` is the RNN at the
    evidence-optimal weight_var (identical to the DNN curve). The weight_var sweep is at ``sweep_depth``.
    """

    n_train: int
    n_test: int
    seed: int
    activation: str
    bias_var: float
    depth: int
    weight_var: float
    readout_var: float
    noise: float
    log_evidence: float
    initial_log_evidence: float
    evidence_iterations: int
    evidence_at_bound: tuple
    accuracy_dnn: float
    accuracy_rnn: float
    max_prediction_difference: float
    generic_rnn_max_kernel_difference: float  # on the first 100 training images
    laplace_readout_var: float
    laplace_accuracy_dnn: float
    laplace_accuracy_rnn: float
    laplace_max_probability_difference: float
    comparisons: tuple
    sweep_depth: int
    weight_vars: np.ndarray
    accuracy_vs_weight_var: np.ndarray
    log_evidence_vs_weight_var: np.ndarray
    evidence_optimal_weight_var: float
    evidence_optimal_weight_var_accuracy: float
    evidence_optimal_weight_var_log_evidence: float
    critical_weight_var: float
    depths: np.ndarray
    depth_curves: dict
    accuracy_vs_depth_rnn: np.ndarray
    evidence_optimal_depth: int
    rbf_accuracy: float
    rbf_log_evidence: float
    rbf_kernel: str
    seconds: float
    cpu_seconds: float
    seconds_by_part: dict


def _fit_predict(k_train, k_cross, targets, noise):
    fit = fit_kernel(k_train, targets, noise=noise, overwrite=True)
    return fit.predict(k_cross).mean, fit.log_marginal_likelihood


def _compare(name, description, nets, split, targets, noise, readout, form):
    """DNN vs RNN predictions with one readout / input form (kernels of train and test together)."""
    x_tr, x_te = form(split.x_train), form(split.x_test)
    n = len(x_tr)
    means, kernels = [], []
    for net in nets:
        k = np.asarray(network_kernel(net, np.concatenate([x_tr, x_te]), None, readout))
        kernels.append(k)
        means.append(_fit_predict(k[:n, :n].copy(), k[n:, :n], targets, noise)[0])
    idx = np.searchsorted(split.classes, split.y_test)
    pred = [split.classes[np.argmax(m, axis=1)] for m in means]
    return ReadoutComparison(
        name, description,
        accuracy_dnn=float(np.mean(pred[0] == split.y_test)), accuracy_rnn=float(np.mean(pred[1] == split.y_test)),
        disagreement=float(np.mean(pred[0] != pred[1])),
        max_prediction_difference=float(np.abs(means[0] - means[1]).max()),
        max_kernel_difference=float(np.abs(kernels[0] - kernels[1]).max()
                                    / max(np.abs(kernels[0]).max(), np.abs(kernels[1]).max())),
        true_class_score_dnn=means[0][np.arange(len(idx)), idx],
        true_class_score_rnn=means[1][np.arange(len(idx)), idx],
    )


def _rows(x):
    """Each 8 x 8 image as a sequence of its 8 rows: (N, 64) -> (N, 8, 8)."""
    return x.reshape(x.shape[0], 8, 8)


def _static(x):
    return x


def _generic_kernel(net, x):
    """The readout kernel through the generic master-theorem interpreter: a JAX-traced hyper-parameter
    (here under jit) skips the fused fast path (netfield.kernel's documented rule), so the RNN's shared
    W, U, b are handled by the interpreter's covariance rules."""
    return np.asarray(jax.jit(lambda w: _kernel(_with_weight(net, w), x))(float(net.weight_var)))


def _with_weight(net, w):
    leaves, tree = jax.tree_util.tree_flatten(net)
    leaves[0] = w  # weight_var is the first leaf (HYPER_PARAMETERS order)
    return jax.tree_util.tree_unflatten(tree, leaves)


def _laplace_readout_var(net, split, labels, grid=(1.0, 10.0, 100.0, 1000.0)):
    """readout_var (the latent prior scale of the softmax Laplace classifier) with the largest Laplace
    evidence (GPML eq. 3.44) on a logarithmic grid; K is linear in readout_var (readout_bias_var = 0)."""
    base = np.asarray(network_kernel(net.replace(readout_var=1.0, readout_bias_var=0.0), split.x_train))
    evidence = [laplace_mode_numpy(rv * base, labels).log_marginal_likelihood for rv in grid]
    return float(grid[int(np.argmax(evidence))])


def _laplace(net, split, labels):
    """Softmax Laplace classifier (GPML Alg. 3.3 / 3.4): test-set class probabilities."""
    x_all = np.concatenate([split.x_train, split.x_test])
    n = len(split.x_train)
    k = np.asarray(network_kernel(net, x_all))
    mode = laplace_mode_numpy(k[:n, :n], labels)
    predictor = laplace_predictor_numpy(k[:n, :n], labels, mode.f)
    mean, cov = laplace_latent_numpy(predictor, k[n:, :n], np.diag(k)[n:])
    return softmax_expectation(mean, cov, n_samples=1000, seed=0)  # GPML Alg. 3.4


class _Timer:
    def __init__(self):
        self.last = time.perf_counter()
        self.parts = {}

    def lap(self, name):
        now = time.perf_counter()
        self.parts[name] = round(now - self.last, 2)
        self.last = now


def digits_study(n_train: int = 300, n_test: int = 400, seed: int = 0, *, activation: str = "erf",
                 bias_var: float = 0.1, depth: int = 4, sweep_depth: int = 32, depths=(1, 2, 4, 8, 16, 32, 64),
                 weight_vars=None, ordered_weight_var: float = 0.5, chaotic_weight_var: float = 5.0) -> DigitsStudy:
    """Run the digits study (about 30-60 s on 2 cores); see the module docstring.

    Example:
        >>> from netfield.gp.studies import digits_study
        >>> s = digits_study()  # doctest: +SKIP
        >>> s.accuracy_dnn == s.accuracy_rnn  # doctest: +SKIP
        True
    """
    start, cpu_start = time.perf_counter(), time.process_time()
    timer = _Timer()
    depth = check_positive_int("depth", depth)
    sweep_depth = check_positive_int("sweep_depth", sweep_depth)
    bias_var = float(check_variance("bias_var", bias_var))
    weight_vars = np.geomspace(0.25, 8.0, 9) if weight_vars is None else np.asarray(weight_vars, dtype=float)
    split = digits_split(n_train, n_test, seed)
    targets, _ = one_hot(split.y_train, split.classes)
    labels, _ = class_indicators(split.y_train, split.classes)
    n = n_train
    x_all = np.concatenate([split.x_train, split.x_test])

    # 1. evidence maximisation at the base depth (gradients through the kernel, L-BFGS-B)
    fit = maximize_evidence(dnn(depth, activation, weight_var=1.0, bias_var=bias_var), split.x_train, targets,
                            noise=0.01, params=("weight_var", "readout_var", "noise"))
    net_d = fit.network
    hyper = {k: net_d.hyper(k) for k in ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var")}
    net_r = rnn(depth, activation, **hyper)
    noise = fit.noise
    timer.lap("evidence maximisation")

    # 2. single readout: DNN (fused path) vs RNN (fused path, and generic interpreter)
    single = _compare("static-last", "image at step 1, readout at the last step", (net_d, net_r), split, targets,
                      noise, "last", _static)
    x_check = x_all[:100]  # a subset keeps the (slower, op-by-op) generic interpreter cheap
    k_dnn = np.asarray(network_kernel(net_d, x_check))
    k_generic = _generic_kernel(net_r, x_check)
    generic_diff = float(np.abs(k_dnn - k_generic).max() / np.abs(k_dnn).max())
    timer.lap("single readout")
    laplace_rv = _laplace_readout_var(net_d, split, labels)
    probs = [_laplace(net.replace(readout_var=laplace_rv), split, labels) for net in (net_d, net_r)]
    lap_pred = [split.classes[np.argmax(p, axis=1)] for p in probs]
    timer.lap("laplace")

    # 3. readouts where DNN and RNN differ (and one where they do not)
    comparisons = (
        single,
        _compare("static-mean", f"image at step 1, outputs of all {depth} steps averaged", (net_d, net_r), split,
                 targets, noise, "mean", _static),
        _compare("rows-last", "8 rows as a sequence, readout at step 8", (_depth(net_d, 8), _depth(net_r, 8)), split,
                 targets, noise, "last", _rows),
        _compare("rows-mean", "8 rows as a sequence, outputs of all 8 steps averaged",
                 (_depth(net_d, 8), _depth(net_r, 8)), split, targets, noise, "mean", _rows),
    )
    timer.lap("readout comparisons")

    # 4. sweeps. weight_var at a deep network (order -> chaos), evidence-optimal weight_var by a
    # bounded 1-D search on log weight_var; then depth at ordered / evidence-optimal / chaotic weight_var
    w_crit = float(critical_weight_var(activation, bias_var, input_var=hyper["input_var"]))
    timer.lap("criticality")
    deep = dict(hyper)

    def score(net):
        k = np.asarray(network_kernel(net, x_all))
        mean, lml = _fit_predict(k[:n, :n].copy(), k[n:, :n], targets, noise)
        return float(np.mean(split.classes[np.argmax(mean, axis=1)] == split.y_test)), float(lml)

    sweep = [score(dnn(sweep_depth, activation, **{**deep, "weight_var": float(w)})) for w in weight_vars]
    acc_w, ev_w = (np.array(v) for v in zip(*sweep))
    i = int(np.argmax(ev_w))
    lo, hi = np.log(weight_vars[max(i - 1, 0)]), np.log(weight_vars[min(i + 1, len(weight_vars) - 1)])
    res = minimize_scalar(lambda t: -score(dnn(sweep_depth, activation, **{**deep, "weight_var": float(np.exp(t))}))[1],
                          bounds=(lo, hi), method="bounded", options={"xatol": 1e-2})
    w_opt = float(np.exp(res.x))
    acc_w_opt, ev_w_opt = score(dnn(sweep_depth, activation, **{**deep, "weight_var": w_opt}))
    timer.lap("weight_var sweep")

    curves = {}
    for label, w in (("ordered", ordered_weight_var), ("evidence-optimal", w_opt), ("chaotic", chaotic_weight_var)):
        pairs = [score(dnn(int(d), activation, **{**deep, "weight_var": w})) for d in depths]
        curves[label] = (w, np.array([p[0] for p in pairs]), np.array([p[1] for p in pairs]))
    rnn_curve = np.array([score(rnn(int(d), activation, **{**deep, "weight_var": w_opt}))[0] for d in depths])
    best_depth = int(np.asarray(depths)[int(np.argmax(curves["evidence-optimal"][2]))])
    timer.lap("depth sweep")

    # 5. scikit-learn's GP with an RBF kernel on the same split and targets
    rbf_acc, rbf_ev, rbf_kernel = _rbf(split, targets)
    timer.lap("rbf")

    return DigitsStudy(
        n_train=n_train, n_test=n_test, seed=seed, activation=activation, bias_var=bias_var, depth=depth,
        weight_var=float(hyper["weight_var"]), readout_var=float(hyper["readout_var"]), noise=float(noise),
        log_evidence=fit.log_evidence, initial_log_evidence=fit.initial_log_evidence,
        evidence_iterations=fit.iterations, evidence_at_bound=fit.at_bound, accuracy_dnn=single.accuracy_dnn, accuracy_rnn=single.accuracy_rnn,
        max_prediction_difference=single.max_prediction_difference,
        generic_rnn_max_kernel_difference=generic_diff, laplace_readout_var=float(laplace_rv),
        laplace_accuracy_dnn=float(np.mean(lap_pred[0] == split.y_test)),
        laplace_accuracy_rnn=float(np.mean(lap_pred[1] == split.y_test)),
        laplace_max_probability_difference=float(np.abs(probs[0] - probs[1]).max()),
        comparisons=comparisons, sweep_depth=sweep_depth, weight_vars=weight_vars, accuracy_vs_weight_var=acc_w,
        log_evidence_vs_weight_var=ev_w, evidence_optimal_weight_var=w_opt,
        evidence_optimal_weight_var_accuracy=acc_w_opt, evidence_optimal_weight_var_log_evidence=ev_w_opt,
        critical_weight_var=w_crit, depths=np.asarray(depths), depth_curves=curves,
        accuracy_vs_depth_rnn=rnn_curve, evidence_optimal_depth=best_depth, rbf_accuracy=rbf_acc,
        rbf_log_evidence=rbf_ev, rbf_kernel=rbf_kernel, seconds=time.perf_counter() - start,
        cpu_seconds=time.process_time() - cpu_start, seconds_by_part=dict(timer.parts),
    )


def _depth(net, depth):
    return with_depth(net, depth)


def _rbf(split, targets):
    """sklearn GaussianProcessRegressor, kernel C * RBF + White, evidence-optimised (one start)."""
    from sklearn.gaussian_process import GaussianProcessRegressor
    from sklearn.gaussian_process.kernels import RBF, ConstantKernel, WhiteKernel

    kernel = ConstantKernel(1.0, (1e-3, 1e3)) * RBF(8.0, (1e-1, 1e3)) + WhiteKernel(1e-2, (1e-8, 1e1))
    with blas_threads(len(split.x_train)), warnings.catch_warnings():
        # the white-noise level ends on its lower bound (as netfield's noise does): the evidence prefers
        # interpolating the labels; sklearn warns about it, the fitted kernel string reports it
        warnings.simplefilter("ignore", ConvergenceWarning)
        gpr = GaussianProcessRegressor(kernel, alpha=1e-10, random_state=0).fit(split.x_train, targets)
        mean = gpr.predict(split.x_test)
    acc = float(np.mean(split.classes[np.argmax(mean, axis=1)] == split.y_test))
    return acc, float(gpr.log_marginal_likelihood_value_), str(gpr.kernel_)


__all__ = ["DigitsSplit", "DigitsStudy", "ReadoutComparison", "digits_split", "digits_study"]
