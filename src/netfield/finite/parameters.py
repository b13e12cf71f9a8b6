"""Every parameter of a finite network of a program, its scale and the network's outputs (docs/ntk.md).

The empirical NTK and gradient-descent training need the readout as parameters too (the finite
interpreter's conditional kernel integrates it out). Conventions:

- every matrix / vector has iid standard-normal entries omega (:func:`sample_parameters`); the forward
  pass uses s * omega (:func:`scales`): s = sqrt(var / n) for a hidden MatMul matrix (n x n),
  sqrt(var / d) for an Input matrix (n x d), sqrt(var) for a Bias, sqrt(var / (n * P)) for a Readout
  matrix V ((n,), or (n, P) reading P flattened positions), sqrt(bias_var) for the readout bias b_o;
  these are the variances of docs/theory.md 1 and the finite interpreter (:mod:`netfield.finite.netsor`);
- the output of readout r at row a is f_r(a) = s_V sum_i V_i h_r(a)_i + s_bo b_o (flatten: also summed
  over the positions p, V_{i,p} h(flatten[a, p])_i); readouts naming the same ``matrix`` share V, the
  same ``vector`` share b_o; with K outputs, K independent V / b_o over the same hidden layers;
- parameterization ``"ntk"``: the trainable variables are omega; ``"standard"``: theta = s * omega (the
  same function, gradients w.r.t. theta, so each group's NTK contribution is the NTK one over s^2).

Random keys: hidden matrix / vector k of ``Program.matrices`` uses fold_in(key, k) (the draw of
:func:`netfield.finite.netsor.sample_program`, which scales these very arrays), the j-th readout
matrix / vector (program order, V before b_o) uses fold_in(fold_in(key, H + j), k) for output k,
H = len(program.matrices): output 0 of a K-output network is the single-output network.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._runtime import draws
from ..program.netsor import Bias, Input, MatMul, Program, Readout

PARAMETERIZATIONS = ("ntk", "standard")


def check_parameterization(value) -> str:
    """``value`` if it is one of :data:`PARAMETERIZATIONS` (ValueError naming the argument otherwise)."""
    if not isinstance(value, str) or value not in PARAMETERIZATIONS:
        accepted = ", ".join(repr(p) for p in PARAMETERIZATIONS)
        raise ValueError(f"parameterization must be one of {accepted}, got {value!r}")
    return value


def _positions(ins: Readout) -> int:
    return 1 if ins.flatten is None else int(ins.flatten.shape[1])


def hidden_shapes(program: Program, width: int) -> dict:
    """{name: (shape, variance of s * omega)} of the hidden matrices / vectors, in ``program.matrices`` order."""
    shapes = {}
    for ins in program.instructions:
        if isinstance(ins, MatMul):
            shapes.setdefault(ins.matrix, ((width, width), ins.var / width))
        elif isinstance(ins, Input):
            d = program.feeds[ins.feed].shape[1]
            shapes.setdefault(ins.matrix, ((width, d), ins.var / d))
        elif isinstance(ins, Bias):
            shapes.setdefault(ins.vector, ((width,), ins.var))
    return {name: shapes[name] for name in program.matrices}


def readout_shapes(program: Program, width: int) -> dict:
    """{name: (shape of one output, variance of s * omega)} of the readout matrices V and biases b_o,
    in program order (V before b_o of each readout; shared ones once)."""
    shapes: dict = {}
    for ins in program.readouts:
        P = _positions(ins)
        shapes.setdefault(ins.matrix, ((width,) if P == 1 and ins.flatten is None else (width, P),
                                       ins.var / (width * P)))
        shapes.setdefault(ins.vector, ((), ins.bias_var))
    return shapes


def scales(program: Program, width: int, dtype=jnp.float64) -> dict:
    """{name: s}: the factor of omega in the forward pass (module docstring), for every parameter."""
    both = {**hidden_shapes(program, width), **readout_shapes(program, width)}
    return {name: jnp.sqrt(jnp.asarray(var, dtype)) for name, (_, var) in both.items()}


def sample_parameters(program: Program, key, width: int, dtype=jnp.float64, outputs: int = 1, *,
                      readout: bool = True) -> dict:
    """{name: omega}: standard-normal entries of every hidden matrix / vector and (``readout=True``) of
    the readout V / b_o (module docstring for the keys). With ``outputs`` = K > 1 the readout arrays get
    a last axis of K outputs (V (n, K) or (n, P, K), b_o (K,)); with K = 1 they have none."""
    hidden = hidden_shapes(program, width)
    if not readout:
        return dict(zip(hidden, draws.folded_normals(key, [shape for shape, _ in hidden.values()], dtype)))
    # hidden parameter k: key fold_in(key, k); output o of readout array j: fold_in(fold_in(key, first + j), o);
    # all drawn in one threefry hash (draws.keyed_normals)
    first = len(hidden)
    outs = readout_shapes(program, width)
    keys = [draws.folded_keys(key, first)] + [draws.folded_keys(jax.random.fold_in(key, first + j), outputs)
                                               for j in range(len(outs))]
    shapes = [shape for shape, _ in hidden.values()] + [shape for shape, _ in outs.values() for _ in range(outputs)]
    values = draws.keyed_normals(jnp.concatenate(keys), shapes, dtype)
    params = dict(zip(hidden, values[:first]))
    for j, name in enumerate(outs):
        block = values[first + j * outputs:first + (j + 1) * outputs]
        params[name] = block[0] if outputs == 1 else jnp.stack(block, axis=-1)
    return params


def hidden_matrices(program: Program, key, width: int, dtype=jnp.float64) -> dict:
    """{name: s * omega} of the hidden layers: the matrices the finite interpreter runs with."""
    return hidden_matrices_and_normals(program, key, width, dtype)[0]


def hidden_matrices_and_normals(program: Program, key, width: int, dtype=jnp.float64, extra=()) -> tuple:
    """(:func:`hidden_matrices`, [standard normals of each shape in ``extra``]): extra draw j has the key
    fold_in(key, H + j), H = len(program.matrices), an index no matrix uses; all drawn in one threefry
    hash (netfield._runtime.draws)."""
    hidden = hidden_shapes(program, width)
    omegas = draws.folded_normals(key, [shape for shape, _ in hidden.values()] + list(extra), dtype)
    matrices = {name: jnp.sqrt(jnp.asarray(var, dtype)) * omega for (name, (_, var)), omega in zip(hidden.items(), omegas)}
    return matrices, omegas[len(hidden):]


def readout_outputs(program: Program, values: dict, theta: dict, rows, dtype=jnp.float64):
    """Outputs at ``rows`` ((readout name, row) pairs) given the hidden values and the readout's
    theta = s * omega: (M,) or (M, K) by the shape of b_o."""
    names = list(dict.fromkeys(r for r, _ in rows))
    K = None
    out = None
    for r in names:
        ins = program[r]
        v, bo = theta[ins.matrix], theta[ins.vector]
        K = None if jnp.ndim(bo) == 0 else bo.shape[0]
        h = values[ins.arg]  # (n, R)
        if ins.flatten is None:
            f = jnp.tensordot(h, v, axes=(0, 0))  # (R,) or (R, K)
        else:
            # f(a) = sum_{i,p} V_{i,p} h_i(flatten[a, p])
            f = jnp.einsum("iap,ip...->a...", h[:, np.asarray(ins.flatten)], v)
        f = f + bo
        if out is None:
            out = jnp.zeros((len(rows),) + (() if K is None else (K,)), f.dtype)
        idx = np.array([k for k, (name, _) in enumerate(rows) if name == r])
        at = np.array([rows[k][1] for k in idx])
        out = out.at[idx].set(f[at])
    return out


def network_outputs(program: Program, params: dict, width: int, rows, *, parameterization: str = "ntk",
                    dtype=jnp.float64):
    """Outputs of one network at ``rows`` (:func:`netfield.meanfield.result.readout_rows`): (M,) for one
    output, (M, K) for K outputs.

    ``params``: every parameter in the parameterization's own variables - omega for ``"ntk"``, theta =
    s * omega for ``"standard"`` (module docstring); differentiable with respect to them.

    Example:
        >>> import jax, numpy as np, netfield
        >>> from netfield.meanfield.result import readout_rows
        >>> program = netfield.dnn(2, "erf").program(np.eye(3))
        >>> omega = sample_parameters(program, jax.random.PRNGKey(0), 16)
        >>> network_outputs(program, omega, 16, readout_rows(program, "last")).shape
        (3,)
    """
    from .netsor import run_program

    check_parameterization(parameterization)
    if parameterization == "ntk":
        s = scales(program, width, dtype)
        theta = {name: s[name] * w for name, w in params.items()}
    else:
        theta = params
    values = run_program(program, theta, width, dtype)
    return readout_outputs(program, values, theta, rows, dtype)


__all__ = ["PARAMETERIZATIONS", "check_parameterization", "hidden_matrices", "hidden_shapes", "network_outputs",
           "readout_outputs", "readout_shapes", "sample_parameters", "scales"]
