"""Measured, not only predicted: Lyapunov exponents and correlation decay of sampled finite networks
(docs/criticality.md, section 4).

:func:`probe` runs sampled width-n DNNs / RNNs (the same networks as :func:`netfield.sample` with
the same seed: network i uses the key fold_in(PRNGKey(seed), i), matrix k of the program the key
fold_in(that, k)) on two inputs a, b and propagates a tangent vector of input a:

    h_t     = W_t phi(h_{t-1}) + U_t x_t + b_t                     (forward, both inputs)
    delta_t = W_t ( phi'(h_{t-1}) * delta_{t-1} )                  (tangent, renormalised each step)

and records per network and step t

    growth_t = ln( |delta_t| / |delta_{t-1}| )                     (C13)
    q_t      = |h_t(a)|^2 / n                                      (empirical length)
    eps_t    = 1 - c_t,   c_t = h_t(a).h_t(b) / (|h_t(a)| |h_t(b)|)   (empirical correlation)

The measured Lyapunov exponent of a network is the mean of growth_t over t > burn_in (Benettin's
method); its mean-field value is (1/2) ln chi_1 (C8). The inputs are built so that the first layer
already sits at the mean-field length fixed point, q_1 = q*, with correlation c_1 = c0; with an
input drive (``input_power`` > 0) both inputs receive the same x_t, |x_t|^2 / d = input_power, at
every step t >= 2 - the setting of the correlation map (C0, C2).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int, check_variance
from ..finite.ensemble import mean_and_sem
from ..finite.sampler import chain_matrices
from ..program import Network
from ..program.shape import require_chain
from .fixed_points import correlation_map, criticality

MEMORY_BUDGET = 256 * 2**20   # bytes of matrices and activations per chunk of networks
CHUNK = 32                     # default networks per chunk (a fixed shape: one compilation per width)


@dataclass(frozen=True, eq=False)
class Probe:
    """Per-network, per-step measurements of :func:`probe` (arrays of shape (networks, steps)).

    Attributes:
        growth: tangent log-growth ln(|delta_t| / |delta_{t-1}|) (C13); column 0 (t = 1) is 0.
        q: empirical length |h_t(a)|^2 / n.
        eps: 1 - empirical correlation of the two inputs, computed without cancellation.
        width, seed, net, c0, input_power, q_star: how it was sampled (q_star: mean-field length).
    """

    growth: np.ndarray
    q: np.ndarray
    eps: np.ndarray
    width: int
    seed: int
    net: Network
    c0: float
    input_power: float
    q_star: float

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


def _check_burn_in(burn_in, steps):
    if isinstance(burn_in, bool) or not isinstance(burn_in, (int, np.integer)) or not 0 <= burn_in <= steps - 2:
        raise ValueError(f"burn_in must be an integer in 0..{steps - 2} (steps - 2), got {burn_in!r}")
    return int(burn_in)


def _step_names(shared: bool, steps: int):
    """(W, U, b) names of every step of a chain (W is None at step 1)."""

    def name(base: str, t: int) -> str:
        return base if shared else f"{base}{t}"

    return [(None if t == 1 else name("W", t), name("U", t), name("b", t)) for t in range(1, steps + 1)]


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


def probe(net: Network, width: int, networks: int = 64, seed: int = 0, *, c0: float = 0.9,
          input_power: float = 0.0, input_dim: int = 16, chunk_size: int | None = None,
          dtype="float64") -> Probe:
    """Sample finite networks; measure tangent growth, length and the correlation of two inputs.

    Args:
        net: network from :func:`netfield.dnn` / :func:`netfield.rnn` (``net.steps`` steps are run).
        width: hidden width n.
        networks: number of sampled networks.
        seed: network i uses fold_in(PRNGKey(seed), i) - the same networks as :func:`netfield.sample`.
        c0: correlation of the two inputs at the first layer (their length is q*).
        input_power: |x_t|^2 / d of the common input drive at steps t >= 2 (0: input at step 1 only).
        input_dim: dimension d of the inputs.
        chunk_size: networks evaluated together (default: from a memory budget); results do not depend on it.
        dtype: ``"float64"`` or ``"float32"``.

    Returns:
        :class:`Probe`.

    Example:
        >>> import netfield
        >>> from netfield.criticality import probe
        >>> p = probe(netfield.dnn(8, "tanh", weight_var=1.5, bias_var=0.05), width=64, networks=4)
        >>> p.growth.shape, p.lyapunov(burn_in=2).shape
        ((4, 8), (4,))
    """
    chain = require_chain(net, "probe (Lyapunov exponents of sampled chains)", "netfield.sample")
    net = chain.network()
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    check_positive_int("steps of net", net.steps, minimum=2)
    input_dim = check_positive_int("input_dim", input_dim, minimum=2)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    if not (isinstance(c0, (int, float)) and -1.0 <= float(c0) < 1.0):
        raise ValueError(f"c0 must be a number in [-1, 1), got {c0!r}")
    check_variance("input_power", input_power)
    check_choice("dtype", str(np.dtype(dtype)) if dtype in ("float32", "float64", np.float32, np.float64) else dtype,
                 ("float32", "float64"))
    dtype = np.dtype(dtype)
    theory = criticality(net, input_power=input_power)
    if not math.isfinite(theory.q_star):
        raise ValueError(
            f"net has no finite length fixed point (phase {theory.phase!r}: the activity grows without bound); "
            f"probe needs weight_var / bias_var with a finite q*, got {net!r}"
        )
    steps = net.steps
    x = _inputs(net, theory.q_star, float(c0), float(input_power), input_dim, steps, int(seed))
    if chunk_size is None:
        per_net = 3 * width * width * dtype.itemsize + 8 * steps * width * dtype.itemsize
        chunk_size = int(max(1, min(CHUNK, MEMORY_BUDGET // per_net)))
    chunk_size = check_positive_int("chunk_size", chunk_size)
    run = _compiled(chain.shared, steps, net.activation, width, input_dim, dtype.name, chunk_size)
    scales = jnp.asarray([math.sqrt(float(net.weight_var) / width), math.sqrt(float(net.input_var) / input_dim),
                          math.sqrt(float(net.bias_var))], dtype)
    outs = []
    xj = jnp.asarray(x, dtype)
    for start in range(0, networks, chunk_size):
        count = min(chunk_size, networks - start)
        idx = jnp.arange(start, start + chunk_size)
        g, q, e = jax.device_get(run(jnp.asarray(int(seed)), idx, xj, scales))
        outs.append((g[:count], q[:count], e[:count]))
    growth, q, eps = (np.concatenate([np.asarray(o[i], np.float64) for o in outs]) for i in range(3))
    return Probe(growth, q, eps, width, int(seed), net, float(c0), float(input_power), float(theory.q_star))


@lru_cache(maxsize=64)
def _compiled(shared: bool, steps: int, activation, width: int, dim: int, dtype: str, chunk: int):
    """The jitted probe of one chunk of networks; the prior's standard deviations are arguments, so
    one compilation serves every weight_var / bias_var / input_var. Matrix k of the chain's key order
    (:func:`netfield.finite.sampler.chain_matrices`) uses the key fold_in(network key, k)."""
    matrices = [name for name, _ in chain_matrices(shared, steps)]
    index = {name: k for k, name in enumerate(matrices)}
    names = _step_names(shared, steps)
    fn = activation.fn
    dt = np.dtype(dtype)
    kW = jnp.array([index[w] for w, _, _ in names[1:]])
    kU = jnp.array([index[u] for _, u, _ in names[1:]])
    kb = jnp.array([index[b] for _, _, b in names[1:]])
    tangent_key = len(matrices)                           # an index no matrix of the program uses

    def weight(key, k, scales):
        return scales[0] * jax.random.normal(jax.random.fold_in(key, k), (width, width), dt)

    def inmat(key, k, scales):
        return scales[1] * jax.random.normal(jax.random.fold_in(key, k), (width, dim), dt)

    def bias(key, k, scales):
        return scales[2] * jax.random.normal(jax.random.fold_in(key, k), (width,), dt)

    def stats(h, delta):
        u, v = h[:, 0], h[:, 1]
        nu, nv = jnp.linalg.norm(u), jnp.linalg.norm(v)
        diff = u - v
        # 1 - c = (|u - v|^2 - (|u| - |v|)^2) / (2 |u| |v|),  (|u| - |v|) = (u - v).(u + v) / (|u| + |v|)
        gap = jnp.dot(diff, u + v) / (nu + nv)
        eps = (jnp.dot(diff, diff) - gap * gap) / (2 * nu * nv)
        return nu * nu / width, eps

    def one(seed, network, x, sc):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), network)
        _, u1, b1 = names[0]
        U1, B1 = inmat(key, index[u1], sc), bias(key, index[b1], sc)
        h = (U1 @ x[:, 0].T) + B1[:, None]                    # (n, 2): inputs a and b
        delta = jax.random.normal(jax.random.fold_in(key, tangent_key), (width,), dt)
        delta = delta / jnp.linalg.norm(delta)
        if shared:
            W, U, B = weight(key, kW[0], sc), inmat(key, kU[0], sc), bias(key, kb[0], sc)

        def body(carry, inp):
            h, delta = carry
            x_t, k_w, k_u, k_b = inp
            if shared:
                Wt, Ut, Bt = W, U, B
            else:
                Wt, Ut, Bt = weight(key, k_w, sc), inmat(key, k_u, sc), bias(key, k_b, sc)
            phi_a, dphi = jax.jvp(fn, (h[:, 0],), (delta,))       # phi(h_a), phi'(h_a) * delta
            m = Wt @ jnp.stack([phi_a, fn(h[:, 1]), dphi], axis=1)
            h_new = m[:, :2] + (Ut @ x_t)[:, None] + Bt[:, None]
            d_new = m[:, 2]
            norm = jnp.linalg.norm(d_new)
            q, eps = stats(h_new, d_new)
            return (h_new, d_new / norm), (jnp.log(norm), q, eps)

        q1, e1 = stats(h, delta)
        _, (g, q, e) = jax.lax.scan(body, (h, delta), (x[0, 1:], kW, kU, kb))
        zero = jnp.zeros((1,), dt)
        return (jnp.concatenate([zero, g]), jnp.concatenate([q1[None], q]), jnp.concatenate([e1[None], e]))

    @jax.jit
    def run(seed, idx, x, scales):
        return jax.vmap(lambda i: one(seed, i, x, scales))(idx)

    return run


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
    p = probe(net, width, networks, seed, input_power=input_power, **kwargs)
    burn_in = max(1, net.steps // 4) if burn_in is None else _check_burn_in(burn_in, net.steps)
    per_net = p.lyapunov(burn_in)
    mean, sem = mean_and_sem(per_net)
    theory = criticality(net, input_power=input_power).lyapunov
    return LyapunovMeasurement(float(mean), float(sem), float(theory), width, networks, burn_in, net.steps)
