"""Master-theorem interpreter: covariances of G-variables of a program (docs/theory.md 2.1, 2.2, 7).

Covariances are computed lazily and memoised, block by block. A *block* is the (nA, nB) matrix
Cov(g1(a), g2(b)) for patterns a in set A and b in set B; a *pointwise* vector is
Cov(g1(a), g2(a)) for a in A. Only structurally non-zero blocks are computed (atoms with different
matrices are independent, so their block is ``None`` = exactly zero, without any arithmetic), and
only those the requested output depends on: asking for the equal-time readout of an RNN touches the
same blocks as for a DNN, so both give the same numbers to machine precision.

Rules (docs/theory.md section 7):
    Cov(W h, W h')     = var_W * E[h h']           (same matrix W; h = phi(g) Gaussian via Cov(g, g'))
    Cov(U x_t, U x_s)  = var_U * x_t . x_s / d    (same input matrix U)
    Cov(b, b)          = var_b                     (same bias vector)
    anything else      = 0
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from ..gauss import pair
from ..gauss.quadrature import expect_product
from ..program.ir import Bias, InputProj, LinComb, MatMul, Nonlin


class CovarianceEngine:
    """Lazy covariance blocks of one network's program over named pattern sets.

    Args:
        net: a :class:`netfield.program.Network` (hyper-parameters may be JAX tracers).
        sets: mapping set name -> inputs of shape (n, T_in, d) (zero-padded sequences).
        method: expectation method passed to :func:`netfield.gauss.pair`.
    """

    def __init__(self, net, sets: dict[str, np.ndarray], method: str = "auto"):
        self.net = net
        self.program = net.program
        self.sets = sets
        self.method = method
        self._blocks: dict = {}
        self._pointwise: dict = {}
        self.blocks_computed = 0

    # -- public ------------------------------------------------------------------------------------
    def block(self, g1: str, g2: str, A: str, B: str):
        """Cov(g1(a), g2(b)), a in A, b in B: an (nA, nB) array, or None if structurally zero."""
        key = (g1, g2, A, B)
        if key in self._blocks:
            return self._blocks[key]
        mirror = (g2, g1, B, A)
        if mirror in self._blocks:
            value = self._blocks[mirror]
            return None if value is None else value.T
        value = self._sum_atoms(g1, g2, A, B, pointwise=False)
        if value is not None and g1 == g2 and A == B:
            # the diagonal is Var g(a) exactly (same arithmetic as `pointwise`), so that roundoff
            # never moves a correlation off 1, where maps like sign's have infinite slope
            idx = jnp.arange(value.shape[0])
            value = value.at[idx, idx].set(self.variance(g1, A))
        self._blocks[key] = value
        if value is not None:
            self.blocks_computed += 1
        return value

    def block_or_zeros(self, g1: str, g2: str, A: str, B: str):
        value = self.block(g1, g2, A, B)
        if value is None:
            return jnp.zeros((self.sets[A].shape[0], self.sets[B].shape[0]))
        return value

    def pointwise(self, g1: str, g2: str, A: str):
        """Cov(g1(a), g2(a)) for every a in A: an (nA,) array, or None if structurally zero."""
        key = (g1, g2, A) if g1 <= g2 else (g2, g1, A)
        if key not in self._pointwise:
            self._pointwise[key] = self._sum_atoms(key[0], key[1], A, A, pointwise=True)
        return self._pointwise[key]

    def variance(self, g: str, A: str):
        value = self.pointwise(g, g, A)
        return jnp.zeros(self.sets[A].shape[0]) if value is None else value

    # -- rules ---------------------------------------------------------------------------------------
    def _sum_atoms(self, g1, g2, A, B, pointwise):
        ins1, ins2 = self.program[g1], self.program[g2]
        if not (isinstance(ins1, LinComb) and isinstance(ins2, LinComb)):
            raise TypeError(f"covariances are defined between G-variables (LinComb), got {g1!r}, {g2!r}")
        total = None
        for a1 in ins1.atoms:
            for a2 in ins2.atoms:
                term = self._atom_cov(a1, a2, A, B, pointwise)
                if term is not None:
                    total = term if total is None else total + term
        return total

    def _var(self, name: str):
        return self.net.hyper(self.program.hyper_of(name))

    def _atom_cov(self, a1, a2, A, B, pointwise):
        if type(a1) is not type(a2):
            return None
        if isinstance(a1, Bias):
            if a1.vector != a2.vector:
                return None
            n_a = self.sets[A].shape[0]
            shape = (n_a,) if pointwise else (n_a, self.sets[B].shape[0])
            return self._var(a1.vector) * jnp.ones(shape)
        if isinstance(a1, InputProj):
            if a1.matrix != a2.matrix:
                return None
            xa, xb = self.sets[A], self.sets[B]
            if a1.step > xa.shape[1] or a2.step > xb.shape[1]:
                return None  # no input at that step: structurally zero
            u, v = xa[:, a1.step - 1], xb[:, a2.step - 1]
            d = xa.shape[2]
            gram = np.einsum("ad,ad->a", u, v) if pointwise else u @ v.T
            return self._var(a1.matrix) * jnp.asarray(gram / d)
        if isinstance(a1, MatMul):
            if a1.matrix != a2.matrix:
                return None
            return self._var(a1.matrix) * self._moment(a1.arg, a2.arg, A, B, pointwise)
        raise TypeError(f"unknown atom {a1!r}")

    def _moment(self, h1: str, h2: str, A, B, pointwise):
        """E[h1(a) h2(b)] for H-variables h = phi(g): a 2-D Gaussian expectation per entry."""
        n1, n2 = self.program[h1], self.program[h2]
        if not (isinstance(n1, Nonlin) and isinstance(n2, Nonlin)):
            raise TypeError(f"MatMul arguments must be H-variables (Nonlin), got {h1!r}, {h2!r}")
        var1 = self.variance(n1.arg, A)
        var2 = self.variance(n2.arg, A if pointwise else B)
        if pointwise:
            cov = self.pointwise(n1.arg, n2.arg, A)
            cov = jnp.zeros_like(var1) if cov is None else cov
        else:
            cov = self.block_or_zeros(n1.arg, n2.arg, A, B)
            var1, var2 = var1[:, None], var2[None, :]
        if n1.activation == n2.activation:
            return pair(n1.activation, var1, var2, cov, method=self.method)
        return expect_product(n1.activation.fn, n2.activation.fn, var1, var2, cov,
                              points_u=n1.activation.features + n1.activation.breakpoints,
                              points_v=n2.activation.features + n2.activation.breakpoints,
                              breaks_v=n2.activation.breakpoints)

