r"""Differentiable (JAX) Gaussian expectations of several arguments (docs/theory.md section 7).

The master-theorem interpreter evaluates moments E[F(Z)], Z ~ N(0, K), of gated and batch-coupled
nonlinearities numerically. For gradients of kernels with respect to hyper-parameters (GP evidence
of a GRU, ``jax.grad`` of any kernel) every step must be a JAX operation:

- quasi-Monte-Carlo points are mapped with the symmetric square root ``S = V diag(sqrt(lambda)) V^T``
  (:func:`sym_sqrt`), unique and continuous in K, so that estimates with fixed points are smooth
  functions of the hyper-parameters (an eigenvector factor flips signs and reorders columns as K
  changes, which moves the estimate by its own error); its derivative solves S dS + dS S = dK:

      dS = V (dK~ / (sqrt(lambda_i) + sqrt(lambda_j))) V^T,   dK~ = V^T dK V,  0 where both are 0  (D2)

- the eigenvector factor of (M1) in :mod:`netfield.gauss.multivariate`, ``A = V diag(sqrt(lambda))``
  with eigenvalues clipped at 0, has a custom derivative (:func:`eig_factor`): with
  ``dK~ = V^T dK V``,

      d lambda_i = dK~_ii,    dV = V (F o dK~),  F_ij = 1 / (lambda_j - lambda_i)  (i != j),     (D1)

  F_ij set to 0 where the eigenvalues coincide to rounding (rotations inside a degenerate subspace
  do not change A A^T) and d sqrt(lambda_i) = 0 where lambda_i <= 0 (directions without variance).
  Each column's sign is fixed (w . v_i > 0, w_k = sqrt(k + 2)): LAPACK's +-v_i may otherwise differ
  between two compilations of the same covariance (the value and the forward-mode trace of a kernel),
  which moves a quasi-Monte-Carlo estimate by its own error. Quasi-Monte-Carlo estimates m = (1/P) sum_p F(A xi_p) with fixed points xi_p are then smooth
  functions of K, and their derivatives are the derivatives of the estimate that is returned;
- tensor Gauss-Hermite quadrature (M3) at a fixed order (:func:`hermite_expectation`);
- the orthant probabilities (M5), (M6) of erf-sigmoid gate products (:func:`orthant_closed`).
"""

from __future__ import annotations

import functools
import math

import jax
import jax.numpy as jnp
import numpy as np

_DEGENERATE = 1e-12  # relative eigenvalue gap below which eigenvectors are treated as degenerate


def _sym(a):
    return 0.5 * (a + jnp.swapaxes(a, -1, -2))


def _eigh_canonical(cov, descending: bool):
    """Eigenvalues and eigenvectors of the symmetrised cov with a canonical sign per eigenvector: w . v > 0
    for the fixed generic weights w_i = sqrt(i + 2). LAPACK returns +-v, and which one can change with
    the last bit of cov (another compiled program, the forward-mode trace of the same one): the factor
    and with it every quasi-Monte-Carlo estimate mapped by it would move by the estimate's own error."""
    lam, vec = jnp.linalg.eigh(_sym(cov))
    if descending:
        lam, vec = lam[..., ::-1], vec[..., ::-1]
    weights = jnp.sqrt(jnp.arange(cov.shape[-1], dtype=vec.dtype) + 2.0)
    sign = jnp.where(jnp.einsum("i,...ij->...j", weights, vec) < 0, -1.0, 1.0).astype(vec.dtype)
    return lam, vec * sign[..., None, :]


@functools.partial(jax.custom_jvp, nondiff_argnums=(1,))
def eig_factor(cov, descending: bool = False):
    """A with A A^T = cov (eigenvalues clipped at 0), columns in ascending (default) or descending
    order of the eigenvalues; batched over leading axes. Derivative (D1)."""
    lam, vec = _eigh_canonical(cov, descending)
    return vec * jnp.sqrt(jnp.clip(lam, 0.0, None))[..., None, :]


@eig_factor.defjvp
def _eig_factor_jvp(descending, primals, tangents):
    (cov,), (dcov,) = primals, tangents
    lam, vec = _eigh_canonical(cov, descending)
    root = jnp.sqrt(jnp.clip(lam, 0.0, None))
    out = vec * root[..., None, :]
    dk = jnp.swapaxes(vec, -1, -2) @ _sym(dcov) @ vec
    gap = lam[..., None, :] - lam[..., :, None]  # lambda_j - lambda_i
    scale = jnp.max(jnp.abs(lam), axis=-1, keepdims=True)[..., None] + 1e-300
    apart = jnp.abs(gap) > _DEGENERATE * scale
    f = jnp.where(apart, 1.0 / jnp.where(apart, gap, 1.0), 0.0)
    dvec = vec @ (f * dk)
    dlam = jnp.diagonal(dk, axis1=-2, axis2=-1)
    positive = root > 0
    droot = jnp.where(positive, dlam / (2.0 * jnp.where(positive, root, 1.0)), 0.0)
    return out, dvec * root[..., None, :] + vec * droot[..., None, :]


def sym_sqrt_of(cov, xp=np):
    """:func:`sym_sqrt` with the array module ``xp`` (numpy for concrete covariances: no compilation;
    both give the same numbers to rounding, the factor being continuous in cov)."""
    cov = 0.5 * (cov + xp.swapaxes(cov, -1, -2))
    lam, vec = xp.linalg.eigh(cov)
    root = xp.sqrt(xp.clip(lam, 0.0, None))
    return (vec * root[..., None, :]) @ xp.swapaxes(vec, -1, -2)


@jax.custom_jvp
def sym_sqrt(cov):
    """The symmetric square root S = V diag(sqrt(lambda)) V^T of a covariance (eigenvalues clipped at 0),
    batched over leading axes: the unique PSD factor with S S^T = cov, a continuous function of cov
    (unlike eigenvector factors, whose signs and order can jump), derivative (D2)."""
    return sym_sqrt_of(cov, jnp)


@sym_sqrt.defjvp
def _sym_sqrt_jvp(primals, tangents):
    # S dS + dS S = dK  ->  in the eigenbasis dS~_ij = dK~_ij / (sqrt(l_i) + sqrt(l_j))       (D2)
    (cov,), (dcov,) = primals, tangents
    lam, vec = jnp.linalg.eigh(_sym(cov))
    root = jnp.sqrt(jnp.clip(lam, 0.0, None))
    vt = jnp.swapaxes(vec, -1, -2)
    out = (vec * root[..., None, :]) @ vt
    dk = vt @ _sym(dcov) @ vec
    denom = root[..., :, None] + root[..., None, :]
    positive = denom > 0
    ds = jnp.where(positive, dk / jnp.where(positive, denom, 1.0), 0.0)
    return out, vec @ ds @ vt


@functools.lru_cache(maxsize=32)
def _hermite_grid(dim: int, order: int):
    x, w = np.polynomial.hermite_e.hermegauss(order)
    w = w / w.sum()
    nodes = np.array(np.meshgrid(*([x] * dim), indexing="ij")).reshape(dim, -1).T
    weights = np.prod(np.array(np.meshgrid(*([w] * dim), indexing="ij")).reshape(dim, -1), axis=0)
    keep = weights > 1e-22
    return nodes[keep], weights[keep]


def hermite_expectation(fn, cov, order: int):
    """E[fn(Z)], Z ~ N(0, cov) (cov (..., D, D)) by the tensor Gauss-Hermite rule of ``order``
    points per dimension (M3); fn maps (..., P, D) to (..., P). Differentiable in cov."""
    nodes, weights = _hermite_grid(cov.shape[-1], order)
    z = jnp.asarray(nodes) @ sym_sqrt(cov)  # (..., P, D); sym_sqrt is symmetric
    return jnp.sum(fn(z) * jnp.asarray(weights), axis=-1)


def orthant_closed(w, xp=jnp):
    """P(W <= 0) for W ~ N(0, w), w (..., D, D), D <= 3 (eqs. M5, M6); ``xp`` the array module
    (jax.numpy, differentiable, or numpy)."""
    dim = w.shape[-1]
    if dim == 1:
        return xp.full(w.shape[:-2], 0.5)
    d = xp.sqrt(xp.diagonal(w, axis1=-2, axis2=-1))
    rho = xp.clip(w / (d[..., :, None] * d[..., None, :]), -1.0, 1.0)
    if dim == 2:
        return 0.25 + xp.arcsin(rho[..., 0, 1]) / (2 * math.pi)
    s = xp.arcsin(rho[..., 0, 1]) + xp.arcsin(rho[..., 0, 2]) + xp.arcsin(rho[..., 1, 2])
    return 0.125 + s / (4 * math.pi)


__all__ = ["eig_factor", "hermite_expectation", "orthant_closed", "sym_sqrt", "sym_sqrt_of"]
