"""Hermite (Mehler) series for E[phi(u) phi(v)] of smooth activations over whole kernel matrices.

With u = sqrt(q1) z1, v = sqrt(q2) z2, corr(z1, z2) = c, Mehler's formula gives

    E[phi(u) phi(v)] = sum_k a_k(q1) a_k(q2) c^k,     a_k(q) = E[phi(sqrt(q) z) He_k(z)] / sqrt(k!)   (S1)

so a kernel matrix costs one 1-D coefficient table per row / column (N x M x K) plus a Horner sum
per entry (2K flops) instead of a 2-D quadrature per entry. The truncation after K terms is bounded
by Parseval (sum_k a_k^2 = E[phi^2]):

    |remainder| <= sqrt(T_K(q1) T_K(q2)) |c|^{K+1},   T_K(q) = E[phi(sqrt q z)^2] - sum_{k<=K} a_k(q)^2   (S2)

The coefficients use an M-point Gauss-Hermite rule (Golub-Welsch), under which (S1) and Parseval
hold exactly for k < M; its error for phi analytic in a strip of half-width w (tanh: pi/2) decays
like exp(-2 (w / sqrt q) sqrt(2M)). K is chosen per call as the smallest of ``ORDERS`` whose bound
(S2) at c = 1 is below ``TOLERANCE`` relative to E[phi^2]; when none is (very large variances), the
caller falls back to the panel rule. Kinked activations never use this path (their coefficients
decay algebraically).
"""

from __future__ import annotations

from functools import lru_cache, partial

import jax
import jax.numpy as jnp
import numpy as np

from .activations import Activation, correlation

NODES = 600
ORDERS = (32, 64, 128, 256, 512)
TOLERANCE = 1e-10


@lru_cache(maxsize=4)
def hermite_rule(m: int = NODES, cut: float = 12.5):
    """Nodes |z| <= cut of the m-point probabilists' Gauss-Hermite rule and their weights.

    Nodes from the Jacobi matrix (Golub-Welsch); weights from the Christoffel function
    w_j = 1 / sum_{k<m} h_k(z_j)^2, which is accurate where eigenvector components underflow.
    Nodes beyond ``cut`` carry weight < 1e-33 and are dropped.
    """
    from scipy.linalg import eigh_tridiagonal  # scipy.linalg (~0.1 s at import) loads on first use

    off = np.sqrt(np.arange(1, m))
    nodes = eigh_tridiagonal(np.zeros(m), off, eigvals_only=True)
    nodes = nodes[np.abs(nodes) <= cut]
    h_prev, h = np.zeros_like(nodes), np.ones_like(nodes)
    total = h * h
    for k in range(1, m):
        h_prev, h = h, (nodes * h - np.sqrt(k - 1) * h_prev) / np.sqrt(k)
        total += h * h
    return nodes, 1.0 / total


@lru_cache(maxsize=8)
def hermite_values(k_max: int, m: int = NODES):
    """h_k(z_j) = He_k(z_j) / sqrt(k!) at the rule's nodes, k = 0..k_max: shape (k_max + 1, m)."""
    z, _ = hermite_rule(m)
    h = np.empty((k_max + 1, z.size))
    h[0] = 1.0
    if k_max >= 1:
        h[1] = z
    for k in range(1, k_max):  # h_{k+1} = (z h_k - sqrt(k) h_{k-1}) / sqrt(k + 1)
        h[k + 1] = (z * h[k] - np.sqrt(k) * h[k - 1]) / np.sqrt(k + 1)
    return h


@partial(jax.jit, static_argnames=("act", "k_max"))
def coefficients(act: Activation, q, k_max: int):
    """a_k(q) of (S1) for a vector of variances q: shape (len(q), k_max + 1), and E[phi^2] (len(q),)."""
    z, w = hermite_rule()
    f = act.fn(jnp.sqrt(jnp.maximum(q, 0.0))[:, None] * z[None, :])   # (Q, M)
    fw = f * w[None, :]
    a = fw @ jnp.asarray(hermite_values(k_max)).T                      # (Q, K + 1)
    return a, jnp.sum(fw * f, axis=1)


def choose_order(act: Activation, q_values: np.ndarray) -> int | None:
    """Smallest order in ORDERS whose Parseval tail (S2) meets TOLERANCE for every q; None if none."""
    q = np.unique(np.asarray(q_values, dtype=float))
    a, second = (np.asarray(v) for v in coefficients(act, jnp.asarray(q), ORDERS[-1]))
    for k in ORDERS:
        if np.all(relative_tail(a[:, :k + 1], second) <= TOLERANCE):
            return k
    return None


def relative_tail(a: np.ndarray, second: np.ndarray) -> np.ndarray:
    """Parseval tail (S2) relative to E[phi^2]: T_K(q) / E[phi^2] per row, for coefficients
    a (rows, K + 1) and second moments E[phi^2] (rows,)."""
    return np.maximum(second - np.sum(a * a, axis=1), 0.0) / np.maximum(second, 1e-300)


@partial(jax.jit, static_argnames=("act", "order"))
def pair_matrix(act: Activation, q1, q2, cov, order: int):
    """E[phi(u_a) phi(v_b)] for row variances q1 (N1,), column variances q2 (N2,), cov (N1, N2) (S1)."""
    a1, _ = coefficients(act, q1, order)
    a2, _ = coefficients(act, q2, order)
    c = correlation(q1[:, None], q2[None, :], cov)

    def horner(acc, k):
        return acc * c + a1[:, k][:, None] * a2[:, k][None, :], None

    start = a1[:, order][:, None] * a2[:, order][None, :]
    total, _ = jax.lax.scan(horner, start, jnp.arange(order - 1, -1, -1))
    return total


def applies(act: Activation) -> bool:
    """Smooth activations without a closed form (no kinks, no jumps)."""
    return not act.has_closed_form and not act.kinks and not act.jumps
