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

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int
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
    Readout,
    RowMap,
)
from .ensemble import Ensemble

MEMORY_BUDGET = 768 * 2**20


def _sample_matrices(program: Program, key, width: int, dtype):
    shapes = {}
    for ins in program.instructions:
        if isinstance(ins, MatMul):
            shapes.setdefault(ins.matrix, ((width, width), ins.var / width))
        elif isinstance(ins, Input):
            d = program.feeds[ins.feed].shape[1]
            shapes.setdefault(ins.matrix, ((width, d), ins.var / d))
        elif isinstance(ins, Bias):
            shapes.setdefault(ins.vector, ((width,), ins.var))
    params = {}
    for k, name in enumerate(program.matrices):
        shape, var = shapes[name]
        params[name] = jnp.sqrt(jnp.asarray(var, dtype)) * jax.random.normal(jax.random.fold_in(key, k), shape, dtype)
    return params


def run_program(program: Program, params: dict, width: int, dtype=jnp.float64):
    """Evaluate every variable of the program for one sampled network: {name: (n, M) or (M,)}."""
    values: dict = {}
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
        elif isinstance(ins, Readout):
            continue
        else:
            raise TypeError(f"unknown instruction {ins!r}")
        values[ins.name] = v
    return values


def readout_kernel(program: Program, values: dict, width: int):
    """Conditional readout kernel of one network (module docstring)."""
    out: Readout = program.readout
    h = values[out.arg]
    if out.flatten is None:
        return out.var * (h.T @ h) / width + out.bias_var
    idx = out.flatten
    P = idx.shape[1]
    total = sum(h[:, idx[:, p]].T @ h[:, idx[:, p]] for p in range(P))
    return out.var * total / (width * P) + out.bias_var


def _chunk_size(program: Program, width: int, itemsize: int) -> int:
    n_mat = sum(1 for i in program.instructions if isinstance(i, MatMul))
    rows = sum(program.spaces.values())
    per_network = (len({i.matrix for i in program.instructions if isinstance(i, MatMul)}) * width * width
                   + len(program.instructions) * width * rows + n_mat) * itemsize
    return max(1, MEMORY_BUDGET // max(per_network, 1))


def sample_program(program: Program, width: int, networks: int = 1, seed: int = 0, *,
                   chunk_size: int | None = None, dtype="float64", first_network: int = 0) -> Ensemble:
    """Sample finite-width networks of a NETSOR+ program; returns an :class:`Ensemble` of readouts."""
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    first_network = check_positive_int("first_network", first_network, minimum=0)
    dt = jnp.dtype(dtype)

    def one(index):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        params = _sample_matrices(program, key, width, dt)
        return readout_kernel(program, run_program(program, params, width, dt), width)

    if chunk_size is None:
        chunk_size = min(networks, _chunk_size(program, width, dt.itemsize))
    chunk_size = check_positive_int("chunk_size", chunk_size)
    batched = jax.jit(jax.vmap(one))
    parts = []
    for start in range(first_network, first_network + networks, chunk_size):
        count = min(chunk_size, first_network + networks - start)
        out = batched(jnp.arange(start, start + chunk_size))
        parts.append(np.asarray(out[:count], np.float64))
    return Ensemble(readout=np.concatenate(parts), width=width, seed=int(seed), first_network=first_network)
