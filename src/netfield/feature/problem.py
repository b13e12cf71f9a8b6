"""The muP saddle-point problem: its data (:class:`Problem`, a JAX pytree), its construction from a network
and data (:func:`build_problem`), and the nodes of the single-site averages (docs/feature.md F4, F8, F8a).
The map, the solvers and the result are in :mod:`netfield.feature.theory`."""

from __future__ import annotations

from dataclasses import dataclass, field

import jax
import numpy as np

from .._checks import check_finite_array, check_positive_int
from ..program import Network
from ..program.shape import require_chain

jax.config.update("jax_enable_x64", True)


@dataclass(frozen=True, eq=False)
class Problem:
    """A posterior saddle-point problem (all arrays over train + test patterns).

    Attributes:
        T, P, P_train: steps, patterns (train first, then test), training patterns.
        supervised: tuple of supervised steps S (1-based).
        c_in: (T, T, P, P) input + bias covariance (blocks without a weight-matrix term).
        free: (T, T) bool, blocks (t, s) that carry a weight-matrix term (and a conjugate field).
        targets: (|S| * P_train,) scaled targets sqrt(signal) * y, step-major.
    """

    net: Network
    T: int
    P: int
    P_train: int
    supervised: tuple
    c_in: np.ndarray
    free: np.ndarray
    targets: np.ndarray
    kappa: float
    signal: float
    inv_width: float
    linear: bool
    normals: np.ndarray = field(repr=False)
    log_weights: np.ndarray = field(repr=False, default=None)
    proposal: np.ndarray | None = field(repr=False, default=None)
    defensive: np.ndarray | None = field(repr=False, default=None)
    control_variate: bool = True
    single_precision: bool = False


def _flatten_problem(p: Problem):
    leaves = (p.net, p.c_in, p.targets, p.kappa, p.signal, p.inv_width, p.normals, p.log_weights, p.proposal,
              p.defensive)
    aux = (p.T, p.P, p.P_train, p.supervised, tuple(map(tuple, np.asarray(p.free).tolist())), p.linear,
           p.control_variate, p.single_precision)
    return leaves, aux


def _unflatten_problem(aux, leaves) -> Problem:
    T, P, P_train, supervised, free, linear, control_variate, single_precision = aux
    net, c_in, targets, kappa, signal, inv_width, normals, log_weights, proposal, defensive = leaves
    return Problem(net, T, P, P_train, supervised, c_in, np.array(free, bool), targets, kappa, signal, inv_width,
                   linear, normals, log_weights, proposal, defensive, control_variate, single_precision)


# a pytree: the jitted map compiles once per structure (steps, patterns, supervised steps, activation),
# not once per signal strength
jax.tree_util.register_pytree_node(Problem, _flatten_problem, _unflatten_problem)


def _check_positive(name, value):
    if isinstance(value, bool) or not isinstance(value, (int, float, np.integer, np.floating)) or not (
            np.isfinite(value) and value > 0):
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _as_sequences(x, T, name):
    arr = check_finite_array(name, x)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or arr.shape[1] > T or min(arr.shape) < 1:
        raise ValueError(f"{name} must have shape (P, d) or (P, T_in, d) with T_in <= {T}, got {np.shape(x)}")
    return arr


def _pad(a, t_in):
    return np.concatenate([a, np.zeros((a.shape[0], t_in - a.shape[1], a.shape[2]))], axis=1)


def build_problem(net: Network, x, y, *, kappa: float, signal: float = 1.0, supervised_steps=None,
                  x_test=None, width=None, points: int = 2**14, seed: int = 0, rule: str = "auto") -> Problem:
    """Validate the inputs and set up the saddle-point problem (F1-F3)."""
    chain = require_chain(net, "the muP saddle-point theory", "sampling the posterior of finite networks")
    net = chain.network()
    kappa = _check_positive("kappa", kappa)
    signal = _check_positive("signal", signal)
    T = net.steps
    steps = (T,) if supervised_steps is None else tuple(supervised_steps)
    if not steps or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= T for s in steps) \
            or len(set(steps)) != len(steps):
        raise ValueError(f"supervised_steps must be distinct integers in 1..{T}, got {supervised_steps!r}")
    order = np.argsort([int(s) for s in steps])  # y's rows follow the given steps
    steps = tuple(int(steps[i]) for i in order)
    xs = _as_sequences(x, T, "x")
    P_train = xs.shape[0]
    y = check_finite_array("y", y)
    if y.ndim == 1 and len(steps) == 1:
        y = y[None, :]
    if y.shape != (len(steps), P_train):
        raise ValueError(
            f"y must have shape (len(supervised_steps), P) = ({len(steps)}, {P_train}) (or ({P_train},) for one "
            f"supervised step), got {np.shape(y)}"
        )
    if x_test is not None:
        xt = _as_sequences(x_test, T, "x_test")
        if xt.shape[2] != xs.shape[2]:
            raise ValueError(f"x_test must have d = {xs.shape[2]} features like x, got {xt.shape[2]}")
        t_in = max(xs.shape[1], xt.shape[1])
        xs = np.concatenate([_pad(xs, t_in), _pad(xt, t_in)])
    P = xs.shape[0]
    inv_width = 0.0 if width is None else 1.0 / check_positive_int("width", width)

    rnn = chain.shared
    d = xs.shape[2]
    c_in = np.zeros((T, T, P, P))
    for t in range(1, T + 1):
        for s in range(1, T + 1):
            if not rnn and t != s:
                continue
            if t <= xs.shape[1] and s <= xs.shape[1]:
                c_in[t - 1, s - 1] += net.input_var * xs[:, t - 1] @ xs[:, s - 1].T / d
            c_in[t - 1, s - 1] += net.bias_var
    free = np.zeros((T, T), bool)
    for t in range(2, T + 1):
        for s in range(2, T + 1):
            free[t - 1, s - 1] = rnn or t == s
    linear = net.activation.name == "linear"
    if rule not in RULES:
        raise ValueError(f"rule must be one of {', '.join(map(repr, RULES))}, got {rule!r}")
    points = check_positive_int("points", points)
    normals, log_weights = (None, None) if linear else _nodes(rule, points, T, P, seed)
    targets = np.sqrt(signal) * y[order].reshape(-1)
    return Problem(net, T, P, P_train, steps, c_in, free, targets, kappa, signal, inv_width, linear, normals,
                   log_weights)


RULES = ("auto", "hermite", "qmc", "mcmc")
MIN_HERMITE = 6  # fewest Gauss-Hermite nodes per dimension the "auto" rule accepts
MAX_QUADRATURE_DIM = 24  # largest T P the "auto" rule integrates by QMC; above, Markov chains (F8c)


def resolve_rule(rule: str, points: int, T: int, P: int) -> tuple:
    """(``"hermite"``, ``"qmc"`` or ``"mcmc"``, Gauss-Hermite nodes per dimension m) of a rule request
    (:func:`_nodes`; m is 0 for QMC and Markov chains)."""
    m = int(np.floor(points ** (1.0 / (T * P)) + 1e-9))
    if rule == "hermite" or (rule == "auto" and m >= MIN_HERMITE):
        return "hermite", max(m, 2)
    if rule == "mcmc" or (rule == "auto" and T * P > MAX_QUADRATURE_DIM):
        return "mcmc", 0
    return "qmc", 0


def _nodes(rule: str, points: int, T: int, P: int, seed: int):
    """Nodes (N, T P) of N(0, I) and their log weights for the single-site averages.

    ``"hermite"``: tensor Gauss-Hermite rule with m = floor(points^(1 / (T P))) nodes per dimension
    (at least 2; exact for polynomials of degree 2m - 1 in each variable: spectrally accurate for the
    smooth tilts of erf / tanh networks); ``"qmc"``: scrambled Sobol normals with all 2^T sign flips
    (equal weights; ``points`` in all); ``"auto"``: Gauss-Hermite where m >= 6, else QMC (up to T P =
    MAX_QUADRATURE_DIM), else Markov chains. ``"mcmc"``: the 2^T sign flips of one point (enough for the
    lazy point, exact with the control variate; the averages come from Markov chains, feature/sampled.py).
    """
    d = T * P
    if rule == "mcmc":
        points = 2 ** T
    rule, m = resolve_rule(rule, points, T, P)
    if rule == "hermite":
        x1, w1 = np.polynomial.hermite_e.hermegauss(m)
        grid = np.stack(np.meshgrid(*[x1] * d, indexing="ij"), axis=-1).reshape(-1, d)
        logw = np.log(w1 / w1.sum())
        lw = np.sum(np.stack(np.meshgrid(*[logw] * d, indexing="ij"), axis=-1).reshape(-1, d), axis=1)
        return grid, lw
    from ..gauss.multivariate import sobol_normals

    xi = _sign_symmetric(np.asarray(sobol_normals(max(points >> T, 1), d, 1, seed=seed)[0]), T, P)
    return xi, np.full(xi.shape[0], -np.log(xi.shape[0]))


def _sign_symmetric(xi, T, P):
    """All 2^T sign flips of the time blocks of the base normals: still N(0, I) points, and for a
    block-diagonal C every term odd in one step's h_t cancels exactly, so the symmetric (C(t,s) = 0)
    solution is an exact solution of the estimated map, as of the exact one (F9)."""
    signs = np.array(np.meshgrid(*[[1.0, -1.0]] * T, indexing="ij")).reshape(T, -1).T  # (2^T, T)
    flips = np.repeat(signs, P, axis=1)  # (2^T, T P)
    return (flips[:, None, :] * xi[None]).reshape(-1, T * P)
