"""Finite-width interpreter of NETSOR+ programs: the same program, run with sampled matrices.

Matrices W ~ N(0, var / n) (n x n), input matrices U ~ N(0, var / d), biases b ~ N(0, var); every
instruction is evaluated literally on width-n vectors (values of shape (n, M), M rows): layer norm
uses the empirical mean and variance over the n coordinates, attention the empirical logits
q_i . k_j / n, batch norm the empirical statistics over the rows. Per sampled network it records
the conditional readout kernel (the readout matrix integrated out given the last hidden layer):

    K^_ab = var_V (1/n) sum_i h_i(a) h_i(b) + var_bo      (flatten: averaged over the P positions)

whose mean over networks is the output covariance. Network i uses the key fold_in(PRNGKey(seed), i)
and matrix k of the program (first-use order) the key fold_in(that, k): results do not depend on
chunking.
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int
from .._runtime.limits import check_memory
from ..program.netsor import (
    Attention,
    Bias,
    Input,
    LayerNorm,
    LinComb,
    MatMul,
    Moment,
    Nonlin,
    Program,
    RowMap,
)
from .ensemble import Ensemble
from .parameters import check_parameterization, hidden_matrices

MEMORY_BUDGET = 768 * 2**20


def _sample_matrices(program: Program, key, width: int, dtype):
    """{name: s * omega} of the hidden layers (:func:`netfield.finite.parameters.hidden_matrices`)."""
    return hidden_matrices(program, key, width, dtype)


def run_program(program: Program, params: dict, width: int, dtype=jnp.float64, perturb=None):
    """Evaluate every variable of the program for one sampled network: {name: (n, M) or (M,)}.

    ``perturb``: {variable name: array added to its value} before later instructions read it (tangent
    propagation with ``jax.jvp``: Lyapunov exponents of any program)."""
    values: dict = {}
    perturb = perturb or {}
    for ins in program.instructions:
        if isinstance(ins, Input):
            v = params[ins.matrix] @ jnp.asarray(program.feeds[ins.feed], dtype).T
        elif isinstance(ins, Bias):
            v = params[ins.vector][:, None] * jnp.ones((1, program.spaces[ins.space]), dtype)
        elif isinstance(ins, MatMul):
            w = params[ins.matrix]
            v = (w.T if ins.transpose else w) @ values[ins.arg]
        elif isinstance(ins, LinComb):
            v = sum(c * values[a] for c, a in ins.terms)
        elif isinstance(ins, RowMap):
            v = values[ins.arg] @ jnp.asarray(ins.rows, dtype).T
        elif isinstance(ins, LayerNorm):
            g = values[ins.arg]
            v = (g - g.mean(axis=0)) / jnp.sqrt(g.var(axis=0) + ins.eps)
        elif isinstance(ins, Attention):
            q, k = values[ins.query], values[ins.key]
            logits = ins.scale * (q.T @ k) / width
            z = jnp.where(ins.mask, logits, -jnp.inf)
            e = jnp.where(ins.mask, jnp.exp(z - z.max(axis=1, keepdims=True)), 0.0)
            v = values[ins.value] @ (e / e.sum(axis=1, keepdims=True)).T
        elif isinstance(ins, Nonlin):
            v = ins.fn(*[values[a] for a in ins.args], *[values[p][None, :] for p in ins.params])
        elif isinstance(ins, Moment):
            v = jnp.mean(ins.fn(*[values[a] for a in ins.args]), axis=0)
        elif ins.name in program.kinds and program.kinds[ins.name] == "out":
            continue
        else:
            raise TypeError(f"unknown instruction {ins!r}")
        values[ins.name] = v + perturb[ins.name] if ins.name in perturb else v
    return values


def readout_cov(program: Program, values: dict, r1: str, r2: str, width: int):
    """Conditional covariance of two readouts of one network given its hidden layers: var_V (1/n)
    h1^T h2 (averaged over flattened positions) if they share V, plus var_bo if they share b_o."""
    a, b = program[r1], program[r2]
    h1, h2 = values[a.arg], values[b.arg]
    m1 = a.flatten.shape[0] if a.flatten is not None else h1.shape[1]
    m2 = b.flatten.shape[0] if b.flatten is not None else h2.shape[1]
    total = jnp.zeros((m1, m2), h1.dtype)
    if a.matrix == b.matrix:
        if a.flatten is None:
            gram = h1.T @ h2
        else:
            P = a.flatten.shape[1]
            gram = sum(h1[:, a.flatten[:, p]].T @ h2[:, b.flatten[:, p]] for p in range(P)) / P
        total = total + a.var * gram / width
    if a.vector == b.vector:
        total = total + a.bias_var
    return total


def readout_kernel(program: Program, values: dict, width: int, rows=None):
    """Conditional readout kernel of one network (module docstring); ``rows`` (default: each
    pattern's own output) as :func:`netfield.meanfield.result.readout_rows`."""
    if rows is None:
        out = program.readout.name
        return readout_cov(program, values, out, out, width)
    names = list(dict.fromkeys(r for r, _ in rows))
    blocks = {(r1, r2): readout_cov(program, values, r1, r2, width) for r1 in names for r2 in names}
    a = np.array([row for _, row in rows])
    out = jnp.zeros((len(rows), len(rows)), values[program.readout.arg].dtype)
    for r1 in names:
        i = np.array([k for k, (r, _) in enumerate(rows) if r == r1])
        for r2 in names:
            j = np.array([k for k, (r, _) in enumerate(rows) if r == r2])
            out = out.at[i[:, None], j[None, :]].set(blocks[(r1, r2)][a[i][:, None], a[j][None, :]])
    return out


def network_bytes(program: Program, width: int, itemsize: int) -> int:
    """Estimated memory of one sampled network of ``program``: its n x n matrices and every variable's
    (n, rows) values."""
    n_mat = sum(1 for i in program.instructions if isinstance(i, MatMul))
    rows = sum(program.spaces.values())
    return (len({i.matrix for i in program.instructions if isinstance(i, MatMul)}) * width * width
            + len(program.instructions) * width * rows + n_mat) * itemsize


def _chunk_size(program: Program, width: int, itemsize: int) -> int:
    return max(1, MEMORY_BUDGET // max(network_bytes(program, width, itemsize), 1))


def sample_program(program: Program, width: int, networks: int = 1, seed: int = 0, *,
                   chunk_size: int | None = None, dtype="float64", first_network: int = 0,
                   readout: str = "last", pairs=(), ntk: str | None = None) -> Ensemble:
    """Sample finite-width networks of a program; returns an :class:`Ensemble` of readout kernels
    (``readout`` "last" or "all", rows as :func:`netfield.meanfield.result.readout_rows`) and of the
    ``"h"`` tap kernels (1/n) h_t^T h_s for the (t, s) in ``pairs``; ``ntk`` a parameterization
    (``"ntk"``, ``"standard"``) also records each network's empirical NTK on the readout rows
    (:mod:`netfield.finite.ntk`, strategy "auto"), None (default) does not.

    The compiled evaluation is kept with the program object (one compilation per width, dtype, chunk
    size and recorded kernels, for every seed and first network): calling this repeatedly on one
    program - chunks of a resumable study - compiles once."""
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    first_network = check_positive_int("first_network", first_network, minimum=0)
    if str(dtype) not in ("float32", "float64") and dtype not in (np.float32, np.float64):
        raise ValueError(f"dtype must be one of 'float32', 'float64', got {dtype!r}")
    dt = jnp.dtype(dtype)
    if ntk is not None:
        check_parameterization(ntk)
    chunk_size, groups = program_chunk_size(program, width, networks, dt, readout, ntk, chunk_size)
    batched = _compiled(program, width, dt, readout, tuple(pairs), ntk, groups)
    parts, pres, ntks = [], [], []
    for start in range(first_network, first_network + networks, chunk_size):
        count = min(chunk_size, first_network + networks - start)
        out, pre, theta = batched(jnp.asarray(seed, jnp.int64), jnp.arange(start, start + chunk_size))
        parts.append(np.asarray(out[:count], np.float64))
        pres.append([np.asarray(p[:count], np.float64) for p in pre])
        ntks.append(None if theta is None else np.asarray(theta[:count], np.float64))
    taps = program.taps.get("h", {})
    pre = {p: np.concatenate([c[i] for c in pres]) for i, p in enumerate(pairs)}
    return Ensemble(readout=np.concatenate(parts), preactivations=pre, width=width, seed=int(seed),
                    readout_mode=readout, first_network=first_network, steps=max(taps) if taps else 0,
                    ntk=None if ntk is None else np.concatenate(ntks), parameterization=ntk)


def program_chunk_size(program: Program, width: int, networks: int, dtype, readout: str = "last",
                       ntk: str | None = None, chunk_size: int | None = None) -> tuple:
    """(networks evaluated together, the NTK's gradient plan or None) of :func:`sample_program`: the
    given ``chunk_size``, else as many networks as fit the memory budget (fewer with the NTK)."""
    dt = jnp.dtype(dtype)
    per_network = network_bytes(program, width, dt.itemsize)
    check_memory("width", width, per_network, "one sampled network (its weight matrices and activations)")
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
        check_memory("chunk_size", chunk_size, chunk_size * per_network,
                     f"a chunk of {chunk_size} networks of width {width} sampled together")
    groups = None
    if ntk is not None:
        from ..meanfield.result import readout_rows
        from .ntk import ntk_chunk_size, plan

        M = len(readout_rows(program, readout))
        groups = plan(program, width, M)
    if chunk_size is None:
        chunk_size = min(networks, _chunk_size(program, width, dt.itemsize))
        if groups is not None:
            chunk_size = min(chunk_size, ntk_chunk_size(program, width, M, groups, dt.itemsize))
    return check_positive_int("chunk_size", chunk_size), groups


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(program: Program, width: int, dt, readout: str, pairs: tuple, ntk: str | None = None,
              groups: tuple | None = None):
    """The jitted, vmapped evaluation of networks (seed, indices) of ``program``, cached with it
    (``ntk``: the parameterization of the NTK to record as well, ``groups`` its strategy plan)."""
    from ..meanfield.result import readout_rows
    from .ntk import network_ntk

    per_program = _COMPILED.setdefault(program, {})
    key = (width, dt.name, readout, pairs, ntk, groups)
    if key not in per_program:
        rows = None if readout == "last" and program.last is None else readout_rows(program, readout)
        taps = program.taps.get("h", {})

        def one(seed, index):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
            theta = None
            if ntk is None:
                values = run_program(program, _sample_matrices(program, key, width, dt), width, dt)
            else:  # the same hidden matrices (parameters.py), with the readout drawn after them
                theta, values = network_ntk(program, key, width, dt, readout_rows(program, readout), ntk, groups)
            pre = [values[taps[t]].T @ values[taps[s]] / width for t, s in pairs]
            return readout_kernel(program, values, width, rows), pre, theta

        per_program[key] = jax.jit(jax.vmap(one, in_axes=(None, 0)))
    return per_program[key]
