"""Evidence maximisation: hyper-parameters by L-BFGS-B on log-parameters, depth by comparing evidence.

Type-II maximum likelihood (GPML section 5.4.1): maximise log p(Y | X, theta) over
theta = log(weight_var, bias_var, input_var, readout_var, readout_bias_var, noise). The gradient is
``jax.grad`` through the network kernel (docs/theory.md 2.1, 2.2) and the GP evidence (GPML eq. 2.30,
or the Laplace approximation GPML Alg. 3.3 for classification); L-BFGS-B (scipy) works on the
logarithms, inside box bounds.

The kernel is recomputed on traced hyper-parameters by netfield's generic interpreter; with
``jit=True`` the objective is compiled once (about one second per layer / time step on 2 cores)
and each evaluation then costs milliseconds at N = 300 and seconds at N = 2000 (O(N^3) Cholesky plus
the kernel's O(N^2 depth)). An optimisation takes tens to ``max_iter`` L-BFGS-B iterations (about
1.2 evaluations each); the digits study's (N = 300, 3 parameters) took 109-117 s on 2 cores,
compilation included. The optimisers show the evaluations counted on stderr (``progress``, the
convention of :mod:`netfield._runtime.progress`).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int, check_variance
from .._runtime.progress import check_progress, progress_bar
from ..distributed import executor
from ..meanfield.kernels import check_network
from ..program import Network
from .classify import _indicator, laplace_log_evidence
from .gram import check_readout, gram_matrix, network_kernel
from .regression import (
    _check_noise,
    _check_targets,
    _with_values,
    fit_kernel,
    log_marginal_likelihood,
)

DEFAULT_BOUNDS = {
    "weight_var": (1e-2, 1e2),
    "bias_var": (1e-6, 1e2),
    "input_var": (1e-3, 1e3),
    "readout_var": (1e-4, 1e4),
    "readout_bias_var": (1e-6, 1e2),
    "noise": (1e-8, 1e2),
}
OTHER_BOUNDS = (1e-6, 1e6)  # hyper-parameters of user-written programs
DEFAULT_PARAMS = ("weight_var", "bias_var", "input_var", "readout_var", "noise")


@dataclass(frozen=True)
class EvidenceFit:
    """Result of evidence maximisation.

    Attributes:
        network: the network with the optimal hyper-parameters.
        noise: the optimal noise variance (the given one if it was not optimised; None for Laplace).
        log_evidence: log marginal likelihood at the optimum.
        initial_log_evidence: at the starting point.
        gradient: d log evidence / d log parameter at the optimum, per optimised parameter.
        params: the optimised parameters.
        at_bound: those that ended on a bound of their box.
        iterations, evaluations: L-BFGS-B iterations and objective evaluations.
        converged: whether L-BFGS-B reported convergence.
        message: its message.
    """

    network: Network
    noise: float | None
    log_evidence: float
    initial_log_evidence: float
    gradient: dict
    params: tuple
    at_bound: tuple
    iterations: int
    evaluations: int
    converged: bool
    message: str


def _check_params(params, net: Network, noise, allowed=None):
    if allowed is None:
        allowed = tuple(net.hyper_names) + ("noise",)
    values = {p: (noise if p == "noise" else net.hyper(p)) for p in allowed}
    if params is None:
        chosen = tuple(p for p in DEFAULT_PARAMS if p in allowed and float(values[p]) > 0)
    else:
        chosen = (params,) if isinstance(params, str) else tuple(params)
        bad = [p for p in chosen if p not in allowed]
        if bad or not chosen or len(set(chosen)) != len(chosen):
            raise ValueError(f"params must be distinct names among {', '.join(allowed)}, got {params!r}")
        for p in chosen:
            if float(values[p]) <= 0:
                raise ValueError(
                    f"{p} = {values[p]!r} cannot be optimised on a log scale; start it at a value > 0 "
                    f"or leave it out of params"
                )
    return chosen, {p: float(values[p]) for p in chosen}


def _check_bounds(bounds, chosen, start):
    bounds = {} if bounds is None else dict(bounds)
    known = list(DEFAULT_BOUNDS) + [p for p in chosen if p not in DEFAULT_BOUNDS]
    unknown = set(bounds) - set(known)
    if unknown:
        raise ValueError(f"bounds accepts keys among {', '.join(known)}, got {sorted(unknown)}")
    out = []
    for p in chosen:
        lo, hi = bounds.get(p, DEFAULT_BOUNDS.get(p, OTHER_BOUNDS))
        if not (0 < lo < hi < math.inf):
            raise ValueError(f"bounds[{p!r}] must be (low, high) with 0 < low < high < inf, got {(lo, hi)!r}")
        if not lo <= start[p] <= hi:
            raise ValueError(f"{p} = {start[p]!r} is outside its bounds {(lo, hi)!r}; "
                             f"start inside them or pass wider bounds={{{p!r}: (low, high)}}")
        out.append((math.log(lo), math.log(hi)))
    return out


def _maximize(objective, chosen, start, log_bounds, max_iter, jit, progress=False, label="evidence"):
    """L-BFGS-B on log-parameters of ``objective(values dict) -> log evidence`` (a JAX scalar);
    ``progress`` (:func:`netfield._runtime.progress.progress_bar`) counts the evaluations."""
    with progress_bar(progress, None, label, unit="evaluations") as bar:
        return _lbfgsb(objective, chosen, start, log_bounds, max_iter, jit, bar)


def _lbfgsb(objective, chosen, start, log_bounds, max_iter, jit, bar):

    def negative(theta):
        values = {p: jnp.exp(theta[i]) for i, p in enumerate(chosen)}
        return -objective(values)

    value_and_grad = jax.value_and_grad(negative)
    if jit:
        value_and_grad = jax.jit(value_and_grad)
    calls = {"n": 0}

    def fun(theta):
        calls["n"] += 1
        v, g = value_and_grad(jnp.asarray(theta))
        v, g = float(v), np.asarray(g, dtype=np.float64)
        bar(1)
        if not (math.isfinite(v) and np.isfinite(g).all()):
            return math.inf, np.zeros_like(theta)  # L-BFGS-B backtracks from a non-finite point
        return v, g

    theta0 = np.log(np.array([start[p] for p in chosen]))
    v0, _ = fun(theta0)
    from scipy.optimize import minimize  # scipy.optimize (~0.1 s at import) loads on first use

    res = minimize(fun, theta0, jac=True, method="L-BFGS-B", bounds=log_bounds,
                   options={"maxiter": max_iter, "gtol": 1e-6, "ftol": 1e-12})
    v, g = fun(res.x)
    at_bound = tuple(p for i, p in enumerate(chosen)
                     if min(abs(res.x[i] - log_bounds[i][0]), abs(res.x[i] - log_bounds[i][1])) < 1e-6)
    values = {p: float(np.exp(res.x[i])) for i, p in enumerate(chosen)}
    return values, -v, -v0, {p: float(-g[i]) for i, p in enumerate(chosen)}, at_bound, res, calls["n"]


def maximize_evidence(net: Network, x, y, *, noise, params=None, bounds=None, readout="last",
                      max_iter: int = 200, jit: bool = True, progress=True) -> EvidenceFit:
    """Maximise the GP-regression evidence over network hyper-parameters and noise (GPML 5.4.1).

    Cost: one compilation (~1 s per layer / time step) plus, per evidence evaluation, milliseconds at
    N = 300 to ~2 s at N = 2000; typically 20-200 evaluations (109-117 s measured for the digits
    study, N = 300). Levers: N (cubic), ``max_iter``, the number of ``params``, ``jit``.

    Args:
        net: starting network (its hyper-parameters are the starting point).
        x, y: training inputs and targets (N,) or (N, k) (e.g. centred one-hot labels).
        noise: starting noise variance.
        params: names to optimise among weight_var, bias_var, input_var, readout_var,
            readout_bias_var, noise; default: weight_var, bias_var, input_var, readout_var, noise,
            leaving out those that are exactly 0 (a log-scale optimiser cannot move them).
        bounds: {name: (low, high)} overriding :data:`DEFAULT_BOUNDS`.
        readout: ``"last"``, ``"mean"`` or a tuple of steps (:mod:`netfield.gp.gram`).
        max_iter: L-BFGS-B iterations.
        jit: compile the objective (default; without it every evaluation dispatches the interpreter's
            operations one by one, about a second each even for small N).
        progress: True (default): count the evidence evaluations on stderr; False: quiet; a callable
            ``progress(k)`` is told about each evaluation (:mod:`netfield._runtime.progress`).

    Returns:
        :class:`EvidenceFit`.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import maximize_evidence
        >>> x = np.random.default_rng(0).normal(size=(20, 2)); y = np.sin(x[:, 0])
        >>> fit = maximize_evidence(netfield.dnn(2, "erf"), x, y, noise=0.1, params=("weight_var", "noise"))
        >>> fit.log_evidence >= fit.initial_log_evidence
        True
    """
    check_network(net)
    _check_noise(noise)
    readout = check_readout(readout)
    max_iter = check_positive_int("max_iter", max_iter)
    n = len(x) if isinstance(x, (list, tuple)) else np.shape(x)[0]
    y2, _ = _check_targets(y, n)
    chosen, start = _check_params(params, net, noise)
    log_bounds = _check_bounds(bounds, chosen, start)
    check_progress(progress)

    def objective(values):
        hyper = {p: v for p, v in values.items() if p != "noise"}
        k = network_kernel(_with_values(net, hyper), x, None, readout)
        return log_marginal_likelihood(k, y2, noise=values.get("noise", noise))

    values, best, first, grad, at_bound, res, calls = _maximize(objective, chosen, start, log_bounds, max_iter, jit,
                                                                progress, _label(net, "GP evidence"))
    best_net = net.replace(**{p: v for p, v in values.items() if p != "noise"})
    return EvidenceFit(best_net, values.get("noise", float(noise)), best, first, grad, chosen, at_bound,
                       int(res.nit), calls, bool(res.success), str(res.message))


def maximize_laplace_evidence(net: Network, x, y, *, params=None, bounds=None, readout="last", max_iter: int = 200,
                              newton_iter: int = 100, tol: float = 1e-9, jit: bool = True,
                              progress=True) -> EvidenceFit:
    """Maximise the Laplace-approximate evidence of the softmax GP classifier (GPML Alg. 3.3, eq. 3.44).

    Cost: as :func:`maximize_evidence`, each evaluation running a Newton mode search (up to
    ``newton_iter`` solves of C N x N systems for C classes); levers: N, ``max_iter``, ``params``.

    The gradient goes through the kernel and through the mode (implicit derivative, see
    :func:`netfield.gp.laplace_log_evidence`).

    Args:
        y: (N, C) 0/1 class indicators (:func:`netfield.gp.class_indicators`).
        params: names among the network's variances (default: weight_var, bias_var, input_var,
            readout_var, those > 0).
        newton_iter, tol: the inner mode search.
        (the others, ``progress`` included, as :func:`maximize_evidence`).

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import class_indicators, maximize_laplace_evidence
        >>> x = np.random.default_rng(0).normal(size=(20, 2)); y, _ = class_indicators(x[:, 0] > 0)
        >>> fit = maximize_laplace_evidence(netfield.dnn(2, "erf"), x, y, params=("readout_var",))
        >>> fit.log_evidence >= fit.initial_log_evidence
        True
    """
    check_network(net)
    readout = check_readout(readout)
    max_iter = check_positive_int("max_iter", max_iter)
    newton_iter = check_positive_int("newton_iter", newton_iter)
    y = _indicator(y)
    n = len(x) if isinstance(x, (list, tuple)) else np.shape(x)[0]
    if y.shape[0] != n:
        raise ValueError(f"y must have one row per training pattern (N = {n}), got {y.shape[0]} rows")
    chosen, start = _check_params(params, net, None, allowed=tuple(net.hyper_names))
    log_bounds = _check_bounds(bounds, chosen, start)
    check_progress(progress)

    def objective(values):
        k = network_kernel(_with_values(net, values), x, None, readout)
        return laplace_log_evidence(k, y, max_iter=newton_iter, tol=tol)

    values, best, first, grad, at_bound, res, calls = _maximize(objective, chosen, start, log_bounds, max_iter, jit,
                                                                progress, _label(net, "Laplace evidence"))
    return EvidenceFit(net.replace(**values), None, best, first, grad, chosen, at_bound, int(res.nit), calls,
                       bool(res.success), str(res.message))


def _label(net: Network, what: str) -> str:
    return f"{what} ({net.name})"


@dataclass(frozen=True)
class DepthSelection:
    """Evidence as a function of depth / number of steps.

    Attributes:
        depths: (D,) the depths compared.
        log_evidence: (D,) log marginal likelihood at each depth.
        best_depth: the depth with the largest evidence.
        network, noise: the best network and its noise.
        fits: per depth the :class:`EvidenceFit` (``optimize=True``), else empty.
    """

    depths: np.ndarray
    log_evidence: np.ndarray
    best_depth: int
    network: Network
    noise: float
    fits: tuple


def with_depth(net: Network, depth: int) -> Network:
    """The same network (builder options and hyper-parameters) with another depth / number of steps /
    blocks (:meth:`~netfield.program.network.Network.rebuild`)."""
    options = dict(net.options)
    key = next((k for k in ("steps", "depth", "blocks") if k in options), None)
    if key is None:
        raise ValueError(f"net: the {net.name} network has no depth option to vary (it was written with "
                         f"netfield.architecture); write one network per depth instead")
    return net.rebuild(**{key: depth})


def _score_depth(candidate, x, y2, noise, readout, optimize, params, bounds, max_iter, jit, progress):
    """(log evidence, network, noise, fit or None) of one depth of :func:`select_depth` (a task)."""
    if optimize:
        fit = maximize_evidence(candidate, x, y2, noise=noise, params=params, bounds=bounds, readout=readout,
                                max_iter=max_iter, jit=jit, progress=progress)
        return fit.log_evidence, fit.network, fit.noise, fit
    k = gram_matrix(candidate, x, readout)
    return fit_kernel(k, y2, noise=noise, overwrite=True).log_marginal_likelihood, candidate, float(noise), None


def select_depth(net: Network, x, y, *, noise, depths, readout="last", optimize: bool = False, params=None,
                 bounds=None, max_iter: int = 200, jit: bool = True, progress=True, client=None,
                 workers: int | None = None) -> DepthSelection:
    """Choose depth (DNN) / number of steps (RNN) by comparing the GP-regression evidence.

    With ``optimize=False`` every depth is scored at ``net``'s hyper-parameters and ``noise`` (fast
    fused kernels); with ``optimize=True`` each depth's evidence is first maximised over ``params``
    (:func:`maximize_evidence`), which compares depths at their own best hyper-parameters.

    Cost: ``optimize=False``: one kernel and one Cholesky per depth (seconds at N = 2000);
    ``optimize=True``: one :func:`maximize_evidence` per depth (up to minutes each). Levers: the
    number of ``depths``, N, ``max_iter``. ``progress`` (default True; False: quiet; or a callable
    ``progress(k)``) counts depths, or with ``optimize`` each depth's evidence evaluations.
    ``client`` / ``workers``: score the depths as tasks on Dask (docs/distributed.md), the same numbers;
    progress then counts depths.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import select_depth
        >>> x = np.random.default_rng(0).normal(size=(30, 3)); y = np.sign(x[:, 0])
        >>> sel = select_depth(netfield.dnn(1, "relu", weight_var=2.0), x, y, noise=0.1, depths=[1, 2, 4])
        >>> sel.best_depth in (1, 2, 4)
        True
    """
    check_network(net)
    check_variance("noise", noise)
    depths = list(depths) if not isinstance(depths, (int, np.integer)) else [depths]
    if not depths:
        raise ValueError("depths must be a non-empty sequence of integers >= 1, got an empty sequence")
    depths = [check_positive_int(f"depths[{j}]", d) for j, d in enumerate(depths)]
    n = len(x) if isinstance(x, (list, tuple)) else np.shape(x)[0]
    y2, _ = _check_targets(y, n)
    check_progress(progress)
    with executor(client, workers) as ex:
        inner = progress if optimize and not ex.distributed else False  # each optimisation counts its evaluations
        tasks = [(with_depth(net, d), x, y2, noise, readout, optimize, params, bounds, max_iter, jit, inner)
                 for d in depths]
        with progress_bar(False if optimize and not ex.distributed else progress, len(depths), "depths") as bar:
            scores = ex.run(_score_depth, tasks, on_result=lambda i, r: bar(1), label="depth")
    evidence = [e for e, _, _, _ in scores]
    nets = [n for _, n, _, _ in scores]
    noises = [v for _, _, v, _ in scores]
    fits = [f for _, _, _, f in scores if f is not None]
    i = int(np.argmax(evidence))
    return DepthSelection(np.array(depths), np.array(evidence), depths[i], nets[i], noises[i], tuple(fits))


__all__ = ["DEFAULT_BOUNDS", "DEFAULT_PARAMS", "DepthSelection", "EvidenceFit", "maximize_evidence", "maximize_laplace_evidence",
           "select_depth", "with_depth"]
