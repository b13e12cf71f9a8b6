"""A plain numpy recursion for the erf-RNN two-time kernel (the GP4A-style baseline; docs/theory.md 2.2).

    C_{ts}^{ab} = bias_var + input_var x_{t,a} . x_{s,b} / d
                + weight_var (2/pi) arcsin( 2 C_{t-1,s-1}^{ab}
                                            / sqrt((1 + 2 C_{t-1,t-1}^{aa}) (1 + 2 C_{s-1,s-1}^{bb})) )

for all steps t, s = 1..T and all pattern pairs (a, b); the arcsin term is absent when t = 1 or
s = 1. The bias and the input matrix are shared over time (one b, one U), so the first two terms
appear at every (t, s); x_t = 0 for steps after the input sequence ends (an (N, d) input enters at
step 1 only).

Two algorithms for the same numbers:

- :func:`two_time_kernel` - causal: step t computes the blocks C_{t,s}, s <= t, from C_{t-1, s-1}
  in one vectorised numpy expression, and mirrors them; every block is computed once. This is the
  baseline the benchmark reports.
- :func:`two_time_kernel_sweep` - what GP4A's ``RNNtheory.thrnn`` does: apply the whole map, shifted
  one step in time, to the full (N T) x (N T) matrix T times (each sweep makes one more step exact).
  About T/2 times more arithmetic; kept for comparison.

:func:`ntk_kernel` is the neural tangent kernel of the same erf-RNN read out at the last step
(with its equal-time NNGP recursion; independent of the two-time blocks above), see its docstring.

Note: GP4A's function returns the *post-activation* kernel times the readout variance; here both
return the pre-activation covariance C, which is what ``netfield.mean_field(...).preactivation``
gives. Deliberately independent of netfield: numpy only.
"""

from __future__ import annotations

import numpy as np


def _as_sequences(x, steps: int | None):
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        x = x[:, None, :]  # input at step 1 only
    if x.ndim != 3:
        raise ValueError(f"x must have shape (N, d) or (N, T, d), got {x.shape}")
    n, t_in, d = x.shape
    steps = t_in if steps is None else int(steps)
    if steps < t_in:
        raise ValueError(f"steps must be >= the sequence length {t_in}, got {steps}")
    padded = np.zeros((n, steps, d))
    padded[:, :t_in] = x
    return padded, steps


def erf_pair(var_a, var_b, cov):
    """E[erf(u) erf(v)] for (u, v) ~ N(0, [[var_a, cov], [cov, var_b]]) (docs/theory.md 2.1)."""
    return (2.0 / np.pi) * np.arcsin(2.0 * cov / np.sqrt((1.0 + 2.0 * var_a) * (1.0 + 2.0 * var_b)))


def erf_dot_pair(var_a, var_b, cov):
    """E[erf'(u) erf'(v)] = (4/pi) / sqrt((1 + 2 var_a)(1 + 2 var_b) - 4 cov^2) for (u, v) as in :func:`erf_pair`."""
    return (4.0 / np.pi) / np.sqrt((1.0 + 2.0 * var_a) * (1.0 + 2.0 * var_b) - 4.0 * cov * cov)


def two_time_kernel(x, weight_var: float, bias_var: float, input_var: float, steps: int | None = None):
    """All pre-activation covariances C_{ts}^{ab} of an erf-RNN, causal recursion.

    Args:
        x: (N, T_in, d) input sequences (x_t enters at step t) or (N, d) (enters at step 1 only).
        weight_var, bias_var, input_var: variances of W, b and U (inputs divided by d).
        steps: number of steps T (default T_in).

    Returns:
        (T, T, N, N) array C with C[t - 1, s - 1, a, b] = Cov(h_t(a), h_s(b)).
    """
    x, T = _as_sequences(x, steps)
    n, _, d = x.shape
    # drive[t, s] = bias_var + input_var x_t . x_s / d, for all pattern pairs
    xt = np.ascontiguousarray(x.transpose(1, 0, 2))  # (T, N, d)
    C = np.empty((T, T, n, n))
    var = np.empty((T, n))  # var[t] = C_tt^aa
    for t in range(T):
        # gram[s, a, b] = x_t(a) . x_s(b) / d for s <= t, as one matrix product
        gram = (xt[t] @ xt[: t + 1].reshape(-1, d).T).reshape(n, t + 1, n).transpose(1, 0, 2) / d
        row = bias_var + input_var * gram
        if t >= 1:
            prev = C[t - 1, :t]  # C_{t-1, s-1} for s = 1..t (0-based s-1 = 0..t-1)
            row[1:] += weight_var * erf_pair(var[t - 1][None, :, None], var[:t][:, None, :], prev)
        C[t, : t + 1] = row
        C[: t + 1, t] = row.transpose(0, 2, 1)
        var[t] = np.diagonal(row[t])
    return C


def two_time_kernel_sweep(x, weight_var: float, bias_var: float, input_var: float, steps: int | None = None):
    """Same quantity as :func:`two_time_kernel` by GP4A's algorithm: T sweeps of the shifted map over
    the full (N T) x (N T) matrix of (pattern, step) tokens. Returns (T, T, N, N)."""
    x, T = _as_sequences(x, steps)
    n, _, d = x.shape
    tokens = x.reshape(n * T, d)  # token index = a * T + t
    drive = bias_var + input_var * (tokens @ tokens.T) / d
    first = np.arange(n) * T  # tokens at t = 1: no recurrent term
    C = drive.copy()
    for _ in range(T - 1):
        diag = np.diagonal(C)
        post = np.zeros_like(C)
        # shift by one step: token (a, t) receives the post-activation of token (a, t - 1)
        post[1:, 1:] = erf_pair(diag[:-1, None], diag[None, :-1], C[:-1, :-1])
        post[first, :] = 0.0
        post[:, first] = 0.0
        C = drive + weight_var * post
    return C.reshape(n, T, n, T).transpose(1, 3, 0, 2).copy()


def ntk_kernel(x, weight_var: float, bias_var: float, input_var: float, readout_var: float,
               readout_bias_var: float, steps: int | None = None):
    """NNGP and NTK (NTK parameterization) of an erf-RNN read out at the last step T, for all pattern pairs.

    Equal-time recursion (one shared W, U, b; x_t = 0 after the sequence ends, so an (N, d) input
    gives the DNN with T hidden layers)::

        K_1 = bias_var + input_var x_1 . x_1' / d,                     Theta_1 = K_1
        K_t = bias_var + input_var x_t . x_t' / d + weight_var E[phi(u) phi(v)]
        Theta_t = K_t + weight_var E[phi'(u) phi'(v)] Theta_{t-1},     (u, v) ~ N(0, K_{t-1} on {a, b})
        K_out = readout_bias_var + readout_var E[phi phi](K_T)
        Theta_out = K_out + readout_var E[phi' phi'](K_T) Theta_T

    (Weight sharing over time adds no cross-time terms to the infinite-width NTK of sequences of equal
    length: the backward signals of different steps are asymptotically uncorrelated.)

    Returns:
        (K_out, Theta_out), two (N, N) arrays.
    """
    x, T = _as_sequences(x, steps)
    d = x.shape[2]
    k = bias_var + input_var * (x[:, 0] @ x[:, 0].T) / d
    theta = k.copy()
    for t in range(1, T + 1):
        diag = np.diagonal(k)
        va, vb = diag[:, None], diag[None, :]
        if t < T:
            new = bias_var + input_var * (x[:, t] @ x[:, t].T) / d + weight_var * erf_pair(va, vb, k)
            theta = new + weight_var * erf_dot_pair(va, vb, k) * theta
        else:  # the readout
            new = readout_bias_var + readout_var * erf_pair(va, vb, k)
            theta = new + readout_var * erf_dot_pair(va, vb, k) * theta
        k = new
    return k, theta


def ntk_diagonal(x, activation: str, depth: int, weight_var: float, bias_var: float, input_var: float,
                 readout_var: float, readout_bias_var: float):
    """Diagonal Theta(a, a) of the NTK (NTK parameterization) of the erf or relu DNN with ``depth``
    hidden layers, x of shape (N, d): the recursion of :func:`ntk_kernel` at a = b, where the
    expectations are exact one-variable forms (erf: E[phi^2] = (2/pi) arcsin(2q / (1 + 2q)),
    E[phi'^2] = (4/pi) / sqrt(1 + 4q); relu: q / 2 and 1 / 2), with no angle to round. The benchmark
    checks the diagonal against this: neural-tangents' relu NTK diagonal can be off by ~1e-8 (its
    angle arccos(K_ab / sqrt(K_aa K_bb)) is ~1e-8 instead of 0 where the ratio rounds below 1)."""
    forms = {"erf": (lambda q: (2.0 / np.pi) * np.arcsin(2.0 * q / (1.0 + 2.0 * q)),
                     lambda q: (4.0 / np.pi) / np.sqrt(1.0 + 4.0 * q)),
             "relu": (lambda q: 0.5 * q, lambda q: 0.5 + 0.0 * q)}
    if activation not in forms:
        raise ValueError(f"activation must be erf or relu, got {activation!r}")
    phi2, dphi2 = forms[activation]
    x = np.asarray(x, dtype=np.float64)
    q = bias_var + input_var * np.einsum("ad,ad->a", x, x) / x.shape[1]
    theta = q.copy()
    for layer in range(depth):
        wv, bv = (weight_var, bias_var) if layer < depth - 1 else (readout_var, readout_bias_var)
        q, theta = bv + wv * phi2(q), bv + wv * phi2(q) + wv * dphi2(q) * theta
    return theta


def expectation_count(n_patterns: int, steps: int) -> int:
    """Number of distinct 2-D Gaussian expectations in all C_{ts}^{ab}: one per unordered pair of
    tokens (t, a), (s, b) with t, s >= 2 (C is symmetric under (t, a) <-> (s, b))."""
    m = n_patterns * (steps - 1)
    return m * (m + 1) // 2
