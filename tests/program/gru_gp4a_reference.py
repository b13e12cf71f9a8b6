"""Independent GP4A-style reference for the GRU kernel (test helper; numpy/scipy only, no netfield).

GRU (netfield's definition, GP4A's conventions as defaults), inputs x of shape (N, T, d), h_0 = 0:

    gz_t = W_z h_{t-1} + U_z x_t + b_z,   z_t = sig(gz_t)             update gate
    gr_t = W_r h_{t-1} + U_r x_t + b_r,   r_t = sig(gr_t)             reset gate
    gh_t = W_h (r_t * h_{t-1}) + U_h x_t + b_h,   hc_t = erf(gh_t)     candidate
    h_t  = (1 - z_t) * h_{t-1} + z_t * hc_t
    sig(u) = (1 + erf(u)) / 2;  W_* ~ N(0, weight_var/n), U_* ~ N(0, input_var/d), b_* ~ N(0, bias_var)

Wide-width limit (tensor-program master theorem, docs/theory.md section 7). Unrolling,
    h_t = sum_{j<=t} z_j hc_j prod_{l=j+1..t} (1 - z_l).
The three gate groups use different matrices, so the G-variables {gz}, {gr}, {gh} are mutually
independent Gaussians; h_{t-1} is a function of {gz}, {gh} only, hence independent of {gr}. Then

    E[h_t(a) h_s(b)] = sum_{j<=t} sum_{k<=s} E[hc_j(a) hc_k(b)]
                       * E[ z_j(a) prod_{l=j+1..t} (1 - z_l(a)) z_k(b) prod_{m=k+1..s} (1 - z_m(b)) ]
    Cov(gz_t(a), gz_s(b)) = weight_var E[h_{t-1}(a) h_{s-1}(b)] + input_var x_t(a).x_s(b)/d + bias_var
    Cov(gr_t(a), gr_s(b)) = the same expression
    Cov(gh_t(a), gh_s(b)) = weight_var E[r_t(a) r_s(b)] E[h_{t-1}(a) h_{s-1}(b)] + input_var x.x'/d + bias_var
    E[erf(u) erf(v)]      = (2/pi) arcsin(2 Kuv / sqrt((1 + 2 Kuu)(1 + 2 Kvv)))
    E[sig(u) sig(v)]      = 1/4 + E[erf(u) erf(v)] / 4

The gate factor is E[prod_i sig(s_i g_i)] with s_i = +1 (z_j, z_k) or -1 (the 1 - z factors). Since
sig(u) = P(E <= sqrt(2) u) for an independent E ~ N(0, 1), it is the orthant probability
P(W <= 0), W ~ N(0, S K S + I/2), K the covariance of the g's: closed forms for dimension <= 3
(Sheppard), scipy.stats.multivariate_normal.cdf (Genz) otherwise. Variables that appear twice
(a == b at overlapping times) are fine: each factor has its own E, so W stays non-singular.
"""

from __future__ import annotations

import numpy as np
from scipy.stats import multivariate_normal


def erf_pair(kuu, kvv, kuv):
    """E[erf(u) erf(v)] for (u, v) ~ N(0, [[kuu, kuv], [kuv, kvv]]), elementwise."""
    arg = 2.0 * kuv / np.sqrt((1.0 + 2.0 * kuu) * (1.0 + 2.0 * kvv))
    return 2.0 / np.pi * np.arcsin(np.clip(arg, -1.0, 1.0))


def sig_pair(kuu, kvv, kuv):
    """E[sig(u) sig(v)] = 1/4 + E[erf(u) erf(v)]/4 (E[erf] = 0 for a zero-mean Gaussian)."""
    return 0.25 + 0.25 * erf_pair(kuu, kvv, kuv)


def orthant(w, *, abseps=1e-6, seed=0):
    """P(W <= 0) for W ~ N(0, w): closed forms for dim <= 3, Genz integration (scipy) beyond."""
    w = np.asarray(w, dtype=np.float64)
    dim = w.shape[0]
    if dim == 1:
        return 0.5
    sd = np.sqrt(np.diag(w))
    rho = np.clip(w / np.outer(sd, sd), -1.0, 1.0)
    if dim == 2:
        return 0.25 + np.arcsin(rho[0, 1]) / (2.0 * np.pi)
    if dim == 3:
        return 0.125 + (np.arcsin(rho[0, 1]) + np.arcsin(rho[0, 2]) + np.arcsin(rho[1, 2])) / (4.0 * np.pi)
    zero = np.zeros(dim)
    mvn = multivariate_normal(mean=zero, cov=rho, seed=seed, abseps=abseps, releps=abseps)
    return float(mvn.cdf(zero))


def sig_product(k, signs, **kw):
    """E[prod_i sig(s_i g_i)] for g ~ N(0, k): the orthant probability of S k S + I/2."""
    s = np.asarray(signs, dtype=np.float64)
    return orthant(k * np.outer(s, s) + 0.5 * np.eye(len(s)), **kw)


def _shift(state):
    """E[h_{t-1}(a) h_{s-1}(b)] at index (t-1, s-1) from S[t-1, s-1] (1-based), with h_0 = 0."""
    t = state.shape[0]
    out = np.zeros_like(state)
    out[1:, 1:] = state[: t - 1, : t - 1]
    return out


def _gate(kz, n_pat, j, t, a, k, s, b, update_gate_open, **kw):
    """E[z_j(a) prod_{j<l<=t} (1 - z_l(a)) z_k(b) prod_{k<l<=s} (1 - z_l(b))] (0-based times).

    kz is the covariance of the gz's as a (T*N, T*N) matrix with index time * N + pattern.
    """
    if update_gate_open:  # z = 1: only the j = t, k = s term survives, with factor 1
        return 1.0 if (j == t and k == s) else 0.0
    idx = [l * n_pat + a for l in range(j, t + 1)] + [l * n_pat + b for l in range(k, s + 1)]
    signs = [1.0] + [-1.0] * (t - j) + [1.0] + [-1.0] * (s - k)
    return sig_product(kz[np.ix_(idx, idx)], signs, **kw)


def gru_state_kernel(x, weight_var=1.0, input_var=1.0, bias_var=1.0, *, update_gate_open=False,
                     reset_gate_open=False, abseps=1e-6, seed=0):
    """E[h_t(a) h_s(b)] as an array (T, T, N, N); time t (1-based) is stored at index t - 1.

    ``update_gate_open`` / ``reset_gate_open`` replace z_t / r_t by 1 identically (with both, the GRU
    is the simple erf-RNN h_t = erf(W h_{t-1} + U x_t + b)). ``abseps`` is the absolute accuracy of
    the Genz orthant probabilities (dimension > 3); the closed forms are exact.
    """
    x = np.asarray(x, dtype=np.float64)
    n_pat, n_t, d = x.shape
    gram = np.einsum("atd,bsd->tsab", x, x) / d  # x_t(a).x_s(b)/d at (t-1, s-1, a, b)
    drive = input_var * gram + bias_var
    state = np.zeros((n_t, n_t, n_pat, n_pat))

    def flat(k4):  # (T, T, N, N) -> (T*N, T*N) with index t*N + a
        return k4.transpose(0, 2, 1, 3).reshape(n_t * n_pat, n_t * n_pat)

    for m in range(n_t):  # fill the entries with max(t, s) = m (0-based); they need only smaller ones
        prev = _shift(state)
        kz = flat(weight_var * prev + drive)
        if reset_gate_open:
            rr = np.ones_like(prev)
        else:
            kr = weight_var * prev + drive
            diag = np.einsum("ttaa->ta", kr)
            rr = sig_pair(diag[:, None, :, None], diag[None, :, None, :], kr)
        kh = weight_var * rr * prev + drive
        dh = np.einsum("ttaa->ta", kh)
        hc = erf_pair(dh[:, None, :, None], dh[None, :, None, :], kh)  # E[hc_j(a) hc_k(b)]
        for t in range(m + 1):
            for s in range(m + 1):
                if max(t, s) != m:
                    continue
                for a in range(n_pat):
                    for b in range(n_pat):
                        if (t, a) > (s, b):  # symmetry: S[t, s][a, b] = S[s, t][b, a]
                            continue
                        val = sum(hc[j, k, a, b] * _gate(kz, n_pat, j, t, a, k, s, b, update_gate_open,
                                                         abseps=abseps, seed=seed)
                                  for j in range(t + 1) for k in range(s + 1))
                        state[t, s, a, b] = state[s, t, b, a] = val
    return state


def gru_readout_kernel(x, readout_var=1.0, readout_bias_var=0.0, **kw):
    """(N, N) readout kernel readout_var * E[h_T(a) h_T(b)] + readout_bias_var."""
    state = gru_state_kernel(x, **kw)
    return readout_var * state[-1, -1] + readout_bias_var
