"""Measured, not only predicted: Lyapunov exponents and correlation decay of sampled finite networks
of any program (docs/criticality.md, section 3).

:func:`probe` samples width-n networks of the program - the same networks as :func:`netfield.sample`
(``method="weights"``) with the same seed (network i: key fold_in(PRNGKey(seed), i), matrix k of the program: fold_in(that, k))
- runs them with the finite-width interpreter :func:`netfield.finite.netsor.run_program` on two input
rows a, b, and propagates a unit perturbation delta of the first ``tap`` variable (``"h"``: the
pre-activation / hidden state at step 1) of row a with ``jax.jvp``. Per network and tapped step t it
records

    growth_t = ln( |d h_t| / |d h_{t-1}| )                          (C13; growth_1 = 0)
    q_t      = |h_t(a)|^2 / n                                      (empirical length)
    eps_t    = 1 - c_t,   c_t = h_t(a).h_t(b) / (|h_t(a)| |h_t(b)|)   (empirical correlation)

For a DNN / RNN, d h_t = W_t (phi'(h_{t-1}(a)) * d h_{t-1}) (C12). The measured Lyapunov exponent of
a network is the mean of growth_t over t > burn_in (Benettin's method); for a chain its mean-field
value is (1/2) ln chi_1 (C8) with a 1/n shift (C14); for gated or other programs the measurement,
its standard error and the a + b/n width fits (:func:`netfield.criticality.width_study`) are the
result. The tangent is propagated linearly through all steps (``jax.jvp``, no renormalisation): its
log-norm must stay inside the dtype's range (float64: |sum of growth| < ~700), checked.

Inputs: pass them (``x``, any program), or leave ``x=None`` for a chain program: the two inputs are
then built so that the first layer sits at the mean-field length fixed point, q_1 = q*, with
correlation c_1 = c0; with an input drive (``input_power`` > 0) both receive the same x_t,
|x_t|^2 / d = input_power, at every step t >= 2 - the setting of the correlation map (C0, C2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int, check_variance
from ..finite.ensemble import mean_and_sem
from ..finite.netsor import run_program
from ..finite.parameters import hidden_matrices_and_normals
from ..meanfield.kernels import check_network
from ..program import Network
from ..program.shape import require_chain
from .fixed_points import correlation_map, criticality

MEMORY_BUDGET = 256 * 2**20   # bytes of matrices and activations per chunk of networks
CHUNK = 32                     # at most this many networks per chunk


@dataclass(frozen=True, eq=False)
class Probe:
    """Per-network, per-step measurements of :func:`probe` (arrays of shape (networks, steps)).

    Attributes:
        growth: tangent log-growth ln(|d h_t| / |d h_{t-1}|) (C13); column 0 (t = 1) is 0.
        q: empirical length |h_t(a)|^2 / n.
        eps: 1 - empirical correlation of rows a and b, computed without cancellation (None: one row).
        width, seed, net, tap, rows: how it was sampled.
        c0, input_power, q_star: the built inputs' first-layer correlation, drive and the mean-field
            length (None when the inputs were given).
    """

    growth: np.ndarray
    q: np.ndarray
    eps: np.ndarray | None
    width: int
    seed: int
    net: Network
    tap: str
    rows: tuple
    c0: float | None = None
    input_power: float | None = None
    q_star: float | None = None

    @property
    def networks(self) -> int:
        return self.growth.shape[0]

    @property
    def steps(self) -> int:
        return self.growth.shape[1]

    def lyapunov(self, burn_in: int = 0) -> np.ndarray:
        """(networks,) measured Lyapunov exponent per step: mean growth over steps t > burn_in."""
        burn_in = _check_burn_in(burn_in, self.steps)
        return self.growth[:, max(burn_in, 1):].mean(axis=1)    # column k holds step t = k + 1

    def exponent(self, burn_in: int = 0) -> tuple[float, float]:
        """(mean, standard error) over networks of the per-network exponent."""
        mean, sem = mean_and_sem(self.lyapunov(burn_in))
        return float(mean), float(sem)


def _check_burn_in(burn_in, steps):
    if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)) or not 0 <= burn_in <= steps - 2:
        raise ValueError(f"burn_in must be an integer in 0..{steps - 2} (steps - 2), got {burn_in!r}")
    return int(burn_in)


def _inputs(net: Network, q_star: float, c0: float, input_power: float, dim: int, steps: int, seed: int):
    """x_a, x_b of shape (steps, dim): step 1 gives q_1 = q* and c_1 = c0; steps >= 2 the common drive."""
    iv, bv = float(net.input_var), float(net.bias_var)
    rng = np.random.default_rng([int(seed), 0x5EED])   # a stream distinct from the networks' keys
    x = np.zeros((2, steps, dim))
    if iv > 0:
        r2 = (q_star - bv) / iv                      # |x_1|^2 / d
        if r2 > 0:
            gamma = (c0 * q_star - bv) / (q_star - bv)   # x_a.x_b / |x|^2 gives c_1 = c0
            if not -1.0 <= gamma <= 1.0:
                raise ValueError(
                    f"c0 must be reachable at the first layer: with bias_var={bv!r} and q*={q_star:.6g} the "
                    f"correlation c_1 lies in [{(2 * bv - q_star) / q_star:.4g}, 1], got c0={c0!r}"
                )
            e = np.linalg.qr(rng.normal(size=(dim, 2)))[0].T
            scale = math.sqrt(r2 * dim)
            x[0, 0] = scale * e[0]
            x[1, 0] = scale * (gamma * e[0] + math.sqrt(max(1.0 - gamma * gamma, 0.0)) * e[1])
    if input_power > 0:
        drive = rng.normal(size=(steps - 1, dim))
        drive *= math.sqrt(input_power * dim) / np.linalg.norm(drive, axis=1, keepdims=True)
        x[:, 1:] = drive[None]
    return x


def tap_names(program, tap: str) -> tuple:
    """The variables of tap family ``tap`` in step order (at least two: a growth needs two steps)."""
    if tap not in program.taps or len(program.taps[tap]) < 2:
        raise ValueError(f"tap must name a family of at least two tapped variables of the program "
                         f"({sorted(program.taps)}), got {tap!r}")
    return tuple(program.taps[tap][t] for t in sorted(program.taps[tap]))


def _check_rows(rows, count):
    rows = (rows,) if isinstance(rows, (int, np.integer)) and not isinstance(rows, bool) else tuple(rows)
    ok = 1 <= len(rows) <= 2 and len(set(rows)) == len(rows) and all(
        isinstance(r, (int, np.integer)) and not isinstance(r, bool) and 0 <= r < count for r in rows)
    if not ok:
        raise ValueError(f"rows must be one row index or two distinct ones in 0..{count - 1} (the tapped "
                         f"variable's rows), got {rows!r}")
    return tuple(int(r) for r in rows)


def probe(net: Network, width: int, networks: int = 64, seed: int = 0, *, x=None, rows=(0, 1), tap: str = "h",
          c0: float = 0.9, input_power: float = 0.0, input_dim: int = 16, chunk_size: int | None = None,
          dtype="float64") -> Probe:
    """Sample finite networks of any program; measure tangent growth, length and the correlation of two
    inputs along the program's ``tap`` variables (module docstring).

    Args:
        net: any network (:func:`netfield.dnn`, :func:`netfield.gru`, ...); every tapped step is run.
        width: hidden width n.
        networks: number of sampled networks.
        seed: network i uses fold_in(PRNGKey(seed), i) - the same networks as :func:`netfield.sample`
            with ``method="weights"``.
        x: inputs as the network takes them; ``rows`` picks the tapped variable's rows a (perturbed)
            and b (compared with a; omit b by passing one index). Default None: a chain program only,
            inputs built at the length fixed point (``c0``, ``input_power``, ``input_dim``).
        tap: the tap family whose steps are measured (at least two steps; ``"h"`` by default).
        c0: correlation of the two built inputs at the first layer (their length is q*).
        input_power: |x_t|^2 / d of the built inputs' common drive at steps t >= 2 (0: step 1 only).
        input_dim: dimension d of the built inputs.
        chunk_size: networks evaluated together (default: from a memory budget); results do not depend on it.
        dtype: ``"float64"`` or ``"float32"``.

    Returns:
        :class:`Probe`.

    Cost: ``networks`` forward and tangent passes of the program at width n (O(networks x steps x n^2)
    for a chain), compiled once per call; ``width`` and ``networks`` are the levers.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.criticality import probe
        >>> p = probe(netfield.dnn(8, "tanh", weight_var=1.5, bias_var=0.05), width=64, networks=4)
        >>> p.growth.shape, p.lyapunov(burn_in=2).shape
        ((4, 8), (4,))
        >>> g = probe(netfield.gru(6), width=32, networks=4, x=np.random.default_rng(0).normal(size=(2, 2)))
        >>> g.exponent(burn_in=2)[0] < 0
        True
    """
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    check_choice("dtype", str(np.dtype(dtype)) if dtype in ("float32", "float64", np.float32, np.float64) else dtype,
                 ("float32", "float64"))
    dtype = np.dtype(dtype)
    q_star = None
    if x is None:
        chain = require_chain(net, "probe with inputs built at the mean-field fixed point (x=None)",
                              "netfield.criticality.probe(net, width, x=<two input rows>)")
        net = chain.network()
        check_positive_int("steps of net", net.steps, minimum=2)
        input_dim = check_positive_int("input_dim", input_dim, minimum=2)
        if not (isinstance(c0, (int, float)) and -1.0 <= float(c0) < 1.0):
            raise ValueError(f"c0 must be a number in [-1, 1), got {c0!r}")
        check_variance("input_power", input_power)
        theory = criticality(net, input_power=input_power)
        if not math.isfinite(theory.q_star):
            raise ValueError(
                f"net has no finite length fixed point (phase {theory.phase!r}: the activity grows without "
                f"bound); probe needs weight_var / bias_var with a finite q*, got {net!r}"
            )
        q_star = float(theory.q_star)
        # every step gets an input matrix (zero input without a drive): the matrices, and so the
        # networks, are those netfield.sample draws for this chain with (N, d) or (N, T, d) inputs
        x = _inputs(net, q_star, float(c0), float(input_power), input_dim, net.steps, int(seed))
        rows = (0, 1)
    else:
        check_network(net)
        c0 = input_power = None
    program = net.program(x)
    names = tap_names(program, tap)
    rows = _check_rows(rows, program.size(names[0]))
    if chunk_size is None:
        per_net = (len(program.matrices) * width * width + 4 * len(program.instructions) * width
                   * sum(program.spaces.values())) * dtype.itemsize
        chunk_size = int(max(1, min(CHUNK, networks, MEMORY_BUDGET // per_net)))
    chunk_size = check_positive_int("chunk_size", chunk_size)
    run = _measurement(program, names, rows, width, dtype, int(seed))
    parts = []
    for start in range(0, networks, chunk_size):
        count = min(chunk_size, networks - start)
        out = jax.device_get(run(jnp.arange(start, start + chunk_size)))   # fixed chunk shape
        parts.append([None if o is None else np.asarray(o[:count], np.float64) for o in out])
    growth, q, eps = (None if parts[0][i] is None else np.concatenate([p[i] for p in parts]) for i in range(3))
    if not np.all(np.isfinite(growth)):
        raise FloatingPointError(
            f"the tangent's norm left the range of {dtype.name} over {len(names)} steps (growth not finite); "
            f"use dtype='float64' or fewer steps"
        )
    return Probe(growth, q, eps, width, int(seed), net, tap, rows, None if c0 is None else float(c0),
                 None if input_power is None else float(input_power), q_star)


def _measurement(program, names: tuple, rows: tuple, width: int, dtype, seed: int):
    """The jitted, vmapped measurement of networks ``indices`` (module docstring): the tangent is a unit
    vector with key fold_in(network key, number of matrices), an index no matrix of the program uses."""
    a = rows[0]
    rows_count = program.size(names[0])

    def one(index):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        # the tangent's key is fold_in(key, len(program.matrices)), drawn in the matrices' hash
        params, (delta,) = hidden_matrices_and_normals(program, key, width, dtype, extra=[(width,)])
        direction = jnp.zeros((width, rows_count), dtype).at[:, a].set(delta / jnp.linalg.norm(delta))

        def states(scale):
            values = run_program(program, params, width, dtype, perturb={names[0]: scale * direction})
            return jnp.stack([values[name] for name in names])          # (steps, n, rows)

        h, dh = jax.jvp(states, (jnp.zeros((), dtype),), (jnp.ones((), dtype),))
        log_norm = jnp.log(jnp.linalg.norm(dh[:, :, a], axis=1))
        growth = jnp.concatenate([jnp.zeros((1,), dtype), jnp.diff(log_norm)])
        u = h[:, :, a]
        q = jnp.sum(u * u, axis=1) / width
        if len(rows) == 1:
            return growth, q, None
        v = h[:, :, rows[1]]
        nu, nv = jnp.linalg.norm(u, axis=1), jnp.linalg.norm(v, axis=1)
        diff = u - v
        # 1 - c = (|u - v|^2 - (|u| - |v|)^2) / (2 |u| |v|),  (|u| - |v|) = (u - v).(u + v) / (|u| + |v|)
        gap = jnp.sum(diff * (u + v), axis=1) / (nu + nv)
        eps = (jnp.sum(diff * diff, axis=1) - gap * gap) / (2 * nu * nv)
        return growth, q, eps

    return jax.jit(jax.vmap(one))


# ---------------------------------------------------------------------------------------------
# mean-field predictions for the probe's quantities

def mean_field_eps(net: Network, steps: int, c0: float, input_power: float = 0.0) -> np.ndarray:
    """(steps,) mean-field 1 - c_t from c_1 = c0 at the length fixed point (iterated (C2))."""
    theory = criticality(net, input_power=input_power)
    q, w, s2 = theory.q_star, float(net.weight_var), theory.sigma2
    act = net.activation
    eps = np.empty(steps)
    c = float(c0)
    for t in range(steps):
        eps[t] = 1.0 - c
        # 1 - c' = w (P(q) - <phi phi>_{q,c}) / q: no cancellation against 1 for c near 1
        c = float(correlation_map(act, c, q, w, s2))
    return eps


@dataclass(frozen=True)
class LyapunovMeasurement:
    """Measured Lyapunov exponent of sampled networks vs (1/2) ln chi_1 (C8).

    Attributes:
        mean, sem: mean over networks of the per-network exponent and its standard error.
        theory: mean-field (1/2) ln chi_1.
        width, networks, burn_in, steps: how it was measured.
    """

    mean: float
    sem: float
    theory: float
    width: int
    networks: int
    burn_in: int
    steps: int

    @property
    def z_score(self) -> float:
        return (self.mean - self.theory) / self.sem if self.sem > 0 else math.inf


def measure_lyapunov(net: Network, width: int, networks: int = 64, seed: int = 0, *, burn_in: int | None = None,
                     input_power: float = 0.0, **kwargs) -> LyapunovMeasurement:
    """Largest Lyapunov exponent of sampled width-n networks by tangent propagation (C13).

    Example:
        >>> import netfield
        >>> from netfield.criticality import measure_lyapunov
        >>> m = measure_lyapunov(netfield.dnn(12, "tanh", weight_var=3.0, bias_var=0.05), width=128, networks=16)
        >>> abs(m.mean - m.theory) < 5 * m.sem + 0.01
        True
    """
    given = sorted(set(kwargs) & {"x", "rows", "tap"})
    if given:
        raise ValueError(f"measure_lyapunov compares with the mean field at its own inputs; {', '.join(given)} "
                         f"cannot be chosen here (use netfield.criticality.probe(..., x=...).exponent())")
    p = probe(net, width, networks, seed, input_power=input_power, **kwargs)
    burn_in = max(1, net.steps // 4) if burn_in is None else _check_burn_in(burn_in, net.steps)
    per_net = p.lyapunov(burn_in)
    mean, sem = mean_and_sem(per_net)
    theory = criticality(net, input_power=input_power).lyapunov
    return LyapunovMeasurement(float(mean), float(sem), float(theory), width, networks, burn_in, net.steps)
