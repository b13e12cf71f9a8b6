"""Full-batch gradient descent of finite networks of any program (docs/ntk.md).

The networks are those of :func:`netfield.sample` / :func:`netfield.finite.ntk.empirical_ntk` for the
same seed (network i: key fold_in(PRNGKey(seed), i); :mod:`netfield.finite.parameters` for the
parameters and their keys), with K independent readouts for targets of K outputs. Training minimises

    L = (1 / (2 N)) sum_{a <= N, k} (f_k(a) - y_k(a))^2          (N training patterns)

by p <- p - learning_rate dL/dp in the parameterization's own variables (omega for ``"ntk"``, theta =
s * omega for ``"standard"``). The program is written once for the training and test inputs joined
(:func:`netfield.meanfield.kernels.joined_inputs`; batch-coupled layers take their statistics over the
training patterns only, ``net.program(joined, batch_rows=N)``), so test outputs are read from the
same forward pass; the loss reads the training rows only. In the NTK regime (wide networks, small
learning rate) the outputs follow the linear model f_t = y + (1 - learning_rate Theta / N)^t (f_0 - y)
on the training rows, Theta the NTK of :mod:`netfield.finite.ntk`.
"""

from __future__ import annotations

import itertools
import weakref
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_finite_array, check_positive_int
from .._runtime.progress import check_progress, progress_bar
from .._runtime.seeds import check_seed
from ..meanfield.kernels import check_network, joined_inputs
from ..meanfield.result import readout_rows
from ..program.memo import program_of
from ..program.netsor import Program
from ..storage import Storable
from .parameters import check_parameterization, network_outputs, sample_parameters, scales

MEMORY_BUDGET = 512 * 2**20  # bytes of one chunk of networks


@dataclass(frozen=True, eq=False)
class TrainingResult(Storable):
    """Outputs of networks trained by full-batch gradient descent (:func:`train_ensemble`).

    ``result.save(path)`` / ``TrainingResult.load(path)`` keep it in a portable .npz file (:mod:`netfield.storage`).

    Attributes:
        steps: (S,) the recorded numbers of gradient steps (0: initialisation).
        train: (S, networks, N_train, K) outputs on the training patterns after each recorded step.
        test: (S, networks, N_test, K) outputs on the test patterns (N_test = 0 without test inputs).
        loss: (S, networks) training loss L (module docstring) after each recorded step.
        width, seed, learning_rate, parameterization: how the networks were trained.
    """

    steps: np.ndarray
    train: np.ndarray
    test: np.ndarray
    loss: np.ndarray
    width: int = 0
    seed: int = 0
    learning_rate: float = 0.0
    parameterization: str = "ntk"

    @property
    def networks(self) -> int:
        return self.train.shape[1]


def check_steps(steps) -> tuple:
    """Recorded step counts: an int or a strictly increasing sequence of ints >= 0."""
    items = [steps] if isinstance(steps, (int, np.integer)) and not isinstance(steps, bool) else steps
    try:
        items = list(items)
    except TypeError:
        raise TypeError(f"steps must be an integer or a sequence of integers >= 0, got {steps!r}") from None
    if not items or any(isinstance(s, bool) or not isinstance(s, (int, np.integer)) for s in items):
        raise ValueError(f"steps must be a non-empty sequence of integers >= 0, got {steps!r}")
    if min(items) < 0:
        raise ValueError(f"steps must be integers >= 0 (0: the initialisation), got {steps!r}")
    if any(b <= a for a, b in itertools.pairwise(items)):
        raise ValueError(f"steps must be strictly increasing, got {steps!r}")
    return tuple(int(s) for s in items)


def _learning_rate(value) -> float:
    try:
        lr = float(value)
    except (TypeError, ValueError):
        raise TypeError(f"learning_rate must be a finite number > 0, got {value!r}") from None
    if isinstance(value, bool) or not (np.isfinite(lr) and lr > 0):
        raise ValueError(f"learning_rate must be a finite number > 0, got {value!r}")
    return lr


def _chunk_size(program: Program, width: int, itemsize: int) -> int:
    rows = sum(program.spaces.values())
    params = sum(int(np.prod(s)) for s, _ in _shapes(program, width).values())
    per_network = (4 * params + 3 * len(program.instructions) * width * rows) * itemsize
    return max(1, MEMORY_BUDGET // max(per_network, 1))


def _shapes(program: Program, width: int) -> dict:
    from .parameters import hidden_shapes, readout_shapes

    return {**hidden_shapes(program, width), **readout_shapes(program, width)}


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(program: Program, width: int, dt, outputs: int, n_train: int, steps: tuple, parameterization: str):
    """The jitted, vmapped training of networks (seed, indices) of ``program``, cached with it;
    the targets and the learning rate are runtime arguments."""
    per_program = _COMPILED.setdefault(program, {})
    key = (width, dt.name, outputs, n_train, steps, parameterization)
    if key not in per_program:
        rows = readout_rows(program, "last")
        M = len(rows)
        record = jnp.asarray(steps)

        def one(seed, index, y, lr):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
            params = sample_parameters(program, key, width, dt, outputs)
            if parameterization == "standard":
                s = scales(program, width, dt)
                params = {name: s[name] * w for name, w in params.items()}

            def loss(p):
                f = network_outputs(program, p, width, rows, parameterization=parameterization, dtype=dt)
                f = f.reshape(M, outputs)
                return jnp.sum((f[:n_train] - y) ** 2) / (2 * n_train), f

            grad = jax.value_and_grad(loss, has_aux=True)

            def step(carry, t):
                p, outs, losses = carry
                (value, f), g = grad(p)
                hit = record == t  # outputs after t updates
                outs = jnp.where(hit[:, None, None], f[None], outs)
                losses = jnp.where(hit, value, losses)
                p = jax.tree_util.tree_map(lambda w, d: w - lr * d, p, g)
                return (p, outs, losses), None

            init = (params, jnp.zeros((len(steps), M, outputs), dt), jnp.zeros(len(steps), dt))
            (_, outs, losses), _ = jax.lax.scan(step, init, jnp.arange(steps[-1] + 1))
            return outs, losses

        per_program[key] = jax.jit(jax.vmap(one, in_axes=(None, 0, None, None)))
    return per_program[key]


def train_ensemble(net, x_train, y_train, x_test, width: int, networks: int, *, steps, learning_rate,
                   seed: int = 0, parameterization: str = "ntk", chunk_size: int | None = None,
                   dtype="float64", progress=True) -> TrainingResult:
    """Train sampled finite networks by full-batch gradient descent on the squared loss.

    Args:
        net: any network (:func:`netfield.dnn`, :func:`netfield.rnn`, :func:`netfield.gru`, ...).
        x_train: training inputs, as for :func:`netfield.kernel`.
        y_train: targets (N_train, K) (or (N_train,) for K = 1); K outputs use K independent readouts.
        x_test: test inputs (outputs recorded, not trained on), or None.
        width: hidden width n >= 1.
        networks: number of networks; network i uses fold_in(PRNGKey(seed), i) (the hidden matrices of
            :func:`netfield.sample` for the same seed).
        steps: the step counts to record, an int or strictly increasing ints >= 0 (0: initialisation).
        learning_rate: finite number > 0; the update is p <- p - learning_rate dL/dp.
        seed: integer seed.
        parameterization: ``"ntk"`` (train omega, the standard-normal entries) or ``"standard"`` (train
            the weights theta = s * omega); module docstring.
        chunk_size: networks trained together (default: a chunk within ~512 MB); results do not depend on it.
        dtype: ``"float64"`` (default) or ``"float32"``.
        progress: True (a bar on stderr), False / None, or a callable ``progress(k)`` told of k more
            trained networks (the convention of :mod:`netfield._runtime.progress`).

    Returns:
        :class:`TrainingResult` with outputs (len(steps), networks, N, K) and the loss per recorded step.

    Cost: (max(steps) + 1) forward and reverse passes over the training and test patterns per network
    (each ~ the forward cost, O(layers x n^2 x patterns) for a DNN); ``max(steps)``, ``width`` and
    ``networks`` are the levers.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.finite.training import train_ensemble
        >>> x = np.random.default_rng(0).normal(size=(4, 2))
        >>> r = train_ensemble(netfield.dnn(1, "erf"), x[:3], np.ones((3, 1)), x[3:], width=32,
        ...                    networks=2, steps=[0, 50], learning_rate=0.5, progress=False)
        >>> r.train.shape, r.test.shape, bool((r.loss[1] < r.loss[0]).all())
        ((2, 2, 3, 1), (2, 2, 1, 1), True)
    """
    check_network(net)
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    steps = check_steps(steps)
    lr = _learning_rate(learning_rate)
    seed = check_seed(seed)
    check_parameterization(parameterization)
    check_choice("dtype", np.dtype(dtype).name if dtype in ("float32", "float64", np.float32, np.float64) else dtype,
                 ("float32", "float64"))
    check_progress(progress)
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    dt = jnp.dtype(dtype)
    joined, n_split = joined_inputs(net, x_train, x_test)
    program = program_of(net, joined, batch_rows=n_split)  # reuses an equal earlier call's compilation
    n_all = len(readout_rows(program, "last"))
    n_train = n_all if n_split is None else n_split
    y = check_finite_array("y_train", y_train)
    if y.ndim == 1:
        y = y[:, None]
    if y.ndim != 2 or y.shape[0] != n_train or y.shape[1] < 1:
        raise ValueError(f"y_train must have shape (N_train, K) = ({n_train}, K) (or ({n_train},)), got shape "
                         f"{np.shape(y_train)}")
    K = y.shape[1]
    if chunk_size is None:
        chunk_size = min(networks, _chunk_size(program, width, dt.itemsize))
    batched = _compiled(program, width, dt, K, n_train, steps, parameterization)
    outs, losses = [], []
    with progress_bar(progress, networks, "training") as bar:
        for start in range(0, networks, chunk_size):
            count = min(chunk_size, networks - start)
            f, loss = batched(jnp.asarray(seed, jnp.int64), jnp.arange(start, start + chunk_size),
                              jnp.asarray(y, dt), jnp.asarray(lr, dt))
            outs.append(np.asarray(f[:count], np.float64))
            losses.append(np.asarray(loss[:count], np.float64))
            bar(count)
    f = np.moveaxis(np.concatenate(outs), 0, 1)  # (S, networks, M, K)
    return TrainingResult(steps=np.asarray(steps), train=f[:, :, :n_train], test=f[:, :, n_train:],
                          loss=np.concatenate(losses).T, width=width, seed=seed, learning_rate=lr,
                          parameterization=parameterization)


__all__ = ["TrainingResult", "check_steps", "train_ensemble"]
