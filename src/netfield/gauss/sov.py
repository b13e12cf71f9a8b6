r"""Orthant probabilities by separation of variables, batched in JAX (docs/tensor_programs.md section 3, B6).

For W ~ N(0, L L^T) with L lower triangular, Genz's separation of variables (Genz 1992) writes
W = L y, y ~ N(0, I), and integrates the constraints W_1 <= 0, W_2 <= 0, ... one variable at a time:
with mu_i = sum_{j<i} L_ij y_j the conditional mean of W_i given y_1..y_{i-1},

    e_i = Phi(-mu_i / L_ii) = P(W_i <= 0 | y_<i),    y_i = Phi^{-1}(u_i e_i),   u_i ~ U(0, 1),
    P(W_1 <= 0, ..., W_n <= 0) = E_u[e_1 e_2 ... e_n].                                           (M7)

Each y_i is drawn from its conditional law *given the constraint*, so the integrand is smooth and
bounded by 1 and its quasi-Monte-Carlo error falls nearly like 1/P: orders of magnitude below
that of the same points on the unconstrained integrand (eq. M2). Because the Cholesky factor of a
leading block is the leading block of the factor, one pass also gives every *prefix* probability
f_i = e_1 ... e_i; and P(W_1..W_{i-1} <= 0, W_i > 0) = f_{i-1} (1 - e_i). :func:`sov_accumulate`
returns, per batch element, the weighted sum of these "first exceedance" probabilities,

    A = sum_{i: kind_i = 2} weight_i P(W_j <= 0 for all j < i with kind_j > 0, W_i > 0),       (M8)

with kind 0 (padding: ignored), 1 (constraint W_i <= 0) and 2 (record then constrain). The GRU
gate factors are such sums (docs/tensor_programs.md, back-end B6).

The estimate is a smooth function of L and the weights for fixed uniforms, so JAX derivatives of
the returned estimate are exact derivatives of the estimate (like eq. D1 for M2).

Cost: batch x points x D x (D + 2 special functions); the working set is kept in cache by
processing ``chunk`` batch elements x ``block`` points at a time.
"""

from __future__ import annotations

from .multivariate import sobol_uniforms

__all__ = ["sobol_uniforms", "sov_accumulate"]

_TINY = 1e-300  # u e is clipped here before Phi^{-1}: e underflows only where the prefix mass is 0
_SQRT_HALF = 0.7071067811865476


# Acklam's rational approximation of Phi^{-1} (relative error < 1.2e-9 on (0, 1), measured against
# scipy.special.ndtri down to 1e-300): a quarter of the cost of jax.scipy.special.ndtri, and its error
# moves a separation-of-variables estimate by ~1e-9 of its value (one draw per variable)
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02, 1.383577518672690e+02,
      -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02, 6.680131188771972e+01,
      -1.328068155288572e+01, 1.0)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00, -2.549732539343734e+00,
      4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00, 3.754408661907416e+00, 1.0)
_P_LOW = 0.02425


def _horner(coef, x):
    out = coef[0]
    for c in coef[1:]:
        out = out * x + c
    return out


def phi_inverse(p):
    """Phi^{-1}(p) for p in (0, 1) (Acklam; relative error < 1.2e-9)."""
    import jax.numpy as jnp

    q = p - 0.5
    r = q * q
    central = _horner(_A, r) * q / _horner(_B, r)
    s = jnp.sqrt(-2.0 * jnp.log(jnp.minimum(p, 1.0 - p)))
    tail = _horner(_C, s) / _horner(_D, s)
    return jnp.where(jnp.abs(q) <= 0.5 - _P_LOW, central, jnp.where(q < 0, tail, -tail))


def _phi(x):
    """Phi(x) = erfc(-x / sqrt 2) / 2: one erfc, accurate in both tails."""
    import jax.scipy.special as jsp

    return 0.5 * jsp.erfc(-_SQRT_HALF * x)


def sov_accumulate(chol, kind, weight, uniforms, *, chunk: int = 512, block: int = 256):
    """Estimates (R, M) of eq. (M8), one per replicate r and batch element m.

    chol: (R, M, D, D) lower-triangular factors (padding rows/columns: the identity);
    kind: (M, D) integers 0 / 1 / 2 (see the module docstring), the same for every replicate; positions
    after an element's last non-zero kind are skipped where a whole chunk ends there (sort the batch by
    length to make use of it);
    weight: (R, M, D), used where kind == 2;
    uniforms: (R, P, D) in (0, 1), replicate r's point set (P a multiple of ``block``).
    JAX-traceable (called inside jitted kernels) and differentiable in chol and weight.
    """
    import jax
    import jax.numpy as jnp

    chol, kind, weight = jnp.asarray(chol), jnp.asarray(kind), jnp.asarray(weight)
    R, M, D, _ = chol.shape
    P = uniforms.shape[1]
    block = min(block, P)
    nblk = P // block
    chunk = max(1, min(chunk, M))
    pad = (-M) % chunk
    if pad:  # identity factors and zero weights: padded elements estimate 0
        eye = jnp.broadcast_to(jnp.eye(D), (R, pad, D, D))
        chol = jnp.concatenate([chol, eye], axis=1)
        kind = jnp.concatenate([kind, jnp.zeros((pad, D), kind.dtype)], axis=0)
        weight = jnp.concatenate([weight, jnp.zeros((R, pad, D))], axis=1)
    nch = (M + pad) // chunk
    lt = jnp.swapaxes(chol, -1, -2).reshape(R * nch, chunk, D, D)  # lt[., j, i] = L[i, j]
    diag = jnp.diagonal(chol, axis1=-2, axis2=-1).reshape(R * nch, chunk, D)
    kinds = jnp.broadcast_to(kind.reshape(nch, chunk, D), (R, nch, chunk, D)).reshape(R * nch, chunk, D)
    weights = weight.reshape(R * nch, chunk, D)
    reps = jnp.repeat(jnp.arange(R), nch)
    ublocks = jnp.asarray(uniforms).reshape(R, nblk, block, D)
    skipping = M > chunk  # several chunks: each skips the positions after its longest element

    def one_chunk(args):
        lt_c, d_c, k_c, w_c, r = args
        active = k_c > 0
        record = k_c == 2
        length = jnp.max(jnp.where(jnp.any(active, axis=0), jnp.arange(1, D + 1), 0))

        def one_block(total, u):

            def step(i, state):
                mean, f, acc = state
                e = _phi(-mean[:, :, i] / d_c[:, i, None])
                acc = acc + jnp.where(record[:, i, None], f * (1.0 - e) * w_c[:, i, None], 0.0)
                f = jnp.where(active[:, i, None], f * e, f)
                y = jnp.where(active[:, i, None],
                              phi_inverse(jnp.maximum(u[None, :, i] * e, _TINY)), 0.0)
                return mean + y[:, :, None] * lt_c[:, i, None, :], f, acc

            body = step
            if skipping:  # positions past the chunk's longest element: nothing to do
                def body(i, state):
                    return jax.lax.cond(i < length, step, lambda i, s: s, i, state)

            state = (jnp.zeros((chunk, block, D)), jnp.ones((chunk, block)), jnp.zeros((chunk, block)))
            _, _, acc = jax.lax.fori_loop(0, D, body, state)
            return total + acc.sum(axis=1), None

        if nblk == 1:  # no loop: smaller programs compile (and differentiate) faster
            total = one_block(jnp.zeros(chunk), ublocks[r, 0])[0]
        else:
            total, _ = jax.lax.scan(one_block, jnp.zeros(chunk), ublocks[r])
        return total / P

    if R * nch == 1:
        out = one_chunk((lt[0], diag[0], kinds[0], weights[0], 0))[None]
    else:
        out = jax.lax.map(one_chunk, (lt, diag, kinds, weights, reps))
    return out.reshape(R, nch * chunk)[:, :M]
