"""``netfield.train``: the infinite-width training dynamics of a network (docs/training.md).

Computes the NNGP and NTK blocks of the joint program on x_train + x_test with
``netfield.meanfield.kernel(..., kind="nngp")`` and ``kind="ntk"`` and hands them to
:func:`netfield.training.theory.predict_from_kernels`.
"""

from __future__ import annotations

import re

import numpy as np

from .._checks import check_choice
from ..meanfield.kernels import check_network, joined_inputs, kernel
from .result import TrainingPrediction
from .theory import check_learning_rate, check_times, predict_from_kernels

PARAMETERIZATIONS = ("ntk", "standard")
KERNEL_OPTIONS = ("method", "batch", "qmc_points", "qmc_replicates", "seed", "readout")


def _kernel(net, x, kind: str, **options):
    """(values as numpy, largest numerical error or None) of one kernel call."""
    k = kernel(net, x, kind=kind, **options)
    error = getattr(k, "error", None)
    values = getattr(k, "values", k) if error is not None else k
    return np.asarray(values, dtype=np.float64), (None if error is None else float(np.max(np.abs(error))))


def kernel_blocks(net, x_train, x_test, *, parameterization: str = "ntk", width: int | None = None,
                  **kernel_options) -> dict:
    """The five blocks of the NNGP K and the NTK Theta on training points X and test points x*.

    One joint program on x_train + x_test per kernel (as ``netfield.kernel(net, x1, x2)`` builds it),
    split into K(X, X), K(x*, X), K(x*, x*), Theta(X, X), Theta(x*, X); plus ``kernel_error``
    ({"nngp", "ntk"} largest numerical error, where the kernel reports one, else None).

    ``kernel_options`` go to both kernel calls (``method``, ``qmc_points``, ``qmc_replicates``, ``seed``);
    ``readout`` must be ``"last"`` (one output per pattern) and ``batch`` ``"joint"`` (batch-coupled
    networks see x_train + x_test as one batch).
    """
    check_network(net)
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    unknown = sorted(set(kernel_options) - set(KERNEL_OPTIONS))
    if unknown:
        raise TypeError(f"unknown keyword argument(s) {', '.join(unknown)}; netfield.train passes on the kernel "
                        f"options {', '.join(KERNEL_OPTIONS)}")
    if kernel_options.get("readout", "last") != "last":
        raise ValueError(f"readout must be 'last' for netfield.train (one output per pattern), got "
                         f"{kernel_options['readout']!r}")
    if kernel_options.get("batch", "joint") != "joint":
        raise ValueError(f"batch must be 'joint' for netfield.train (x_train and x_test form one batch of the "
                         f"joint program), got {kernel_options['batch']!r}")
    if x_test is None:
        raise TypeError("x_test must be test inputs like x_train (give x_test=x_train[:1] if only the training "
                        "outputs are wanted), got None")
    net.check_inputs(x_train, "x_train")
    net.check_inputs(x_test, "x_test")
    try:
        joined, n = joined_inputs(net, x_train, x_test)
    except (TypeError, ValueError) as err:  # the pair's checks name x1 / x2: here they are x_train / x_test
        raise type(err)(re.sub(r"\bx2\b", "x_test", re.sub(r"\bx1\b", "x_train", str(err)))) from None
    k, k_err = _kernel(net, joined, "nngp", **kernel_options)
    th, th_err = _kernel(net, joined, "ntk", parameterization=parameterization, width=width, **kernel_options)
    if k.shape[0] != k.shape[1] or th.shape != k.shape or not 0 < n < k.shape[0]:
        raise ValueError(f"the kernels of x_train + x_test must be square with one row per pattern, got NNGP "
                         f"{k.shape} and NTK {th.shape} for {n} training patterns")
    errors = None if k_err is None and th_err is None else {"nngp": k_err, "ntk": th_err}
    return {"nngp_train": k[:n, :n], "nngp_cross": k[n:, :n], "nngp_test": k[n:, n:],
            "ntk_train": th[:n, :n], "ntk_cross": th[n:, :n], "kernel_error": errors}


def train(net, x_train, y_train, x_test, *, times, learning_rate: float | None = None, dynamics: str = "flow",
          parameterization: str = "ntk", width: int | None = None, rcond: float | None = None,
          allow_unstable: bool = False, **kernel_options) -> TrainingPrediction:
    """Outputs of the infinitely wide network ``net`` trained by gradient descent on (x_train, y_train).

    At infinite width the network evolves as its linearisation around initialisation (Lee et al. 2019):
    at every time its outputs are Gaussian, with the mean and covariance of docs/training.md (T6)-(T9)
    over random initialisations, from the NNGP kernel K (initial outputs f_0 ~ GP(0, K)) and the NTK
    Theta (constant during training). Loss (T1): (1 / 2N) sum_a |f(x_a) - y_a|^2; gradient flow
    df/dt = -(eta / N) Theta (f - Y), or discrete steps f_{t+1} = f_t - (eta / N) Theta (f_t - Y).

    Args:
        net: any network (:func:`netfield.dnn`, :func:`netfield.rnn`, ...).
        x_train: (N, d) / (N, T, d) / list of sequences: training inputs, as :func:`netfield.kernel` takes them.
        y_train: (N,) or (N, K) targets.
        x_test: test inputs of the same kind.
        times: a time or a 1-D sequence of times >= 0, ``inf`` for the end of training. Gradient-flow time
            (``dynamics="flow"``) or number of steps (``"discrete"``, whole numbers).
        learning_rate: eta > 0; default eta_max / 2 = N / lambda_max(Theta(X, X)), the rate that removes
            the stiffest mode's residual in one discrete step. For gradient flow only eta * t matters
            (any eta > 0 is stable); discrete gradient descent needs eta < eta_max = 2 N / lambda_max.
        dynamics: ``"flow"`` (gradient flow) or ``"discrete"`` (full-batch gradient descent).
        parameterization: ``"ntk"`` or ``"standard"``: the parameterization of the trained weights (the
            NTK's, passed to ``netfield.kernel(kind="ntk")``).
        width: the hidden width for ``parameterization="standard"`` (whose NTK grows with it), passed on.
        rcond: relative cut of the null space of Theta(X, X) (default N * float64 epsilon; docs/training.md (T9)).
        allow_unstable: compute discrete gradient descent with eta >= eta_max at finite times (it diverges).
        **kernel_options: ``method``, ``qmc_points``, ``qmc_replicates``, ``seed`` of :func:`netfield.kernel`.

    Returns:
        :class:`~netfield.training.result.TrainingPrediction`: ``mean`` (T, M, K), ``cov`` (T, M, M),
        ``train_mean``, ``train_cov``, ``times``, ``learning_rate``, ``max_learning_rate``, ``at(t)``, ``std()``.

    Cost: two kernels on the N + M joint points, one eigendecomposition of Theta(X, X) (O(N^3)), and per
    time O(M N^2 + M^2 N + N^3).

    Example:
        >>> import numpy as np, netfield
        >>> x = np.random.default_rng(0).normal(size=(6, 3)); y = np.sin(x[:, 0])
        >>> p = netfield.train(netfield.dnn(2, "relu", weight_var=2.0), x, y, x[:2], times=[0, 10, np.inf])
        >>> p.mean.shape, p.cov.shape
        ((3, 2, 1), (3, 2, 2))
    """
    check_times(times, dynamics)                                  # before the kernels: fail fast
    check_learning_rate(learning_rate, float("inf"), dynamics)   # type and sign; eta_max needs the NTK
    blocks = kernel_blocks(net, x_train, x_test, parameterization=parameterization, width=width, **kernel_options)
    errors = blocks.pop("kernel_error")
    return predict_from_kernels(**blocks, y_train=y_train, times=times, learning_rate=learning_rate,
                                dynamics=dynamics, rcond=rcond, allow_unstable=allow_unstable,
                                parameterization=parameterization, width=width, kernel_error=errors)


__all__ = ["KERNEL_OPTIONS", "PARAMETERIZATIONS", "kernel_blocks", "train"]
