"""The one mean-field result type of every network (docs/design.md, taps).

:class:`MeanFieldResult` reads a program interpreted by
:class:`~netfield.meanfield.netsor.ProgramEngine`: the readout kernel and its numerical error
estimate, and the kernels of the program's *taps* (``"h"``: pre-activations per layer / step of a
DNN or RNN, hidden states of a GRU / LSTM, the residual stream per transformer block, feature maps
per conv layer; gates of gated networks). Everything is computed on demand and memoised.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from .._checks import check_choice
from ..program.shape import recognise_chain
from . import fused
from .netsor import ProgramEngine


def readout_rows(program, readout: str) -> list:
    """(readout name, row) of every output row: ``"last"`` - each pattern's own output; ``"all"`` -
    per pattern, every readout up to its own last one, in program order (docs/design.md)."""
    last = program.output_readouts
    if readout == "last":
        return [(r, a) for a, r in enumerate(last)]
    order = [r.name for r in program.readouts]
    return [(r, a) for a, own in enumerate(last) for r in order[: order.index(own) + 1]]


def assemble_readouts(engine: ProgramEngine, rows1, rows2):
    """(R, len(rows1), len(rows2)) readout covariances; one block per pair of readouts involved."""
    R = engine.replicates
    out = jnp.zeros((R, len(rows1), len(rows2)))
    names1 = list(dict.fromkeys(r for r, _ in rows1))
    names2 = list(dict.fromkeys(r for r, _ in rows2))
    for r1 in names1:
        i = np.array([k for k, (r, _) in enumerate(rows1) if r == r1])
        a = np.array([rows1[k][1] for k in i])
        for r2 in names2:
            j = np.array([k for k, (r, _) in enumerate(rows2) if r == r2])
            b = np.array([rows2[k][1] for k in j])
            block = engine.readout_cov(r1, r2)
            out = out.at[:, i[:, None], j[None, :]].set(block[:, a[:, None], b[None, :]])
    return out


def _sem(reps: np.ndarray) -> np.ndarray:
    if reps.shape[0] < 2:
        return np.zeros(reps.shape[1:])
    return reps.std(axis=0, ddof=1) / np.sqrt(reps.shape[0])


class MeanFieldResult:
    """Mean-field (infinite-width) kernels of a network on one set of inputs.

    Attributes:
        net: the network; program: its program on these inputs; engine: the interpreter.
        readout: (N, N) readout kernel (each pattern's output), mean over quasi-Monte-Carlo replicates.
        error: (N, N) estimated absolute numerical error of ``readout`` (replicate standard error of
            the quasi-Monte-Carlo back-end plus the Gauss-Hermite error estimate; ~0 where only
            closed forms / panel quadrature, accurate to ~1e-12, were needed).
        backends: how many moments each back-end computed ({"closed", "lowdim", "qmc"}).
    """

    def __init__(self, net, program, engine: ProgramEngine):
        self.net = net
        self.program = program
        self.engine = engine
        self._readouts: dict = {}

    # -- readout -----------------------------------------------------------------------------------
    def _readout_reps(self, readout: str):
        if readout not in self._readouts:
            rows = readout_rows(self.program, readout)
            self._readouts[readout] = assemble_readouts(self.engine, rows, rows)
        return self._readouts[readout]

    @property
    def readout(self):
        return self._readout_reps("last").mean(axis=0)

    def readout_kernel(self, readout: str = "last"):
        """The readout kernel, ``"last"`` (N, N) or ``"all"`` (sum T_a, sum T_a) as :func:`netfield.kernel`."""
        check_choice("readout", readout, ("last", "all"))
        return self._readout_reps(readout).mean(axis=0)

    @property
    def error(self) -> np.ndarray:
        return _sem(np.asarray(self._readout_reps("last"))) + self.engine.lowdim_error

    @property
    def max_error(self) -> float:
        return float(self.error.max())

    @property
    def backends(self) -> dict:
        self._readout_reps("last")
        return dict(self.engine.backend_counts)

    @property
    def replicates(self) -> int:
        return self.engine.replicates

    # -- taps -----------------------------------------------------------------------------------------
    @property
    def taps(self) -> dict:
        """{family: sorted indices} of the program's taps."""
        return {family: sorted(entries) for family, entries in self.program.taps.items()}

    @property
    def steps(self) -> int:
        """Number of ``"h"`` taps (layers / steps / blocks)."""
        return len(self.program.taps.get("h", {}))

    def _index(self, family: str, name: str, t):
        indices = self.program.taps.get(family, {})
        if family not in self.program.taps:
            raise ValueError(f"family must be one of {sorted(self.program.taps)}, got {family!r}")
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or int(t) not in indices:
            lo, hi = min(indices), max(indices)
            raise ValueError(f"{name} must be an integer step in {lo}..{hi} of the {family!r} taps, got {t!r}")
        return indices[int(t)]

    def tap(self, family: str, t: int, s: int | None = None):
        """Kernel of two taps of one family: Cov(v_t(a), v_s(b)) for pre-activations (G-variables),
        E[v_t(a) v_s(b)] for hidden states (H-variables): the limit of (1/n) sum_i v_i,t(a) v_i,s(b)."""
        v1 = self._index(family, "t", t)
        v2 = v1 if s is None else self._index(family, "s", s)
        return self.engine.tap_kernel(v1, v2).mean(axis=0)

    def preactivation(self, t: int, s: int | None = None):
        """(N, N) kernel of the ``"h"`` taps at steps t and s (default s = t) (docs/theory.md 2.2):
        C_ts^ab = Cov(h_t(a), h_s(b)); exactly zero across layers of a DNN (independent weights)."""
        return self.tap("h", t, s)

    def preactivations(self) -> np.ndarray:
        """Every block C(t, s) of the ``"h"`` taps, as one numpy array of shape (steps, steps, M, M).

        A chain program (DNN / RNN) with inputs of one length and concrete variances uses the fused
        row recursion (fused.py); anything else the generic interpreter. Both agree to ~1e-15.
        """
        chain, _ = recognise_chain(self.program)
        if (chain is not None and chain.concrete and fused.supports(chain.activation)
                and self.engine.method in ("auto", "closed") and (chain.last == chain.last[0]).all()):
            return fused.two_time_kernels(chain, chain.x)
        T = self.steps
        first = np.asarray(self.preactivation(1))
        out = np.empty((T, T) + first.shape)
        for t in range(1, T + 1):
            for s in range(t, T + 1):
                out[t - 1, s - 1] = np.asarray(self.preactivation(t, s))
                out[s - 1, t - 1] = out[t - 1, s - 1].T
        return out

    def two_time(self, a: int = 0, b: int | None = None):
        """(T, T) matrix C(t, s) of the ``"h"`` taps for rows a and b (default b = a)."""
        b = a if b is None else b
        T = self.steps
        return jnp.array([[self.preactivation(t, s)[a, b] for s in range(1, T + 1)] for t in range(1, T + 1)])

    def covariance(self, g1: str, g2: str) -> np.ndarray:
        """Cov(Z_g1, Z_g2) between two G-variables of the program (replicate mean)."""
        for g in (g1, g2):
            if g not in self.program or self.program.kind(g) != "G":
                raise ValueError(f"{g!r} is not a G-variable of the program")
        return np.asarray(self.engine.cov_or_zeros(g1, g2)).mean(axis=0)

    def __repr__(self) -> str:
        return f"MeanFieldResult({self.net.name}, N={self.program.outputs}, taps={self.taps})"
