"""Gated recurrences (GRU) at infinite width: all state moments from one trajectory integral per
pair of sequences (docs/tensor_programs.md section 3, back-end B5, eqs. G1, G2).

A chain of :class:`~netfield.program.netsor.GatedBlend` states

    h_t = (1 - sig(z_t)) h_{t-1} + sig(z_t) phi(c_t),     h_0 = 0,

unrolls to h_t = sum_{j<=t} w_{j,t} phi(c_j) with the gate weights
w_{j,t} = sig(z_j) prod_{l=j+1..t} (1 - sig(z_l)). When the update-gate family {z_t} and the
candidate family {c_t} use different matrices, inputs and biases they are independent Gaussians at
infinite width, and

    E[h_t(a) h_s(b)] = sum_{j<=t, k<=s} E[phi(c_j(a)) phi(c_k(b))] E[w_{j,t}(a) w_{k,s}(b)].   (G1)

The candidate pairs are single-activation moments (closed forms, :func:`netfield.gauss.pair`).
The gate factors are orthant probabilities (docs/theory.md M4) of up to 2T gates; instead of one
Genz integral per factor (GP4A: (T(T+1)/2)^2 per pair of sequences), all of them, for all t, s, j,
k, come from one randomized quasi-Monte-Carlo integral over the 2T update-gate pre-activations of
the two sequences (T for a == b), on the smooth integrand (the gates, not the orthant's indicator).
Step m needs the gates' covariance up to m, known from the moments of step m - 1 (master theorem);
its points are z_p = A_m xi_p with A_m the PCA factor (M1, derivative D1), and the new entries are

    S(m, s) = (1/P) sum_p v_s(p),   v_s = (1 - sig(z_s(b))) v_{s-1} + sig(z_s(b)) u_s,
    u_k = sum_j E[phi(c_j(a)) phi(c_k(b))] w_{j,m}(a)      (and the mirror image for S(s, m))     (G2)

A reset gate, c_t = W_h (sig(r_t) h_{t-1}) + ..., enters through
E[sig(r_t(a)) sig(r_s(b))] E[h_{t-1}(a) h_{s-1}(b)] (r independent of h's leaves; erf gates).

With erf update gates and at most 8 steps the gate factors are instead integrated by separation of
variables (:mod:`netfield.meanfield.gated_sov`, back-end B6: 50-100x smaller error at equal points);
this module's trajectory integral serves longer chains.

Pairs are independent given the diagonal pairs (a, a), which go first with DIAG_BOOST times the
points (their error feeds every covariance); the rest run in chunks through one jitted kernel.
Each of the engine's replicates uses its own scrambling and carries its own covariances, so the
replicate spread of the final kernel is an honest error estimate (M2).

Cost: about pairs x replicates x qmc_points x (2 T^3 + 4 T^3 / 3 flops + T^2 gate evaluations),
one compilation per (T, chunk shape); the error falls like qmc_points^-0.85 (the accuracy lever):
GP4A's GRU on 8 sequences of 5 steps ~7e-5 at 2^12 points, ~1e-5 at 2^16; 50 sequences of 10 steps
1.0e-4 at 2^13 (27 s warm), 7.6e-5 at 2^14 (54 s) with the float32 point loop (docs/tensor_programs.md, B5).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..gauss import get_activation, pair
from ..program.netsor import Bias, GatedBlend, GatedProduct, Input, LinComb, MatMul, Nonlin

# The point loop (gates, weights, Horner sums, block means) runs in float32, the covariances, factors
# and sums of block means in float64: measured on GP4A's 8 x 5 GRU, every state moment moves by at most
# 1.5e-8 against an all-float64 run (at 2^12 and 2^16 points), far below the error of any point count
# this back-end reaches (1e-5 at 2^16, ~3e-7 extrapolated to 2^22), and 50 x 10 runs 3.5x faster.
DIAG_BOOST = 16  # the diagonal pairs (T-dim integrals, N of them) get 16x the points: their error feeds every entry
_CHUNK_ELEMENTS = 1 << 21  # float64 samples per block of one chunk of pairs (16 MiB)


@dataclass(frozen=True)
class _Family:
    """One Gaussian family (update gates z, reset gates r or candidates c) at every step t:
    ``rec[t]`` = (coef, matrix, var, arg) of its recurrent MatMul term (None at t = 1) and
    ``atoms[t]`` = ((coef, name), ...) its Input / Bias terms."""

    rec: tuple
    atoms: tuple


@dataclass(frozen=True)
class GatedChain:
    """A recognised GRU-like chain: ``states[t]`` GatedBlend variables, their families."""

    states: tuple
    gate: object
    activation: object
    z: _Family
    c: _Family
    r: _Family | None  # reset gates (GatedProduct args of the candidates' MatMuls)
    reset_gate: object = None

    @property
    def families(self) -> dict:
        return {"z": self.z, "c": self.c, **({"r": self.r} if self.r is not None else {})}

    @property
    def memo(self) -> tuple:
        """The state variables of each moment set the kernel returns (here one: E[h_t h_s])."""
        return (self.states,)

    dims = 1  # Sobol' dimensions per sequence and step

    def orthant(self, T: int) -> bool:
        """erf update gates and T <= ORTHANT_MAX_STEPS: the gate factors are orthant probabilities,
        integrated by separation of variables (:mod:`netfield.meanfield.gated_sov`, B6) instead of the
        trajectory integral (B5); B6's cost grows like T^4 against B5's T^3 (break-even near T = 9,
        measured: docs/tensor_programs.md, B6)."""
        from ..program.architectures import erf_sigmoid
        from .gated_sov import ORTHANT_MAX_STEPS

        return self.gate is erf_sigmoid and T <= ORTHANT_MAX_STEPS

    def kernel(self, T, same, method):
        key = (self.gate, self.reset_gate, self.activation)
        if self.orthant(T):
            from .gated_sov import sov_pair_kernel

            return sov_pair_kernel(T, same, key, method, self.r is not None)
        return _pair_kernel(T, same, key, method, self.r is not None)


def _terms(program, g, coef=1.0):
    ins = program[g]
    if isinstance(ins, LinComb):
        out = []
        for c, a in ins.terms:
            sub = _terms(program, a, coef * float(c))
            if sub is None:
                return None
            out.extend(sub)
        return out
    if isinstance(ins, (Input, Bias, MatMul)):
        return [(coef, g)]
    return None


def _family(program, gvars, arg_ok, first_recurrent: bool = False):
    """Split each G-variable into one recurrent MatMul term (none at t = 0 unless
    ``first_recurrent``) and Input / Bias atoms; None if not of that shape or if a MatMul's argument
    fails ``arg_ok(t, arg)``."""
    rec, atoms = [], []
    for t, g in enumerate(gvars):
        terms = _terms(program, g)
        if terms is None:
            return None
        mats = [(c, n) for c, n in terms if isinstance(program[n], MatMul)]
        if len(mats) > 1 or bool(mats) != (t > 0 or first_recurrent):
            return None
        if mats:
            c, n = mats[0]
            mm = program[n]
            if mm.transpose or not arg_ok(t, mm.arg):
                return None
            rec.append((c, mm.matrix, mm.var, mm.arg))
        else:
            rec.append(None)
        atoms.append(tuple((c, n) for c, n in terms if not isinstance(program[n], MatMul)))
    return _Family(tuple(rec), tuple(atoms))


def find_chain(program, h: str):
    """The gated recurrence (GRU :class:`GatedChain` or :class:`~netfield.meanfield.gated_lstm.LSTMChain`)
    that state ``h`` belongs to, extended to its last step, or None."""
    def blend(name):
        ins = program[name]
        ok = isinstance(ins, Nonlin) and isinstance(ins.fn, GatedBlend) and not ins.coupled and not ins.params
        return ins if ok else None

    first = blend(h)
    if first is None:
        from .gated_lstm import find_lstm_chain

        return find_lstm_chain(program, h)
    chain = [h]
    while len(program[chain[0]].args) == 3:  # walk back to h_1
        prev = program[chain[0]].args[2]
        if blend(prev) is None or program[prev].fn != first.fn:
            return None
        chain.insert(0, prev)
    if len(program[chain[0]].args) != 2:
        return None
    successors = {}
    for ins in program.instructions:
        if isinstance(ins, Nonlin) and isinstance(ins.fn, GatedBlend) and len(ins.args) == 3:
            successors.setdefault(ins.args[2], []).append(ins.name)
    while len(successors.get(chain[-1], [])) == 1 and program[successors[chain[-1]][0]].fn == first.fn:
        chain.append(successors[chain[-1]][0])
    states = tuple(chain)
    index = {s: t for t, s in enumerate(states)}

    def previous_state(t, arg):
        return t >= 1 and index.get(arg) == t - 1

    zs = [program[s].args[0] for s in states]
    cs = [program[s].args[1] for s in states]
    z = _family(program, zs, previous_state)
    if z is None:
        return None
    resets: dict = {}

    def candidate_arg(t, arg):  # h_{t-1} itself or sig(r_t) h_{t-1}
        if previous_state(t, arg):
            return True
        ins = program[arg]
        if (isinstance(ins, Nonlin) and isinstance(ins.fn, GatedProduct) and not ins.coupled
                and not ins.params and len(ins.args) == 2 and previous_state(t, ins.args[1])
                and program.kind(ins.args[0]) == "G"):
            resets[t] = (ins.args[0], ins.fn.gate)
            return True
        return False

    c = _family(program, cs, candidate_arg)
    if c is None:
        return None
    r = None
    if resets:
        if len(resets) != len(states) - 1 or len({id(g) for _, g in resets.values()}) != 1:
            return None
        r = _family(program, [zs[0]] + [resets[t][0] for t in range(1, len(states))], previous_state)
        if r is None:
            return None
        r = _Family(r.rec, ((),) + r.atoms[1:])  # step 1 has no reset gate
    reset_gate = next(iter(resets.values()))[1] if resets else None
    from ..program.architectures import erf_sigmoid

    if reset_gate is not None and reset_gate is not erf_sigmoid:  # no closed-form reset moments: generic path
        return None
    chain = GatedChain(states, first.fn.gate, first.fn.activation, z, c, r, reset_gate)
    return chain if _independent_families(program, list(chain.families.values())) else None


def _independent_families(program, families) -> bool:
    """Different matrices / inputs / bias vectors per family: independent Gaussian families."""
    def used(fam):
        names = set()
        for rec, atoms in zip(fam.rec, fam.atoms):
            if rec is not None:
                names.add(("W", rec[1]))
            for _, n in atoms:
                ins = program[n]
                names.add(("U", ins.matrix) if isinstance(ins, Input) else ("b", ins.vector))
        return names

    sets = [used(f) for f in families]
    return all(not (sets[i] & sets[j]) for i in range(len(sets)) for j in range(i + 1, len(sets)))


def _gate_pair(gate, v1, v2, c, method):
    """E[sig(u) sig(v)] for (u, v) ~ N(0, [[v1, c], [c, v2]])."""
    from ..program.architectures import erf_sigmoid

    if gate is erf_sigmoid:  # sig = (1 + erf) / 2
        return 0.25 + 0.25 * pair("erf", v1, v2, c, method=method)
    return pair(get_activation(gate), v1, v2, c, method=method)


class GatedSolver:
    """Fills ``engine``'s moment memo with E[h_t h_s] (R, N, N) for every pair of the chain's states."""

    def __init__(self, engine, chain: GatedChain):
        self.engine, self.chain = engine, chain
        self.T = len(chain.memo[0])
        self.R = engine.replicates
        self.N = engine.size(chain.memo[0][0])
        self.points = engine.points
        self.method = engine.method
        self.orthant = bool(getattr(chain, "orthant", None) and chain.orthant(self.T))  # B6 (GRU, erf gates)

    # -- covariances of the Input / Bias parts: (R, T, T, N, N) per family ----------------------------
    def _drive(self, fam):
        import jax.numpy as jnp

        T, R, N = self.T, self.R, self.N
        rows = []
        for t in range(T):
            row = []
            for s in range(T):
                total = jnp.zeros((R, N, N))
                for c1, a1 in fam.atoms[t]:
                    for c2, a2 in fam.atoms[s]:
                        block = self.engine.cov(a1, a2)
                        if block is not None:
                            total = total + c1 * c2 * block
                row.append(total)
            rows.append(jnp.stack(row, axis=1))
        return jnp.stack(rows, axis=1)

    def _rec_scale(self, fam):
        """(T, T) coef_t coef_s var of the recurrent terms that share a matrix (0 otherwise)."""
        import jax.numpy as jnp

        T = self.T
        return jnp.stack([jnp.stack([
            fam.rec[t][0] * fam.rec[s][0] * jnp.asarray(fam.rec[t][2], jnp.float64)
            if fam.rec[t] is not None and fam.rec[s] is not None and fam.rec[t][1] == fam.rec[s][1]
            else jnp.zeros((), jnp.float64) for s in range(T)]) for t in range(T)])

    def solve(self):
        """All moment sets of the chain into the engine's memo (JAX arrays: differentiable with respect
        to the hyper-parameters, the quasi-Monte-Carlo points being fixed, eq. D1)."""
        import jax.numpy as jnp

        from ..gauss.multivariate import sobol_normals

        eng, chain = self.engine, self.chain
        self.families = {k: (self._rec_scale(f), self._drive(f)) for k, f in chain.families.items()}
        T, R, N, P = self.T, self.R, self.N, self.points
        K = len(chain.memo)
        eng._draws += 1
        seed = int(np.random.SeedSequence([eng.seed, eng._draws]).generate_state(1)[0])
        rows = np.arange(N)
        dims = chain.dims * T
        if self.orthant:  # uniforms for both copies of every pair, diagonal ones included (eq. G3)
            from ..gauss.multivariate import sobol_uniforms
            from .gated_sov import DIAG_BOOST as boost
            from .gated_sov import orthant_points

            points = lambda n, d, s: sobol_uniforms(orthant_points(n), 2 * dims, R, seed=s)
        else:
            boost, points = DIAG_BOOST, lambda n, d, s: sobol_normals(n, d, R, seed=s)
        diag = self._pairs(rows, rows, None, points(P * boost, dims, seed))  # (K, R, N, T, T)
        full = jnp.zeros((K, R, T, T, N, N)).at[..., rows, rows].set(diag.transpose(0, 1, 3, 4, 2))
        ia, ib = np.triu_indices(N, 1)
        if ia.size:
            s = self._pairs(ia, ib, diag, points(P, 2 * dims, seed + 1))  # (K, R, pairs, T, T)
            full = full.at[..., ia, ib].set(s.transpose(0, 1, 3, 4, 2))
            full = full.at[..., ib, ia].set(s.transpose(0, 1, 4, 3, 2))
        for k, states in enumerate(chain.memo):
            for t, ht in enumerate(states):
                for u, hu in enumerate(states):
                    eng._mom[(ht, hu)] = full[k, :, t, u]
        eng.backend_counts["gated"] = eng.backend_counts.get("gated", 0) + 1

    def _pairs(self, a, b, diag, xi):
        """Moment sets (K, R, pairs, T, T) of rows a_i, b_i in chunks of pairs; ``diag is None``: a == b."""
        import jax.numpy as jnp

        T, R = self.T, self.R
        P, nv = xi.shape[1], xi.shape[2]
        same = diag is None
        fn = self.chain.kernel(T, same, self.method)
        if self.orthant:  # B6 takes the (R, P, 2T) uniforms as they are
            from .gated_sov import chunk_size

            chunk = chunk_size(T, R, a.size)
            xi_blocks = jnp.asarray(xi)
        else:
            block = int(min(P, max(64, _CHUNK_ELEMENTS // (R * nv * 16))))
            block = 1 << (block.bit_length() - 1)  # a power of 2 dividing P
            chunk = int(max(1, min(a.size, _CHUNK_ELEMENTS // (R * block * nv))))
            xi_blocks = jnp.asarray(np.ascontiguousarray(xi.reshape(R, P // block, block, nv).transpose(1, 0, 2, 3)))
        out = []
        for lo in range(0, a.size, chunk):
            idx = np.minimum(np.arange(lo, lo + chunk), a.size - 1)  # pad the last chunk (one compiled shape)
            ca, cb = a[idx], b[idx]
            inputs = {name: (scale, *(drive[:, :, :, r1, r2].transpose(0, 3, 1, 2)
                                      for r1, r2 in ((ca, ca), (cb, cb), (ca, cb))))
                      for name, (scale, drive) in self.families.items()}
            saa, sbb = (None, None) if same else (diag[:, :, ca], diag[:, :, cb])
            out.append(fn(xi_blocks, inputs, saa, sbb)[:, :, :min(chunk, a.size - lo)])
        return jnp.concatenate(out, axis=2)


@functools.lru_cache(maxsize=32)
def _pair_kernel(T, same, key, method, has_reset):
    """The jitted trajectory integral of one chunk of row pairs (eqs. G1, G2), all steps."""
    import jax
    import jax.numpy as jnp

    from ..gauss.differentiable import eig_factor

    gate, reset_gate, activation = key

    def run(xi_blocks, fams, saa, sbb):
        R, B = fams["z"][1].shape[:2]
        S = jnp.zeros((R, B, T, T))
        for m in range(T):
            Sp = {"ab": _shifted(S), "aa": _shifted(S if same else saa[0]), "bb": _shifted(S if same else sbb[0])}
            kz = {side: fam_cov(fams["z"], side, Sp) for side in ("aa", "bb", "ab")}
            n1 = m + 1
            if same:
                C = kz["aa"][..., :n1, :n1]
            else:
                C = jnp.concatenate([jnp.concatenate([kz["aa"][..., :n1, :n1], kz["ab"][..., :n1, :n1]], -1),
                                     jnp.concatenate([jnp.swapaxes(kz["ab"][..., :n1, :n1], -1, -2),
                                                      kz["bb"][..., :n1, :n1]], -1)], -2)
            factor = eig_factor(C, True)  # PCA order (M1), derivative (D1)
            hc = _candidate_moments(fams, Sp, n1, activation, reset_gate, has_reset, method)  # (R, B, n1, n1)
            nv = factor.shape[-1]

            factor_t = jnp.swapaxes(factor, -1, -2).transpose(0, 2, 1, 3).reshape(R, nv, B * nv)
            hcs = [[hc[:, :, j, k, None] for k in range(n1)] for j in range(n1)]  # (R, B, 1) each

            def body(acc, xb, nv=nv, factor_t=factor_t, n1=n1, hcs=hcs):  # xb (R, block, nv): a block of points
                g = jnp.matmul(xb[..., :nv], factor_t).reshape(R, xb.shape[1], B, nv)  # (M1)
                g = g.transpose(3, 0, 2, 1)  # (nv, R, B, block): one contiguous array per variable
                g = g.astype(jnp.float32)  # single precision per point (3.5x faster; see _POINT_DTYPE)
                hcs = [[h.astype(jnp.float32) for h in row] for row in hcs]
                za = [gate(g[i]) for i in range(n1)]
                zb = za if same else [gate(g[n1 + i]) for i in range(n1)]
                wa = _last_weights(za)
                u = [sum(wa[j] * hcs[j][k] for j in range(n1)) for k in range(n1)]  # sum_j HC[j, k] w_{j,m}(a)
                out = [jnp.stack([v.mean(axis=-1) for v in _horner(u, zb)], axis=-1)]  # (G1) for S[m, s]
                if not same:
                    wb = _last_weights(zb)
                    u2 = [sum(hcs[j][k] * wb[k] for k in range(n1)) for j in range(n1)]
                    out.append(jnp.stack([v.mean(axis=-1) for v in _horner(u2, za)], axis=-1))  # S[s, m]
                return acc + jnp.stack(out).astype(acc.dtype), None  # block means summed in float64

            init = jnp.zeros((1 if same else 2, R, B, n1))
            acc, _ = jax.lax.scan(body, init, xi_blocks)
            acc = acc / xi_blocks.shape[0]
            S = S.at[:, :, m, :n1].set(acc[0])
            S = S.at[:, :, :m, m].set(acc[0][..., :m] if same else acc[1][..., :m])
        return S[None]

    return jax.jit(run)


def _shifted(S):
    """E[h_{t-1} h_{s-1}] at (t, s) from S (R, B, T, T), 0 where t = 0 or s = 0."""
    import jax.numpy as jnp

    return jnp.pad(S[..., :-1, :-1], ((0, 0), (0, 0), (1, 0), (1, 0)))


def fam_cov(fam, side, Sp):
    """(R, B, T, T) covariance of a family between the rows of ``side`` ("aa", "bb", "ab")."""
    scale, daa, dbb, dab = fam
    return scale * Sp[side] + {"aa": daa, "bb": dbb, "ab": dab}[side]


def _last_weights(z):
    """w_{j,m} = z_j prod_{l=j+1..m} (1 - z_l) for j <= m, from the list of gates z_0..z_m."""
    out = [None] * len(z)
    run = None
    for j in range(len(z) - 1, -1, -1):
        out[j] = z[j] if run is None else z[j] * run
        run = (1.0 - z[j]) if run is None else run * (1.0 - z[j])
    return out


def _horner(u, z):
    """v_s = sum_{k<=s} u_k w_{k,s}(z) for s = 0..m: v_s = (1 - z_s) v_{s-1} + z_s u_s (lists)."""
    out, v = [], None
    for s in range(len(u)):
        v = u[s] * z[s] if v is None else v * (1.0 - z[s]) + u[s] * z[s]
        out.append(v)
    return out


def _candidate_moments(fams, Sp, n1, activation, reset_gate, has_reset, method):
    """E[phi(c_t(a)) phi(c_s(b))] for t, s < n1: (R, B, n1, n1)."""
    import jax.numpy as jnp

    def kc(side):
        scale, daa, dbb, dab = fams["c"]
        drive = {"aa": daa, "bb": dbb, "ab": dab}[side]
        if not has_reset:
            return scale * Sp[side] + drive
        rs, raa, rbb, rab = fams["r"]
        kr = {s: rs * Sp[s] + d for s, d in (("aa", raa), ("bb", rbb), ("ab", rab))}
        v1 = jnp.diagonal(kr[side[0] * 2], axis1=-2, axis2=-1)[..., :, None]
        v2 = jnp.diagonal(kr[side[1] * 2], axis1=-2, axis2=-1)[..., None, :]
        rr = _gate_pair(reset_gate, v1, v2, kr[side], method)
        return scale * rr * Sp[side] + drive

    kab, kaa, kbb = kc("ab"), kc("aa"), kc("bb")
    v1 = jnp.diagonal(kaa, axis1=-2, axis2=-1)[..., :n1, None]
    v2 = jnp.diagonal(kbb, axis1=-2, axis2=-1)[..., None, :n1]
    return pair(activation, v1, v2, kab[..., :n1, :n1], method=method)
