"""Sampling DNN / RNN chains by exact Gaussian conditioning: kernels without weight matrices
(docs/meanfield.md, "Sampling finite networks by conditioning"; docs/theory.md 1).

Empirical kernels need only a network's pre-activations, and given the history those are Gaussian.

DNN (a fresh W_t, U_t, b_t per layer): given phi_{t-1} = phi(h_{t-1}) on the N inputs, the rows of

    h_t = W_t phi_{t-1} + U_t x_t + b_t

are iid N(0, C_t) across the n units, C_t = (weight_var / n) phi_{t-1}^T phi_{t-1}
+ (input_var / d) x_t x_t^T + bias_var (the terms a layer has), so h_t = Z_t L_t^T with L_t L_t^T = C_t
and Z_t (n, N) fresh standard normals: n N normals and O(n N^2 + N^3) work per layer instead of
n^2 normals and O(n^2 N).

RNN (one W, U, b at every step): the rows of H = [h_1 .. h_T] (n, N T) are the values of the linear
functionals W phi_{s-1} + U x_s + b of the row's parameters, with covariance

    K_ts = (weight_var / n) phi_{t-1}^T phi_{s-1} [t, s >= 2] + (input_var / d) x_t x_s^T [t, s <= T_in]
           + bias_var.

Block row t of K involves phi_1 .. phi_{t-1} only, so its lower block-triangular Cholesky factor L is
built step by step (L_{t,<t} = K_{t,<t} L_{<t}^{-T}, L_tt L_tt^T = K_tt - L_{t,<t} L_{t,<t}^T, the
Schur complement) and h_t = sum_{s <= t} Z_s L_{t,s}^T with Z_s drawn at step s. This is exact: the
posterior of (W, U, b) given h_1 .. h_{t-1} is the prior conditioned on the linear constraints those
values impose, under which h_t has mean L_{t,<t} Z_{<t}-part and covariance the Schur complement.
Work per network: O(n N^2 T^2 + N^3 T^3), against O(n^2 N T) with weights (cheaper when N T < n).

Singular Gram matrices (duplicate inputs, N t > n, bias_var = 0, phi = 0) are handled by a jittered
Cholesky factor: each (Schur complement) block S gets the Cholesky factor of S + delta I with
delta = 8 (m + n) eps max(diag K_tt) (m = the order of K so far, eps the dtype's machine epsilon, at
least the smallest normal number where K is zero; K_tt the step's own diagonal block, which bounds its
Schur complement: rounding in the Gram sums of n terms and in the Schur complements stays below it); where that is not finite, the factor of S + 1e4 delta I (and, for
an S that is no covariance at all, sqrt of its diagonal: never NaN). The factor is invertible, and
the sampler is exact for the network whose pre-activations get an extra independent N(0, delta)
noise: the kernels' error is ~delta, ~1e-12 of their scale in float64 at n = 1024 (1e-8 after a
retry) - far below the sampling noise O(1/sqrt(n)). (An eigen-decomposition square root would be
exact for singular S too, but costs ~100x a Cholesky factor at N = 256: 59 ms against 0.3-0.5 ms.)

Randomness: network i uses key = fold_in(PRNGKey(seed), i) (as the weight sampler), step t the (N, n)
normals of key fold_in(key, t) by the Box-Muller transform (:func:`netfield._runtime.draws.box_muller_normals`):
chunk-independent and reproducible; different numbers from the weight sampler's (the same distribution).
In this sampler a pattern is a row: h_t = L_t Z_t with Z_t (N, n), the transpose of the formulas above.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax.scipy.linalg import solve_triangular

from .._runtime import draws
from ..program.shape import CHAIN_HYPER

METHODS = ("auto", "conditional", "weights")


def check_method(method) -> str:
    """``method`` if it is one of :data:`METHODS` (ValueError naming the argument otherwise)."""
    if not isinstance(method, str) or method not in METHODS:
        accepted = ", ".join(repr(m) for m in METHODS)
        raise ValueError(f"method must be one of {accepted}, got {method!r}")
    return method


def conditional_cheaper(shared: bool, width: int, patterns: int, steps: int) -> bool:
    """True where conditioning costs less than sampling weights: N < n for a DNN (O(n N^2) against
    O(n^2 N) per layer), N T < n for an RNN (O(n N^2 T^2) against O(n^2 N T))."""
    return patterns * (steps if shared else 1) < width


def resolve_method(method: str, *, chain: bool, ntk: bool, shared: bool = False, width: int = 1,
                   patterns: int = 1, steps: int = 1) -> str:
    """``"conditional"`` or ``"weights"`` for a ``method`` of :func:`netfield.sample`: ``"auto"`` takes
    conditioning for a chain program (``chain``), kernels only (not ``ntk``) and where it is cheaper
    (:func:`conditional_cheaper`); ``"conditional"`` where it cannot apply is a ValueError."""
    check_method(method)
    possible = chain and not ntk
    if method == "conditional" and not possible:
        why = "ntk=True needs the weights" if ntk else "the program is not a DNN / RNN chain"
        raise ValueError(f"method='conditional' samples the pre-activations of DNN / RNN chains for their kernels; "
                         f"here {why}: use method='weights' or 'auto'")
    if method == "auto":
        return "conditional" if possible and conditional_cheaper(shared, width, patterns, steps) else "weights"
    return method


RETRY = 1e4  # the jitter of the second Cholesky factor, in units of delta


def _jitter(scale, order: int, width: int, dtype):
    """delta of the module docstring: 8 (m + n) eps scale, at least the smallest normal number."""
    info = jnp.finfo(dtype)
    return jnp.maximum(8.0 * (order + width) * info.eps * scale, info.tiny)


def _root(S, delta):
    """Lower-triangular L with L L^T = S + E (module docstring): the Cholesky factor of S + delta I;
    where that is not finite, of S + RETRY delta I; where that is not finite either (S far from
    positive semi-definite: not a covariance), the square root of S's diagonal, so never NaN. The
    retry is a lax.cond branch: networks run one after the other (lax.map) factor S once; vmapped
    networks compute both branches and select (measured at n = 1024, N = 256, ten layers, 2026-12-07:
    the cond costs nothing, against the ~15x slowdown an earlier version of JAX / XLA showed)."""
    eye = jnp.eye(S.shape[0], dtype=S.dtype)
    # S's lower triangle defines the matrix factored (its upper one differs from it by rounding at most);
    # JAX's factor comes back with a zero upper triangle
    jittered = S + delta * eye
    first = jax.lax.linalg.cholesky(jittered, symmetrize_input=False)
    ok = jnp.all(jnp.isfinite(first))
    # the retry's matrix is selected by the first factor's outcome (a data dependency XLA keeps; the
    # unused branch refactors the first matrix): vmapped networks compute both branches, and two
    # independent batched Cholesky factorisations running at once deadlocked XLA:CPU's thread pool
    # (each waits in JAX's ParallelBatchMap for work only the other thread could take: an RNN at
    # width 64 on 6 sequences, 4000 networks in one chunk, hung)
    S_retry = jnp.where(ok, jittered, S + RETRY * delta * eye)

    def retry(_):
        second = jax.lax.linalg.cholesky(S_retry, symmetrize_input=False)
        last = jnp.diag(jnp.sqrt(jnp.maximum(jnp.diagonal(S), delta)))
        return jnp.where(jnp.all(jnp.isfinite(second)), second, last)

    return jax.lax.cond(ok, lambda _: first, retry, None)


def input_gram(hyper, x):
    """(input_var / d) x_t x_s^T of every pair of input steps: (T_in N, T_in N), step-major blocks;
    the same for every network, computed once per chunk."""
    n_pat, t_in, dim = x.shape
    flat = jnp.swapaxes(x, 0, 1).reshape(t_in * n_pat, dim)
    hyper = dict(zip(CHAIN_HYPER, hyper))
    return hyper["input_var"] / dim * (flat @ flat.T)


def run_conditional(shared: bool, activation, gram_in, hyper, key, width: int, n_pat: int, t_in: int,
                    steps: int, dtype):
    """Hidden layers of one chain network sampled by conditioning: {"h1": (N, n), "phi1": ..., ...}, the
    TRANSPOSE of :func:`netfield.finite.sampler.run_chain`'s (n, N) values: a pattern per row (module
    docstring for the math and randomness).

    Why rows: every product is then an (N, n) by (n, N) or (N, N) by (N, n) matrix product, whose
    operands XLA:CPU reads in their stored order (phi phi^T of (256, 1024): 0.7 ms, against 2.2 ms for
    phi^T phi of the (1024, 256) transpose; measured 2026-12-07, 2 cores).

    ``gram_in``: :func:`input_gram` of the inputs. Cost: O(steps (n N^2 + N^3)) for a DNN,
    O(n N^2 steps^2 + N^3 steps^3) for an RNN; the levers are the number of inputs N and steps
    (``netfield.sample(..., method="weights")`` costs O(n^2 N steps) instead)."""
    hyper = dict(zip(CHAIN_HYPER, hyper))
    wv = jnp.asarray(hyper["weight_var"], dtype) / width
    bv = jnp.asarray(hyper["bias_var"], dtype)

    def inputs(t, s):
        """Input and bias part of the (t, s) block of the covariance (N, N)."""
        block = bv * jnp.ones((n_pat, n_pat), dtype)
        if t <= t_in and s <= t_in:
            block = block + gram_in[(t - 1) * n_pat:t * n_pat, (s - 1) * n_pat:s * n_pat]
        return block

    values = {}
    normals, phis = [], []
    factor = None  # RNN: the lower-triangular factor L of K so far
    # step t's normals: key fold_in(key, t), every step's drawn together (draws.box_muller_normals)
    all_normals = draws.box_muller_normals(draws.folded_keys(key, steps, first=1), (n_pat, width), dtype)
    for t in range(1, steps + 1):
        z = all_normals[t - 1]
        diag = inputs(t, t)
        if t > 1:
            diag = diag + wv * (phis[-1] @ phis[-1].T)
        # the jitter's scale is this step's block K_tt: the rounding of its Schur complement is relative to
        # it (L_{t,<t} L_{t,<t}^T <= K_tt), not to earlier steps, whose scale may be far larger (huge inputs
        # at step 1: a running maximum gave the later steps a jitter of 1e288 and saturated them)
        scale = jnp.max(jnp.diagonal(diag))
        if not shared or t == 1:
            low = _root(diag, _jitter(scale, n_pat, width, dtype))
            h = low @ z
            factor = low
        else:
            # block row t of K: s = 1 has no W term; s >= 2 couples phi_{t-1} with phi_{s-1}
            cross = wv * (phis[-1] @ jnp.concatenate(phis[:-1], axis=0).T) if t > 2 else None
            row = []
            for s in range(1, t):
                block = inputs(t, s)
                if s >= 2:
                    block = block + cross[:, (s - 2) * n_pat:(s - 1) * n_pat]
                row.append(block)
            row = jnp.concatenate(row, axis=1)  # (N, N (t - 1))
            past = solve_triangular(factor, row.T, lower=True).T  # L_{t,<t}
            low = _root(diag - past @ past.T, _jitter(scale, n_pat * t, width, dtype))
            h = past @ jnp.concatenate(normals, axis=0) + low @ z
            m = factor.shape[0]
            factor = jnp.block([[factor, jnp.zeros((m, n_pat), dtype)], [past, low]])
        normals.append(z)
        phi = activation.fn(h)
        phis.append(phi)
        values[f"h{t}"] = h
        values[f"phi{t}"] = phi
    return values


def conditional_flops(shared: bool, width: int, patterns: int, steps: int) -> float:
    """Approximate floating-point operations of :func:`run_conditional` for one network."""
    n, N, T = width, patterns, steps
    if not shared:
        return T * (4.0 * n * N * N + N ** 3)
    return float(sum(4.0 * n * N * N * t + (N * t) ** 2 * N for t in range(1, T + 1)))


def conditional_network_bytes(shared: bool, width: int, patterns: int, steps: int, dtype) -> int:
    """Estimated memory of one network sampled by conditioning: normals, pre-activations and
    activations of every step, and (RNN) the factor of K."""
    itemsize = jnp.dtype(dtype).itemsize
    factor = 3 * (patterns * steps) ** 2 if shared else 3 * patterns ** 2
    return (3 * steps + 2) * width * patterns * itemsize + factor * itemsize


__all__ = ["METHODS", "check_method", "conditional_cheaper", "conditional_flops", "conditional_network_bytes",
           "input_gram", "resolve_method", "run_conditional"]
