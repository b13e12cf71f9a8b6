"""Empirical neural tangent kernel of sampled finite networks of any program (docs/ntk.md).

For one network with parameters p (every hidden matrix / vector and the readout V, b_o;
:mod:`netfield.finite.parameters` for the conventions),

    Theta(a, b) = sum_p df(a)/dp . df(b)/dp        rows a, b = readout_rows(program, readout),

the sum of one contribution per parameter group. In the NTK parameterization (gradients w.r.t. omega,
forward s * omega) a group's contribution is s^2 times that of the standard parameterization (gradients
w.r.t. theta = s * omega); both are computed from the same forward pass.

Hidden groups. Every use u of a matrix W in the program is an instruction g_u = W h_u (MatMul: h_u its
argument, (n, R_u) over the R_u rows of its space; W^T h_u for ``transpose=True``, whose Jacobian is the
transpose, with the same Frobenius products), an Input g_u = U x_u^T (h_u = x_u^T, (d, R_u)) or a Bias
g_u = b 1^T (h_u = 1, (1, R_u)). The cotangents dg_u(a) = df(a)/dg_u ((n, R_u) per output row a) come
from one reverse pass per output row through ``run_program(..., perturb=...)`` (a zero perturbation of
every g_u, differentiated with ``jax.vjp``). Then df(a)/dW = c sum_u dg_u(a) h_u^T (c = s or 1) and

    "jacobian":    Theta_W(a, b) = c^2 <J(a), J(b)>_F,  J(a) = sum_u dg_u(a) h_u^T   (formed: (M, n, fan))
    "structured":  Theta_W(a, b) = c^2 sum_{u,v} sum_{r,s} <dg_u(a)[:, r], dg_v(b)[:, s]> <h_u[:, r], h_v[:, s]>

(no Jacobian: the Gram matrix of the h's, R x R with R = sum_u R_u, contracted with the cotangents).
The readout adds c_V^2 <h_r(a), h_r'(b)> (summed over flattened positions) for rows whose readouts share
V and c_bo^2 for rows that share b_o; in the NTK parameterization that is exactly the conditional readout
kernel of :func:`netfield.finite.netsor.readout_cov`.

Cost per network and group (M output rows, n the width, fan the fan-in: n for W, d for U, 1 for b;
multiply-adds): "jacobian" M n fan (R + M), "structured" fan R^2 + M n R (R + M); both share the
forward pass and the M reverse passes (~ M times the forward cost). ``strategy="auto"`` picks the cheaper
per group: "structured" wins when the rows a matrix sees (patterns x uses: steps of an RNN, positions
of a conv) are fewer than its fan-in, so the lever is width against patterns x steps (x positions).
"""

from __future__ import annotations

import weakref

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int
from .._runtime.seeds import check_seed
from ..program.netsor import Bias, Input, MatMul, Program
from .parameters import check_parameterization, readout_outputs, sample_parameters, scales

STRATEGIES = ("auto", "jacobian", "structured")
MEMORY_BUDGET = 512 * 2**20  # bytes of one chunk of networks


def parameter_uses(program: Program) -> dict:
    """{hidden matrix / vector name: [instructions that use it]} in ``program.matrices`` order."""
    uses: dict = {name: [] for name in program.matrices}
    for ins in program.instructions:
        key = ins.matrix if isinstance(ins, (MatMul, Input)) else ins.vector if isinstance(ins, Bias) else None
        if key is not None:
            uses[key].append(ins)
    return uses


def _fan_in(program: Program, ins, width: int) -> int:
    if isinstance(ins, MatMul):
        return width
    if isinstance(ins, Input):
        return int(program.feeds[ins.feed].shape[1])
    return 1


def strategy_costs(program: Program, width: int, rows: int) -> dict:
    """{group: (jacobian cost, structured cost)} in multiply-adds per network (module docstring),
    ``rows`` = M the number of output rows."""
    costs = {}
    for name, uses in parameter_uses(program).items():
        fan = _fan_in(program, uses[0], width)
        R = sum(program.spaces[ins.space] for ins in uses)
        M, n = rows, width
        costs[name] = (M * n * fan * (R + M), fan * R * R + M * n * R * (R + M))
    return costs


def plan(program: Program, width: int, rows: int, strategy: str = "auto") -> tuple:
    """((group, "jacobian" or "structured"), ...): the strategy of every hidden group."""
    check_choice("strategy", strategy, STRATEGIES)
    if strategy != "auto":
        return tuple((name, strategy) for name in program.matrices)
    costs = strategy_costs(program, width, rows)
    return tuple((name, "structured" if costs[name][1] < costs[name][0] else "jacobian") for name in program.matrices)


def _argument(program: Program, ins, values: dict, dtype):
    """h_u of a use (module docstring): (fan, R_u)."""
    if isinstance(ins, MatMul):
        return values[ins.arg]
    rows = program.spaces[ins.space]
    if isinstance(ins, Input):
        return jnp.asarray(program.feeds[ins.feed], dtype).T
    return jnp.ones((1, rows), dtype)


def readout_ntk(program: Program, values: dict, factor: dict, rows, dtype):
    """The readout's contribution: factor_V <h_r(a), h_r'(b)> for shared V plus factor_bo for shared b_o."""
    M = len(rows)
    total = jnp.zeros((M, M), dtype)
    for group in ("matrix", "vector"):
        for name in dict.fromkeys(getattr(program[r], group) for r, _ in rows):
            if group == "vector":
                ind = np.array([float(getattr(program[r], group) == name) for r, _ in rows])
                total = total + factor[name] * jnp.asarray(np.outer(ind, ind), dtype)
                continue
            feats = None
            for r in dict.fromkeys(r for r, _ in rows if program[r].matrix == name):
                ins = program[r]
                idx = np.array([k for k, (rr, _) in enumerate(rows) if rr == r])
                at = np.array([rows[k][1] for k in idx])
                h = values[ins.arg]
                f = h[:, at].T if ins.flatten is None else \
                    jnp.transpose(h[:, np.asarray(ins.flatten)[at]], (1, 0, 2)).reshape(len(at), -1)
                if feats is None:
                    feats = jnp.zeros((M, f.shape[1]), dtype)
                feats = feats.at[idx].set(f)
            total = total + factor[name] * (feats @ feats.T)
    return total


def ntk_of(program: Program, theta: dict, factor: dict, width: int, dtype, rows, groups: tuple):
    """(Theta (M, M), values) of one network: ``theta`` every parameter as s * omega (the forward),
    ``factor`` {group: c^2} (s^2 for the NTK parameterization, 1 for the standard one), ``groups``
    :func:`plan`; values the hidden variables of :func:`netfield.finite.netsor.run_program`."""
    from .netsor import run_program

    uses = parameter_uses(program)
    pert = {ins.name: jnp.zeros((width, program.spaces[ins.space]), dtype) for u in uses.values() for ins in u}

    def forward(pert):
        values = run_program(program, theta, width, dtype, pert)
        return readout_outputs(program, values, theta, rows, dtype), values

    out, vjp, values = jax.vjp(forward, pert, has_aux=True)
    M = out.shape[0]
    (cot,) = jax.vmap(vjp)(jnp.eye(M, dtype=dtype))  # {g_u: (M, n, R_u)}: dg_u(a) = df(a)/dg_u
    total = readout_ntk(program, values, factor, rows, dtype)
    for name, how in groups:
        D = jnp.concatenate([cot[ins.name] for ins in uses[name]], axis=2)  # (M, n, R)
        H = jnp.concatenate([_argument(program, ins, values, dtype) for ins in uses[name]], axis=1)  # (fan, R)
        if how == "jacobian":
            J = jnp.einsum("anr,fr->anf", D, H).reshape(M, -1)  # df(a)/dW, (M, n * fan)
            block = J @ J.T
        else:
            Y = jnp.einsum("anr,rs->ans", D, H.T @ H)
            block = Y.reshape(M, -1) @ D.reshape(M, -1).T
        total = total + factor[name] * block
    return total, values


def network_ntk(program: Program, key, width: int, dtype, rows, parameterization: str, groups: tuple):
    """(Theta, values) of the network of ``key`` (hidden matrices as :func:`sample_program` draws them)."""
    omega = sample_parameters(program, key, width, dtype)
    s = scales(program, width, dtype)
    theta = {name: s[name] * w for name, w in omega.items()}
    factor = {name: (s[name] ** 2 if parameterization == "ntk" else 1.0) for name in s}
    return ntk_of(program, theta, factor, width, dtype, rows, groups)


def ntk_chunk_size(program: Program, width: int, rows: int, groups: tuple, itemsize: int) -> int:
    """Networks per chunk so that one chunk's forward, reverse passes and Jacobian blocks fit in MEMORY_BUDGET."""
    values = sum(width * program.spaces[ins.space] for ins in program.instructions
                 if hasattr(ins, "space") and ins.name in program.kinds and program.kinds[ins.name] in ("G", "H"))
    params = sum(width * _fan_in(program, u[0], width) for u in parameter_uses(program).values())
    jac = max([rows * width * _fan_in(program, parameter_uses(program)[n][0], width)
               for n, how in groups if how == "jacobian"] or [0])
    per_network = (params + (rows + 2) * values + rows * rows + 2 * jac) * itemsize
    return max(1, MEMORY_BUDGET // max(per_network, 1))


_COMPILED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _compiled(program: Program, width: int, dt, readout: str, parameterization: str, groups: tuple):
    """The jitted, vmapped NTK of networks (seed, indices) of ``program``, cached with it."""
    from ..meanfield.result import readout_rows

    per_program = _COMPILED.setdefault(program, {})
    key = (width, dt.name, readout, parameterization, groups)
    if key not in per_program:
        rows = readout_rows(program, readout)

        def one(seed, index):
            key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
            return network_ntk(program, key, width, dt, rows, parameterization, groups)[0]

        per_program[key] = jax.jit(jax.vmap(one, in_axes=(None, 0)))
    return per_program[key]


def empirical_ntk(program: Program, width: int, networks: int = 1, seed: int = 0, *, readout: str = "last",
                  parameterization: str = "ntk", strategy: str = "auto", chunk_size: int | None = None,
                  dtype="float64", first_network: int = 0) -> np.ndarray:
    """Empirical NTK Theta(a, b) = sum_p df(a)/dp df(b)/dp of sampled finite networks of a program.

    Args:
        program: a NETSOR+ program (``net.program(x)``).
        width: hidden width n >= 1.
        networks: number of networks; network i uses fold_in(PRNGKey(seed), i), with the hidden
            matrices of :func:`netfield.finite.netsor.sample_program` for the same seed.
        seed: integer seed.
        readout: rows ``"last"`` or ``"all"`` (:func:`netfield.meanfield.result.readout_rows`).
        parameterization: ``"ntk"`` (gradients w.r.t. the standard-normal omega) or ``"standard"``
            (w.r.t. theta = s * omega: each group's contribution divided by s^2); docs/ntk.md.
        strategy: ``"jacobian"``, ``"structured"`` or ``"auto"`` (per parameter group, the cheaper by
            :func:`strategy_costs`); all agree to rounding.
        chunk_size: networks evaluated together (default: a chunk within ~512 MB); results do not depend on it.
        dtype: ``"float64"`` (default) or ``"float32"``.
        first_network: index of the first network (resumable runs).

    Returns:
        numpy array (networks, M, M), M the number of readout rows.

    Cost: per network the forward pass, M reverse passes (M x the forward) and the contraction of the
    module docstring ("jacobian": M n fan (R + M) per group; "structured": fan R^2 + M n R (R + M));
    M rows and the width are the levers, ``strategy="auto"`` takes the cheaper contraction.

    Example:
        >>> import numpy as np, netfield
        >>> program = netfield.dnn(2, "erf").program(np.eye(3))
        >>> empirical_ntk(program, width=32, networks=2).shape
        (2, 3, 3)
    """
    if not isinstance(program, Program):
        raise TypeError(f"program must be a netfield Program (net.program(x)), got {type(program).__name__}")
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    seed = check_seed(seed)
    first_network = check_positive_int("first_network", first_network, minimum=0)
    check_choice("readout", readout, ("last", "all"))
    check_parameterization(parameterization)
    check_choice("dtype", str(dtype) if not isinstance(dtype, type) else np.dtype(dtype).name, ("float32", "float64"))
    dt = jnp.dtype(dtype)
    from ..meanfield.result import readout_rows

    M = len(readout_rows(program, readout))
    groups = plan(program, width, M, strategy)
    if chunk_size is None:
        chunk_size = min(networks, ntk_chunk_size(program, width, M, groups, dt.itemsize))
    chunk_size = check_positive_int("chunk_size", chunk_size)
    batched = _compiled(program, width, dt, readout, parameterization, groups)
    parts = []
    for start in range(first_network, first_network + networks, chunk_size):
        count = min(chunk_size, first_network + networks - start)
        out = batched(jnp.asarray(seed, jnp.int64), jnp.arange(start, start + chunk_size))
        parts.append(np.asarray(out[:count], np.float64))
    return np.concatenate(parts)


__all__ = ["STRATEGIES", "empirical_ntk", "network_ntk", "ntk_of", "parameter_uses", "plan", "readout_ntk",
           "strategy_costs"]
