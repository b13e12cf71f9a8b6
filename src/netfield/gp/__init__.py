"""Bayesian inference with network kernels: GP regression, evidence, classification, scikit-learn.

Pure JAX functions (jit-able, differentiable through the network kernel) and NumPy/LAPACK paths for
large N; a matrix-free path (preconditioned CG, stochastic log evidence) for kernels that do not fit
in memory (docs/theory.md 2.4); estimators and a kernel that plug into scikit-learn (docs/theory.md 2.3).

Example:
    >>> import numpy as np, netfield
    >>> from netfield import gp
    >>> x = np.random.default_rng(0).normal(size=(30, 4)); y = np.tanh(x[:, 0])
    >>> fit = gp.fit_network(netfield.dnn(3, "erf", weight_var=2.0), x, y, noise=1e-2)
    >>> fit.predict(x[:5]).mean.shape
    (5,)
"""

from .classify import (
    LaplaceMode,
    LaplacePredictor,
    class_indicators,
    laplace_latent,
    laplace_latent_numpy,
    laplace_log_evidence,
    laplace_mode,
    laplace_mode_numpy,
    laplace_predictor,
    laplace_predictor_numpy,
    one_hot,
    softmax_expectation,
)
from .gram import check_readout, gram_matrix, kernel_diag, network_kernel
from .iterative import (
    CGResult,
    ConvergenceError,
    IterativeRegression,
    LogDetEstimate,
    LowRankPreconditioner,
    PivotedCholesky,
    conjugate_gradients,
    fit_iterative,
    pivoted_cholesky,
    stochastic_lanczos_logdet,
)
from .operators import BlockRowsOperator, DenseKernelOperator, KernelOperator, RowBlockOperator, as_operator
from .optimize import (
    DEFAULT_BOUNDS,
    DepthSelection,
    EvidenceFit,
    maximize_evidence,
    maximize_laplace_evidence,
    select_depth,
    with_depth,
)
from .regression import (
    CholeskyFactor,
    KernelJitterWarning,
    KernelRegression,
    NetworkRegression,
    Posterior,
    cholesky_with_jitter,
    evidence_and_grad,
    factorize,
    fit_kernel,
    fit_network,
    log_evidence,
    log_marginal_likelihood,
    posterior,
)

# The scikit-learn estimators load scikit-learn (~0.1 s) on first access of their names, not at import.
_LAZY = {"NetworkKernel": ".sklearn", "NNGPClassifier": ".sklearn", "NNGPRegressor": ".sklearn",
         "WorkerRowBlocks": ".worker_blocks"}


def __getattr__(name):
    if name in _LAZY:
        import importlib

        value = getattr(importlib.import_module(_LAZY[name], __name__), name)
        globals()[name] = value
        return value
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY))


__all__ = [
    "DEFAULT_BOUNDS", "BlockRowsOperator", "CGResult", "CholeskyFactor", "ConvergenceError", "DenseKernelOperator",
    "DepthSelection", "EvidenceFit", "IterativeRegression", "KernelJitterWarning", "KernelOperator",
    "KernelRegression", "LaplaceMode", "LaplacePredictor", "LogDetEstimate", "LowRankPreconditioner",
    "NNGPClassifier", "NNGPRegressor", "NetworkKernel", "NetworkRegression", "PivotedCholesky", "Posterior",
    "RowBlockOperator", "WorkerRowBlocks", "as_operator", "check_readout", "cholesky_with_jitter", "class_indicators",
    "conjugate_gradients", "evidence_and_grad", "factorize", "fit_iterative", "fit_kernel", "fit_network", "gram_matrix", "kernel_diag", "laplace_latent", "laplace_latent_numpy",
    "laplace_log_evidence", "laplace_mode", "laplace_mode_numpy", "laplace_predictor", "laplace_predictor_numpy", "log_evidence", "log_marginal_likelihood", "maximize_evidence",
    "maximize_laplace_evidence", "network_kernel", "one_hot", "pivoted_cholesky", "posterior", "select_depth",
    "softmax_expectation", "stochastic_lanczos_logdet", "with_depth",
]
