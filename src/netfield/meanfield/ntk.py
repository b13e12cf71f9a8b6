"""Neural tangent kernel of any program: the tangent rules next to the master theorem (docs/ntk.md).

The NTK of the outputs, Theta(a, b) = sum_p df(a)/dp df(b)/dp over all parameters p, is
interpreted from the same NETSOR+ program as the NNGP kernel. Per G-variable coordinate the
parameter-tangent inner products Theta_G(g1(a), g2(b)) (the same for every coordinate at infinite
width) follow the program in order (docs/ntk.md, eqs. N1-N9):

    (N1) Theta(U x, U x')    = D_U(x, x')                        same input matrix (direct term)
    (N2) Theta(b, b)         = D_b                                same bias vector
    (N3) Theta(W h, W h')    = D_W(h, h') + var_W Theta_H(h, h')  same matrix W, same orientation
    (N4) linear instructions (LinComb, RowMap, LayerNorm, Attention) act on Theta as on Cov:
         Moments (layer-norm statistics, attention logits) have vanishing tangents at infinite width
    (N5) Theta_H(phi(g), psi(g'))  = E[phi'(g) psi'(g')] Theta(g, g')      single activations
    (N6) Theta_H(h1, h2)     = sum_{i,j} E[d_i h1 d_j h2] Theta(l_i, l_j) over the G-leaves l
         (several arguments, compositions; batch-coupled: also summed over the rows)
    (N7) Theta(f, f')        = D_V(h, h') + var_V Theta_H(h, h') + D_bo   readouts sharing V / b_o
         anything else       = 0

The direct terms D are the contributions of the parameter introduced by the instruction. In the NTK
parameterization (every parameter N(0, 1), scaled by sqrt(var / fan_in) in the forward pass) they
are the master theorem's covariances (T1-T3, T8): D_U = var_U x.x'/d, D_b = var_b,
D_W = var_W E[h h'], D_V = var_V E[h h'], D_bo = var_bo. In the standard parameterization
(parameters theta = sqrt(var / fan_in) omega trained directly) each group's contribution is divided
by var / fan_in: D_U = x.x', D_b = 1, D_W = n E[h h'], D_V = n P E[h h'], D_bo = 1, so the NTK
grows linearly with the width n (docs/ntk.md, section 3).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int
from ..gauss import dpair
from ..gauss.quadrature import expect_product
from ..program.netsor import Bias, Input, MatMul, Nonlin, RowMap
from ..program.shape import UnsupportedProgram
from .netsor import (
    ProgramEngine,
    _elementwise,
    _evaluate,
    _evaluate_elementwise,
    _leaves,
    _pairable,
    expression_key,
    symmetric_block,
)

PARAMETERIZATIONS = ("ntk", "standard")


def check_parameterization(parameterization: str, width) -> int | None:
    """Validated ``parameterization`` and ``width`` (required by, and only used with, "standard")."""
    check_choice("parameterization", parameterization, PARAMETERIZATIONS)
    if parameterization == "standard":
        if width is None:
            raise ValueError("width must be given with parameterization='standard': its NTK grows with the "
                             "hidden width n (docs/ntk.md, section 3)")
        return check_positive_int("width", width)
    if width is not None:
        raise ValueError(f"width is used only with parameterization='standard' (the NTK parameterization's "
                         f"kernel does not depend on the width), got width={width!r}")
    return None


class TangentEngine:
    """Lazy, memoised NTK blocks (R, M1, M2) of one program, next to its :class:`ProgramEngine`.

    Args:
        engine: the program's master-theorem engine (covariances, moments, quasi-Monte-Carlo state).
        parameterization: ``"ntk"`` or ``"standard"`` (module docstring).
        width: hidden width n, for ``"standard"`` only.
    """

    def __init__(self, engine: ProgramEngine, parameterization: str = "ntk", width: int | None = None):
        self.engine = engine
        self.program = engine.program
        check_differentiable(self.program)
        self.width = check_parameterization(parameterization, width)
        self.standard = parameterization == "standard"
        self._g: dict = {}
        self._h: dict = {}

    # -- G-variables ------------------------------------------------------------------------------
    def theta(self, g1: str, g2: str):
        """Theta_G(g1(i), g2(j)): (R, M1, M2) array, or None if structurally zero."""
        return symmetric_block(self._g, g1, g2, self._theta_rule)

    def theta_or_zeros(self, g1, g2):
        v = self.theta(g1, g2)
        return self.engine.zeros(g1, g2) if v is None else v

    def _theta_rule(self, g1, g2):
        e = self.engine
        parts = e._linear(g1)
        if parts is not None:  # (N4)
            total = None
            for m, name in parts:
                t = self.theta(name, g2)
                if t is None:
                    continue
                term = m * t if isinstance(m, float) else m @ t
                total = term if total is None else total + term
            return total
        if e._linear(g2) is not None:
            t = self.theta(g2, g1)
            return None if t is None else jnp.swapaxes(t, -1, -2)
        a, b = self.program[g1], self.program[g2]
        if isinstance(a, Input) and isinstance(b, Input) and a.matrix == b.matrix:  # (N1)
            if not self.standard:
                return e.cov(g1, g2)
            f1, f2 = self.program.feeds[a.feed], self.program.feeds[b.feed]
            return jnp.asarray(f1 @ f2.T)[None] * jnp.ones((e.replicates, 1, 1))
        if isinstance(a, Bias) and isinstance(b, Bias) and a.vector == b.vector:  # (N2)
            return e.cov(g1, g2) if not self.standard else jnp.ones((e.replicates, e.size(g1), e.size(g2)))
        if (isinstance(a, MatMul) and isinstance(b, MatMul) and a.matrix == b.matrix
                and a.transpose == b.transpose):  # (N3)
            direct = e.cov(g1, g2) if not self.standard else self.width * e.moment(a.arg, b.arg)
            return direct + a.var * self.theta_h(a.arg, b.arg)
        return None

    # -- H-variables ------------------------------------------------------------------------------
    def theta_h(self, h1: str, h2: str):
        """Theta_H(h1(i), h2(j)) = (1/n) sum_alpha <dh1_alpha(i), dh2_alpha(j)>: (R, M1, M2)."""
        return symmetric_block(self._h, h1, h2, self._theta_h_rule)

    def _theta_h_rule(self, h1, h2):
        p, e = self.program, self.engine
        if p.kind(h1) == "G" and p.kind(h2) == "G":
            return self.theta_or_zeros(h1, h2)
        a, b = p[h1], p[h2]
        if isinstance(a, RowMap):
            return jnp.asarray(a.rows)[None] @ self.theta_h(a.arg, h2)
        if isinstance(b, RowMap):
            return self.theta_h(h1, b.arg) @ jnp.asarray(b.rows).T[None]
        if _pairable(a) and _pairable(b):  # (N5)
            e.backend_counts["closed"] += 1
            return self._pair_derivative(a, b) * self.theta_or_zeros(a.args[0], b.args[0])
        if _elementwise(p, h1) and _elementwise(p, h2):  # (N6), entry by entry
            return self._entrywise(h1, h2)
        e.backend_counts["qmc"] += 1
        if h1 == h2 and isinstance(a, Nonlin) and a.scale_free and p.kind(a.args[0]) == "G":
            return self._radial(h1)
        return self._sampled(h1, h2)

    def _pair_derivative(self, a: Nonlin, b: Nonlin):
        e = self.engine
        g1, g2 = a.args[0], b.args[0]
        v1, v2 = e.var(g1)[..., :, None], e.var(g2)[..., None, :]
        c = e.cov_or_zeros(g1, g2)
        if a.activation == b.activation:
            return dpair(a.activation, v1, v2, c, method=e.method)
        d1, d2 = _derivative(a.activation.fn), _derivative(b.activation.fn)
        act1, act2 = a.activation, b.activation
        return expect_product(d1, d2, v1, v2, c, points_u=act1.features + act1.breakpoints,
                              points_v=act2.features + act2.breakpoints, breaks_v=act2.breakpoints)

    def _entrywise(self, h1, h2):
        """(N6) for elementwise H-variables: per entry (a, b) a Gaussian integral over the leaves of
        h1 at row a and of h2 at row b of sum_ij d_i h1 d_j h2 Theta(l_i(a), l_j(b))."""
        p, e = self.program, self.engine
        leaves1, leaves2 = _leaves(p, h1), _leaves(p, h2)
        k1 = len(leaves1)
        tangent = jnp.stack([jnp.stack([self.theta_or_zeros(l1, l2) for l2 in leaves2], axis=-1)
                             for l1 in leaves1], axis=-2)  # (R, M1, M2, k1, k2)

        def grads(h, leaves, z):  # elementwise h: d h / d leaf_i at every point, (..., P, k)
            def total(vals):
                return jnp.sum(_evaluate_elementwise(p, h, {g: vals[..., i] for i, g in enumerate(leaves)}))

            return jax.grad(total)(z)

        def fn(z, t):  # z (R, m1, M2, P, D), t (R, m1, M2, k1, k2)
            z = jnp.asarray(z)
            d1, d2 = grads(h1, leaves1, z[..., :k1]), grads(h2, leaves2, z[..., k1:])
            return jnp.einsum("...pi,...ij,...pj->...p", d1, jnp.asarray(t), d2)

        cov = e._entry_covariance(h1, h2, leaves1, leaves2)
        key = ("tangent", expression_key(p, h1, leaves1), expression_key(p, h2, leaves2))
        return e.entrywise_expectation(fn, cov, tangent, symmetric=h1 == h2, key=key)

    def _sampled(self, h1, h2):
        """(N6) for batch-coupled functions and Nonlin+ (Moment parameters fixed at their limits):
        joint samples of every leaf over all rows, per-sample Jacobians over the rows."""
        p, e = self.program, self.engine
        leaves1, leaves2 = _leaves(p, h1), _leaves(p, h2)
        tangents = {(l1, l2): self.theta_or_zeros(l1, l2) for l1 in leaves1 for l2 in leaves2}
        values = []
        for r, samples in enumerate(e._joint_samples([h1, h2])):
            j1 = _row_jacobians(p, e, r, h1, leaves1, samples)
            j2 = _row_jacobians(p, e, r, h2, leaves2, samples)
            total = 0.0
            for l1 in leaves1:
                for l2 in leaves2:
                    t = tangents[(l1, l2)][r]
                    total = total + jnp.einsum("sac,cd,sbd->ab", j1[l1], t, j2[l2]) / j1[l1].shape[0]
            values.append(total)
        return jnp.stack(values)

    def _radial(self, h):
        """(N6) for a scale-free coupled function (batch norm, eps = 0; docs/ntk.md eq. N12): h depends
        on its argument g only through the direction of the centred rows P g, so its Jacobian J is
        homogeneous of degree -1 and the integrand J Theta J^T of degree -2 in the whitened
        coordinates eta of P g (dimension k): E[I] = E[I(eta) |eta|^2] / (k - 2), a quasi-Monte-Carlo
        mean of a bounded function (plain sampling has infinite variance for small batches)."""
        from ..gauss.multivariate import sobol_normals

        p, e = self.program, self.engine
        g = p[h].args[0]
        M = e.size(g)
        centre = np.eye(M) - 1.0 / M
        cov, tangent = e.cov_or_zeros(g, g), self.theta_or_zeros(g, g)
        e._draws += 1
        seed = int(np.random.SeedSequence([e.seed, e._draws]).generate_state(1)[0])
        values = []
        for r in range(e.replicates):
            w, v = jnp.linalg.eigh(centre @ cov[r] @ centre)
            if isinstance(w, jax.core.Tracer):  # gradients: every direction but the centring null vector
                keep = np.arange(M) > 0
            else:
                keep = np.asarray(w) > 1e-12 * max(float(w[-1]), 1e-300)
            k = int(keep.sum())
            if k < 3:
                raise UnsupportedProgram(
                    f"the NTK of batch norm is infinite for a batch whose centred pre-activations span {k} < 3 "
                    f"dimensions (instruction {h!r}; at most {M} patterns): E[1/|g - mean g|^2] diverges "
                    f"(docs/ntk.md 4); use a batch of at least 4 distinct patterns or eps > 0")
            factor = v[:, keep] * jnp.sqrt(jnp.maximum(w[keep], 0.0))  # (M, k)
            eta = jnp.asarray(sobol_normals(e.points, k, 1, seed=seed + r)[0])  # (S, k)
            jac = _row_jacobians(p, e, r, h, [g], {g: eta @ factor.T})[g]  # (S, M, M)
            weight = jnp.sum(eta**2, axis=1) / (k - 2)
            values.append(jnp.einsum("s,sac,cd,sbd->ab", weight, jac, tangent[r], jac) / eta.shape[0])
        return jnp.stack(values)

    # -- outputs ------------------------------------------------------------------------------------
    def readout_ntk(self, r1: str, r2: str):
        """Theta(f_r1, f_r2) of two Readout instructions, per replicate (R, M1, M2) (N7)."""
        p, e = self.program, self.engine
        a, b = p[r1], p[r2]
        total = 0.0
        if a.matrix == b.matrix:
            m, t = e.moment(a.arg, b.arg), self.theta_h(a.arg, b.arg)
            if a.flatten is not None:
                m, t = _flatten_mean(m, a.flatten, b.flatten), _flatten_mean(t, a.flatten, b.flatten)
            positions = 1 if a.flatten is None else a.flatten.shape[1]
            direct = a.var * m if not self.standard else self.width * positions * m
            total = direct + a.var * t
        if a.vector == b.vector:
            total = total + (a.bias_var if not self.standard else 1.0)
        if isinstance(total, float):
            return jnp.zeros((e.replicates, e._outputs(a), e._outputs(b))) + total
        return total


def check_differentiable(program) -> None:
    """UnsupportedProgram for activations that jump (sign, step): their NTK is not defined (docs/ntk.md 2.4):
    the parameter gradient of a finite network vanishes almost everywhere, while the limit of the
    rules (N5) would need E[phi' phi'] of a delta function, infinite on the diagonal."""
    for ins in program.instructions:
        if isinstance(ins, Nonlin) and ins.activation is not None and ins.activation.jumps:
            raise UnsupportedProgram(
                f"the NTK is not defined for the discontinuous activation {ins.activation.name!r} (jumps at "
                f"{list(ins.activation.jumps)}) of instruction {ins.name!r}: gradient descent sees a zero "
                f"derivative almost everywhere while the infinite-width rule needs E[phi' phi'] of a delta "
                f"function (docs/ntk.md 2.4); use a continuous activation (e.g. erf for sign)")


def _flatten_mean(m, idx1, idx2):
    P = idx1.shape[1]
    return sum(m[:, idx1[:, q]][:, :, idx2[:, q]] for q in range(P)) / P


def _derivative(fn):
    return jnp.vectorize(jax.grad(lambda u: fn(u)))


def _row_jacobians(program, engine, r, h, leaves, samples):
    """{leaf: (S, M_h, M_leaf)}: per joint sample, the Jacobian of h's rows w.r.t. the leaf's rows."""
    def one(*rows):
        memo = {g: v[None, :] for g, v in zip(leaves, rows, strict=True)}
        return _evaluate(program, h, memo, engine, r)[0]

    jac = jax.vmap(jax.jacfwd(one, argnums=tuple(range(len(leaves)))))(*[samples[g] for g in leaves])
    return dict(zip(leaves, jac, strict=True))


__all__ = ["PARAMETERIZATIONS", "TangentEngine", "check_differentiable", "check_parameterization"]
