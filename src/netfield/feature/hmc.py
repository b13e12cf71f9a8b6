"""The jitted HMC kernel of the posterior sampler, for the model of any program (docs/feature.md).

The hidden weights are the program's matrices and vectors (:attr:`Program.matrices`), whitened:
param = scale * theta_hat with scale = sqrt(var / fan_in) (fan_in = n for a matrix W, d for an input
matrix U, 1 for a bias), as in the finite-width interpreter's sampling; a block of variance 0 is fixed
at zero and omitted. The forward pass is the finite-width interpreter
(:func:`netfield.finite.netsor.run_program`). The potential (module docstring of
:mod:`netfield.feature.sampler`) is E = |theta_hat|^2 / 2 + (n / 2) yy^T M^-1 yy + (1/2) log det M,
M = readout_var Phi_S + kappa I, Phi_S the readout overlap of the supervised readouts on the training
patterns.

Gradient: ``jax.grad`` of the data term with respect to a zero perturbation of the output of every
instruction that uses a weight block (``run_program(perturb=...)``: the pre-activation gradients
delta), turned into weight gradients by the chain rule: dE/dW = scale * sum_uses delta h^T (h the
MatMul's argument; h delta^T for W^T h), dE/dU = scale * sum_uses delta x (x the input features),
dE/db = scale * sum_uses sum_rows delta. The state keeps these factors (left, right) of the last
gradient, and the rank-r outer products are formed inside the (elementwise) momentum update, so an
integrator step touches each weight matrix in two matrix products and two elementwise passes.

:func:`cached_model` keeps the compiled functions of the last configurations (network and program
structure); the inputs enter as data (the programs' ``feeds``), so new inputs of the same shapes reuse them.
"""

from __future__ import annotations

import dataclasses
import hashlib
import types
from collections import OrderedDict
from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from ..finite.netsor import run_program
from ..program.netsor import Bias, Input, MatMul, Program

jax.config.update("jax_enable_x64", True)

TARGET_ACCEPTANCE = 0.75
JITTER = 0.1
CACHE_SIZE = 16


@dataclass(frozen=True)
class Block:
    """One weight block: ``kind`` "input" (U, (n, d)), "matrix" (W, (n, n)) or "bias" (b, (n,))."""

    name: str
    kind: str
    shape: tuple
    fan_in: int


def weight_blocks(program: Program, width: int) -> tuple:
    """Every weight block of the program (inputs, then matrices, then biases, each in first-use order:
    for a DNN U1.., W2.., b1..; for an RNN U, W, b) and the instruction of first use of each."""
    first = {}
    for ins in program.instructions:
        if isinstance(ins, Input):
            d = program.feeds[ins.feed].shape[1]
            first.setdefault(ins.matrix, (Block(ins.matrix, "input", (width, d), d), ins))
        elif isinstance(ins, MatMul):
            first.setdefault(ins.matrix, (Block(ins.matrix, "matrix", (width, width), width), ins))
        elif isinstance(ins, Bias):
            first.setdefault(ins.vector, (Block(ins.vector, "bias", (width,), 1), ins))
    order = {"input": 0, "matrix": 1, "bias": 2}
    names = sorted(program.matrices, key=lambda k: order[first[k][0].kind])  # stable: first use within a kind
    return tuple(first[k] for k in names)


def block_scales(blocks, omitted) -> np.ndarray:
    """sqrt(var / fan_in) of every sampled block (a number; the variances must be concrete)."""
    return np.array([np.sqrt(float(ins.var) / b.fan_in) for b, ins in blocks if b.name not in omitted])


def _outer(left, right):
    """left @ right^T; unrolled (fusable into the elementwise update) for small ranks."""
    if left.shape[-1] <= 16:
        return sum(left[:, None, q] * right[None, :, q] for q in range(left.shape[-1]))
    return left @ right.T


def compile_model(train: Program, joint: Program, width: int, blocks: tuple, omitted: frozenset, S: tuple,
                  p_train: int, thin: int, leapfrog: int, integrator: str) -> dict:
    """Jitted functions of one static configuration; hyper = (scale of each sampled block...,
    readout_var, kappa), the input features (``feeds`` of the training and of the joint program),
    targets and step sizes are dynamic.

    ``train`` is the program on the training patterns (the likelihood), ``joint`` the program on the
    training then test patterns (the measurements); both read out on rows = patterns.
    """
    n = width
    split = integrator == "split"
    sampled = tuple(b for b, _ in blocks if b.name not in omitted)
    names = tuple(b.name for b in sampled)
    shapes = {b.name: b.shape for b in sampled}
    zeros = {b.name: jnp.zeros(b.shape) for b, _ in blocks if b.name in omitted}
    sizes = {name: int(np.prod(shapes[name])) for name in names}
    offsets = dict(zip(names, np.cumsum([0] + [sizes[name] for name in names])[:-1].tolist()))
    dim = sum(sizes.values())
    readouts = train.readouts
    sup = [readouts[s - 1].arg for s in S]
    k = len(S) * p_train
    uses = {name: [] for name in names}  # instructions that use each sampled block
    for ins in train.instructions:
        key = getattr(ins, "matrix", None) if isinstance(ins, (Input, MatMul)) else \
            ins.vector if isinstance(ins, Bias) else None
        if key in uses:
            uses[key].append(ins)
    taps = [joint.taps["h"][t] for t in sorted(joint.taps.get("h", {}))]

    def params_of(th, hyper):
        params = {name: hyper[i] * th[name] for i, name in enumerate(names)}
        params.update(zeros)
        return params

    def data_term(pert, th, hyper, feeds, yy):
        rv, kappa = hyper[-2], hyper[-1]
        program = dataclasses.replace(train, feeds=tuple(feeds))
        values = run_program(program, params_of(th, hyper), n, jnp.float64, pert)
        FS = jnp.concatenate([values[a] for a in sup], axis=1)  # column k * P + mu (readout-major)
        Phi = FS.T @ FS / n
        L = jnp.linalg.cholesky(rv * Phi + kappa * jnp.eye(k))
        z = jax.scipy.linalg.solve_triangular(L, yy, lower=True)
        args = {ins.name: values[ins.arg] for use in uses.values() for ins in use if isinstance(ins, MatMul)}
        return 0.5 * n * (z @ z) + jnp.sum(jnp.log(jnp.diag(L))), (jnp.mean(jnp.diag(Phi)), args)

    data_vg = jax.value_and_grad(data_term, has_aux=True)

    def data_and_factors(th, hyper, feeds, yy):
        """Data term, the readout-overlap diagonal, and the factors (left, right) of its gradient."""
        pert = {ins.name: jnp.zeros((n, train.spaces[ins.space])) for use in uses.values() for ins in use}
        (data, (aux, args)), delta = data_vg(pert, th, hyper, feeds, yy)
        left, right = {}, {}
        for name in names:
            ls, rs = [], []
            for ins in uses[name]:
                if isinstance(ins, MatMul):
                    a, b = (args[ins.name], delta[ins.name]) if ins.transpose else (delta[ins.name], args[ins.name])
                elif isinstance(ins, Input):
                    a, b = delta[ins.name], jnp.asarray(feeds[ins.feed]).T
                else:
                    a, b = delta[ins.name].sum(axis=1, keepdims=True), jnp.ones((1, 1))
                ls.append(a)
                rs.append(b)
            left[name], right[name] = jnp.concatenate(ls, axis=1), jnp.concatenate(rs, axis=1)
        return data, aux, left, right

    def data_gradient(left, right, hyper):
        """{block: dE_data/dtheta_hat} from the factors (chain rule)."""
        return {name: hyper[i] * _outer(left[name], right[name]).reshape(shapes[name])
                for i, name in enumerate(names)}

    def sq(tree):
        return sum(jnp.sum(v * v) for v in tree.values())

    def energy(th, hyper, feeds, yy):
        """The full potential E(theta_hat) (the tests check the gradient against jax.grad of it)."""
        pert = {}
        data, _ = data_term(pert, th, hyper, feeds, yy)
        return 0.5 * sq(th) + data

    def gradient(th, hyper, feeds, yy):
        _, _, left, right = data_and_factors(th, hyper, feeds, yy)
        g = data_gradient(left, right, hyper)
        return {name: th[name] + g[name] for name in names}

    def measure(th, hyper, feeds_all, yy):
        rv, kappa = hyper[-2], hyper[-1]
        values = run_program(dataclasses.replace(joint, feeds=tuple(feeds_all)), params_of(th, hyper), n,
                             jnp.float64)
        R, T = len(readouts), len(taps)
        p_all = values[joint.readouts[0].arg].shape[1]
        out = {}
        if T:
            H = jnp.concatenate([values[t] for t in taps], axis=1)  # column t * M + row
            m = H.shape[1] // T
            K = (H.T @ H / n).reshape(T, m, T, m).transpose(0, 2, 1, 3)
        else:
            K = jnp.zeros((0, 0, p_all, p_all))
        F = jnp.concatenate([values[r.arg] for r in joint.readouts], axis=1)
        Phi = (F.T @ F / n).reshape(R, p_all, R, p_all).transpose(0, 2, 1, 3)
        S_idx = np.asarray(S) - 1
        PhiS = Phi[S_idx][:, S_idx][:, :, :p_train, :p_train].transpose(0, 2, 1, 3).reshape(k, k)
        alpha = jax.scipy.linalg.cho_solve((jnp.linalg.cholesky(rv * PhiS + kappa * jnp.eye(k)), True), yy)
        cross = Phi[:, S_idx][:, :, :, :p_train].transpose(0, 2, 1, 3).reshape(R, p_all, k)
        out.update(kernel=K, kernel_sq=K * K, overlap=Phi, prediction=rv * cross @ alpha)
        return out

    def init_one(th, key, hyper, feeds, yy):
        data, aux, left, right = data_and_factors(th, hyper, feeds, yy)
        return {"theta": th, "data": data, "aux": aux, "left": left, "right": right, "key": key}

    def iteration(state, log_eps, i, active, adapt, half, cap, hyper, feeds, yy):
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

        g0 = data_gradient(state["left"], state["right"], hyper)
        th0 = state["theta"]
        q = {name: p0[name] - 0.5 * eps * (g0[name] if split else th0[name] + g0[name]) for name in names}

        def leap(j, c):
            th, q, _, _, _, _ = c
            if split:
                th = {name: cs * th[name] + sn * q[name] for name in names}
            else:
                th = {name: th[name] + eps * q[name] for name in names}
            data, aux, left, right = data_and_factors(th, hyper, feeds, yy)
            g = data_gradient(left, right, hyper)
            coef = jnp.where(j == leapfrog - 1, 0.5 * eps, eps)
            if split:
                q = {name: (q[name] - sn * th[name]) / cs - coef * g[name] for name in names}
            else:
                q = {name: q[name] - coef * (th[name] + g[name]) for name in names}
            return th, q, data, aux, left, right

        carry = (th0, q, state["data"], state["aux"], state["left"], state["right"])
        th, p, data, aux, left, right = jax.lax.fori_loop(0, leapfrog, leap, carry)
        log_ratio = (0.5 * sq(th0) + state["data"] + 0.5 * sq(p0)) - (0.5 * sq(th) + data + 0.5 * sq(p))
        log_ratio = jnp.where(jnp.isfinite(log_ratio), log_ratio, -jnp.inf)
        a = jnp.exp(jnp.minimum(log_ratio, 0.0))
        accept = active & (jnp.log(jax.random.uniform(k_acc)) < log_ratio)
        pick = lambda x_new, x_old: jnp.where(accept, x_new, x_old)
        proposal = {"theta": th, "data": data, "aux": aux, "left": left, "right": right}
        new = {name: jax.tree_util.tree_map(pick, proposal[name], state[name]) for name in proposal}
        new["key"] = jnp.where(active, key, state["key"])
        gain = jnp.where(adapt, 1.0 / jnp.sqrt(1.0 + i / 10.0), 0.0)
        le = jnp.minimum(log_eps[0] + gain * (a - TARGET_ACCEPTANCE), cap)
        ls = log_eps[1] + jnp.where(adapt & (i >= half), le, 0.0)
        new_log_eps = jnp.where(active, jnp.stack([le, ls]), log_eps)
        return (new, new_log_eps), (new["aux"], a)

    def block_one(state, log_eps, i0, num, adapt, half, cap, hyper, feeds, feeds_all, yy):
        def body(carry, j):
            st, le = carry
            return iteration(st, le, i0 + j, j < num, adapt, half, cap, hyper, feeds, yy)

        (state, log_eps), (trace, acc) = jax.lax.scan(body, (state, log_eps), jnp.arange(thin))
        return state, log_eps, trace, acc, measure(state["theta"], hyper, feeds_all, yy)

    return {
        "init": jax.jit(jax.vmap(init_one, in_axes=(0, 0, None, None, None))),
        "block": jax.jit(jax.vmap(block_one, in_axes=(0, 0) + (None,) * 9)),
        "energy": energy,
        "gradient": gradient,
        "dim": dim,
        "names": names,
        "shapes": shapes,
    }


# ------------------------------------------------------------------------------ compiled model cache


_CACHE: OrderedDict = OrderedDict()


def _freeze(v):
    """A hashable description of an instruction field or option, by value where it has one."""
    if isinstance(v, np.ndarray):
        return ("array", v.shape, str(v.dtype), hashlib.sha256(np.ascontiguousarray(v).tobytes()).hexdigest())
    if isinstance(v, dict):
        return tuple(sorted((k, _freeze(x)) for k, x in v.items()))
    if isinstance(v, (list, tuple)):
        return tuple(_freeze(x) for x in v)
    if isinstance(v, types.FunctionType):
        return ("fn", v.__module__, v.__qualname__)
    if type(v).__eq__ is object.__eq__:  # compared by identity: describe it instead
        return ("obj", type(v).__qualname__, repr(v) if type(v).__repr__ is not object.__repr__ else "")
    try:
        hash(v)
    except TypeError:
        return ("repr", repr(v))
    return v


def _fingerprint(program) -> tuple:
    """The structure of a program (instructions without variances, row spaces, taps, feed shapes)."""
    ins = tuple((type(i).__name__,) + tuple((f.name, _freeze(getattr(i, f.name))) for f in dataclasses.fields(i)
                                            if f.name not in ("var", "bias_var"))
                for i in program.instructions)
    return (ins, tuple(f.shape for f in program.feeds), _freeze(program.spaces), _freeze(program.taps))


def cached_model(net, train, joint, width, omitted, S, P, thin, leapfrog, integrator) -> dict:
    """compile_model for this configuration, cached by the network (writer, options and hyper-parameters:
    a program's functions may read them) and the programs' structure; the inputs (the programs' feeds),
    targets, kappa and step sizes are data, so other values of them reuse the compiled code."""
    key = (net.write, net.prepare, _freeze(net.options), net.hyper_names, _freeze(net.hyper_values),
           _fingerprint(train), _fingerprint(joint), width, omitted, S, P, thin, leapfrog, integrator)
    if key not in _CACHE:
        blocks = weight_blocks(train, width)
        _CACHE[key] = compile_model(train, joint, width, blocks, omitted, S, P, thin, leapfrog, integrator)
        while len(_CACHE) > CACHE_SIZE:
            _CACHE.popitem(last=False)
    _CACHE.move_to_end(key)
    return _CACHE[key]
