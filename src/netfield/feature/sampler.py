"""Posterior sampler of finite-width muP networks: the oracle of the feature-learning theory.

The model (docs/theory.md sections 1 and 6), for a width-n DNN or RNN with T = ``net.steps`` steps:

    h_1 = U_1 x_1 + b_1,   h_t = W_t phi(h_{t-1}) + U_t x_t + b_t     (t = 2..T; U_t x_t only for t <= T_in)
    DNN: W_t, U_t, b_t fresh per step;  RNN: W_t = W, U_t = U, b_t = b.
    W ~ N(0, weight_var / n),  U ~ N(0, input_var / d),  b ~ N(0, bias_var)   (b, U omitted at variance 0)
    f_t(x) = (1/n) sum_j v_j phi(h_tj(x)),  v_j ~ N(0, readout_var)            (muP readout, shared over t)
    y[k, mu] ~ N(f_{S_k}(x_mu), kappa / n)  at the supervised steps S, with targets scaled by sqrt(signal).

``net.readout_bias_var`` is not part of this model and is ignored. The readout v is integrated out
exactly: with Phi = (1/n) phi(h_S) phi(h_S)^T over the supervised steps and training patterns
(step-major, row k * P + mu) and M = readout_var * Phi + kappa * I, the hidden weights have the
potential (whitened: theta = sigma * theta_hat, theta_hat ~ N(0, 1) under the prior)

    E(theta_hat) = |theta_hat|^2 / 2 + (n / 2) yy^T M^-1 yy + (1/2) log det M,   yy = sqrt(signal) vec(y).

Sampler: Hamiltonian Monte Carlo with a Metropolis-Hastings correction (exact for every step size) on
theta_hat: unit mass, ``leapfrog`` integrator steps per trajectory, each trajectory's step size
jittered by a uniform factor in [0.9, 1.1] (state-independent, so still exact). Chains are
``jax.vmap``-ed; a block of ``thin`` iterations is one jitted ``lax.scan``. Two symplectic, reversible
integrators (Strang splittings), both exact after the Metropolis step:

- ``"split"`` (default): the Gaussian prior part |theta_hat|^2/2 + |p|^2/2 is integrated exactly (a
  rotation by the step size), only the data term is kicked. The energy error then comes from the data
  term alone (it does not grow with the number of weights, ~ n^2), so steps are large and a
  trajectory of length ~ pi/2 decorrelates the prior-dominated directions in one iteration.
- ``"leapfrog"``: the standard leapfrog on the full potential (the step must shrink like D^(-1/4),
  D = number of weights).

The gradient of the data term is ``jax.grad`` with respect to the pre-activations, turned into weight
gradients by the chain rule (:func:`_compiled`); the tests check it against ``jax.grad`` of E.
Momenta are drawn as float32 normals (half the cost of float64 draws on CPU) and integrated in
float64; the rounding of a N(0, 1) draw to 24 bits changes the sampled law at the 1e-7 level.

Step size: unless given, it starts at eps0 = min(1 (split) or 1.5 D^(-1/4) (leapfrog), cap) /
sqrt(1 + s_data), s_data = readout_var / kappa * (1 + mean(yy^2) / kappa) (the curvature scale of the
data term), and is adapted per chain during burn-in only: log eps += (a - 0.75) / sqrt(1 + i / 10)
(a = Metropolis acceptance probability of iteration i), clipped at cap = pi / (2 leapfrog) (a
trajectory never exceeds a quarter period of the prior: longer ones would rotate back), and frozen
at exp(mean of log eps over the second half of burn-in). Acceptance is then ~0.75, or higher when
the cap binds (weak data term: then the trajectories are already ideal).

Measurements, after burn-in, every ``thin`` iterations, per chain, on training + test patterns
(P' = P + P_test): kernels K[t, s] = (1/n) h_t h_s^T, overlaps Phi[t, s] = (1/n) phi(h_t) phi(h_s)^T
(T, T, P', P'), and the posterior-mean readout given the hidden weights
E[f_t(x*) | hidden] = readout_var Phi[(t, *), S] M^-1 yy (T, P'), i.e. for the scaled targets
sqrt(signal) y (divide by sqrt(signal) for units of y). At the end of each chain: eigenvalues of W
(RNN) or of every W_t (DNN).

Error bars: batch means. The samples of each chain are split into B = floor(sqrt(samples)) consecutive
batches of (nearly) equal size b_i; with batch means m_ci, grand mean m and N = chains * samples,

    se^2 = sum_ci b_i (m_ci - m)^2 / (chains * B - 1) / N,

the batch-means estimate of the variance of the mean, which includes autocorrelation as long as a
batch is much longer than the autocorrelation time, and between-chain differences (chains not mixed)
as well. The integrated autocorrelation time ``tau`` (in HMC iterations) of the mean diagonal of the
supervised readout overlap Phi_S (recorded every iteration) uses Sokal's automatic window (smallest W
with W >= 5 tau(W)) on the chain-averaged autocorrelation function; ``rhat`` is the split-R-hat of
the same series.

Checkpoints: ``checkpoint=path.npz`` saves the whole sampler state (theta_hat, keys, step sizes,
counters, batch sums, traces) atomically (temporary file + os.replace) every ``checkpoint_every``
samples (and every ``checkpoint_every * thin`` burn-in iterations); ``resume=True`` continues from it
and gives exactly the numbers of an uninterrupted run. A checkpoint stores a description of its
configuration and is refused for another one.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite_array, check_positive_int
from .._runtime.checkpoint import array_digest, run_key
from ..program import Network
from ..program.shape import require_chain
from ..storage import Storable

jax.config.update("jax_enable_x64", True)

TARGET_ACCEPTANCE = 0.75
JITTER = 0.1
FORMAT_VERSION = 2
INTEGRATORS = ("split", "leapfrog")
STATE_FIELDS = ("data", "aux", "delta", "F", "key")
MEASURED = ("kernel", "kernel_sq", "overlap", "prediction")


@dataclass(frozen=True, eq=False)
class PosteriorSamples(Storable):  # save / load: netfield.storage
    """Posterior averages of a finite-width muP network (module docstring for the model and methods).

    Attributes:
        kernel, kernel_se: (T, T, P', P') pre-activation kernels K[t, s] = (1/n) h_t h_s^T (0-based
            steps) over training then test patterns, and their batch-means standard errors.
        kernel_sq, kernel_sq_se: (T, T, P', P') posterior mean of K[t, s]**2 (elementwise) and errors: the
            order parameter of a cross-time block whose sign the posterior does not fix (an RNN's
            K[t, s] -> -K[t, s] under W -> -W when t - s is odd, so its mean vanishes while its
            square does not).
        chain_kernel: (chains, T, T, P', P') the mean kernel of each chain (chains stuck on one sign of
            a broken symmetry show it here).
        overlap, overlap_se: (T, T, P', P') Phi[t, s] = (1/n) phi(h_t) phi(h_s)^T and errors.
        prediction, prediction_se: (T, P') E[f_t(x) | hidden weights] for the scaled targets
            sqrt(signal) y, averaged over the posterior.
        acceptance: (chains,) mean Metropolis acceptance probability after burn-in.
        step_size: (chains,) leapfrog step size after burn-in (before the +-10 % jitter).
        tau: integrated autocorrelation time, in HMC iterations, of the mean readout-overlap diagonal.
        rhat: split-R-hat of that series (close to 1 when the chains agree).
        w_eigenvalues: complex eigenvalues of the recurrent matrix at the end of each chain, (chains, n)
            for an RNN ((chains, 0) if T = 1), (chains, T - 1, n) for a DNN (one row per W_t, t = 2..T).
        readout_trace: (chains, samples * thin) the series tau is computed from.
        width, chains, samples, thin, burn_in, leapfrog, supervised_steps, train_patterns, batches,
        seconds: how it was sampled (``seconds``: wall time of this call).
    """

    kernel: np.ndarray
    kernel_se: np.ndarray
    kernel_sq: np.ndarray
    kernel_sq_se: np.ndarray
    chain_kernel: np.ndarray
    overlap: np.ndarray
    overlap_se: np.ndarray
    prediction: np.ndarray
    prediction_se: np.ndarray
    acceptance: np.ndarray
    step_size: np.ndarray
    tau: float
    rhat: float
    w_eigenvalues: np.ndarray
    readout_trace: np.ndarray
    width: int
    chains: int
    samples: int
    thin: int
    burn_in: int
    leapfrog: int
    supervised_steps: tuple
    train_patterns: int
    batches: int
    seconds: float

    @property
    def steps(self) -> int:
        return self.kernel.shape[0]

    def to_dict(self) -> dict:
        """A JSON-serialisable summary (nested lists; eigenvalues as [real, imag] pairs)."""
        ev = np.asarray(self.w_eigenvalues)
        return {
            "width": int(self.width),
            "chains": int(self.chains),
            "samples": int(self.samples),
            "thin": int(self.thin),
            "burn_in": int(self.burn_in),
            "leapfrog": int(self.leapfrog),
            "supervised_steps": [int(s) for s in self.supervised_steps],
            "train_patterns": int(self.train_patterns),
            "batches": int(self.batches),
            "kernel": self.kernel.tolist(),
            "kernel_se": self.kernel_se.tolist(),
            "kernel_sq": self.kernel_sq.tolist(),
            "kernel_sq_se": self.kernel_sq_se.tolist(),
            "overlap": self.overlap.tolist(),
            "overlap_se": self.overlap_se.tolist(),
            "prediction": self.prediction.tolist(),
            "prediction_se": self.prediction_se.tolist(),
            "acceptance": self.acceptance.tolist(),
            "step_size": self.step_size.tolist(),
            "tau": float(self.tau),
            "rhat": float(self.rhat),
            "w_eigenvalues": np.stack([ev.real, ev.imag], axis=-1).tolist(),
            "seconds": float(self.seconds),
        }


# ----------------------------------------------------------------------------------------- validation

def _positive_number(name, value):
    if isinstance(value, bool) or not isinstance(value, numbers.Real) or not math.isfinite(value) \
            or value <= 0:
        raise ValueError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def _sequences(name, x, T):
    arr = check_finite_array(name, x)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or min(arr.shape) < 1 or arr.shape[1] > T:
        raise ValueError(
            f"{name} must have shape (P, d) (input at step 1 only) or (P, T_in, d) with 1 <= T_in <= {T} "
            f"(the network's steps), got shape {np.shape(x)}"
        )
    return arr


def _pad(a, t_in):
    return np.concatenate([a, np.zeros((a.shape[0], t_in - a.shape[1], a.shape[2]))], axis=1)


def _supervised(steps, T):
    S = (T,) if steps is None else steps
    try:
        S = tuple(S)
    except TypeError:
        S = (S,)
    bad = [s for s in S if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= T]
    if not S or bad or len(set(S)) != len(S):
        raise ValueError(f"supervised_steps must be distinct integer steps in 1..{T}, got {steps!r}")
    return tuple(int(s) for s in S)


# -------------------------------------------------------------------------------------- jitted kernel

def _block_names(shared, T, t_in, has_input, has_bias):
    """Names of the weight blocks: "U", "W", "b" (RNN, shared) or "U1", "W2", "b1", ... (DNN, per step)."""
    if shared:
        return tuple(name for name, there in (("U", has_input), ("W", T >= 2), ("b", has_bias)) if there)
    names = [f"U{t}" for t in range(1, t_in + 1)] if has_input else []
    names += [f"W{t}" for t in range(2, T + 1)]
    names += [f"b{t}" for t in range(1, T + 1)] if has_bias else []
    return tuple(names)


@lru_cache(maxsize=16)
def _compiled(shared, T, activation, n, d, t_in, p_train, p_all, S, has_input, has_bias, thin, leapfrog,
              integrator):
    """Jitted functions for one static configuration; hyper-parameters, data and step sizes stay dynamic.

    theta_hat is a dict of weight blocks (:func:`_block_names`), each with prior N(0, 1). The gradient of
    the data term is jax.grad of it with respect to the pre-activations (delta_t = dE/dh_t: one backward
    pass through the network), turned into weight gradients by the chain rule: dE/dW_t = sw delta_t
    phi(h_{t-1})^T, dE/dU_t = su delta_t x_t, dE/db_t = sb sum_mu delta_t (summed over t for the RNN).
    The rank-P outer products are formed inside the (in-place, elementwise) momentum update, so an
    integrator step touches each weight matrix in two matrix products and two elementwise passes.
    """
    rnn = bool(shared)  # the recognised chain's weight sharing (program/shape.py)
    act = activation.fn
    S_idx = np.asarray(S) - 1
    k = len(S) * p_train
    split = integrator == "split"
    names = _block_names(shared, T, t_in, has_input, has_bias)
    shapes = {name: (n, d) if name[0] == "U" else (n, n) if name[0] == "W" else (n,) for name in names}
    sizes = {name: int(np.prod(shapes[name])) for name in names}
    offsets = dict(zip(names, np.cumsum([0] + [sizes[name] for name in names])[:-1].tolist()))
    dim = sum(sizes.values())

    def block(kind, t):
        return kind if rnn else f"{kind}{t}"

    def scales(hyper):
        return jnp.sqrt(hyper[0] / n), jnp.sqrt(hyper[1] / d), jnp.sqrt(hyper[2])

    def forward(th, hyper, xs, pert=None):
        sw, su, sb = scales(hyper)
        hs, h = [], None
        for t in range(1, T + 1):
            z = jnp.zeros((n, xs.shape[0]))
            if t > 1:
                z = z + sw * (th[block("W", t)] @ act(h))
            if has_input and t <= t_in:
                z = z + su * (th[block("U", t)] @ xs[:, t - 1].T)
            if has_bias:
                z = z + sb * th[block("b", t)][:, None]
            if pert is not None:
                z = z + pert[t - 1]
            hs.append(z)
            h = z
        return jnp.stack(hs)  # (T, n, P)

    def data_term(pert, th, hyper, xs, yy):
        rv, kappa = hyper[3], hyper[4]
        F = act(forward(th, hyper, xs, pert))  # (T, n, P)
        FS = jnp.transpose(F[S_idx], (1, 0, 2)).reshape(n, k)  # column k * P + mu (step-major)
        Phi = FS.T @ FS / n
        L = jnp.linalg.cholesky(rv * Phi + kappa * jnp.eye(k))
        z = jax.scipy.linalg.solve_triangular(L, yy, lower=True)
        return 0.5 * n * (z @ z) + jnp.sum(jnp.log(jnp.diag(L))), (jnp.mean(jnp.diag(Phi)), F)

    data_vg = jax.value_and_grad(data_term, has_aux=True)

    def data_and_factors(th, hyper, xs, yy):
        """Data term, the readout-overlap diagonal, and (delta, phi) = the factors of its gradient."""
        (data, (aux, F)), delta = data_vg(jnp.zeros((T, n, xs.shape[0])), th, hyper, xs, yy)
        return data, aux, delta, F

    def outer(left, right):
        """left @ right^T; unrolled (fusable into the elementwise update) for small ranks."""
        if left.shape[-1] <= 16:
            return sum(left[:, None, q] * right[None, :, q] for q in range(left.shape[-1]))
        return left @ right.T

    def data_gradient(delta, F, hyper, xs):
        """{block: dE_data/dtheta_hat} from the pre-activation gradient (chain rule)."""
        sw, su, sb = scales(hyper)
        if rnn:
            g = {}
            if has_input:
                g["U"] = su * jnp.einsum("tnp,ptd->nd", delta[:t_in], xs)
            if T >= 2:
                g["W"] = sw * outer(jnp.transpose(delta[1:], (1, 0, 2)).reshape(n, -1),
                                    jnp.transpose(F[:-1], (1, 0, 2)).reshape(n, -1))
            if has_bias:
                g["b"] = sb * delta.sum((0, 2))
            return g
        g = {}
        for t in range(1, T + 1):
            if has_input and t <= t_in:
                g[f"U{t}"] = su * delta[t - 1] @ xs[:, t - 1]
            if t > 1:
                g[f"W{t}"] = sw * outer(delta[t - 1], F[t - 2])
            if has_bias:
                g[f"b{t}"] = sb * delta[t - 1].sum(1)
        return g

    def energy(th, hyper, xs, yy):
        """The full potential E(theta_hat) (the tests check the gradient against jax.grad of it)."""
        data, _ = data_term(jnp.zeros((T, n, xs.shape[0])), th, hyper, xs, yy)
        return 0.5 * sq(th) + data

    def gradient(th, hyper, xs, yy):
        _, _, delta, F = data_and_factors(th, hyper, xs, yy)
        g = data_gradient(delta, F, hyper, xs)
        return {name: th[name] + g[name] for name in names}

    def measure(th, hyper, xs_all, yy):
        rv, kappa = hyper[3], hyper[4]
        H = jnp.transpose(forward(th, hyper, xs_all), (1, 0, 2)).reshape(n, T * p_all)  # column t * P' + mu
        F = act(H)
        K = (H.T @ H / n).reshape(T, p_all, T, p_all).transpose(0, 2, 1, 3)
        Phi = (F.T @ F / n).reshape(T, p_all, T, p_all).transpose(0, 2, 1, 3)
        PhiS = Phi[S_idx][:, S_idx][:, :, :p_train, :p_train].transpose(0, 2, 1, 3).reshape(k, k)
        alpha = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(rv * PhiS + kappa * jnp.eye(k)), True), yy)
        cross = Phi[:, S_idx][:, :, :, :p_train].transpose(0, 2, 1, 3).reshape(T, p_all, k)
        return {"kernel": K, "kernel_sq": K * K, "overlap": Phi, "prediction": rv * cross @ alpha}

    def init_one(th, key, hyper, xs, yy):
        data, aux, delta, F = data_and_factors(th, hyper, xs, yy)
        return {"theta": th, "data": data, "aux": aux, "delta": delta, "F": F, "key": key}

    def sq(tree):
        return sum(jnp.sum(v * v) for v in tree.values())

    def iteration(state, log_eps, i, active, adapt, half, cap, hyper, xs, yy):
        """One HMC trajectory + Metropolis step (+ step-size adaptation) for one chain.

        Integrator (Strang splitting, symplectic and reversible): kick p -= (eps/2) grad E_data, then
        ``leapfrog`` times [move; kick by eps (eps/2 the last time)]. "move" is the exact flow of the
        prior part |theta|^2/2 + |p|^2/2, a rotation by eps (split), or theta += eps p with the prior
        gradient in the kicks (leapfrog). The carried momentum q is the one after the kick, and each
        step is two in-place elementwise passes: theta <- cos theta + sin q, then
        q <- (q - sin theta') / cos - c grad = (rotated momentum) - c grad.
        """
        key, k_mom, k_jit, k_acc = jax.random.split(state["key"], 4)
        # one draw for all blocks (one threefry kernel to compile), in float32 (2x cheaper on CPU) and
        # used in float64: N(0, 1) rounded to 24 bits
        flat = jax.random.normal(k_mom, (dim,), jnp.float32).astype(jnp.float64)
        p0 = {name: flat[o:o + sizes[name]].reshape(shapes[name]) for name, o in offsets.items()}
        eps = jnp.exp(log_eps[0]) * jax.random.uniform(k_jit, minval=1 - JITTER, maxval=1 + JITTER)
        cs, sn = jnp.cos(eps), jnp.sin(eps)

        g0 = data_gradient(state["delta"], state["F"], hyper, xs)
        th0 = state["theta"]
        q = {name: p0[name] - 0.5 * eps * (g0[name] if split else th0[name] + g0[name]) for name in names}

        def leap(j, c):
            th, q, _, _, _, _ = c
            if split:
                th = {name: cs * th[name] + sn * q[name] for name in names}
            else:
                th = {name: th[name] + eps * q[name] for name in names}
            data, aux, delta, F = data_and_factors(th, hyper, xs, yy)
            g = data_gradient(delta, F, hyper, xs)
            coef = jnp.where(j == leapfrog - 1, 0.5 * eps, eps)
            if split:
                q = {name: (q[name] - sn * th[name]) / cs - coef * g[name] for name in names}
            else:
                q = {name: q[name] - coef * (th[name] + g[name]) for name in names}
            return th, q, data, aux, delta, F

        carry = (th0, q, state["data"], state["aux"], state["delta"], state["F"])
        th, p, data, aux, delta, F = jax.lax.fori_loop(0, leapfrog, leap, carry)
        log_ratio = (0.5 * sq(th0) + state["data"] + 0.5 * sq(p0)) - (0.5 * sq(th) + data + 0.5 * sq(p))
        log_ratio = jnp.where(jnp.isfinite(log_ratio), log_ratio, -jnp.inf)
        a = jnp.exp(jnp.minimum(log_ratio, 0.0))
        accept = active & (jnp.log(jax.random.uniform(k_acc)) < log_ratio)
        pick = lambda x_new, x_old: jnp.where(accept, x_new, x_old)
        proposal = {"theta": th, "data": data, "aux": aux, "delta": delta, "F": F}
        new = {name: jax.tree_util.tree_map(pick, proposal[name], state[name]) for name in proposal}
        new["key"] = jnp.where(active, key, state["key"])
        gain = jnp.where(adapt, 1.0 / jnp.sqrt(1.0 + i / 10.0), 0.0)
        le = jnp.minimum(log_eps[0] + gain * (a - TARGET_ACCEPTANCE), cap)
        ls = log_eps[1] + jnp.where(adapt & (i >= half), le, 0.0)
        new_log_eps = jnp.where(active, jnp.stack([le, ls]), log_eps)
        return (new, new_log_eps), (new["aux"], a)

    def block_one(state, log_eps, i0, num, adapt, half, cap, hyper, xs, xs_all, yy):
        def body(carry, j):
            st, le = carry
            return iteration(st, le, i0 + j, j < num, adapt, half, cap, hyper, xs, yy)

        (state, log_eps), (trace, acc) = jax.lax.scan(body, (state, log_eps), jnp.arange(thin))
        return state, log_eps, trace, acc, measure(state["theta"], hyper, xs_all, yy)

    return {
        "init": jax.jit(jax.vmap(init_one, in_axes=(0, 0, None, None, None))),
        "block": jax.jit(jax.vmap(block_one, in_axes=(0, 0) + (None,) * 9)),
        "energy": energy,
        "gradient": gradient,
        "dim": dim,
        "names": names,
        "shapes": shapes,
    }


# ------------------------------------------------------------------------------------------ statistics

def _batch_stats(sums, sizes, chains):
    """Grand mean and batch-means standard error from per-(chain, batch) sums (module docstring)."""
    sizes = np.asarray(sizes, float)
    shape = (1, -1) + (1,) * (sums.ndim - 2)
    total = sizes.sum() * chains
    mean = sums.sum(axis=(0, 1)) / total
    means = sums / sizes.reshape(shape)
    count = chains * len(sizes)
    if count < 2:
        return mean, np.full_like(mean, np.nan)
    var = (sizes.reshape(shape) * (means - mean) ** 2).sum(axis=(0, 1)) / (count - 1)
    return mean, np.sqrt(var / total)


def _autocorr_time(trace, c=5.0):
    """Integrated autocorrelation time of (chains, N) series, Sokal's automatic window."""
    x = np.asarray(trace, float)
    N = x.shape[1]
    if N < 4:
        return float("nan")
    x = x - x.mean()
    f = np.fft.rfft(x, n=2 * N, axis=1)
    acf = np.fft.irfft(f * np.conj(f), axis=1)[:, :N].mean(axis=0)
    if acf[0] <= 0:
        return float("nan")
    rho = acf / acf[0]
    taus = 2.0 * np.cumsum(rho) - 1.0
    window = np.arange(N) >= c * taus
    W = int(np.argmax(window)) if window.any() else N - 1
    return float(taus[W])


def _split_rhat(trace):
    x = np.asarray(trace, float)
    half = x.shape[1] // 2
    if half < 2:
        return float("nan")
    parts = np.concatenate([x[:, :half], x[:, half:2 * half]])
    means, variances = parts.mean(axis=1), parts.var(axis=1, ddof=1)
    W = variances.mean()
    B = half * means.var(ddof=1)
    if W <= 0:
        return float("nan")
    return float(np.sqrt(((half - 1) / half * W + B / half) / W))


# ----------------------------------------------------------------------------------------- checkpoints

def _save(path: Path, arrays: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    try:
        with open(tmp, "wb") as fh:
            np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()})
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()


def _load(path: Path, key: str, description: dict) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(
            f"checkpoint {str(path)!r} could not be read ({err}); delete it or pass resume=False"
        ) from None
    if str(arrays.get("config_key", "")) != key:
        try:
            saved = json.loads(str(arrays["config"]))
        except (KeyError, ValueError):
            saved = {}
        differ = sorted(k for k in set(saved) | set(description) if saved.get(k) != description.get(k))
        raise ValueError(
            f"checkpoint {str(path)!r} belongs to another configuration (key "
            f"{arrays.get('config_key', '?')!s}, this run {key}; differing arguments: "
            f"{', '.join(differ) or 'unknown'}); use another checkpoint path, or resume=False to overwrite it"
        )
    return arrays


# ------------------------------------------------------------------------------------------------ API

def posterior_samples(net: Network, x, y, *, width: int, kappa: float, signal: float = 1.0,
                      supervised_steps=None, x_test=None, chains: int = 4, samples: int = 200, thin: int = 10,
                      burn_in: int = 500, step_size: float | None = None, leapfrog: int = 10,
                      integrator: str = "split", seed: int = 0, checkpoint=None, resume: bool = False,
                      checkpoint_every: int = 50, progress=None) -> PosteriorSamples:
    """Sample the posterior of a width-n muP network by HMC and average its kernels (module docstring).

    Args:
        net: :func:`netfield.dnn` or :func:`netfield.rnn` (T = ``net.steps``).
        x: training inputs, (P, d) (input at step 1 only) or (P, T_in, d), T_in <= T.
        y: targets, (len(S), P) (row k belongs to step S[k]); (P,) is accepted when len(S) == 1.
        width: hidden width n >= 1.
        kappa: noise variance per target times n (the likelihood variance is kappa / n), > 0.
        signal: factor s > 0 on the targets' second moment: the likelihood sees sqrt(s) * y.
        supervised_steps: steps S in 1..T with a target (default: (T,)).
        x_test: test inputs (measured, not in the likelihood), shape like x with the same d.
        chains: independent chains (vmapped). samples: measurements per chain after burn-in.
        thin: HMC iterations between measurements. burn_in: HMC iterations discarded (step size adapted).
        step_size: fixed leapfrog step (no adaptation); default adaptive (module docstring).
        leapfrog: integrator steps per trajectory. integrator: ``"split"`` (default) or ``"leapfrog"``.
        seed: integer >= 0; chain c starts from numpy's default_rng([seed, c]) and runs on the JAX key
            fold_in(PRNGKey(seed), c).
        checkpoint: path of a .npz file for the sampler state; resume: continue from it.
        checkpoint_every: samples between checkpoint writes.
        progress: callable(count) told about finished samples (total: ``samples``; burn-in not counted).

    Returns:
        :class:`PosteriorSamples`.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.feature import posterior_samples
        >>> x = np.eye(2); y = np.array([[1.0, -1.0]])
        >>> post = posterior_samples(netfield.rnn(2, "erf"), x, y, width=16, kappa=1.0, chains=2, samples=8,
        ...                          burn_in=20, thin=2)
        >>> post.kernel.shape, post.prediction.shape
        ((2, 2, 2, 2), (2, 2))
    """
    start_time = time.monotonic()
    chain = require_chain(net, "the posterior HMC sampler", "netfield.sample (prior ensembles of any program)")
    net = chain.network()
    T = net.steps
    width = check_positive_int("width", width)
    kappa = _positive_number("kappa", kappa)
    signal = _positive_number("signal", signal)
    chains = check_positive_int("chains", chains)
    samples = check_positive_int("samples", samples)
    thin = check_positive_int("thin", thin)
    burn_in = check_positive_int("burn_in", burn_in, minimum=0)
    leapfrog = check_positive_int("leapfrog", leapfrog)
    checkpoint_every = check_positive_int("checkpoint_every", checkpoint_every)
    seed = check_positive_int("seed", seed, minimum=0)
    if step_size is not None:
        step_size = _positive_number("step_size", step_size)
    if integrator not in INTEGRATORS:
        raise ValueError(f"integrator must be one of {', '.join(map(repr, INTEGRATORS))}, got {integrator!r}")
    if progress is not None and not callable(progress):
        raise TypeError(f"progress must be a callable(count) or None, got {type(progress).__name__}")
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of a .npz file>, got checkpoint=None")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint must be a file path (str or os.PathLike) or None, got {type(checkpoint).__name__}"
        )

    S = _supervised(supervised_steps, T)
    xs = _sequences("x", x, T)
    P = xs.shape[0]
    y = check_finite_array("y", y)
    if y.ndim == 1 and len(S) == 1:
        y = y[None, :]
    if y.shape != (len(S), P):
        raise ValueError(
            f"y must have shape (len(supervised_steps), P) = ({len(S)}, {P}) (or ({P},) for one supervised "
            f"step), got shape {np.shape(y)}"
        )
    xs_all = xs
    if x_test is not None:
        xt = _sequences("x_test", x_test, T)
        if xt.shape[2] != xs.shape[2]:
            raise ValueError(
                f"x_test must have d = {xs.shape[2]} features like x, got shape {np.shape(x_test)}"
            )
        t_in = max(xs.shape[1], xt.shape[1])
        xs, xt = _pad(xs, t_in), _pad(xt, t_in)
        xs_all = np.concatenate([xs, xt])
    t_in, d, p_all = xs.shape[1], xs.shape[2], xs_all.shape[0]
    yy = np.sqrt(signal) * y.reshape(-1)

    has_input, has_bias = net.input_var > 0, net.bias_var > 0
    fns = _compiled(chain.shared, T, net.activation, width, d, t_in, P, p_all, S, bool(has_input),
                    bool(has_bias), thin, leapfrog, integrator)
    init, block, dim, names = fns["init"], fns["block"], fns["dim"], fns["names"]
    hyper = jnp.asarray([net.weight_var, net.input_var, net.bias_var, net.readout_var, kappa], float)
    xs_j, xs_all_j, yy_j = jnp.asarray(xs), jnp.asarray(xs_all), jnp.asarray(yy)

    n_batches = max(1, math.isqrt(samples))
    sizes = np.array([len(b) for b in np.array_split(np.arange(samples), n_batches)])
    batch_of = np.repeat(np.arange(n_batches), sizes)
    half = burn_in // 2
    cap = math.pi / (2 * leapfrog)  # trajectory length <= pi / 2 (a quarter period of the prior)
    log_cap = math.log(max(cap, step_size or 0.0))
    adaptive = step_size is None and burn_in > 0
    description = {
        "format": FORMAT_VERSION, "net": repr(net), "x": array_digest(xs_all), "train_patterns": P,
        "y": array_digest(y), "width": width, "kappa": kappa, "signal": signal, "supervised_steps": list(S),
        "chains": chains, "samples": samples, "thin": thin, "burn_in": burn_in, "step_size": step_size,
        "leapfrog": leapfrog, "integrator": integrator, "seed": seed,
    }
    key = run_key(**description)
    path = None if checkpoint is None else Path(checkpoint)

    loaded = _load(path, key, description) if (resume and path is not None and path.is_file()) else None
    if loaded is not None:
        state = {name: jnp.asarray(loaded["state_" + name]) for name in STATE_FIELDS}
        state["theta"] = {name: jnp.asarray(loaded["theta_" + name]) for name in names}
        log_eps = jnp.asarray(loaded["log_eps"])
        iteration, done = int(loaded["iteration"]), int(loaded["done"])
        sums = {name: loaded["sum_" + name] for name in MEASURED}
        acc_sum, trace = loaded["acc_sum"], loaded["trace"]
        frozen = bool(loaded["frozen"])
    else:
        # chain c: initial theta_hat ~ N(0, 1) from numpy's generator seeded by (seed, c), HMC randomness
        # from the JAX key fold_in(PRNGKey(seed), c)
        rngs = [np.random.default_rng([seed, c]) for c in range(chains)]
        theta0 = {name: np.stack([r.standard_normal(fns["shapes"][name]) for r in rngs]) for name in names}
        keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(seed), c) for c in range(chains)])
        state = init(theta0, keys, hyper, xs_j, yy_j)
        if step_size is None:
            s_data = net.readout_var / kappa * (1.0 + float(np.mean(yy ** 2)) / kappa)
            eps0 = min(1.0 if integrator == "split" else 1.5 * dim ** -0.25, cap) / math.sqrt(1.0 + s_data)
        else:
            eps0 = step_size
        log_eps = jnp.tile(jnp.asarray([math.log(eps0), 0.0]), (chains, 1))
        iteration, done = 0, 0
        shapes = {"kernel": (T, T, p_all, p_all), "kernel_sq": (T, T, p_all, p_all), "overlap": (T, T, p_all, p_all),
                  "prediction": (T, p_all)}
        sums = {name: np.zeros((chains, n_batches) + shape) for name, shape in shapes.items()}
        acc_sum, trace = np.zeros(chains), np.zeros((chains, samples * thin))
        frozen = False

    def save():
        if path is None:
            return
        arrays = {"state_" + name: np.asarray(state[name]) for name in STATE_FIELDS}
        arrays.update({"theta_" + name: np.asarray(v) for name, v in state["theta"].items()})
        arrays.update({"sum_" + name: v for name, v in sums.items()})
        arrays.update(log_eps=np.asarray(log_eps), iteration=iteration, done=done, acc_sum=acc_sum,
                      trace=trace, frozen=frozen, config_key=np.asarray(key),
                      config=np.asarray(json.dumps(description)))
        _save(path, arrays)

    data = (half, log_cap, hyper, xs_j, xs_all_j, yy_j)
    # burn-in: blocks of ``thin`` iterations aligned to absolute iteration counts (resume-safe)
    while iteration < burn_in:
        num = min(thin, burn_in - iteration)
        state, log_eps, _, _, _ = block(state, log_eps, iteration, num, adaptive, *data)
        iteration += num
        if iteration < burn_in and (iteration // thin) % checkpoint_every == 0:
            save()
    if not frozen:
        if adaptive:
            mean_log = np.asarray(log_eps)[:, 1] / (burn_in - half)
            log_eps = jnp.stack([jnp.asarray(mean_log), jnp.zeros(chains)], axis=1)
        frozen = True
        save()

    if progress is not None and done:
        progress(done)
    while done < samples:
        state, log_eps, tr, acc, meas = block(state, log_eps, iteration, thin, False, *data)
        iteration += thin
        b = batch_of[done]
        for name in sums:
            sums[name][:, b] += np.asarray(meas[name])
        acc_sum = acc_sum + np.asarray(acc).sum(axis=1)
        trace[:, done * thin:(done + 1) * thin] = np.asarray(tr)
        done += 1
        if done % checkpoint_every == 0 or done == samples:
            save()
        if progress is not None:
            progress(1)

    stats = {name: _batch_stats(sums[name], sizes, chains) for name in sums}
    sw = math.sqrt(net.weight_var / width)
    if chain.shared and T >= 2:
        eig = np.linalg.eigvals(np.asarray(state["theta"]["W"]) * sw)
    elif T >= 2:
        eig = np.stack([np.linalg.eigvals(np.asarray(state["theta"][f"W{t}"]) * sw) for t in range(2, T + 1)],
                       axis=1)
    else:
        eig = np.zeros((chains, 0) if chain.shared else (chains, 0, width), complex)
    return PosteriorSamples(
        kernel=stats["kernel"][0], kernel_se=stats["kernel"][1],
        kernel_sq=stats["kernel_sq"][0], kernel_sq_se=stats["kernel_sq"][1],
        chain_kernel=sums["kernel"].sum(axis=1) / samples,
        overlap=stats["overlap"][0], overlap_se=stats["overlap"][1],
        prediction=stats["prediction"][0], prediction_se=stats["prediction"][1],
        acceptance=acc_sum / (samples * thin), step_size=np.exp(np.asarray(log_eps)[:, 0]),
        tau=_autocorr_time(trace), rhat=_split_rhat(trace), w_eigenvalues=eig, readout_trace=trace.copy(),
        width=width, chains=chains, samples=samples, thin=thin, burn_in=burn_in, leapfrog=leapfrog,
        supervised_steps=S, train_patterns=P, batches=n_batches, seconds=time.monotonic() - start_time,
    )
