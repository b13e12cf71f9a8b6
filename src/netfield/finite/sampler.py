"""Finite-width interpreter: run a network's program with sampled Gaussian matrices of width n.

The same :class:`~netfield.program.Program` as the mean-field interpreter, evaluated literally:
W ~ N(0, weight_var / n), U ~ N(0, input_var / d), b ~ N(0, bias_var) (docs/theory.md section 1).

Per sampled network it records

- empirical pre-activation kernels  (1/n) sum_i h_i(t, a) h_i(s, b)  for the requested (t, s);
- the empirical readout kernel, with the readout weights integrated out given the hidden layer:
  K^_ab = readout_var (1/n) sum_j phi(h_{T_a, j}(a)) phi(h_{T_b, j}(b)) + readout_bias_var
  (its average over networks is the output covariance; docs/theory.md 4.1 calls it the conditional kernel).

Randomness: network i uses the key fold_in(PRNGKey(seed), i) and matrix k of the program the key
fold_in(that, k), so results do not depend on how networks are chunked (up to the rounding of
batched matrix products, ~1e-16), and networks
[first, first + count) of a run can be computed separately (resumable runs).
"""

from __future__ import annotations

from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int
from ..meanfield.kernels import READOUTS, _check_net
from ..program import Network, Patterns, parse_inputs
from ..program.architectures import Architecture
from ..program.ir import Bias, InputProj, MatMul, Nonlin
from .ensemble import Ensemble
from .netsor import sample_program

PREACTIVATIONS = ("none", "last", "equal", "all")
MEMORY_BUDGET = 512 * 2**20  # bytes of activations per chunk of networks


def _sample_parameters(net: Network, key, width: int, dim: int, dtype):
    """Every matrix / vector of the program that the hidden layers use, scaled by its prior std."""
    prog = net.program
    params = {}
    for k, name in enumerate(prog.matrices):
        hyper = prog.hyper_of(name)
        if hyper in ("readout_var", "readout_bias_var"):
            continue  # integrated out analytically in the conditional readout kernel
        sub = jax.random.fold_in(key, k)
        var = jnp.asarray(net.hyper(hyper), dtype)
        if hyper == "weight_var":
            params[name] = jnp.sqrt(var / width) * jax.random.normal(sub, (width, width), dtype)
        elif hyper == "input_var":
            params[name] = jnp.sqrt(var / dim) * jax.random.normal(sub, (width, dim), dtype)
        else:
            params[name] = jnp.sqrt(var) * jax.random.normal(sub, (width,), dtype)
    return params


def _run_network(net: Network, x, params, steps: int):
    """Evaluate the program's hidden G- and H-variables; returns {name: (n, N) array}."""
    prog = net.program
    values = {}
    n_pat = x.shape[0]
    for ins in prog.instructions:
        if isinstance(ins, Nonlin):
            if ins.arg in values:
                values[ins.name] = ins.activation.fn(values[ins.arg])
            continue
        if ins.name in prog.readouts:
            continue
        step = prog.hidden.index(ins.name) + 1
        if step > steps:
            continue
        total = 0.0
        for atom in ins.atoms:
            if isinstance(atom, MatMul):
                total = total + params[atom.matrix] @ values[atom.arg]
            elif isinstance(atom, InputProj):
                if atom.step <= x.shape[1]:
                    total = total + params[atom.matrix] @ x[:, atom.step - 1].T
            elif isinstance(atom, Bias):
                total = total + params[atom.vector][:, None] * jnp.ones((1, n_pat), x.dtype)
        values[ins.name] = total
    return values


def _readout_rows(patterns, readout: str):
    """(pattern index, step) of every readout row, in the mean-field ordering."""
    if readout == "last":
        return np.arange(patterns.count), patterns.lengths.astype(int)
    a = np.repeat(np.arange(patterns.count), patterns.lengths)
    t = np.concatenate([np.arange(1, L + 1) for L in patterns.lengths])
    return a, t


def _readout_kernel(net: Network, values, rows_a, rows_t, width: int):
    """Conditional readout kernel: the readout's own matrix integrated out (module docstring).

    Every readout f_t has the same atoms (``MatMul(V, phi_t)``, ``Bias(b_o)``); row r of the kernel is
    pattern ``rows_a[r]`` read out at step ``rows_t[r]``.
    """
    prog = net.program
    steps = int(rows_t.max())
    total = 0.0
    for k, atom in enumerate(prog[prog.readouts[0]].atoms):
        if isinstance(atom, Bias):
            total = total + net.hyper(prog.hyper_of(atom.vector))
        elif isinstance(atom, MatMul):
            stacked = jnp.stack([values[prog[prog.readouts[t]].atoms[k].arg] for t in range(steps)])
            feats = stacked[rows_t - 1, :, rows_a]  # (rows, n)
            total = total + net.hyper(prog.hyper_of(atom.matrix)) * (feats @ feats.T) / width
        else:
            raise TypeError(f"readout atom {atom!r} is not supported by the finite-width interpreter")
    return total


def _preactivation_pairs(mode, steps: int):
    if isinstance(mode, str):
        check_choice("preactivations", mode, PREACTIVATIONS)
        if mode == "none":
            return ()
        if mode == "last":
            return ((steps, steps),)
        if mode == "equal":
            return tuple((t, t) for t in range(1, steps + 1))
        return tuple((t, s) for t in range(1, steps + 1) for s in range(t, steps + 1))
    pairs = []
    for item in mode:
        t, s = item
        for v in (t, s):
            if not (isinstance(v, (int, np.integer)) and 1 <= v <= steps):
                raise ValueError(f"preactivations pairs must hold steps in 1..{steps}, got {item!r}")
        pairs.append((int(min(t, s)), int(max(t, s))))
    return tuple(dict.fromkeys(pairs))


def sample(net: Network, x, width: int, networks: int = 1, seed: int = 0, *, readout: str = "last",
           preactivations="equal", chunk_size: int | None = None, dtype="float64",
           first_network: int = 0) -> Ensemble:
    """Sample finite-width networks and record their empirical kernels.

    Args:
        net: network from :func:`netfield.dnn` / :func:`netfield.rnn`.
        x: inputs as for :func:`netfield.kernel`.
        width: hidden width n >= 1.
        networks: number of sampled networks.
        seed: integer seed; network i of the run uses fold_in(PRNGKey(seed), i).
        readout: ``"last"`` or ``"all"`` (every step of every sequence, as in :func:`netfield.kernel`).
        preactivations: which pre-activation kernels to keep: ``"none"``, ``"last"`` (T, T),
            ``"equal"`` (all (t, t), default), ``"all"`` (all t <= s) or a list of (t, s) pairs.
        chunk_size: networks evaluated together (default: as many as fit in ~512 MB of activations);
            results do not depend on it.
        dtype: ``"float64"`` (default) or ``"float32"`` for the sampled networks.
        first_network: index of the first network (to continue an interrupted run).

    Returns:
        :class:`Ensemble` with arrays of shape (networks, ...).

    Example:
        >>> import numpy as np, netfield
        >>> ens = netfield.sample(netfield.rnn(3, "erf"), np.eye(2), width=64, networks=4, seed=1)
        >>> ens.readout.shape, ens.preactivation(2).shape
        ((4, 2, 2), (4, 2, 2))

    For an :class:`~netfield.program.architectures.Architecture` (GRU, LSTM, transformer, conv, batch
    norm, user programs) the same program the mean-field interpreter reads is run with sampled
    matrices (:mod:`netfield.finite.netsor`); only the readout kernel is recorded.
    """
    if isinstance(net, Architecture):
        if readout != "last" or preactivations != "equal":
            raise ValueError("for architectures, sample records the readout kernel only (readout='last')")
        if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
            raise TypeError(f"seed must be an integer, got {seed!r}")
        return sample_program(net.program(x), width, networks, int(seed), chunk_size=chunk_size, dtype=dtype,
                              first_network=first_network)
    _check_net(net)
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    check_choice("readout", readout, READOUTS)
    check_choice("dtype", str(np.dtype(dtype)) if dtype in ("float32", "float64", np.float32, np.float64) else dtype,
                 ("float32", "float64"))
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    first_network = check_positive_int("first_network", first_network, minimum=0)
    dtype = np.dtype(dtype)
    patterns = parse_inputs(x, net.steps, "x")
    steps = int(patterns.lengths.max())
    pairs = _preactivation_pairs(preactivations, steps)
    x_in = jnp.asarray(patterns.x if patterns.sequential else patterns.x[:, :1], dtype)

    if chunk_size is None:
        chunk_size = min(networks, default_chunk_size(width, patterns.count, steps, dtype))
    chunk_size = check_positive_int("chunk_size", chunk_size)
    batched = _compiled_chunk(net.architecture, net.depth, net.activation, width, patterns.dim,
                              tuple(int(v) for v in patterns.lengths), readout, pairs, str(dtype))
    chunks = []
    for start in range(first_network, first_network + networks, chunk_size):
        count = min(chunk_size, first_network + networks - start)
        idx = jnp.arange(start, start + chunk_size)  # fixed chunk shape: one compilation
        readout_k, pre = jax.device_get(batched(net, x_in, idx, jnp.asarray(seed, jnp.int64)))
        chunks.append((np.asarray(readout_k[:count], np.float64), [np.asarray(p[:count], np.float64) for p in pre]))
    readout_arr = np.concatenate([c[0] for c in chunks])
    pre = {p: np.concatenate([c[1][i] for c in chunks]) for i, p in enumerate(pairs)}
    return Ensemble(readout=readout_arr, preactivations=pre, width=width, seed=int(seed),
                    readout_mode=readout, first_network=first_network, steps=steps)


@lru_cache(maxsize=128)
def _compiled_chunk(architecture: str, depth: int, activation, width: int, dim: int, lengths: tuple,
                    readout: str, pairs: tuple, dtype: str):
    """One jitted, vmapped evaluation per network structure; hyper-parameters, inputs and the seed
    are runtime arguments, so repeated calls (studies, resumed runs) compile once."""
    prog = Network(architecture, depth, activation).program
    lengths_arr = np.asarray(lengths)
    steps = int(lengths_arr.max())
    rows_a, rows_t = _readout_rows(Patterns(np.zeros((len(lengths), 1, dim)), lengths_arr, True), readout)

    def one(net, x, index, seed):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        params = _sample_parameters(net, key, width, dim, dtype)
        values = _run_network(net, x, params, steps)
        readout_k = _readout_kernel(net, values, rows_a, rows_t, width)
        pre = [values[prog.hidden[t - 1]].T @ values[prog.hidden[s - 1]] / width for t, s in pairs]
        return readout_k, pre

    if _sequential(width, len(lengths), steps):
        # large networks: one after the other inside the compiled call, so every product is a plain
        # (n, n) x (n, N) matrix multiply at the machine's full rate (a batched product over a
        # vmapped chunk ran at ~65 % of it, measured at n = 1024, N = 256)
        def chunk(net, x, indices, seed):
            return jax.lax.map(lambda i: one(net, x, i, seed), indices)

        return jax.jit(chunk)
    return jax.jit(jax.vmap(one, in_axes=(None, None, 0, None)))


SEQUENTIAL_FLOPS = 2e8


def _sequential(width: int, patterns: int, steps: int) -> bool:
    """Networks of a chunk run one at a time (lax.map) when the hidden products of one network
    take at least SEQUENTIAL_FLOPS (2 n^2 N T), where per-operation overhead no longer matters;
    smaller networks are vmapped (batched products amortise the overhead of many small ones)."""
    return 2.0 * width * width * patterns * steps >= SEQUENTIAL_FLOPS


def default_chunk_size(width: int, patterns: int, steps: int, dtype=np.float64) -> int:
    """Networks per chunk so that activations and matrices of a chunk stay within MEMORY_BUDGET."""
    itemsize = np.dtype(dtype).itemsize
    per_network = (steps * 2 + 2) * width * patterns * itemsize + 2 * width * width * itemsize
    return max(1, MEMORY_BUDGET // per_network)

