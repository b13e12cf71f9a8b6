"""Writing NETSOR+ programs: :class:`ProgramBuilder` and the variable handles it returns
(the language itself, its instructions and validation: :mod:`netfield.program.netsor`)."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .._checks import is_traced
from .._runtime.limits import INSTRUCTIONS_ENV, SizeLimitError, max_instructions
from ..gauss import Activation, get_activation
from .netsor import (
    Attention,
    Bias,
    ErfGates,
    G,
    H,
    Input,
    LayerNorm,
    LinComb,
    MatMul,
    Moment,
    Nonlin,
    Program,
    ProgramError,
    Readout,
    RowMap,
    validate,
)


@dataclass(frozen=True)
class Var:
    """Handle of a program variable returned by :class:`ProgramBuilder` methods.

    G-variables support ``g1 + g2``, ``g1 - g2`` and ``2.0 * g`` (a LinComb).
    """

    name: str
    kind: str
    space: str
    builder: ProgramBuilder = field(repr=False, compare=False)

    def _terms(self):
        ins = self.builder._pending.get(self.name)
        return ins if ins is not None else ((1.0, self.name),)

    def __add__(self, other):
        return self.builder._lincomb(self._terms() + _as_var(other)._terms(), self.space)

    def __sub__(self, other):
        neg = tuple((-c, a) for c, a in _as_var(other)._terms())
        return self.builder._lincomb(self._terms() + neg, self.space)

    def __mul__(self, coef):
        if not isinstance(coef, (int, float, np.floating, np.integer)):
            return NotImplemented
        return self.builder._lincomb(tuple((float(coef) * c, a) for c, a in self._terms()), self.space)

    __rmul__ = __mul__


def _as_var(v):
    if not isinstance(v, Var):
        raise TypeError(f"expected a program variable (Var), got {type(v).__name__}")
    return v


class ProgramBuilder:
    """Write a network as a NETSOR+ program, a few lines per architecture.

    Example (an MLP whose hidden layers share one matrix, read out after layer norm)::

        def shared_mlp(p, x):
            h = p.input("U", x, var=1.0) + p.bias("b", var=0.1)
            for _ in range(3):
                h = p.matmul("W", p.nonlin("tanh", h), var=1.5) + p.bias("b", var=0.1)
            return p.readout(p.nonlin("relu", p.layernorm(h)), var=1.0)

        arch = netfield.architecture(shared_mlp)
        netfield.kernel(arch, x)                               # mean field (master theorem)
        netfield.sample(arch, x, width=512, networks=8)        # finite width, same program
    """

    def __init__(self, batch_rows: int | None = None):
        self._batch_rows = batch_rows
        self._reads_batch = False
        self._instructions: list = []
        self._feeds: list = []
        self._spaces: dict = {}
        self._pending: dict = {}
        self._counter = 0
        self._taps: dict = {}
        self._last = None
        self._max_instructions = max_instructions()

    @property
    def batch_rows(self) -> int | None:
        """Batch-coupled functions (batch norm) take their statistics over these first rows (None: all);
        a program whose writer reads it is marked ``batch_coupled``."""
        self._reads_batch = True
        return self._batch_rows

    # -- helpers -------------------------------------------------------------------------------------
    @staticmethod
    def _variance(var):
        """A variance as given: a JAX tracer stays one (gradients w.r.t. hyper-parameters)."""
        return var if is_traced(var) else float(var)

    def _fresh(self, prefix: str) -> str:
        self._counter += 1
        return f"{prefix}{self._counter}"

    def _append(self, ins) -> None:
        if len(self._instructions) >= self._max_instructions:
            raise SizeLimitError(f"the program has more than {self._max_instructions} instructions (set "
                                 f"{INSTRUCTIONS_ENV} to allow more)")
        self._instructions.append(ins)

    def _emit(self, ins, kind) -> Var:
        self._append(ins)
        return Var(ins.name, kind, getattr(ins, "space", ""), self)

    def space(self, name: str, size: int) -> str:
        """Declare (or check) a row space of ``size`` rows."""
        if name in self._spaces and self._spaces[name] != size:
            raise ProgramError(f"row space {name!r} has {self._spaces[name]} rows, got {size}")
        self._spaces[name] = int(size)
        return name

    def _lincomb(self, terms, space) -> Var:
        # merge equal arguments, keep the LinComb lazy until it is used as an argument
        merged: dict = {}
        for c, a in terms:
            merged[a] = merged.get(a, 0.0) + c
        name = self._fresh("g")
        self._pending[name] = tuple((c, a) for a, c in merged.items())
        return Var(name, G, space, self)

    def _materialise(self, v: Var) -> str:
        v = _as_var(v)
        if v.name in self._pending:
            terms = self._pending.pop(v.name)
            self._append(LinComb(v.name, terms, v.space))
        return v.name

    # -- instructions --------------------------------------------------------------------------------
    def input(self, matrix: str, features, var: float = 1.0, *, space: str = "rows") -> Var:
        """G: ``U x`` for features of shape (M, d) (one row per row of ``space``)."""
        feats = np.asarray(features, dtype=np.float64)
        if feats.ndim != 2:
            raise ProgramError(f"input {matrix!r}: features must have shape (rows, d), got {feats.shape}")
        self.space(space, feats.shape[0])
        self._feeds.append(feats)
        return self._emit(Input(self._fresh("x"), matrix, len(self._feeds) - 1, self._variance(var), space), G)

    def bias(self, vector: str, var: float, *, space: str = "rows") -> Var:
        """G: a bias vector with N(0, var) entries."""
        if space not in self._spaces:
            raise ProgramError(f"bias {vector!r}: unknown row space {space!r}; declare it with space() or an input")
        return self._emit(Bias(self._fresh("b"), vector, self._variance(var), space), G)

    def matmul(self, matrix: str, h: Var, var: float = 1.0, *, transpose: bool = False) -> Var:
        """G: ``W h`` for an H-variable h; W entries N(0, var / n). Reusing a name shares the matrix."""
        h = _as_var(h)
        if h.kind != H:
            raise ProgramError(
                f"matmul {matrix!r}: argument {h.name!r} is a {h.kind}-variable, expected an H-variable "
                f"(apply a nonlinearity first, e.g. p.nonlin('linear', g))"
            )
        return self._emit(MatMul(self._fresh("g"), matrix, h.name, self._variance(var), h.space, transpose), G)

    def nonlin(self, fn, *args: Var, coupled: bool = False, params=(), scale_free: bool = False) -> Var:
        """H: ``fn(*args, *params)`` coordinatewise; ``fn`` an activation name or a JAX callable.
        ``scale_free``: a coupled function of one argument that depends on it only through the
        direction of its row-centred vector (batch norm, eps = 0; :class:`~netfield.program.netsor.Nonlin`)."""
        if not args:
            raise ProgramError("nonlin needs at least one argument")
        if scale_free and not (coupled and len(args) == 1 and not params):
            raise ProgramError("nonlin: scale_free applies to a coupled function of one argument without params")
        names = tuple(self._materialise(a) if a.kind == G else _as_var(a).name for a in args)
        activation = None
        if isinstance(fn, (str, Activation)):
            activation = get_activation(fn)
            if len(args) != 1 or coupled or params:
                raise ProgramError(f"nonlin: activation {activation.name!r} takes one argument")
            call = activation.fn
        elif callable(fn):
            call = fn
        else:
            raise ProgramError(f"nonlin: fn must be an activation name or a callable, got {fn!r}")
        pnames = tuple(_as_var(p).name for p in params)
        return self._emit(Nonlin(self._fresh("h"), call, names, args[0].space, activation, coupled, pnames,
                                 bool(scale_free)), H)

    def erf_gates(self, *gates: Var, signs=None) -> Var:
        """H: ``prod_i sig(s_i g_i)`` of G-variables with sig(u) = (1 + erf u) / 2 (default signs +1);
        ``1 - sig(u) = sig(-u)``. Moments of gate products are computed in closed form."""
        signs = (1,) * len(gates) if signs is None else tuple(signs)
        if len(signs) != len(gates) or any(_as_var(g).kind != G for g in gates):
            raise ProgramError("erf_gates takes G-variables and one sign (+1 / -1) per gate")
        names = tuple(self._materialise(g) for g in gates)
        return self._emit(Nonlin(self._fresh("h"), ErfGates(signs), names, gates[0].space), H)

    def moment(self, fn, *args: Var) -> Var:
        """Scalar per row ``(1/n) sum_alpha fn(*args)_alpha`` (NETSOR+ Moment)."""
        names = tuple(self._materialise(a) if a.kind == G else a.name for a in args)
        return self._emit(Moment(self._fresh("c"), fn, names, args[0].space), "M")

    def rowmap(self, v: Var, rows, *, space: str) -> Var:
        """``A v`` along the rows with a fixed (M_out, M_in) matrix: shifts, pooling, token selection."""
        rows = np.asarray(rows, dtype=np.float64)
        name = self._materialise(v) if v.kind == G else v.name
        self.space(space, rows.shape[0])
        return self._emit(RowMap(self._fresh("r"), name, rows, space), v.kind)

    def layernorm(self, g: Var, eps: float = 0.0) -> Var:
        """G: ``(g - mean) / sqrt(var + eps)`` over the n coordinates of each row."""
        name = self._materialise(g)
        return self._emit(LayerNorm(self._fresh("ln"), name, g.space, float(eps)), G)

    def attention(self, query: Var, key: Var, value: Var, *, mask=None, scale: float = 1.0) -> Var:
        """G: softmax attention with 1/n-scaled logits ``scale * q_i . k_j / n`` over allowed rows."""
        names = [self._materialise(v) for v in (query, key, value)]
        m = self._spaces[query.space]
        mask = np.ones((m, m), bool) if mask is None else np.asarray(mask, bool)
        return self._emit(Attention(self._fresh("att"), *names, mask, float(scale), query.space), G)

    def readout(self, h: Var, var: float = 1.0, bias_var: float = 0.0, *, flatten=None, matrix: str = "V",
                vector: str = "bo") -> Var:
        """Output ``V h + b_o``; ``flatten`` = (N, P) rows read out together. Several readouts with the
        same ``matrix`` / ``vector`` share V / b_o (an RNN read out at every step); the last one
        written is the program's output unless :meth:`last` says otherwise."""
        flat = None if flatten is None else np.asarray(flatten, dtype=np.int64)
        name = "out" if not any(isinstance(i, Readout) for i in self._instructions) else self._fresh("out")
        return self._emit(Readout(name, _as_var(h).name, self._variance(var), self._variance(bias_var), flat,
                                  matrix, vector), "out")

    def tap(self, family: str, index: int, v: Var) -> Var:
        """Name ``v`` as a variable users may ask about: ``family`` (e.g. ``"h"``) at ``index`` (a layer
        or step, from 1). Mean-field and sampled kernels of taps: :meth:`MeanFieldResult.tap`,
        ``netfield.sample(..., preactivations=...)``."""
        v = _as_var(v)
        name = self._materialise(v) if v.kind == G else v.name
        self._taps.setdefault(family, {})[int(index)] = name
        return v

    def last(self, readouts) -> None:
        """Per row of the readout space, the readout (a Var returned by :meth:`readout`) that is that
        row's output: sequences of different lengths read out at their own last step."""
        self._last = tuple(_as_var(r).name for r in readouts)

    def build(self) -> Program:
        return validate(self._instructions, self._feeds, self._spaces, self._taps, self._last, self._reads_batch)
