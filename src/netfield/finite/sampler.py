"""Sampling finite-width networks of any program: the finite-width interpreter (docs/theory.md 1, 7).

``sample`` writes the network's program for the inputs and runs it with sampled Gaussian matrices
of width n: W ~ N(0, var / n), U ~ N(0, var / d), b ~ N(0, var). Per sampled network it records

- empirical kernels of the program's ``"h"`` taps, (1/n) sum_i h_i(t, a) h_i(s, b), for the
  requested (t, s) (pre-activations of a DNN / RNN, hidden states of a GRU / LSTM, ...);
- the empirical readout kernel, with the readout weights integrated out given the hidden layer:
  K^_ab = readout_var (1/n) sum_j phi(h_{T_a, j}(a)) phi(h_{T_b, j}(b)) + readout_bias_var
  (its average over networks is the output covariance; docs/theory.md 4.1 calls it the conditional kernel).
- with ``ntk=True``, the empirical neural tangent kernel on the readout rows (:mod:`netfield.finite.ntk`;
  the readout is then sampled as parameters, docs/ntk.md).

A program recognised as a chain (:func:`netfield.program.shape.recognise_chain`: DNN, RNN) runs a
compiled chain evaluation (this module); any other program the generic interpreter
(:mod:`netfield.finite.netsor`). Both are the same arithmetic on the same program; the chain path
compiles once per (shape, width, inputs' lengths) and reuses it for every hyper-parameter value.
For kernels of a chain (no NTK) where it is cheaper (N < n for a DNN, N T < n for an RNN),
``method="auto"`` samples the pre-activations directly by exact Gaussian conditioning instead of
sampling weight matrices (:mod:`netfield.finite.conditional`; the same distribution, other numbers).

Randomness: network i uses the key fold_in(PRNGKey(seed), i) and matrix k of the program the key
fold_in(that, k) (``method="conditional"``: step t's normals the key fold_in(that, t)), so results do not depend on how networks are chunked (up to the rounding of
batched matrix products, ~1e-16), and networks [first, first + count) of a run can be computed
separately (resumable runs).
"""

from __future__ import annotations

from contextlib import nullcontext
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int
from .._runtime import draws
from .._runtime.blas import one_blas_thread
from .._runtime.limits import check_memory
from .._runtime.seeds import check_seed
from ..meanfield.kernels import READOUTS, check_network
from ..meanfield.result import check_finite_result, readout_rows
from ..program import Network
from ..program.memo import program_of
from ..program.shape import CHAIN_HYPER, recognise_chain
from .conditional import (
    check_method,
    conditional_flops,
    conditional_network_bytes,
    input_gram,
    resolve_method,
    run_conditional,
)
from .ensemble import Ensemble
from .netsor import program_chunk_size, sample_program
from .parameters import check_parameterization

PREACTIVATIONS = ("none", "last", "equal", "all")
MEMORY_BUDGET = 512 * 2**20  # bytes of activations per chunk of networks


def chain_matrices(shared: bool, steps: int, t_in: int) -> tuple:
    """(name, hyper-parameter) of every hidden matrix / vector of a chain whose inputs have ``t_in``
    steps, in the order that derives their random keys: layer by layer W_t, U_t (t <= t_in), b_t - the
    order of first use in the chain's program (``Program.matrices``), so the compiled chain path draws
    the networks of the generic interpreter."""

    def name(base: str, t: int) -> str:
        return base if shared else f"{base}{t}"

    order: dict = {}
    for t in range(1, steps + 1):
        if t > 1:
            order.setdefault(name("W", t), "weight_var")
        if t <= t_in:
            order.setdefault(name("U", t), "input_var")
        order.setdefault(name("b", t), "bias_var")
    return tuple(order.items())


def _sample_parameters(shared: bool, steps: int, t_in: int, key, width: int, dim: int, dtype, hyper):
    """Every matrix / vector that the hidden layers of a chain use, scaled by its prior std;
    ``hyper`` the variances as a tuple in CHAIN_HYPER order (the readout's are integrated out
    analytically in the conditional readout kernel)."""
    hyper = dict(zip(CHAIN_HYPER, hyper))
    matrices = chain_matrices(shared, steps, t_in)
    shapes = {"weight_var": (width, width), "input_var": (width, dim)}
    fan_in = {"weight_var": width, "input_var": dim}
    omegas = draws.folded_normals(key, [shapes.get(which, (width,)) for _, which in matrices], dtype)
    return {name: jnp.sqrt(jnp.asarray(hyper[which], dtype) / fan_in.get(which, 1)) * omega
            for (name, which), omega in zip(matrices, omegas)}


def run_chain(shared: bool, activation, x, params, steps: int):
    """Hidden layers of a chain: {"h1": (n, N), "phi1": ..., ...} (docs/theory.md 1)."""

    def name(base: str, t: int) -> str:
        return base if shared else f"{base}{t}"

    values = {}
    n_pat = x.shape[0]
    for t in range(1, steps + 1):
        total = 0.0
        if t > 1:
            total = total + params[name("W", t)] @ values[f"phi{t - 1}"]
        if t <= x.shape[1]:
            total = total + params[name("U", t)] @ x[:, t - 1].T
        total = total + params[name("b", t)][:, None] * jnp.ones((1, n_pat), x.dtype)
        values[f"h{t}"] = total
        values[f"phi{t}"] = activation.fn(total)
    return values


def _readout_kernel(hyper, values, rows_a, rows_t, width: int):
    """Conditional readout kernel of a chain: row r is pattern ``rows_a[r]`` read out at step
    ``rows_t[r]`` (module docstring); ``values`` a pattern per row, (N, n)."""
    steps = int(rows_t.max())
    stacked = jnp.stack([values[f"phi{t}"] for t in range(1, steps + 1)])
    feats = stacked[rows_t - 1, rows_a, :]  # (rows, n)
    total = 0.0 + hyper[3] * (feats @ feats.T) / width
    return total + hyper[4]


def tap_steps(program) -> int:
    """The steps whose ``"h"`` taps ``sample`` records: the program's ``"h"`` taps; a chain program's
    sequences run to their longest readout step only."""
    taps = program.taps.get("h", {})
    steps = max(taps) if taps else 0
    chain, _ = recognise_chain(program)
    return min(steps, int(chain.last.max())) if chain is not None else steps


def _chain_taps(program, chain) -> bool:
    """True if the program's ``"h"`` taps are the chain's pre-activations (what the chain sampler
    records), as the dnn / rnn builders write them."""
    taps = program.taps.get("h", {})
    return all(1 <= t <= chain.steps and name == chain.hidden[t - 1] for t, name in taps.items())


def sampling_method(program, width: int, method: str = "auto", *, ntk: bool = False) -> str:
    """The sampler :func:`sample` runs for ``method`` on ``program`` at ``width``: ``"conditional"`` or
    ``"weights"`` (:func:`netfield.finite.conditional.resolve_method`; ValueError where
    ``method="conditional"`` cannot apply)."""
    chain, _ = recognise_chain(program)
    fits = chain is not None and _chain_taps(program, chain)
    return resolve_method(method, chain=fits, ntk=ntk, shared=fits and chain.shared, width=width,
                          patterns=chain.x.shape[0] if fits else 0, steps=tap_steps(program))


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
    try:
        items = list(mode)
    except TypeError:
        raise TypeError(f"preactivations must be one of {', '.join(map(repr, PREACTIVATIONS))} or a list of (t, s) "
                        f"step pairs, got {mode!r}") from None
    for item in items:
        if isinstance(item, str) or not hasattr(item, "__len__") or len(item) != 2:
            raise ValueError(f"preactivations pairs must be (t, s) pairs of steps in 1..{steps}, got {item!r}")
        t, s = item
        for v in (t, s):
            if not (isinstance(v, (int, np.integer)) and 1 <= v <= steps):
                raise ValueError(f"preactivations pairs must hold steps in 1..{steps}, got {item!r}")
        pairs.append((int(min(t, s)), int(max(t, s))))
    return tuple(dict.fromkeys(pairs))


def sample(net: Network, x, width: int, networks: int = 1, seed: int = 0, *, readout: str = "last",
           preactivations="equal", chunk_size: int | None = None, dtype="float64",
           first_network: int = 0, ntk: bool = False, parameterization: str = "ntk", client=None,
           workers: int | None = None, method: str = "auto") -> Ensemble:
    """Sample finite-width networks of any architecture and record their empirical kernels.

    Args:
        net: any network (:func:`netfield.dnn`, :func:`netfield.rnn`, :func:`netfield.gru`, ...).
        x: inputs as for :func:`netfield.kernel`.
        width: hidden width n >= 1.
        networks: number of sampled networks.
        seed: integer seed; network i of the run uses fold_in(PRNGKey(seed), i).
        readout: ``"last"`` or ``"all"`` (every step of every sequence, as in :func:`netfield.kernel`).
        preactivations: which kernels of the ``"h"`` taps (pre-activations / hidden states per layer
            or step) to keep: ``"none"``, ``"last"`` (T, T), ``"equal"`` (all (t, t), default),
            ``"all"`` (all t <= s) or a list of (t, s) pairs.
        chunk_size: networks evaluated together (default: as many as fit in ~512 MB of activations);
            results do not depend on it.
        dtype: ``"float64"`` (default) or ``"float32"`` for the sampled networks.
        first_network: index of the first network (to continue an interrupted run).
        ntk: also record each network's empirical neural tangent kernel on the readout rows,
            ``Ensemble.ntk`` (networks, M, M) (:func:`netfield.finite.ntk.empirical_ntk`, docs/ntk.md);
            the readout V and b_o are then sampled as parameters, after the hidden matrices, which are
            the same as without it.
        parameterization: of the NTK: ``"ntk"`` (default; gradients w.r.t. the standard-normal
            entries) or ``"standard"`` (w.r.t. the weights themselves).
        client, workers: evaluate the chunks of networks as tasks on Dask (a ``distributed.Client`` or
            a scheduler address, or a local cluster of ``workers`` processes; docs/distributed.md). The
            same bits as in one process: network i is keyed by i, and the chunks (the networks
            evaluated together) are the same.
        method: how networks are sampled: ``"weights"`` (draw every weight matrix and run the network),
            ``"conditional"`` (DNN / RNN kernels only: draw each step's pre-activations from their exact
            Gaussian law given the earlier steps, :mod:`netfield.finite.conditional`), or ``"auto"``
            (default: conditional for a chain without ``ntk`` where it is cheaper, N < n for a DNN and
            N T < n for an RNN; else weights). Recorded as ``Ensemble.method``; the two draw different
            numbers from the same distribution.

    Returns:
        :class:`Ensemble` with arrays of shape (networks, ...).

    Cost: with weights O(networks x steps x n^2 N) for the hidden layers (a DNN / RNN at n = 1024,
    N = 256, 10 layers: ~0.25 s per network on 2 cores); ``width`` and ``networks`` are the levers.
    By conditioning O(networks x steps x (n N^2 + N^3)) for a DNN, O(networks x (n N^2 T^2 + N^3 T^3))
    for an RNN of T steps: the number of inputs N (and steps) is the lever (measured, 10-layer erf DNN,
    n = 1024, N = 256, 2 busy cores: 0.20 s per network by conditioning, 0.34 s with weights). With
    ``ntk=True`` the generic program path runs (no chain fast path) and adds M reverse passes per network
    (M readout rows: ~M times the forward cost) plus the kernel contraction (module docstring of
    :mod:`netfield.finite.ntk`); the number of rows M is the lever.

    Example:
        >>> import numpy as np, netfield
        >>> ens = netfield.sample(netfield.rnn(3, "erf"), np.eye(2), width=64, networks=4, seed=1)
        >>> ens.readout.shape, ens.preactivation(2).shape
        ((4, 2, 2), (4, 2, 2))
    """
    check_network(net)
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    check_choice("readout", readout, READOUTS)
    check_choice("dtype", str(np.dtype(dtype)) if dtype in ("float32", "float64", np.float32, np.float64) else dtype,
                 ("float32", "float64"))
    seed = check_seed(seed)  # the same range as the CLI's --seed: [0, 2**63)
    first_network = check_positive_int("first_network", first_network, minimum=0)
    if first_network + networks > 2**63:
        raise ValueError(f"first_network + networks must be at most 2**63 (networks are keyed by int64 indices), got "
                         f"first_network={first_network!r} and networks={networks!r}")
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    if not isinstance(ntk, (bool, np.bool_)):
        raise TypeError(f"ntk must be True or False, got {ntk!r}")
    check_parameterization(parameterization)
    check_method(method)
    dtype = np.dtype(dtype)
    program = program_of(net, x)  # an equal earlier call's program: its compiled sampler is reused
    chain, _ = recognise_chain(program)
    steps = tap_steps(program)
    pairs = _preactivation_pairs(preactivations, steps)
    outputs, patterns = len(readout_rows(program, readout)), max(program.spaces.values())
    check_memory("networks", networks, 8 * networks * ((2 if ntk else 1) * outputs ** 2 + len(pairs) * patterns ** 2),
                 f"the empirical kernels of {networks} networks (float64 arrays of shape (networks, M, M))")
    generic = bool(ntk) or chain is None or not _chain_taps(program, chain)
    method = sampling_method(program, width, method, ntk=bool(ntk))
    if client is not None or workers is not None:
        if generic:
            batch, _ = program_chunk_size(program, width, networks, dtype, readout, parameterization if ntk else None,
                                          chunk_size)
        else:
            batch = chunk_size or min(networks, _chain_chunk_size(method, chain.shared, width, chain.x.shape[0], steps,
                                                                  dtype))
        options = {"readout": readout, "preactivations": pairs, "chunk_size": batch, "dtype": str(dtype), "ntk": ntk,
                   "parameterization": parameterization, "method": method}
        return _finite(_sample_tasks(net, x, width, networks, seed, first_network, batch, options, client, workers),
                       net, dtype)
    if generic:
        return _finite(sample_program(program, width, networks, int(seed), chunk_size=chunk_size, dtype=dtype,
                              first_network=first_network, readout=readout, pairs=pairs,
                              ntk=parameterization if ntk else None), net, dtype)
    rows = readout_rows(program, readout)
    rows_a = np.array([a for _, a in rows])
    step_of = {name: t for t, name in chain.readouts.items()}
    rows_t = np.array([step_of[r] for r, _ in rows])
    x_in = jnp.asarray(chain.x, dtype)
    per_network = _chain_network_bytes(method, chain.shared, width, x_in.shape[0], steps, dtype)
    check_memory("width", width, per_network, "one sampled network (its weight matrices and activations)"
                 if method == "weights" else "one network sampled by conditioning (its activations)")
    if chunk_size is None:
        chunk_size = _in_process_chunk_size(method, chain.shared, width, x_in.shape[0], steps, dtype, networks,
                                            8 * (len(rows) ** 2 + len(pairs) * x_in.shape[0] ** 2))
    else:
        check_memory("chunk_size", chunk_size, chunk_size * per_network,
                     f"a chunk of {chunk_size} networks of width {width} sampled together")
    batched = _compiled_chunk(chain.shared, chain.steps, chain.activation, width, x_in.shape[1], x_in.shape[2], steps,
                              tuple(rows_a), tuple(rows_t), pairs, str(dtype), method)
    hyper = tuple(chain.hyper(k) for k in CHAIN_HYPER)
    chunks = []
    # the conditional sampler's Cholesky factors / triangular solves are LAPACK calls inside the
    # compiled network: always one BLAS thread (netfield._runtime.blas), else OpenBLAS's spinning
    # threads fight XLA's
    with one_blas_thread() if method == "conditional" else nullcontext():
        for start in range(first_network, first_network + networks, chunk_size):
            count = min(chunk_size, first_network + networks - start)
            idx = jnp.arange(start, start + chunk_size)  # fixed chunk shape: one compilation
            readout_k, pre = jax.device_get(batched(hyper, x_in, idx, jnp.asarray(seed, jnp.int64)))
            chunks.append((np.asarray(readout_k[:count], np.float64),
                           [np.asarray(p[:count], np.float64) for p in pre]))
    readout_arr = np.concatenate([c[0] for c in chunks])
    pre = {p: np.concatenate([c[1][i] for c in chunks]) for i, p in enumerate(pairs)}
    return _finite(Ensemble(readout=readout_arr, preactivations=pre, width=width, seed=int(seed),
                            readout_mode=readout, first_network=first_network, steps=steps, method=method), net,
                   dtype)


def _finite(ens: Ensemble, net, dtype) -> Ensemble:
    """The ensemble if its kernels are finite, else the error of :func:`check_finite_result`; float32
    overflows first, so its error says to sample in float64."""
    try:
        for k in (ens.readout, ens.ntk, *ens.preactivations.values()):
            if k is not None:
                check_finite_result(k, net, "sampled kernel")
    except ValueError as err:
        if np.dtype(dtype) == np.float32:
            raise ValueError(f"dtype='float32' overflows: {err}; sample with dtype='float64'") from None
        raise
    return ens


def _sample_tasks(net, x, width, networks, seed, first_network, batch, options, client, workers) -> Ensemble:
    """:func:`sample` with each chunk of ``batch`` networks a task (where ``client`` / ``workers`` say)."""
    from ..distributed import executor

    tasks = [(net, x, width, min(batch, first_network + networks - start), seed, start, options)
             for start in range(first_network, first_network + networks, batch)]
    with executor(client, workers) as ex:
        parts = ex.run(_sample_chunk, tasks, label="sample")
    head = parts[0]
    return Ensemble(readout=np.concatenate([p.readout for p in parts]),
                    preactivations={k: np.concatenate([p.preactivations[k] for p in parts]) for k in head.preactivations},
                    width=head.width, seed=head.seed, readout_mode=head.readout_mode, first_network=first_network,
                    steps=head.steps, ntk=None if head.ntk is None else np.concatenate([p.ntk for p in parts]),
                    parameterization=head.parameterization, method=head.method)


def _sample_chunk(net, x, width, networks, seed, first_network, options) -> Ensemble:
    """One chunk of :func:`sample` (a task on a worker)."""
    return sample(net, x, width, networks, seed, first_network=first_network, **options)


@lru_cache(maxsize=128)
def _compiled_chunk(shared: bool, chain_steps: int, activation, width: int, t_in: int, dim: int, steps: int,
                    rows_a: tuple, rows_t: tuple, pairs: tuple, dtype: str, method: str = "weights"):
    """One jitted, vmapped evaluation per chain shape; hyper-parameters, inputs and the seed are
    runtime arguments, so repeated calls (studies, resumed runs) compile once. ``method``:
    ``"weights"`` (sampled matrices, :func:`run_chain`) or ``"conditional"``
    (:func:`netfield.finite.conditional.run_conditional`)."""
    rows_a, rows_t = np.asarray(rows_a), np.asarray(rows_t)

    def one(hyper, x, gram, index, seed):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        if method == "conditional":  # a pattern per row: (N, n)
            values = run_conditional(shared, activation, gram, hyper, key, width, x.shape[0], t_in, steps, dtype)
        else:  # a unit per row: (n, N)
            params = _sample_parameters(shared, chain_steps, t_in, key, width, dim, dtype, hyper)
            values = run_chain(shared, activation, x, params, steps)
            values = {name: value.T for name, value in values.items()}
        readout_k = _readout_kernel(hyper, values, rows_a, rows_t, width)
        pre = [values[f"h{t}"] @ values[f"h{s}"].T / width for t, s in pairs]
        return readout_k, pre

    sequential = _runs_sequentially(method, shared, width, int(rows_a.max()) + 1, steps)

    def chunk(hyper, x, indices, seed):
        gram = input_gram(hyper, x) if method == "conditional" else None  # once per chunk
        if sequential:
            # large networks: one after the other inside the compiled call, so every product is a plain
            # (n, n) x (n, N) matrix multiply at the machine's full rate (a batched product over a
            # vmapped chunk ran at ~65 % of it, measured at n = 1024, N = 256)
            return jax.lax.map(lambda i: one(hyper, x, gram, i, seed), indices)
        return jax.vmap(one, in_axes=(None, None, None, 0, None))(hyper, x, gram, indices, seed)

    return jax.jit(chunk)


SEQUENTIAL_FLOPS = 2e8


def _sequential(width: int, patterns: int, steps: int) -> bool:
    """Networks of a chunk run one at a time (lax.map) when the hidden products of one network
    take at least SEQUENTIAL_FLOPS (2 n^2 N T), where per-operation overhead no longer matters;
    smaller networks are vmapped (batched products amortise the overhead of many small ones)."""
    return 2.0 * width * width * patterns * steps >= SEQUENTIAL_FLOPS


def chain_network_bytes(width: int, patterns: int, steps: int, dtype=np.float64) -> int:
    """Estimated memory of one sampled chain network: activations of every step and two n x n matrices."""
    itemsize = np.dtype(dtype).itemsize
    return (steps * 2 + 2) * width * patterns * itemsize + 2 * width * width * itemsize


def default_chunk_size(width: int, patterns: int, steps: int, dtype=np.float64) -> int:
    """Networks per chunk so that activations and matrices of a chunk stay within MEMORY_BUDGET."""
    return max(1, MEMORY_BUDGET // chain_network_bytes(width, patterns, steps, dtype))


def _chain_network_bytes(method: str, shared: bool, width: int, patterns: int, steps: int, dtype) -> int:
    if method == "conditional":
        return conditional_network_bytes(shared, width, patterns, steps, dtype)
    return chain_network_bytes(width, patterns, steps, dtype)


def _runs_sequentially(method: str, shared: bool, width: int, patterns: int, steps: int) -> bool:
    """Whether :func:`_compiled_chunk` evaluates the networks of a chunk one after the other (lax.map)."""
    if method == "conditional":
        return conditional_flops(shared, width, patterns, steps) >= SEQUENTIAL_FLOPS
    return _sequential(width, patterns, steps)


SEQUENTIAL_CHUNK = 32  # at most this many networks per chunk where they run one after the other


def _in_process_chunk_size(method: str, shared: bool, width: int, patterns: int, steps: int, dtype, networks: int,
                           output_bytes: int) -> int:
    """Default networks per chunk of the chain path in one process, balanced (chunks of nearly equal size, the
    last one padded least). Networks that run one after the other (:func:`_runs_sequentially`) hold one
    network's activations at a time and the chunk's kernels (``output_bytes`` per network): up to
    SEQUENTIAL_CHUNK of them within MEMORY_BUDGET; vmapped networks hold all their activations
    (:func:`_chain_chunk_size`). Measured at n = 1024, N = 256, ten layers, conditioning: 100 networks in
    4 chunks of 25 instead of 15 chunks of 7 (105 networks evaluated, 5 % of them padding)."""
    most = _chain_chunk_size(method, shared, width, patterns, steps, dtype)
    if _runs_sequentially(method, shared, width, patterns, steps):
        working = _chain_network_bytes(method, shared, width, patterns, steps, dtype)
        most = max(most, min(SEQUENTIAL_CHUNK, (MEMORY_BUDGET - working) // max(1, output_bytes)))
    most = max(1, min(networks, most))
    count = -(-networks // most)
    return -(-networks // count)


def _chain_chunk_size(method: str, shared: bool, width: int, patterns: int, steps: int, dtype) -> int:
    """Default networks per chunk of the chain path for ``method`` (within MEMORY_BUDGET)."""
    return max(1, MEMORY_BUDGET // _chain_network_bytes(method, shared, width, patterns, steps, dtype))

