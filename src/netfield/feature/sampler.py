"""Posterior sampler of finite-width muP networks of any program: the oracle of the feature-learning theory.

The model (docs/theory.md sections 1 and 6, docs/feature.md), for a width-n network of any architecture
written as a program (:mod:`netfield.program.netsor`; :func:`netfield.dnn`, :func:`netfield.rnn`,
:func:`netfield.gru`, :func:`netfield.lstm`, :func:`netfield.transformer`, :func:`netfield.conv`,
:func:`netfield.batchnorm_mlp`, :func:`netfield.architecture`):

    hidden weights: every matrix / vector of the program, W ~ N(0, var / n), U ~ N(0, var / d),
        b ~ N(0, var), as the finite-width interpreter samples them (a block of variance 0 is zero);
    forward pass: the finite-width interpreter (netfield.finite.netsor.run_program);
    readouts r = 1..R (the program's Readout instructions in order: one per step for a DNN / RNN / GRU /
        LSTM, one for a transformer, conv net or batch-norm MLP), features G_r(x) = the H-variable read;
    f_r(x) = (1/n) sum_j v_j G_rj(x),  v_j ~ N(0, readout_var)       (muP readout, v shared over r)
    y[k, mu] ~ N(f_{S_k}(x_mu), kappa / n)  at the supervised readouts S, targets scaled by sqrt(signal).

For a DNN / RNN this is h_1 = U_1 x_1 + b_1, h_t = W_t phi(h_{t-1}) + U_t x_t + b_t, G_t = phi(h_t).
The readout bias (``readout_bias_var``) is not part of this model and is ignored. The readout v is
integrated out exactly: with Phi = (1/n) G_S G_S^T over the supervised readouts and training patterns
(readout-major, row k * P + mu) and M = readout_var * Phi + kappa * I, the hidden weights have the
potential (whitened: theta = sigma * theta_hat, theta_hat ~ N(0, 1) under the prior)

    E(theta_hat) = |theta_hat|^2 / 2 + (n / 2) yy^T M^-1 yy + (1/2) log det M,   yy = sqrt(signal) vec(y).

Not covered (:class:`~netfield.program.shape.UnsupportedProgram`, naming the instruction): readouts
that read flattened rows (``conv(..., readout="flatten")``), readouts with different readout matrices
(v would not be shared), readouts on different row spaces or on a space whose rows are not the
patterns, ``"h"`` taps on different row spaces (their kernels cannot be stacked), and programs in which
the training patterns' features change when the test patterns join the batch (batch coupling other
than a batch-norm network's, whose test patterns are normalised with the training batch's statistics:
``batch_rows``). Moments, layer norm and attention within a pattern are covered.

Sampler (:mod:`netfield.feature.hmc`): Hamiltonian Monte Carlo with a Metropolis-Hastings correction
(exact for every step size) on theta_hat: unit mass, ``leapfrog`` integrator steps per trajectory, each
trajectory's step size jittered by a uniform factor in [0.9, 1.1] (state-independent, so still exact).
Chains are ``jax.vmap``-ed (in groups of ``chain_group``, one program each, run here one after
another or as Dask tasks: docs/distributed.md section 3); a block of ``thin`` iterations is one jitted
``lax.scan``. Two symplectic, reversible integrators (Strang splittings), both exact after the Metropolis step:

- ``"split"`` (default): the Gaussian prior part |theta_hat|^2/2 + |p|^2/2 is integrated exactly (a
  rotation by the step size), only the data term is kicked. The energy error then comes from the data
  term alone (it does not grow with the number of weights, ~ n^2), so steps are large and a
  trajectory of length ~ pi/2 decorrelates the prior-dominated directions in one iteration.
- ``"leapfrog"``: the standard leapfrog on the full potential (the step must shrink like D^(-1/4),
  D = number of weights).

The gradient of the data term is ``jax.grad`` with respect to the outputs of the instructions that use
weights, turned into weight gradients by the chain rule (:mod:`netfield.feature.hmc`); the tests check
it against ``jax.grad`` of E. Momenta are drawn as float32 normals (half the cost of float64 draws on
CPU) and integrated in float64; the rounding of a N(0, 1) draw to 24 bits changes the sampled law at
the 1e-7 level.

Step size: unless given, it starts at eps0 = min(1 (split) or 1.5 D^(-1/4) (leapfrog), cap) /
sqrt(1 + s_data), s_data = readout_var / kappa * (1 + mean(yy^2) / kappa) (the curvature scale of the
data term), and is adapted per chain during burn-in only: log eps += (a - 0.75) / sqrt(1 + i / 10)
(a = Metropolis acceptance probability of iteration i), clipped at cap = pi / (2 leapfrog) (a
trajectory never exceeds a quarter period of the prior: longer ones would rotate back), and frozen
at exp(mean of log eps over the second half of burn-in). Acceptance is then ~0.75, or higher when
the cap binds (weak data term: then the trajectories are already ideal).

Measurements, after burn-in, every ``thin`` iterations, per chain, on training + test patterns
(P' = P + P_test): kernels K[t, s] = (1/n) h_t h_s^T of the program's ``"h"`` taps (T_h of them: the
pre-activations of a DNN / RNN, the hidden states of a GRU / LSTM, ...) over the rows of their space
(the patterns, or (pattern, token) / (pattern, position) pairs), overlaps Phi[r, s] = (1/n) G_r G_s^T
(R, R, P', P'), and the posterior-mean readout given the hidden weights
E[f_r(x*) | hidden] = readout_var Phi[(r, *), S] M^-1 yy (R, P'), i.e. for the scaled targets
sqrt(signal) y (divide by sqrt(signal) for units of y). At the end of each chain: eigenvalues of the
hidden n x n matrices.

Error bars: batch means (:mod:`netfield.feature.statistics`), which include autocorrelation as long as
a batch is much longer than the autocorrelation time, and between-chain differences (chains not
mixed) as well. The integrated autocorrelation time ``tau`` (in HMC iterations) of the mean diagonal
of the supervised readout overlap Phi_S (recorded every iteration) uses Sokal's automatic window
(smallest W with W >= 5 tau(W)) on the chain-averaged autocorrelation function; ``rhat`` is the
split-R-hat of the same series.

Checkpoints (:mod:`netfield.feature.checkpoint`): ``checkpoint=path.npz`` saves the whole sampler
state (theta_hat, keys, step sizes, counters, batch sums, traces) atomically every
``checkpoint_every`` samples (and every ``checkpoint_every * thin`` burn-in iterations);
``resume=True`` continues from it and gives exactly the numbers of an uninterrupted run. A checkpoint
stores a description of its configuration and is refused for another one.
"""

from __future__ import annotations

import json
import math
import numbers
import os
import time
from dataclasses import dataclass
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite_array, check_positive_int
from .._runtime.checkpoint import array_digest, run_key
from .._runtime.progress import check_progress, progress_bar
from ..distributed import executor
from ..distributed.executor import check_workers
from ..program import Network
from ..program.network import dnn, rnn
from ..program.shape import recognise_chain
from ..storage import Storable
from .checkpoint import load_state as _load
from .checkpoint import save_state as _save
from .hmc import cached_model, weight_blocks
from .model import check_batch, check_model, joint_inputs
from .statistics import autocorr_time, batch_stats, split_rhat

jax.config.update("jax_enable_x64", True)

FORMAT_VERSION = 3  # 3: any program; the state keeps the gradient factors per weight block (2: delta, F)
INTEGRATORS = ("split", "leapfrog")
MEASURED = ("kernel", "kernel_sq", "overlap", "prediction")


@dataclass(frozen=True, eq=False)
class PosteriorSamples(Storable):  # save / load: netfield.storage
    """Posterior averages of a finite-width muP network (module docstring for the model and methods).

    Attributes:
        kernel, kernel_se: (T_h, T_h, M, M) kernels K[t, s] = (1/n) h_t h_s^T of the program's "h" taps
            (0-based; the pre-activations of a DNN / RNN) over the rows of their space (M = P' patterns,
            training then test, or (pattern, token) / (pattern, position) pairs, pattern-major), and
            their batch-means standard errors.
        kernel_sq, kernel_sq_se: (T_h, T_h, M, M) posterior mean of K[t, s]**2 (elementwise) and errors: the
            order parameter of a cross-time block whose sign the posterior does not fix (an RNN's
            K[t, s] -> -K[t, s] under W -> -W when t - s is odd, so its mean vanishes while its
            square does not).
        chain_kernel: (chains, T_h, T_h, M, M) the mean kernel of each chain (chains stuck on one sign of
            a broken symmetry show it here).
        overlap, overlap_se: (R, R, P', P') Phi[r, s] = (1/n) G_r G_s^T of the readouts' features (phi(h_t)
            for a DNN / RNN) and errors.
        prediction, prediction_se: (R, P') E[f_r(x) | hidden weights] for the scaled targets
            sqrt(signal) y, averaged over the posterior.
        acceptance: (chains,) mean Metropolis acceptance probability after burn-in.
        step_size: (chains,) leapfrog step size after burn-in (before the +-10 % jitter).
        tau: integrated autocorrelation time, in HMC iterations, of the mean readout-overlap diagonal.
        rhat: split-R-hat of that series (close to 1 when the chains agree).
        w_eigenvalues: complex eigenvalues of the hidden n x n matrices at the end of each chain: (chains, n)
            for an RNN's W ((chains, 0) if T = 1); else (chains, len(matrices), n), one row per matrix
            (a DNN's W_2..W_T).
        readout_trace: (chains, samples * thin) the series tau is computed from.
        width, chains, samples, thin, burn_in, leapfrog, supervised_steps, train_patterns, batches,
        seconds: how it was sampled (``seconds``: wall time of this call).
        matrices: names of the program's hidden n x n matrices (the rows of ``w_eigenvalues``).
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
    matrices: tuple = ()

    @property
    def steps(self) -> int:
        """T_h, the number of "h" taps (a DNN's layers, an RNN's steps)."""
        return self.kernel.shape[0]

    @property
    def readouts(self) -> int:
        """R, the number of readouts."""
        return self.prediction.shape[0]

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
            "matrices": list(self.matrices),
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


def _supervised(steps, R):
    S = (R,) if steps is None else steps
    try:
        S = tuple(S)
    except TypeError:
        S = (S,)
    bad = [s for s in S if isinstance(s, bool) or not isinstance(s, (int, np.integer)) or not 1 <= s <= R]
    if not S or bad or len(set(S)) != len(S):
        raise ValueError(f"supervised_steps must be distinct integer steps in 1..{R}, got {steps!r} (readout r of "
                         f"the network is step r of a DNN / RNN / GRU / LSTM)")
    return tuple(int(s) for s in S)


def _compiled(shared, T, activation, n, d, t_in, p_train, p_all, S, has_input, has_bias, thin, leapfrog,
              integrator):
    """The model of a DNN (``shared`` False) / RNN chain with its variances as data: functions of
    (theta_hat, hyper = [weight_var, input_var, bias_var, readout_var, kappa], xs of shape (P, T_in, d),
    yy), and the block names U.., W.., b.. (the chain's program, run by :func:`compile_model`)."""
    net = (rnn if shared else dnn)(T, activation, input_var=1.0 if has_input else 0.0,
                                   bias_var=1.0 if has_bias else 0.0)
    train = net.program(np.zeros((p_train, t_in, d)))
    joint = net.program(np.zeros((p_all, t_in, d)))
    blocks = weight_blocks(train, n)
    omitted = frozenset(b.name for b, ins in blocks if ins.var == 0)
    fns = cached_model(net, train, joint, n, omitted, tuple(S), p_train, thin, leapfrog, integrator)
    kept = [b for b, _ in blocks if b.name not in omitted]
    position = {"matrix": 0, "input": 1, "bias": 2}

    def hyper_of(hyper):
        scales = jnp.stack([jnp.sqrt(hyper[position[b.kind]] / b.fan_in) for b in kept])
        return jnp.concatenate([scales, jnp.asarray(hyper)[3:5]])

    def feeds_of(xs):  # the chain program feeds x_t to step t (one Input per step)
        return tuple(xs[:, t] for t in range(t_in))

    return {**fns,
            "energy": lambda th, hyper, xs, yy: fns["energy"](th, hyper_of(hyper), feeds_of(xs), yy),
            "gradient": lambda th, hyper, xs, yy: fns["gradient"](th, hyper_of(hyper), feeds_of(xs), yy)}


# ------------------------------------------------------------------------------------------------ API

def posterior_samples(net: Network, x, y, *, width: int, kappa: float, signal: float = 1.0,
                      supervised_steps=None, x_test=None, chains: int = 4, samples: int = 200, thin: int = 10,
                      burn_in: int = 500, step_size: float | None = None, leapfrog: int = 10,
                      integrator: str = "split", seed: int = 0, checkpoint=None, resume: bool = False,
                      checkpoint_every: int = 50, progress=True, chain_group: int | None = None, client=None,
                      workers: int | None = None) -> PosteriorSamples:
    """Sample the posterior of a width-n muP network by HMC and average its kernels (module docstring).

    Args:
        net: a network of any architecture (:func:`netfield.dnn`, :func:`netfield.rnn`, :func:`netfield.gru`,
            :func:`netfield.lstm`, :func:`netfield.transformer`, :func:`netfield.conv`,
            :func:`netfield.batchnorm_mlp`, :func:`netfield.architecture`); programs outside the model
            (module docstring) raise :class:`~netfield.program.shape.UnsupportedProgram`.
        x: training inputs as the network takes them; for DNN / RNN / GRU / LSTM (P, d) (input at step 1
            only) or (P, T_in, d), T_in <= T.
        y: targets, (len(S), P) (row k belongs to readout S[k]); (P,) is accepted when len(S) == 1.
        width: hidden width n >= 1.
        kappa: noise variance per target times n (the likelihood variance is kappa / n), > 0.
        signal: factor s > 0 on the targets' second moment: the likelihood sees sqrt(s) * y.
        supervised_steps: readouts S in 1..R with a target (default: (R,), the last; for DNN / RNN / GRU /
            LSTM readout t is step t).
        x_test: test inputs (measured, not in the likelihood), with the shape of x beyond the first axis
            (DNN / RNN: any T_in, zero-padded).
        chains: independent chains (vmapped). samples: measurements per chain after burn-in. Cost:
            chains x (burn_in + samples x thin) HMC iterations of ``leapfrog`` gradient evaluations of a
            width-n network on the P + P_test patterns; ``samples`` and ``width`` are the levers.
        thin: HMC iterations between measurements. burn_in: HMC iterations discarded (step size adapted).
        step_size: fixed leapfrog step (no adaptation); default adaptive (module docstring).
        leapfrog: integrator steps per trajectory. integrator: ``"split"`` (default) or ``"leapfrog"``.
        seed: integer >= 0; chain c starts from numpy's default_rng([seed, c]) and runs on the JAX key
            fold_in(PRNGKey(seed), c).
        checkpoint: path of a .npz file for the sampler state; resume: continue from it. With more than
            one chain group, group ``a..b`` keeps its state in ``<stem>.chains-a-b.npz`` beside it.
        checkpoint_every: samples between checkpoint writes.
        progress: True (default): a bar on stderr over the samples; False / None: quiet; or a callable
            ``progress(count)`` told about finished samples (total: ``samples``; burn-in not counted;
            with more than one chain group, told as each group finishes, its share of ``samples``).
        chain_group: chains run together in one vmapped program (default: all ``chains``). The chains
            are split into groups of this size (the last may be smaller), run one after another here or
            as one task each on Dask. A chain's numbers depend only on its index and its group's
            size, so the same ``chain_group`` gives the same bits in one process and on any number of
            workers (a vmapped program of another size may round differently, ~1e-16).
        client, workers: run the chain groups as Dask tasks (a ``distributed.Client`` or a scheduler
            address, or a local cluster of ``workers`` processes; docs/distributed.md). A lost worker
            loses only the group it was running (its checkpoint, if any, is resumed with ``resume``).

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
    if not isinstance(net, Network):
        raise TypeError(f"net must be a network built by netfield.dnn, rnn, gru, lstm, transformer, conv, "
                        f"batchnorm_mlp or architecture, got {type(net).__name__}")
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
    check_progress(progress)
    chain_group = chains if chain_group is None else check_positive_int("chain_group", chain_group)
    if chain_group > chains:
        raise ValueError(f"chain_group must be between 1 and chains = {chains}, got {chain_group}")
    check_workers(workers)
    if resume and checkpoint is None:
        raise ValueError("resume=True needs checkpoint=<path of a .npz file>, got checkpoint=None")
    if checkpoint is not None and not isinstance(checkpoint, (str, os.PathLike)):
        raise TypeError(
            f"checkpoint must be a file path (str or os.PathLike) or None, got {type(checkpoint).__name__}"
        )

    settings = {"width": width, "kappa": kappa, "signal": signal, "supervised_steps": supervised_steps,
                "x_test": x_test, "chains": chains, "samples": samples, "thin": thin, "burn_in": burn_in,
                "step_size": step_size, "leapfrog": leapfrog, "integrator": integrator, "seed": seed,
                "checkpoint_every": checkpoint_every}
    groups = [tuple(range(a, min(a + chain_group, chains))) for a in range(0, chains, chain_group)]
    path = None if checkpoint is None else Path(checkpoint)
    with progress_bar(progress, samples, "posterior samples") as bar:
        if len(groups) == 1 and client is None and workers is None:
            parts = [_run_chains(net, x, y, settings, groups[0], path, resume, bar)]
        else:
            _problem(net, x, y, x_test, supervised_steps)  # bad input fails here, before any task starts
            shares = [len(b) for b in np.array_split(np.arange(samples), len(groups))]
            tasks = [(net, x, y, settings, g, _group_path(path, g, chains), resume, None) for g in groups]
            with executor(client, workers) as ex:
                parts = ex.run(_run_chains, tasks, label="posterior-chains",
                               on_result=lambda i, _: bar(shares.pop()))
    first = parts[0]
    per_chain = {name: np.concatenate([p[name] for p in parts]) for name in
                 ("acc_sum", "trace", "log_eps", "eig")}
    sums = {name: np.concatenate([p["sums"][name] for p in parts]) for name in MEASURED}
    sizes = first["sizes"]
    stats = {name: batch_stats(sums[name], sizes, chains) for name in sums}
    trace = per_chain["trace"]
    return PosteriorSamples(
        kernel=stats["kernel"][0], kernel_se=stats["kernel"][1],
        kernel_sq=stats["kernel_sq"][0], kernel_sq_se=stats["kernel_sq"][1],
        chain_kernel=sums["kernel"].sum(axis=1) / samples,
        overlap=stats["overlap"][0], overlap_se=stats["overlap"][1],
        prediction=stats["prediction"][0], prediction_se=stats["prediction"][1],
        acceptance=per_chain["acc_sum"] / (samples * thin), step_size=np.exp(per_chain["log_eps"][:, 0]),
        tau=autocorr_time(trace), rhat=split_rhat(trace), w_eigenvalues=per_chain["eig"],
        readout_trace=trace.copy(), width=width, chains=chains, samples=samples, thin=thin, burn_in=burn_in,
        leapfrog=leapfrog, supervised_steps=first["S"], train_patterns=first["P"], batches=len(sizes),
        seconds=time.monotonic() - start_time, matrices=first["matrices"],
    )


def _problem(net, x, y, x_test, supervised_steps):
    """The checked problem: (xs, xs_all, train program, joint program, supervised readouts S, y as
    (len(S), P)); raises on inputs outside the model (module docstring) or of the wrong shape."""
    xs, xs_all = joint_inputs(net, x, x_test)
    train = net.program(xs)
    P, p_all = xs.shape[0], xs_all.shape[0]
    joint = train if x_test is None else net.program(xs_all, batch_rows=P)
    check_model(net, train, P)
    check_model(net, joint, p_all)
    S = _supervised(supervised_steps, len(train.readouts))
    y = check_finite_array("y", y)
    if y.ndim == 1 and len(S) == 1:
        y = y[None, :]
    if y.shape != (len(S), P):
        raise ValueError(
            f"y must have shape (len(supervised_steps), P) = ({len(S)}, {P}) (or ({P},) for one supervised "
            f"step), got shape {np.shape(y)}"
        )
    return xs, xs_all, train, joint, S, y


def _group_path(path, group, chains):
    """The checkpoint file of a chain group: ``path`` itself for the group of all chains."""
    if path is None or len(group) == chains:
        return path
    return path.with_name(f"{path.stem}.chains-{group[0]}-{group[-1]}{path.suffix or '.npz'}")


def _run_chains(net, x, y, settings, group, path, resume, progress) -> dict:
    """Burn-in and sampling of the chains ``group`` (indices into 0..chains-1) in one vmapped program
    (:func:`posterior_samples`): their per-chain batch sums, acceptance sums, traces, step sizes and
    final eigenvalues. A pure function of its arguments (a Dask task)."""
    width, kappa, signal = settings["width"], settings["kappa"], settings["signal"]
    x_test, samples, thin = settings["x_test"], settings["samples"], settings["thin"]
    burn_in, step_size, leapfrog = settings["burn_in"], settings["step_size"], settings["leapfrog"]
    integrator, seed, checkpoint_every = settings["integrator"], settings["seed"], settings["checkpoint_every"]
    supervised_steps = settings["supervised_steps"]
    chains = len(group)
    xs, xs_all, train, joint, S, y = _problem(net, x, y, x_test, supervised_steps)
    P, p_all = xs.shape[0], xs_all.shape[0]
    R = len(train.readouts)
    yy = np.sqrt(signal) * y.reshape(-1)

    blocks = weight_blocks(train, width)
    omitted = frozenset(b.name for b, ins in blocks if float(ins.var) == 0.0)
    kept = [(b, ins) for b, ins in blocks if b.name not in omitted]
    fns = cached_model(net, train, joint, width, omitted, S, P, thin, leapfrog, integrator)
    init, block, dim, names = fns["init"], fns["block"], fns["dim"], fns["names"]
    readout_var = float(train.readouts[0].var)
    scales = [math.sqrt(float(ins.var) / b.fan_in) for b, ins in kept]
    hyper = jnp.asarray(scales + [readout_var, kappa], float)
    feeds, feeds_all = tuple(map(jnp.asarray, train.feeds)), tuple(map(jnp.asarray, joint.feeds))
    yy_j = jnp.asarray(yy)

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
        "chains": settings["chains"], "samples": samples, "thin": thin, "burn_in": burn_in, "step_size": step_size,
        "leapfrog": leapfrog, "integrator": integrator, "seed": seed,
    }
    if chains != settings["chains"]:  # one group of several: its own checkpoint and configuration
        description["chain_ids"] = [int(c) for c in group]
    key = run_key(**description)

    # chain c: initial theta_hat ~ N(0, 1) from numpy's generator seeded by (seed, c), HMC randomness
    # from the JAX key fold_in(PRNGKey(seed), c)
    rngs = [np.random.default_rng([seed, c]) for c in group]
    theta0 = {name: np.stack([r.standard_normal(fns["shapes"][name]) for r in rngs]) for name in names}
    if x_test is not None:
        params = {b.name: s * theta0[b.name][0] for (b, _), s in zip(kept, scales)}
        params.update({b.name: np.zeros(b.shape) for b, _ in blocks if b.name in omitted})
        check_batch(net, train, joint, params, width, P)

    loaded = _load(path, key, description) if (resume and path is not None and path.is_file()) else None
    if loaded is not None:
        state = {name: jnp.asarray(loaded["state_" + name]) for name in ("data", "aux", "key")}
        for part in ("theta", "left", "right"):
            state[part] = {name: jnp.asarray(loaded[f"{part}_{i}"]) for i, name in enumerate(names)}
        log_eps = jnp.asarray(loaded["log_eps"])
        iteration, done = int(loaded["iteration"]), int(loaded["done"])
        sums = {name: loaded["sum_" + name] for name in MEASURED}
        acc_sum, trace = loaded["acc_sum"], loaded["trace"]
        frozen = bool(loaded["frozen"])
    else:
        keys = jnp.stack([jax.random.fold_in(jax.random.PRNGKey(seed), c) for c in group])
        state = init(theta0, keys, hyper, feeds, yy_j)
        if step_size is None:
            s_data = readout_var / kappa * (1.0 + float(np.mean(yy ** 2)) / kappa)
            eps0 = min(1.0 if integrator == "split" else 1.5 * dim ** -0.25, cap) / math.sqrt(1.0 + s_data)
        else:
            eps0 = step_size
        log_eps = jnp.tile(jnp.asarray([math.log(eps0), 0.0]), (chains, 1))
        iteration, done = 0, 0
        taps = joint.taps.get("h", {})
        T_h = len(taps)
        m = joint.spaces[joint[next(iter(taps.values()))].space] if taps else p_all
        shapes = {"kernel": (T_h, T_h, m, m), "kernel_sq": (T_h, T_h, m, m), "overlap": (R, R, p_all, p_all),
                  "prediction": (R, p_all)}
        sums = {name: np.zeros((chains, n_batches) + shape) for name, shape in shapes.items()}
        acc_sum, trace = np.zeros(chains), np.zeros((chains, samples * thin))
        frozen = False

    def save():
        if path is None:
            return
        arrays = {"state_" + name: np.asarray(state[name]) for name in ("data", "aux", "key")}
        for part in ("theta", "left", "right"):
            arrays.update({f"{part}_{i}": np.asarray(state[part][name]) for i, name in enumerate(names)})
        arrays.update({"sum_" + name: v for name, v in sums.items()})
        arrays.update(log_eps=np.asarray(log_eps), iteration=iteration, done=done, acc_sum=acc_sum,
                      trace=trace, frozen=frozen, config_key=np.asarray(key),
                      config=np.asarray(json.dumps(description)))
        _save(path, arrays, key, description)

    data = (half, log_cap, hyper, feeds, feeds_all, yy_j)
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

    matrices = [(b.name, s) for (b, _), s in zip(kept, scales) if b.kind == "matrix"]
    eig = np.stack([np.linalg.eigvals(np.asarray(state["theta"][name]) * s) for name, s in matrices], axis=1) \
        if matrices else np.zeros((chains, 0, width), complex)
    chain = recognise_chain(train)[0]
    if chain is not None and chain.shared:  # an RNN: its one W ((chains, 0) if T = 1)
        eig = eig[:, 0] if matrices else np.zeros((chains, 0), complex)
    return {"sums": sums, "acc_sum": acc_sum, "trace": trace, "log_eps": np.asarray(log_eps), "eig": eig,
            "sizes": sizes, "S": S, "P": P, "matrices": tuple(name for name, _ in matrices)}
