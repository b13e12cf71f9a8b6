"""LSTM states at infinite width: one trajectory integral per pair of sequences (docs/tensor_programs.md
section 3, back-end B5, eq. G3).

A chain of :class:`~netfield.program.netsor.GatedCell` / :class:`~netfield.program.netsor.GatedOutput`
variables

    c_t = sig(f_t) c_{t-1} + sig(i_t) phi(g_t),   c_0 = 0,      h_t = sig(o_t) psi(c_t),

with the input, forget, output gates and the candidate drawn from different matrices, inputs and
biases (independent Gaussian families at infinite width), has

    E[h_t(a) h_s(b)] = E[sig(o_t(a)) sig(o_s(b))] E[psi(c_t(a)) psi(c_s(b))].                    (G3)

The output-gate factor is closed form (erf gates); the cell factor needs the whole trajectory of
(i, f, g) of both sequences, 6T Gaussians (3T for a == b): at step m one randomized quasi-Monte-Carlo
pass with the PCA factor of each family's covariance up to m (each family's k-th component on Sobol'
dimension 3k + family, so the leading dimensions carry every family's main directions) runs the cell
recursion per point and averages psi(c_m(a)) psi(c_s(b)) and c_m(a) c_s(b) (the cell taps) for all
s <= m, and the mirror images. The solver, chunking and error estimate are those of
:mod:`netfield.meanfield.gated`.

Cost: about pairs x replicates x qmc_points x (12 T^3 / 3 flops + 4 T^2 gate / activation
evaluations); ``qmc_points`` is the accuracy lever (the error falls roughly like its inverse square
root to inverse first power, it is reported per entry).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from ..program.netsor import GatedCell, GatedOutput, Nonlin
from .gated import _Family, _family, _gate_pair, _independent_families, fam_cov
from .gated import _shifted as shifted


@dataclass(frozen=True)
class LSTMChain:
    """A recognised LSTM: cell and output states per step and the four Gaussian families."""

    cells: tuple
    outputs: tuple
    gate: object
    activation: object
    cell_activation: object
    i: object
    g: object
    f: object
    o: object

    @property
    def families(self) -> dict:
        return {"i": self.i, "g": self.g, "f": self.f, "o": self.o}

    @property
    def memo(self) -> tuple:
        return (self.outputs, self.cells)

    dims = 3  # Sobol' dimensions per sequence and step: i, g, f

    def kernel(self, T, same, method):
        return _lstm_kernel(T, same, (self.gate, self.activation, self.cell_activation), method)


def find_lstm_chain(program, h: str) -> LSTMChain | None:
    """The LSTM chain that the cell or output state ``h`` belongs to, or None."""
    from ..program.architectures import erf_sigmoid

    def node(name, kind):
        ins = program[name]
        ok = isinstance(ins, Nonlin) and isinstance(ins.fn, kind) and not ins.coupled and not ins.params
        return ins if ok else None

    ins = node(h, GatedOutput)
    cell = ins.args[1] if ins is not None else (h if node(h, GatedCell) is not None else None)
    if cell is None or node(cell, GatedCell) is None:
        return None
    fn = program[cell].fn
    cells = [cell]
    while len(program[cells[0]].args) == 4:
        prev = program[cells[0]].args[3]
        if node(prev, GatedCell) is None or program[prev].fn != fn:
            return None
        cells.insert(0, prev)
    if len(program[cells[0]].args) != 2:
        return None
    successors: dict = {}
    outputs_of: dict = {}
    for x in program.instructions:
        if isinstance(x, Nonlin) and isinstance(x.fn, GatedCell) and len(x.args) == 4:
            successors.setdefault(x.args[3], []).append(x.name)
        if isinstance(x, Nonlin) and isinstance(x.fn, GatedOutput) and len(x.args) == 2:
            outputs_of.setdefault(x.args[1], []).append(x.name)
    while len(successors.get(cells[-1], [])) == 1 and program[successors[cells[-1]][0]].fn == fn:
        cells.append(successors[cells[-1]][0])
    outs = [outputs_of.get(c, []) for c in cells]
    if any(len(o) != 1 or node(o[0], GatedOutput) is None for o in outs):
        return None
    outputs = [o[0] for o in outs]
    out_fn = program[outputs[0]].fn
    if any(program[o].fn != out_fn for o in outputs) or out_fn.gate is not fn.gate or fn.gate is not erf_sigmoid:
        return None  # the output-gate moments are closed form for erf gates only
    index = {s: t for t, s in enumerate(outputs)}

    def previous_output(t, arg):
        return t >= 1 and index.get(arg) == t - 1

    T = len(cells)
    fams = {}
    for name, pick in (("i", lambda t: program[cells[t]].args[0]), ("g", lambda t: program[cells[t]].args[1]),
                       ("o", lambda t: program[outputs[t]].args[0])):
        fams[name] = _family(program, [pick(t) for t in range(T)], previous_output)
    forget = [program[cells[t]].args[2] for t in range(1, T)]
    f = _family(program, forget, lambda t, arg: previous_output(t + 1, arg), first_recurrent=True) if forget else None
    if any(v is None for v in fams.values()) or (forget and f is None):
        return None
    f = _Family((None,) + (f.rec if f else ()), ((),) + (f.atoms if f else ()))
    chain = LSTMChain(tuple(cells), tuple(outputs), fn.gate, fn.activation, out_fn.activation,
                      fams["i"], fams["g"], f, fams["o"])
    return chain if _independent_families(program, list(chain.families.values())) else None


@functools.lru_cache(maxsize=32)
def _lstm_kernel(T, same, key, method):
    """The jitted trajectory integral (G3) of one chunk of row pairs, all steps: (2, R, B, T, T) =
    (E[h_t h_s], E[c_t c_s])."""
    import jax
    import jax.numpy as jnp

    from ..gauss.differentiable import eig_factor

    gate, act, cell = key
    sides = ("aa", "bb", "ab")

    def run(xi_blocks, fams, saa, sbb):
        R, B = fams["i"][1].shape[:2]
        Sh = jnp.zeros((R, B, T, T))
        Sc = jnp.zeros((R, B, T, T))
        for m in range(T):
            n1 = m + 1
            Sp = {"ab": shifted(Sh), "aa": shifted(Sh if same else saa[0]), "bb": shifted(Sh if same else sbb[0])}
            covs = []
            for k in ("i", "g", "f"):
                kk = {side: fam_cov(fams[k], side, Sp)[..., :n1, :n1] for side in sides}
                covs.append(kk["aa"] if same else jnp.concatenate(
                    [jnp.concatenate([kk["aa"], kk["ab"]], -1),
                     jnp.concatenate([jnp.swapaxes(kk["ab"], -1, -2), kk["bb"]], -1)], -2))
            # one batched eigendecomposition: concurrent ones can wedge XLA:CPU's eigen thread pool
            factors = eig_factor(jnp.stack(covs), True)  # (M1), (D1)
            nv = factors[0].shape[-1]
            fts = [jnp.swapaxes(f, -1, -2).transpose(0, 2, 1, 3).reshape(R, nv, B * nv) for f in factors]
            ko = {side: fam_cov(fams["o"], side, Sp) for side in sides}
            ho = _gate_pair(gate, jnp.diagonal(ko["aa"], axis1=-2, axis2=-1)[..., :n1, None],
                            jnp.diagonal(ko["bb"], axis1=-2, axis2=-1)[..., None, :n1], ko["ab"][..., :n1, :n1],
                            method)  # E[sig(o_t(a)) sig(o_s(b))]

            def body(acc, xb, nv=nv, fts=fts, n1=n1, m=m):
                blk = xb.shape[1]
                vals = [jnp.matmul(xb[..., q:3 * nv:3], fts[q]).reshape(R, blk, B, nv).transpose(3, 0, 2, 1)
                        for q in range(3)]  # i, g, f: (nv, R, B, block)

                def run_cells(off):
                    c, cs, ps = None, [], []
                    for t in range(n1):
                        new = gate(vals[0][off + t]) * act.fn(vals[1][off + t])
                        c = new if c is None else new + gate(vals[2][off + t]) * c
                        cs.append(c)
                        ps.append(cell.fn(c))
                    return cs, ps

                ca, pa = run_cells(0)
                cb, pb = (ca, pa) if same else run_cells(n1)
                out = [jnp.stack([(pa[m] * pb[s]).mean(axis=-1) for s in range(n1)], axis=-1),
                       jnp.stack([(ca[m] * cb[s]).mean(axis=-1) for s in range(n1)], axis=-1)]
                if not same:
                    out += [jnp.stack([(pa[s] * pb[m]).mean(axis=-1) for s in range(n1)], axis=-1),
                            jnp.stack([(ca[s] * cb[m]).mean(axis=-1) for s in range(n1)], axis=-1)]
                return acc + jnp.stack(out), None

            acc, _ = jax.lax.scan(body, jnp.zeros((2 if same else 4, R, B, n1)), xi_blocks)
            acc = acc / xi_blocks.shape[0]
            Sh = Sh.at[:, :, m, :n1].set(ho[..., m, :] * acc[0])
            Sc = Sc.at[:, :, m, :n1].set(acc[1])
            if same:
                Sh = Sh.at[:, :, :m, m].set(Sh[:, :, m, :m])
                Sc = Sc.at[:, :, :m, m].set(Sc[:, :, m, :m])
            else:
                Sh = Sh.at[:, :, :m, m].set(ho[..., :m, m] * acc[2][..., :m])
                Sc = Sc.at[:, :, :m, m].set(acc[3][..., :m])
        return jnp.stack([Sh, Sc])

    return jax.jit(run)
