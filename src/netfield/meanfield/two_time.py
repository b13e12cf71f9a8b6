"""All two-time blocks C(t, s) of a DNN / RNN chain, each distinct block computed once (docs/theory.md 2.2).

    C(t, 1) = bias_var + input_var x_t . x_1 / d
    C(t, s) = bias_var + input_var x_t . x_s / d + weight_var E[phi phi](D_{t-1}, D_{s-1}, C(t-1, s-1))

C(t, s) depends only on C(t-1, s-1): the blocks of one lag k = t - s form an independent chain
C(k+1, 1) -> C(k+2, 2) -> ... of T - k blocks, and C(s, t) = C(t, s)^T. So an RNN needs the T (T + 1) / 2
blocks of lags 0..T-1, not all T^2. They are computed lag by lag, vectorised over lags: lag k (T - k
blocks) and lag T - 1 - k (k + 1 blocks) share a slot of T + 1 steps, so one ``lax.scan`` of T + 1 steps
over ceil(T / 2) slots evaluates every distinct block once (T odd: the middle lag's slot repeats its
lag in its second half). Each step writes its blocks, and their transposes above the diagonal, into
the (T, T, N, N) result carried by the scan (updated in place). A DNN (independent weights per layer)
has only lag 0; the rest is zero. The input Gram blocks x_t . x_s / d are computed in the step that
needs them (the drive is fused: no (N T)^2 token Gram matrix).

Measured (2-core VM, erf, T = 50, N = 200, d = 64, warm, best of 5 in three fresh processes each):
0.51-0.63 s for the earlier recursion over rows of all T^2 blocks, 0.42-0.49 s lag by lag (numpy's
causal recursion, benchmarks/gp4a_style.py: 0.71-0.75 s). About half of it is the 800 MB result
itself (fresh pages, zeroed, then written); the expectations and Gram blocks alone take 0.23 s.

The diagonal entries C(t, t)(a, a) are the exact variances D_t(a) (``diagonals``), as everywhere else.
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .._runtime.vector_width import wide_vector_options
from ..gauss.activations import Activation
from .factorisations import factorisation


def schedule(steps: int, shared: bool):
    """(t, s): ``t[j, i]``, ``s[j, i]`` the block (0-based, t >= s) that slot i computes at scan step j.
    RNN: slot i runs lag i (steps j < T - i, s = j), then lag T - 1 - i (s = j - (T - i)); T odd: the
    middle slot's second half repeats its own lag (the same numbers, written again). DNN: lag 0."""
    T = steps
    if not shared:
        t = np.arange(T)[:, None]
        return t, t.copy()
    slots = (T + 1) // 2
    j = np.arange(T + 1)[:, None]
    i = np.arange(slots)[None, :]
    first = j < T - i
    lag = np.where(first, i, T - 1 - i)
    s = np.where(first, j, j - (T - i))
    return lag + s, s


@lru_cache(maxsize=32)
def lag_recursion(act: Activation, steps: int, t_in: int, shared: bool):
    """Jitted ``run(hyper, x, diag) -> C`` of shape (T, T, N, N) for inputs x (N, T, d) (zero after step
    ``t_in``), ``hyper`` = (weight_var, bias_var, input_var, ...) and ``diag`` (T, N) the variances D_t."""
    prep, entry, _ = factorisation(act)
    t_of, s_of = schedule(steps, shared)

    @partial(jax.jit, compiler_options=wide_vector_options())
    def run(hyper, x, diag):
        wv, bv, iv = hyper[0], hyper[1], hyper[2]
        n, dim = x.shape[0], x.shape[2]
        preps = prep(diag)  # each (T, N)
        xs = jnp.swapaxes(x, 0, 1)  # (T, N, d)
        eye = jnp.eye(n, dtype=bool)

        def step(state, ts):
            carry, out = state
            t, s = ts  # (slots,) each
            start = s == 0
            pa = tuple(p[jnp.maximum(t - 1, 0)][:, :, None] for p in preps)
            pb = tuple(p[jnp.maximum(s - 1, 0)][:, None, :] for p in preps)
            rec = jnp.where(start[:, None, None], 0.0, wv * entry(carry, pa, pb))
            if t_in == 1:  # static inputs: only x_1 . x_1 is non-zero
                gram = jnp.where(((t == 0) & (s == 0))[:, None, None], xs[0] @ xs[0].T / dim, 0.0)
            else:
                gram = jnp.einsum("mad,mbd->mab", xs[t], xs[s]) / dim
            block = bv + iv * gram + rec
            block = jnp.where(eye & (t == s)[:, None, None], diag[t][:, :, None], block)
            out = out.at[t, s].set(block, unique_indices=True)
            if shared:
                out = out.at[s, t].set(jnp.swapaxes(block, -1, -2))
            return (block, out), None

        slots = t_of.shape[1]
        init = (jnp.zeros((slots, n, n), x.dtype), jnp.zeros((steps, steps, n, n), x.dtype))
        (_, out), _ = jax.lax.scan(step, init, (jnp.asarray(t_of), jnp.asarray(s_of)))
        return out

    return run


__all__ = ["lag_recursion", "schedule"]
