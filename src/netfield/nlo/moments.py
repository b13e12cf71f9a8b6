"""Gaussian moments of activation products on up to four nodes, with derivatives (docs/nlo.md N6).

    E(theta) = < prod_{slots} phi(h_{node(slot)}) >,   h ~ N(0, S(theta)),   S(theta) k x k symmetric,

where theta are the k (k + 1) / 2 upper-triangle entries of S (so d/d theta_pq is the derivative with
respect to one covariance *entry*, moving S_pq and S_qp together: the convention of docs/theory.md 4.1, where
Price's theorem gives d<phi(u) phi(v)>/dC_uv = <phi'(u) phi'(v)>). The integral is a tensor-product
rule in z with h = L z, L = chol(S), evaluated nested (node p needs z_1..z_p only): derivatives by JAX autodiff through the Cholesky factor
are the exact derivatives of the rule, i.e. Price's theorem applied under the same quadrature.

Rules per dimension (k = 1..4): composite Gauss-Legendre with panels of width 0.5 / 1 in z (k = 1, 2;
320 / 128 nodes), Gauss-Hermite with 40 / 28 nodes (k = 3, 4). Measured for tanh at variance 3 with
random correlations: error < 1e-12 (k = 1), < 1e-9 (k = 2), ~5e-6 (k = 3), ~3e-5 absolute (k = 4) in
values and ~10x that in first derivatives (tests/nlo/test_nlo_theory.py); smaller variances converge faster,
and these errors are far below the statistical errors of any simulation they are compared with. Activations with
kinks or jumps (relu, sign, ...) are not smooth enough for this rule and are rejected by the caller.
"""

from __future__ import annotations

from functools import cache

import jax
import jax.numpy as jnp
import numpy as np

ORDERS = {1: 320, 2: 128, 3: 40, 4: 28}
PANEL_RULE = {1: (10.0, 40), 2: (8.0, 16)}  # k: (truncation |z| <= Z, number of panels); 8 nodes per panel


def _line_rule(k: int, m: int):
    """1-D rule for the standard normal: composite Gauss-Legendre for k <= 2 (m = panels x 8), else Gauss-Hermite.

    Gauss-Hermite converges slowly for tanh-like activations (poles near the real axis: error ~ exp(-c sqrt(m)));
    panels of width <= 1 in z converge geometrically and are used where the node count allows it.
    """
    if k in PANEL_RULE and m == ORDERS[k]:
        Z, panels = PANEL_RULE[k]
        g, gw = np.polynomial.legendre.leggauss(m // panels)
        edges = np.linspace(-Z, Z, panels + 1)
        mid, half = (edges[1:] + edges[:-1]) / 2, (edges[1:] - edges[:-1]) / 2
        x = (mid[:, None] + half[:, None] * g[None]).ravel()
        w = (half[:, None] * gw[None]).ravel() * np.exp(-x**2 / 2) / np.sqrt(2 * np.pi)
        return x, w
    x, w = np.polynomial.hermite_e.hermegauss(m)
    return x, w / w.sum()


@cache
def gauss_hermite(k: int, order: int | None = None):
    """Tensor-product rule for the k-dimensional standard normal: (nodes (Q, k), weights (Q,)) summing to ~1."""
    m = ORDERS[k] if order is None else int(order)
    x, w = _line_rule(k, m)
    keep = w > 1e-300 ** (1.0 / k)  # nodes whose weight underflows in the k-fold product carry nothing
    x, w = x[keep], w[keep]
    grids = np.meshgrid(*([x] * k), indexing="ij")
    wts = np.meshgrid(*([w] * k), indexing="ij")
    nodes = np.stack([g.ravel() for g in grids], axis=1)
    weights = np.prod(np.stack([g.ravel() for g in wts], axis=1), axis=1)
    return nodes, weights


def triu_pairs(k: int):
    """(rows, cols) of the upper triangle of a k x k matrix, the order of theta."""
    return np.triu_indices(k)


def _symmetric(theta, k: int):
    rows, cols = triu_pairs(k)
    S = jnp.zeros((k, k), theta.dtype).at[rows, cols].set(theta)
    return S.at[cols, rows].set(theta)


def _small_cholesky(S, k: int):
    """Lower Cholesky factor of a k x k matrix (k <= 4) with elementwise JAX ops.

    No LAPACK call: vmapped ``jnp.linalg.cholesky`` becomes a batched LAPACK kernel, and jaxlib's batched
    kernels can deadlock XLA's intra-op pool on 2-core machines (see netfield.gp.classify._jax_cholesky).
    """
    L = [[None] * k for _ in range(k)]
    for j in range(k):
        diag = S[j, j] - sum(L[j][m] ** 2 for m in range(j))
        L[j][j] = jnp.sqrt(diag)
        for i in range(j + 1, k):
            L[i][j] = (S[i, j] - sum(L[i][m] * L[j][m] for m in range(j))) / L[j][j]
    zero = jnp.zeros((), S.dtype)
    return jnp.stack([jnp.stack([L[i][j] if j <= i else zero for j in range(k)]) for i in range(k)])


@cache
def line_rule(k: int, order: int | None = None):
    """The 1-D rule (x (m,), w (m,)) used in each of the k dimensions."""
    return _line_rule(k, ORDERS[k] if order is None else int(order))


@cache
def _moment_fn(phi, k: int, slots: tuple, order: int | None):
    """theta -> E(theta) for one slot pattern (a tuple of node positions 0..k-1).

    Nested evaluation: with h = L z (L lower triangular) node p depends on z_1..z_p only, so
    E = sum_{z_1} w phi(h_1)^{m_1} sum_{z_2} w phi(h_2)^{m_2} ... needs m + m^2 + ... + m^k activations
    instead of k m^k (m_p = multiplicity of node p among the slots).
    """
    x, w = (jnp.asarray(a) for a in line_rule(k, order))
    mult = np.bincount(np.asarray(slots, int), minlength=k)
    m = x.shape[0]

    def moment(theta):
        L = _small_cholesky(_symmetric(theta, k), k)
        levels = []
        for p in range(k):  # h_p on the grid of (z_1..z_p): shape (m,) * (p + 1)
            h = 0.0
            for q in range(p + 1):
                shape = [1] * (p + 1)
                shape[q] = m
                h = h + L[p, q] * x.reshape(shape)
            levels.append(phi(h) ** int(mult[p]))
        acc = levels[-1]
        for p in range(k - 1, -1, -1):
            acc = acc @ w  # integrate z_{p+1}
            if p > 0:
                acc = acc * levels[p - 1]
        return acc

    return moment


@cache
def value_and_grad_fn(phi, k: int, slots: tuple, order: int | None = None):
    """Jitted, vmapped (thetas (B, k(k+1)/2)) -> (values (B,), gradients (B, k(k+1)/2))."""
    return jax.jit(jax.vmap(jax.value_and_grad(_moment_fn(phi, k, slots, order))))


@cache
def value_grad_hessian_fn(phi, k: int, slots: tuple, order: int | None = None):
    """Jitted, vmapped thetas -> (values, gradients, Hessians (B, p, p))."""
    f = _moment_fn(phi, k, slots, order)
    return jax.jit(jax.vmap(lambda th: (f(th), jax.grad(f)(th), jax.hessian(f)(th))))


def canonical(nodes_in_slots):
    """Distinct nodes (sorted) and the slot pattern that points into them: (7, 3, 7, 9) -> ((3, 7, 9), (1, 0, 1, 2))."""
    distinct = tuple(sorted({int(v) for v in nodes_in_slots}))
    where = {v: i for i, v in enumerate(distinct)}
    return distinct, tuple(where[int(v)] for v in nodes_in_slots)


__all__ = ["ORDERS", "canonical", "gauss_hermite", "triu_pairs", "value_and_grad_fn", "value_grad_hessian_fn"]
