"""Master-theorem interpreter of NETSOR+ programs (docs/theory.md section 7).

Every G-variable's coordinate is, at infinite width, one sample of a zero-mean Gaussian process over
the rows; the covariances follow from the program in order (the "master theorem"):

    Cov(U x, U x')    = var_U  x . x' / d                    (same input matrix)          (T1)
    Cov(b, b)         = var_b                                 (same bias vector)           (T2)
    Cov(W h, W h')    = var_W  E[h h']                        (same matrix W)              (T3)
    Cov(sum_i a_i g_i, g') = sum_i a_i Cov(g_i, g')                                         (T4)
    Cov(A g, g')      = A Cov(g, g')        row maps, attention weights A (deterministic)  (T5)
    Cov(LN g, g')     = Cov(g, g') / sqrt(Var g + eps)        layer norm (Moments)          (T6)
    attention weights = softmax_j(scale Cov(q_i, k_j)) on allowed rows   (1/n logits)       (T7)
    anything else     = 0                                      (independent matrices)

and E[h h'] of H-variables (T3) comes from one of these back-ends:

- **closed form / panel quadrature** when both are single-argument activations of G-variables
  (:func:`netfield.gauss.pair`): exact to ~1e-12; products of erf-sigmoid gates
  (:class:`~netfield.program.netsor.ErfGates`, sig(u) = (1 + erf u)/2): the Gaussian orthant
  probability of S K S + I/2 (:func:`netfield.gauss.differentiable.orthant_closed`), in closed form
  for up to 3 gates in all;
- **tensor Gauss-Hermite** per entry (:func:`netfield.gauss.multivariate.lowdim_expectation`) when
  both are elementwise (row-by-row) functions of at most 3 Gaussian arguments in all, with an error
  estimate from the last two orders (accepted below 1e-8, else the next back-end);
- **randomized quasi-Monte Carlo** (scrambled Sobol points): per entry over the k1 + k2 arguments at
  rows a and b for elementwise functions of more arguments (GRU / LSTM states unrolled in time),
  or over the joint Gaussian of all rows for batch-coupled functions (batch norm) and Nonlin+ with
  Moment parameters.

The whole computation is carried out for ``replicates`` independent scramblings at once (a leading
axis of every block), so the final kernel's error estimate (std over replicates / sqrt(replicates))
includes how quasi-Monte-Carlo errors propagate through later layers.
"""

from __future__ import annotations

from collections import OrderedDict

import jax
import jax.numpy as jnp
import numpy as np

from ..gauss import pair
from ..gauss.differentiable import hermite_expectation, orthant_closed, sym_sqrt, sym_sqrt_of
from ..gauss.quadrature import expect_product
from ..program.memo import kept
from ..program.netsor import (
    Attention,
    Bias,
    ErfGates,
    Input,
    LayerNorm,
    LinComb,
    MatMul,
    Moment,
    Nonlin,
    Program,
    RowMap,
)

LOWDIM_MAX = 3
LOWDIM_ORDERS = {1: (16, 32, 64, 96), 2: (16, 32, 64, 96), 3: (8, 16, 24, 32), 4: (8, 12, 16, 20)}
LOWDIM_ACCEPT = 1e-8  # Gauss-Hermite results less converged than this go to quasi-Monte Carlo
SOBOL_MAX_DIM = 21201


def _softmax_masked(logits, mask):
    z = jnp.where(mask, logits, -jnp.inf)
    z = z - z.max(axis=-1, keepdims=True)
    e = jnp.where(mask, jnp.exp(z), 0.0)
    return e / e.sum(axis=-1, keepdims=True)


class ProgramEngine:
    """Lazy, memoised covariance blocks (R, M1, M2) of one program's G-variables.

    Args:
        program: a validated :class:`~netfield.program.netsor.Program`.
        points: quasi-Monte-Carlo points per replicate (a power of 2).
        replicates: independent scramblings (used only if the program needs sampling).
        seed: seed of the scramblings.
    """

    def __init__(self, program: Program, *, points: int = 2**12, replicates: int = 8, seed: int = 0,
                 method: str = "auto"):
        self.program = program
        self.method = method
        self.points = points
        self.seed = seed
        self.replicates = replicates if needs_sampling(program) else 1
        self._cov: dict = {}
        self._mom: dict = {}
        self._moment_values: dict = {}
        self._weights: dict = {}
        self._chains: dict = {}
        self.backend_counts = {"closed": 0, "lowdim": 0, "qmc": 0}
        self.lowdim_error = 0.0
        self.clipped_eigenvalue = 0.0
        self._draws = 0

    # -- G-variable covariances ------------------------------------------------------------------
    def size(self, name):
        return self.program.spaces[self.program[name].space]

    def zeros(self, g1, g2):
        return jnp.zeros((self.replicates, self.size(g1), self.size(g2)))

    def cov(self, g1: str, g2: str):
        """Cov(Z_g1(i), Z_g2(j)): (R, M1, M2) array, or None if structurally zero."""
        return symmetric_block(self._cov, g1, g2, self._cov_rule)

    def cov_or_zeros(self, g1, g2):
        v = self.cov(g1, g2)
        return self.zeros(g1, g2) if v is None else v

    def var(self, g):
        return jnp.diagonal(self.cov_or_zeros(g, g), axis1=-2, axis2=-1)

    def _linear(self, g):
        """If g is a linear image of other G-variables: list of (map, name); map is a float or a
        (R or 1, M_g, M_name) array applied on the left. None for atoms (Input, Bias, MatMul)."""
        ins = self.program[g]
        if isinstance(ins, LinComb):
            return [(float(c), a) for c, a in ins.terms]
        if isinstance(ins, RowMap):
            return [(jnp.asarray(ins.rows)[None], ins.arg)]
        if isinstance(ins, LayerNorm):  # (T6)
            scale = 1.0 / jnp.sqrt(self.var(ins.arg) + ins.eps)
            return [(scale[..., :, None] * jnp.eye(self.size(g))[None], ins.arg)]
        if isinstance(ins, Attention):  # (T5), (T7)
            return [(self.attention_weights(g), ins.value)]
        return None

    def attention_weights(self, g):
        if g not in self._weights:
            ins = self.program[g]
            logits = ins.scale * self.cov_or_zeros(ins.query, ins.key)
            self._weights[g] = _softmax_masked(logits, jnp.asarray(ins.mask)[None])
        return self._weights[g]

    def _cov_rule(self, g1, g2):
        parts = self._linear(g1)
        if parts is not None:  # (T4), (T5), (T6)
            total = None
            for m, name in parts:
                c = self.cov(name, g2)
                if c is None:
                    continue
                term = m * c if isinstance(m, float) else m @ c
                total = term if total is None else total + term
            return total
        if self._linear(g2) is not None:
            c = self.cov(g2, g1)
            return None if c is None else jnp.swapaxes(c, -1, -2)
        a, b = self.program[g1], self.program[g2]
        if isinstance(a, Input) and isinstance(b, Input) and a.matrix == b.matrix:  # (T1)
            f1, f2 = self.program.feeds[a.feed], self.program.feeds[b.feed]
            return jnp.asarray(a.var * (f1 @ f2.T) / f1.shape[1])[None] * jnp.ones((self.replicates, 1, 1))
        if isinstance(a, Bias) and isinstance(b, Bias) and a.vector == b.vector:  # (T2)
            return a.var * jnp.ones((self.replicates, self.size(g1), self.size(g2)))
        if isinstance(a, MatMul) and isinstance(b, MatMul) and a.matrix == b.matrix:  # (T3)
            return a.var * self.moment(a.arg, b.arg)
        return None

    # -- H-variable moments ------------------------------------------------------------------------
    def moment(self, h1: str, h2: str):
        """E[h1(i) h2(j)]: (R, M1, M2)."""
        return symmetric_block(self._mom, h1, h2, self._moment_rule)

    def _moment_rule(self, h1, h2):
        if self._gated_chain(h1, h2):  # GRU states: all moments of the chain at once (docs/theory.md 7.2)
            return self._mom[(h1, h2)]
        a, b = self.program[h1], self.program[h2]
        if isinstance(a, RowMap):
            return jnp.asarray(a.rows)[None] @ self.moment(a.arg, h2)
        if isinstance(b, RowMap):
            return self.moment(h1, b.arg) @ jnp.asarray(b.rows).T[None]
        if _pairable(a) and _pairable(b):
            self.backend_counts["closed"] += 1
            return self._pair_moment(a, b)
        if _gates(self.program, a) and _gates(self.program, b) and len(a.args) + len(b.args) <= 3:
            self.backend_counts["closed"] += 1
            return self._gate_moment(a, b)
        if _elementwise(self.program, h1) and _elementwise(self.program, h2):
            return self._entrywise_moment(h1, h2, _leaves(self.program, h1), _leaves(self.program, h2))
        self.backend_counts["qmc"] += 1
        return self._sampled_moment(h1, h2)

    def _gated_chain(self, h1, h2) -> bool:
        """Solve the gated recurrence both states belong to (:mod:`netfield.meanfield.gated`) into the
        moment memo; False if they are not states of one recognised chain."""
        from .gated import GatedSolver, find_chain

        chains = []
        for h in (h1, h2):
            if h not in self._chains:
                self._chains[h] = find_chain(self.program, h)
            chains.append(self._chains[h])
        if chains[0] is None or chains[1] is None or chains[0].memo != chains[1].memo:
            return False
        GatedSolver(self, chains[0]).solve()
        return True

    def _pair_moment(self, a: Nonlin, b: Nonlin):
        g1, g2 = a.args[0], b.args[0]
        v1, v2 = self.var(g1)[..., :, None], self.var(g2)[..., None, :]
        c = self.cov_or_zeros(g1, g2)
        if a.activation == b.activation:
            return pair(a.activation, v1, v2, c, method=self.method)
        act1, act2 = a.activation, b.activation
        return expect_product(act1.fn, act2.fn, v1, v2, c, points_u=act1.features + act1.breakpoints,
                              points_v=act2.features + act2.breakpoints, breaks_v=act2.breakpoints)

    def _entrywise_moment(self, h1, h2, leaves1, leaves2):
        """E[h1(a) h2(b)] entry by entry for elementwise H-variables: a Gaussian integral over the
        k1 + k2 leaves at rows a and b (Gauss-Hermite up to 4 dimensions, else quasi-Monte Carlo)."""
        k1 = len(leaves1)
        program = self.program  # the kept integrand (compiled_integrand) must not hold the engine's blocks

        def fn(z, _extra):  # z (..., P, D) -> (..., P)
            v1 = _evaluate_elementwise(program, h1, {g: z[..., i] for i, g in enumerate(leaves1)})
            v2 = _evaluate_elementwise(program, h2, {g: z[..., k1 + i] for i, g in enumerate(leaves2)})
            return v1 * v2

        cov = self._entry_covariance(h1, h2, leaves1, leaves2)
        key = ("moment", expression_key(self.program, h1, leaves1), expression_key(self.program, h2, leaves2))
        return self.entrywise_expectation(fn, cov, None, symmetric=h1 == h2, key=key)

    def entrywise_expectation(self, fn, cov, extra, *, symmetric: bool, key=None):
        """E[fn(Z_ab, extra_ab)] per entry (a, b), Z_ab ~ N(0, cov[:, a, b]) (cov (R, M1, M2, D, D)):
        tensor Gauss-Hermite (B3) up to LOWDIM_MAX dimensions when it converges, else quasi-Monte
        Carlo (B4). ``fn(z, extra)`` maps samples (R, m1, M2, P, D) and the matching rows of
        ``extra`` (an (R, M1, M2, ...) array or None, sliced along the rows with z) to (R, m1, M2, P).
        ``key``: a hashable description of what ``fn`` computes (:func:`expression_key`), under which its
        compiled form is kept for later calls (other engines, other inputs of the same shapes); None:
        compiled for this call only."""
        from ..gauss.multivariate import lowdim_expectation

        # one compiled program per sample shape instead of one per primitive: op by op, an
        # activation's gradient (ntk.py) compiled ~20 small programs per call (issue 18 item 4)
        fn = compiled_integrand(fn, key)
        D = cov.shape[-1]
        if D <= LOWDIM_MAX and (_traced(cov) or _traced(extra)):
            # gradients: the highest order of the rule the concrete path converges with
            # (its accepted values agree with this one to <= LOWDIM_ACCEPT)
            self.backend_counts["lowdim"] += 1
            return hermite_expectation(lambda z: fn(z, extra), cov, LOWDIM_ORDERS[D][-1])
        if D <= LOWDIM_MAX:
            full = None if extra is None else np.asarray(extra)
            value, error = lowdim_expectation(lambda z: fn(z, full), np.asarray(cov), tol=1e-10,
                                              orders=LOWDIM_ORDERS[D])
            worst = float(np.max(error))
            if worst <= LOWDIM_ACCEPT * max(1.0, float(np.abs(value).max())):
                self.backend_counts["lowdim"] += 1
                self.lowdim_error = max(self.lowdim_error, worst)
                return jnp.asarray(value)
        self.backend_counts["qmc"] += 1
        value = self._entrywise_qmc(fn, cov, extra)
        if symmetric:  # entries (a, b) and (b, a) come from different point sets: keep the Gram symmetric
            value = 0.5 * (value + jnp.swapaxes(value, -1, -2))
        return value

    def _entry_covariance(self, h1, h2, leaves1, leaves2):
        """(R, M1, M2, D, D): per entry (a, b), the covariance of leaves1 at row a and leaves2 at row b
        (a JAX array: differentiable with respect to the hyper-parameters)."""
        allv = list(leaves1) + list(leaves2)
        side = [0] * len(leaves1) + [1] * len(leaves2)
        R, M1, M2 = self.replicates, self.size(h1), self.size(h2)
        blocks = {(gi, gj): self.cov_or_zeros(gi, gj) for gi in allv for gj in allv}
        xp = jnp if any(_traced(b) for b in blocks.values()) else np  # numpy: nothing to compile
        rows = []
        for i, gi in enumerate(allv):
            row = []
            for j, gj in enumerate(allv):
                c = xp.asarray(blocks[(gi, gj)])
                if side[i] == side[j]:
                    d = xp.diagonal(c, axis1=1, axis2=2)
                    row.append(xp.broadcast_to(d[:, :, None] if side[i] == 0 else d[:, None, :], (R, M1, M2)))
                else:
                    row.append(c if side[i] == 0 else xp.swapaxes(c, 1, 2))
            rows.append(xp.stack(row, axis=-1))
        return xp.stack(rows, axis=-2)

    def _gate_moment(self, a: Nonlin, b: Nonlin):
        """Products of erf-sigmoid gates: a Gaussian orthant probability with covariance
        S K S + I/2 (docs/theory.md 7), in closed form for up to 3 gates in all."""

        cov = self._entry_covariance(a.name, b.name, list(a.args), list(b.args))
        xp = jnp if _traced(cov) else np
        s = np.asarray(tuple(a.fn.signs) + tuple(b.fn.signs), np.float64)
        w = cov * s[:, None] * s[None, :] + 0.5 * np.eye(s.shape[0])  # (M4)
        return jnp.asarray(orthant_closed(w, xp))

    def _entrywise_qmc(self, fn, cov, extra=None):
        from ..gauss.multivariate import sobol_normals

        R, M1, M2, D = cov.shape[:4]
        self._draws += 1
        seed = int(np.random.SeedSequence([self.seed, self._draws]).generate_state(1)[0])
        xi = sobol_normals(self.points, D, R, seed=seed)
        self._record_clipping(cov)
        traced = _traced(cov)
        # continuous in cov: smooth estimates with fixed points (D2); numpy when nothing is traced
        factor = sym_sqrt(cov) if traced else sym_sqrt_of(cov)
        xp = jnp if traced else np
        out = []
        rows_per_chunk = max(1, int(2**24 // max(1, R * M2 * self.points * D)))
        for a0 in range(0, M1, rows_per_chunk):
            f = xp.swapaxes(factor[:, a0:a0 + rows_per_chunk], -1, -2)  # (R, ma, M2, D, D)
            z = xp.matmul(xi[:, None, None], f)  # (R, ma, M2, S, D)
            part = None if extra is None else extra[:, a0:a0 + rows_per_chunk]
            out.append(jnp.mean(fn(jnp.asarray(z), part), axis=-1))
        return jnp.concatenate(out, axis=1)

    def _record_clipping(self, cov):
        """Largest negative eigenvalue clipped (blocks from separate quasi-Monte-Carlo draws can make a
        covariance slightly indefinite); only recorded for concrete covariances."""
        if _traced(cov):
            return
        w = np.linalg.eigvalsh(0.5 * (np.asarray(cov) + np.swapaxes(np.asarray(cov), -1, -2)))
        if w.size and w.min() < 0:
            self.clipped_eigenvalue = max(self.clipped_eigenvalue, float(-w.min()))

    def _joint_samples(self, hvars):
        """Per replicate: samples (S, M) of every G-leaf the H-variables depend on."""
        from ..gauss.multivariate import sobol_normals

        leaves = []
        for h in hvars:
            for g in _leaves(self.program, h):
                if g not in leaves:
                    leaves.append(g)
        sizes = [self.size(g) for g in leaves]
        offsets = np.concatenate([[0], np.cumsum(sizes)])
        D = int(offsets[-1])
        R = self.replicates
        blocks = [[self.cov_or_zeros(gi, gj) for gj in leaves] for gi in leaves]
        traced = any(_traced(b) for row in blocks for b in row)
        xp = jnp if traced else np
        sigma = xp.concatenate([xp.concatenate([xp.asarray(b) for b in row], axis=2) for row in blocks],
                               axis=1)  # (R, D, D)
        self._draws += 1
        seed = int(np.random.SeedSequence([self.seed, self._draws]).generate_state(1)[0])
        if D <= SOBOL_MAX_DIM:
            xi = sobol_normals(self.points, D, R, seed=seed)
        else:  # beyond Sobol's dimension table: plain Monte Carlo, same replicate error estimate
            xi = np.random.default_rng(seed).standard_normal((R, self.points, D))
        out = []
        self._record_clipping(sigma)
        # continuous in sigma: smooth estimates with fixed points (D2); numpy when nothing is traced
        factor = sym_sqrt(sigma) if traced else sym_sqrt_of(sigma)
        for r in range(R):
            z = jnp.asarray(xi[r] @ factor[r].T)
            out.append({g: z[:, offsets[k]:offsets[k + 1]] for k, g in enumerate(leaves)})
        return out

    def _sampled_moment(self, h1, h2):
        values = []
        for r, leaves in enumerate(self._joint_samples([h1, h2])):
            memo = dict(leaves)
            v1 = _evaluate(self.program, h1, memo, self, r)
            v2 = _evaluate(self.program, h2, memo, self, r)
            values.append(v1.T @ v2 / v1.shape[0])
        return jnp.stack(values)

    def moment_value(self, c: str):
        """E fn(Z) of a Moment instruction, per replicate: (R, M)."""
        if c not in self._moment_values:
            ins = self.program[c]
            vals = []
            for r, leaves in enumerate(self._joint_samples(list(ins.args))):
                memo = dict(leaves)
                args = [_evaluate(self.program, a, memo, self, r) for a in ins.args]
                vals.append(jnp.mean(ins.fn(*args), axis=0))
            self.backend_counts["qmc"] += 1
            self._moment_values[c] = jnp.stack(vals)
        return self._moment_values[c]

    # -- outputs and taps ------------------------------------------------------------------------
    def readout_cov(self, r1: str, r2: str):
        """Cov(f_r1, f_r2) of two Readout instructions, per replicate (R, M1, M2) (docs/theory.md 7):
        var_V E[h1 h2] (averaged over flattened positions) if they share V, plus var_bo if they share
        b_o; zero otherwise."""
        a, b = self.program[r1], self.program[r2]
        total = 0.0
        if a.matrix == b.matrix:
            m = self.moment(a.arg, b.arg)
            if a.flatten is not None:
                idx, idx2 = a.flatten, b.flatten
                P = idx.shape[1]
                m = sum(m[:, idx[:, p]][:, :, idx2[:, p]] for p in range(P)) / P
            total = a.var * m
        if a.vector == b.vector:
            total = total + a.bias_var
        if isinstance(total, float):
            return jnp.zeros((self.replicates, self._outputs(a), self._outputs(b)))
        return total

    def _outputs(self, r):
        return r.flatten.shape[0] if r.flatten is not None else self.size(r.arg)

    def readout(self):
        """Readout kernel of the final readout, per replicate: (R, N, N)."""
        out = self.program.readout.name
        return self.readout_cov(out, out)

    def tap_kernel(self, v1: str, v2: str):
        """Limit of (1/n) sum_i v1_i(a) v2_i(b) of two tapped variables, per replicate (R, M1, M2):
        Cov for G-variables, E[v1 v2] for H-variables."""
        k1, k2 = self.program.kind(v1), self.program.kind(v2)
        if k1 == k2 == "G":
            return self.cov_or_zeros(v1, v2)
        if k1 == k2 == "H":
            return self.moment(v1, v2)
        raise ValueError(f"taps {v1!r} and {v2!r} are of different kinds ({k1}, {k2}); ask for taps of one "
                         f"family (pre-activations with pre-activations, states with states)")


# -- program structure helpers --------------------------------------------------------------------
def symmetric_block(memo: dict, a: str, b: str, rule):
    """Memoised (R, M_a, M_b) block of a symmetric pairing of two variables (covariance, moment, tangent
    kernel): block(b, a) is block(a, b) transposed, so either order is computed once; None (structurally
    zero) is kept as None."""
    if (a, b) in memo:
        return memo[(a, b)]
    if (b, a) in memo:
        v = memo[(b, a)]
        return None if v is None else jnp.swapaxes(v, -1, -2)
    memo[(a, b)] = value = rule(a, b)
    return value


def _traced(a) -> bool:
    return isinstance(a, jax.core.Tracer)


def _pairable(ins) -> bool:
    return (isinstance(ins, Nonlin) and ins.activation is not None and not ins.coupled and not ins.params
            and len(ins.args) == 1)


def _gates(program: Program, ins) -> bool:
    """A product of erf-sigmoid gates of G-variables (:class:`~netfield.program.netsor.ErfGates`)."""
    return (isinstance(ins, Nonlin) and isinstance(ins.fn, ErfGates) and not ins.coupled and not ins.params
            and all(program.kind(g) == "G" for g in ins.args))


def _elementwise(program: Program, h: str) -> bool:
    """True if h depends on its G-leaves row by row (no coupling, row maps or Moment parameters)."""
    ins = program[h]
    if program.kind(h) == "G":
        return True
    if not isinstance(ins, Nonlin) or ins.coupled or ins.params:
        return False
    return all(_elementwise(program, a) for a in ins.args)


def _leaves(program: Program, h: str) -> list:
    """G-variables an H-variable (or Moment) is a function of, in first-use order."""
    out: list = []

    def walk(name):
        ins = program[name]
        if program.kind(name) == "G":
            if name not in out:
                out.append(name)
            return
        if isinstance(ins, RowMap):
            walk(ins.arg)
            return
        for a in ins.args:
            walk(a)

    walk(h)
    return out


_COMPILED_INTEGRANDS: OrderedDict = OrderedDict()
COMPILED_INTEGRANDS_KEPT = 256  # jitted integrands kept (each with its executables per sample shape)


def compiled_integrand(fn, key):
    """``jax.jit(fn)``, the same jitted function as an earlier call's under an equal ``key`` (None: a new
    one). Each moment block of a gated network or an NTK is its own integrand, a new closure per call: a
    GRU's NTK (3 steps) compiled its 12 integrands again on every call, 7.7 s of its 8.2 s, for inputs of
    an already compiled shape."""
    return kept(_COMPILED_INTEGRANDS, key, lambda: jax.jit(fn), COMPILED_INTEGRANDS_KEPT)


def expression_key(program: Program, h: str, leaves) -> tuple:
    """What :func:`_evaluate_elementwise` computes for ``h`` from ``leaves`` (given in this order), as a
    hashable tree: a leaf by its position, a Nonlin by its function (compared by value) and its
    arguments' trees."""
    position = {g: i for i, g in enumerate(leaves)}

    def walk(name):
        if name in position:
            return ("leaf", position[name])
        ins = program[name]
        return (ins.fn, tuple(walk(a) for a in ins.args))

    return walk(h)


def _evaluate_elementwise(program: Program, h: str, leaves: dict):
    if h in leaves:
        return leaves[h]
    ins = program[h]
    return ins.fn(*[_evaluate_elementwise(program, a, leaves) for a in ins.args])


def _evaluate(program: Program, name: str, memo: dict, engine: ProgramEngine, r: int):
    """Value (S, M) of an H-variable on the samples of its G-leaves (replicate r)."""
    if name in memo:
        return memo[name]
    ins = program[name]
    if isinstance(ins, RowMap):
        value = _evaluate(program, ins.arg, memo, engine, r) @ jnp.asarray(ins.rows).T
    elif isinstance(ins, Nonlin):
        args = [_evaluate(program, a, memo, engine, r) for a in ins.args]
        params = [engine.moment_value(p)[r][None, :] for p in ins.params]
        value = ins.fn(*args, *params)
    else:
        raise TypeError(f"cannot evaluate {name!r} ({type(ins).__name__}) on samples")
    memo[name] = value
    return value


def needs_sampling(program: Program) -> bool:
    """True if some moment may need the quasi-Monte-Carlo back-end (then replicates are carried)."""
    return any(isinstance(ins, Moment) or (isinstance(ins, Nonlin) and not _pairable(ins))
               for ins in program.instructions)
