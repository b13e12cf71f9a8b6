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

from .._checks import check_choice, is_traced
from ..program.shape import recognise_chain
from ..storage import Storable, read, write
from . import fused, two_time
from .netsor import ProgramEngine
from .ntk import TangentEngine


def check_finite_result(k, net, what: str):
    """``k`` if all its entries are finite, else a ValueError saying why finite inputs can give NaN / inf
    (no NaN is ever returned for valid input). min / max propagate NaN and show inf without a temporary
    array the size of ``k`` (the kernel's memory budget). Traced values (``jax.grad``) pass unchecked."""
    if is_traced(k):
        return k
    arr = np.asarray(k)
    if arr.size == 0 or (np.isfinite(arr.min()) and np.isfinite(arr.max())):
        return k
    bad = "inf" if np.isinf(arr).any() else "NaN"
    raise ValueError(f"the {what} of {net!r} has {bad} entries for these finite inputs: its values overflow float64 "
                     f"(lower weight_var / input_var or rescale x1) or a normalisation (batch / layer norm) meets "
                     f"a batch or sequence without variance (identical or all-zero inputs with bias_var = 0: make "
                     f"bias_var or eps > 0)")


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
    return assemble(engine.readout_cov, rows1, rows2, engine.replicates)


def assemble(block, rows1, rows2, replicates: int):
    """(R, len(rows1), len(rows2)) from ``block(r1, r2)`` -> (R, M1, M2) per pair of readouts involved
    (readout covariances, NTK blocks)."""
    names1 = list(dict.fromkeys(r for r, _ in rows1))
    names2 = list(dict.fromkeys(r for r, _ in rows2))
    parts = []
    for r1 in names1:
        i = np.array([k for k, (r, _) in enumerate(rows1) if r == r1])
        a = np.array([rows1[k][1] for k in i])
        for r2 in names2:
            j = np.array([k for k, (r, _) in enumerate(rows2) if r == r2])
            b = np.array([rows2[k][1] for k in j])
            value = block(r1, r2)
            value = value if is_traced(value) else np.asarray(value)  # NumPy: no eager gather to compile
            parts.append((i, j, value[:, a[:, None], b[None, :]]))
    if not any(is_traced(p) for _, _, p in parts):
        # concrete values: assembled in NumPy (one eagerly compiled scatter per block shape otherwise)
        out = np.zeros((replicates, len(rows1), len(rows2)))
        for i, j, p in parts:
            out[:, i[:, None], j[None, :]] = p
        return jnp.asarray(out)
    out = jnp.zeros((replicates, len(rows1), len(rows2)))
    for i, j, p in parts:
        out = out.at[:, i[:, None], j[None, :]].set(p)
    return out


def _sem(reps: np.ndarray) -> np.ndarray:
    if reps.shape[0] < 2:
        return np.zeros(reps.shape[1:])
    return reps.std(axis=0, ddof=1) / np.sqrt(reps.shape[0])


class MeanFieldResult(Storable):
    """Mean-field (infinite-width) kernels of a network on one set of inputs.

    ``mf.save(path)`` computes and writes the readout kernels, their error estimate and every tap
    kernel to a portable .npz file (:mod:`netfield.storage`); ``MeanFieldResult.load(path)`` gives a
    :class:`StoredMeanField` with the same reading methods and values.

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
        self._tangents: dict = {}
        self._ntks: dict = {}

    # -- readout -----------------------------------------------------------------------------------
    def _readout_reps(self, readout: str):
        if readout not in self._readouts:
            rows = readout_rows(self.program, readout)
            self._readouts[readout] = check_finite_result(assemble_readouts(self.engine, rows, rows), self.net,
                                                          "kernel")
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

    # -- neural tangent kernel ----------------------------------------------------------------------
    def _ntk_reps(self, readout: str, parameterization: str, width):
        check_choice("readout", readout, ("last", "all"))
        key = (readout, parameterization, width)
        if key not in self._ntks:
            if (parameterization, width) not in self._tangents:
                self._tangents[(parameterization, width)] = TangentEngine(self.engine, parameterization, width)
            rows = readout_rows(self.program, readout)
            self._ntks[key] = check_finite_result(assemble(self._tangents[(parameterization, width)].readout_ntk, rows,
                                                           rows, self.engine.replicates), self.net, "NTK")
        return self._ntks[key]

    def ntk(self, readout: str = "last", *, parameterization: str = "ntk", width: int | None = None):
        """The neural tangent kernel, as ``netfield.kernel(..., kind="ntk")`` (docs/ntk.md), from this
        result's interpreter (the NNGP blocks it needs are shared); its error: :meth:`ntk_error`."""
        return self._ntk_reps(readout, parameterization, width).mean(axis=0)

    def ntk_error(self, readout: str = "last", *, parameterization: str = "ntk", width: int | None = None):
        """Numerical error estimate of :meth:`ntk` (standard error over the quasi-Monte-Carlo
        replicates plus the Gauss-Hermite error estimate; ~0 for closed forms)."""
        return _sem(np.asarray(self._ntk_reps(readout, parameterization, width))) + self.engine.lowdim_error

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
        lag recursion (two_time.py); anything else the generic interpreter. Both agree to ~1e-15.
        """
        chain, _ = recognise_chain(self.program)
        if (chain is not None and chain.concrete and fused.supports(chain.activation)
                and self.engine.method in ("auto", "closed") and (chain.last == chain.last[0]).all()):
            return two_time.two_time_kernels(chain, chain.x)
        T = self.steps
        first = np.asarray(self.preactivation(1))
        out = np.empty((T, T) + first.shape)
        for t in range(1, T + 1):
            for s in range(t, T + 1):
                out[t - 1, s - 1] = np.asarray(self.preactivation(t, s))
                out[s - 1, t - 1] = out[t - 1, s - 1].T
        return out

    def two_time(self, a: int = 0, b: int | None = None):
        """(T, T) matrix C(t, s) of the ``"h"`` taps for rows a and b (default b = a), each in 0..M-1
        (IndexError otherwise; no negative indices)."""
        b = a if b is None else b
        rows = int(np.shape(self.preactivation(1))[0])
        for name, value in (("a", a), ("b", b)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
                raise TypeError(f"two_time: {name} must be an integer row in 0..{rows - 1}, got {value!r} of type "
                                f"{type(value).__name__}")
            if not 0 <= value < rows:
                raise IndexError(f"two_time: {name} must be a row in 0..{rows - 1} (the kernel has {rows} rows), "
                                 f"got {value!r}")
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

    # -- keeping it ------------------------------------------------------------------------------------
    def save(self, path, *, network=None, taps: bool = True):
        """Write the kernels to ``path`` (.npz, :mod:`netfield.storage`); returns the path.

        Stored: the readout kernels ("last" and "all", every quasi-Monte-Carlo replicate), the error
        estimate, the back-end counts and, with ``taps`` (default), the kernel of every pair of taps of
        every family (computed now if not yet: for gated networks this is the expensive part) and
        :meth:`preactivations`. ``network``: recorded with it (default: ``self.net``).
        """
        families = self.taps if taps else {}
        kernels = {(f, t, s): np.asarray(self.tap(f, t, s)) for f, idx in families.items()
                   for i, t in enumerate(idx) for s in idx[i:]}
        fields = {"readout_last": np.asarray(self._readout_reps("last")),
                  "readout_all": np.asarray(self._readout_reps("all")),
                  "lowdim_error": np.asarray(self.engine.lowdim_error), "backends": self.backends,
                  "replicates": int(self.replicates), "outputs": self.program.outputs, "taps": families,
                  "tap_kernels": kernels,
                  "preactivations": np.asarray(self.preactivations()) if taps and "h" in families else None}
        return write(path, "MeanFieldResult", fields, network=network or self.net)

    @classmethod
    def load(cls, path) -> StoredMeanField:
        """The kernels saved by :meth:`save`, as a :class:`StoredMeanField`."""
        fields, _, net = read(path, "MeanFieldResult")
        return StoredMeanField(net, fields, path)


class StoredMeanField(MeanFieldResult):
    """A :class:`MeanFieldResult` read back from a file: the same reading methods and values; ``net``
    is the network built again from its description (None where it cannot be, e.g. a custom activation:
    ``netfield.storage.read_metadata(path)["network"]`` has the description). No interpreter: kernels
    that were not saved (``covariance``; taps saved with ``taps=False``) raise ValueError."""

    def __init__(self, net, fields: dict, path=None):
        self.net, self.program, self.engine = net, None, None
        self._fields, self._path = fields, path
        self._readouts = {"last": jnp.asarray(fields["readout_last"]), "all": jnp.asarray(fields["readout_all"])}

    def _readout_reps(self, readout: str):
        return self._readouts[readout]

    def _ntk_reps(self, readout: str, parameterization: str, width):
        where = f" ({self._path})" if self._path else ""
        raise ValueError(f"a stored mean-field result{where} keeps the NNGP kernels only; compute the NTK with "
                         f"netfield.mean_field(net, x).ntk() or netfield.kernel(net, x, kind='ntk')")

    @property
    def error(self) -> np.ndarray:
        return _sem(np.asarray(self._readouts["last"])) + self._fields["lowdim_error"]

    @property
    def backends(self) -> dict:
        return dict(self._fields["backends"])

    @property
    def replicates(self) -> int:
        return self._fields["replicates"]

    @property
    def taps(self) -> dict:
        return {family: list(indices) for family, indices in self._fields["taps"].items()}

    @property
    def steps(self) -> int:
        return len(self._fields["taps"].get("h", ()))

    def tap(self, family: str, t: int, s: int | None = None):
        s = t if s is None else s
        kernels = self._fields["tap_kernels"]
        if family not in self._fields["taps"]:
            raise ValueError(f"family must be one of {sorted(self._fields['taps'])} (the taps saved in "
                             f"{self._path}), got {family!r}")
        for key, transpose in (((family, t, s), False), ((family, s, t), True)):
            if key in kernels:
                return kernels[key].T if transpose else kernels[key]
        indices = self._fields["taps"][family]
        raise ValueError(f"t and s must be steps in {min(indices)}..{max(indices)} of the {family!r} taps, "
                         f"got ({t!r}, {s!r})")

    def preactivations(self) -> np.ndarray:
        if self._fields["preactivations"] is None:
            raise ValueError(f"the file {self._path} holds no tap kernels (saved with taps=False)")
        return self._fields["preactivations"]

    def covariance(self, g1: str, g2: str) -> np.ndarray:
        raise ValueError(f"covariance({g1!r}, {g2!r}) needs the program's interpreter, which is not saved; "
                         f"recompute with netfield.mean_field(net, x)")

    def save(self, path, *, network=None, taps: bool = True):
        return write(path, "MeanFieldResult", self._fields, network=network or self.net)

    def __repr__(self) -> str:
        name = self.net.name if self.net is not None else "network not rebuilt"
        return f"StoredMeanField({name}, N={self._fields['outputs']}, taps={self.taps})"
