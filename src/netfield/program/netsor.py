"""NETSOR+ programs: the tensor-program language for networks of any architecture (docs/theory.md 7).

A program is a list of instructions over named variables. Every variable lives on a *row space*: the
patterns of the batch, or (pattern, token) pairs, or (pattern, position) pairs for images. A variable's
value is one vector of width n per row. Variables are of two kinds:

- **G**-variables: coordinates become jointly Gaussian at infinite width (master theorem):
  :class:`Input` ``U x``, :class:`Bias` ``b``, :class:`MatMul` ``W h``, :class:`LinComb`
  ``sum_i a_i g_i``, and the NETSOR+ linear operations whose coefficients are deterministic at
  infinite width: :class:`LayerNorm` (per-row moments), :class:`Attention` (1/n-scaled logits are
  moments), :class:`RowMap` of a G-variable (convolution shifts, pooling: fixed row mixing).
- **H**-variables: :class:`Nonlin` ``psi(args)`` applied coordinatewise - one or several arguments
  (gates), G- or H-variables (composition), optionally coupled across the rows of the batch (batch
  norm: ``coupled=True``) and with :class:`Moment` scalars as parameters (Nonlin+), and
  :class:`RowMap` of an H-variable.

:class:`Moment` ``c = (1/n) sum_alpha psi(args)_alpha`` gives one scalar per row, deterministic at
infinite width. :class:`Readout` ``f = V h + b_o`` ends the program; its kernel is the output.

Two interpreters run the same program: the mean-field one (:mod:`netfield.meanfield.netsor`,
master theorem) and the finite-width one (:mod:`netfield.finite.netsor`, sampled matrices).
Programs are written with :class:`~netfield.program.builder.ProgramBuilder`; :func:`validate` rejects programs that are not
well formed with a message naming the instruction.

Value convention shared by both interpreters: a variable's value is an array of shape (S, M): S
samples of one coordinate (the n coordinates of a finite network, or quadrature / quasi-Monte-Carlo
samples of the Gaussian at infinite width) by the M rows of its space. A Nonlin function receives
one such array per argument (and, for Moment parameters, arrays of shape (1, M)); coordinatewise
functions act elementwise, batch-coupled ones along the last axis.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np

from .._checks import is_traced
from ..gauss import Activation

G, H = "G", "H"


@dataclass(frozen=True)
class Input:
    """G: ``U x`` with U entries N(0, var / d); ``feed`` indexes ``Program.feeds`` ((M, d) features)."""

    name: str
    matrix: str
    feed: int
    var: float
    space: str


@dataclass(frozen=True)
class Bias:
    """G: a bias vector with iid N(0, var) entries, the same for every row."""

    name: str
    vector: str
    var: float
    space: str


@dataclass(frozen=True)
class MatMul:
    """G: ``W h`` (or ``W^T h``), W entries N(0, var / n), h an H-variable."""

    name: str
    matrix: str
    arg: str
    var: float
    space: str
    transpose: bool = False


@dataclass(frozen=True)
class LinComb:
    """G: ``sum_i coef_i g_i`` over G-variables of one space."""

    name: str
    terms: tuple  # ((coef, gvar), ...)
    space: str


@dataclass(frozen=True, eq=False)
class RowMap:
    """``A v`` along the rows: (M_out, M_in) fixed matrix (shift, pooling); keeps the kind of v."""

    name: str
    arg: str
    rows: np.ndarray
    space: str


@dataclass(frozen=True)
class LayerNorm:
    """G: ``(g - mean) / std`` with mean and std over the n coordinates of each row (Moments).

    At infinite width the mean is E Z_g = 0 and the variance Var Z_g(row): a deterministic
    per-row rescaling of a Gaussian, so the result stays a G-variable.
    """

    name: str
    arg: str
    space: str
    eps: float = 0.0


@dataclass(frozen=True, eq=False)
class Attention:
    """G: ``out_i = sum_j softmax_j(scale * q_i . k_j / n) v_j`` over the rows j allowed by ``mask``.

    The logits (1/n) q_i . k_j are Moments: at infinite width they become Cov(Z_q(i), Z_k(j)), so
    the attention weights are a deterministic row mixing of the G-variable v (docs/theory.md 7).
    """

    name: str
    query: str
    key: str
    value: str
    mask: np.ndarray  # (M, M) bool: row i may attend to row j
    scale: float
    space: str


@dataclass(frozen=True, eq=False)
class Nonlin:
    """H: ``fn(*args, *params)`` coordinatewise; ``coupled`` functions mix the rows (batch norm).

    ``activation`` is set for single-argument elementwise activations known to
    :mod:`netfield.gauss` (closed-form / panel-quadrature expectations apply). ``scale_free``
    declares that a coupled function of one argument depends on it only through the direction of
    its row-centred vector, (g - mean g) / |g - mean g| (batch norm over the whole batch, eps = 0):
    the NTK then integrates its Jacobian's 1/|g - mean g| singularity radially (docs/ntk.md 4).
    """

    name: str
    fn: Callable
    args: tuple
    space: str
    activation: Activation | None = None
    coupled: bool = False
    params: tuple = ()
    scale_free: bool = False


class ErfGates:
    """Coordinatewise product of erf-sigmoid gates ``prod_i sig(s_i g_i)``, sig(u) = (1 + erf u) / 2.

    Its Gaussian moments are orthant probabilities (closed form for up to 3 gates in all, docs/theory.md 7).
    """

    def __init__(self, signs):
        self.signs = tuple(int(s) for s in signs)
        if not self.signs or any(s not in (1, -1) for s in self.signs):
            raise ProgramError(f"gate signs must be +1 or -1, got {signs!r}")

    def __call__(self, *args):
        from jax.scipy.special import erf

        out = 1.0
        for s, a in zip(self.signs, args, strict=True):
            out = out * 0.5 * (1.0 + erf(s * a))
        return out

    def __repr__(self) -> str:
        return f"ErfGates({self.signs})"


@dataclass(frozen=True)
class GatedBlend:
    """Coordinatewise gated state update ``sig(z) * phi(c) + (1 - sig(z)) * h_old`` (a GRU step).

    Arguments ``(z, c)`` at the first step (h_0 = 0) and ``(z, c, h_old)`` after it; ``gate`` is the
    gate function sig, ``activation`` the candidate's phi. A chain of such updates whose z's and c's
    are independent Gaussian families is a gated recurrence: the mean-field interpreter computes its
    moments jointly over the trajectory (docs/tensor_programs.md B5, :mod:`netfield.meanfield.gated`).
    """

    gate: Callable
    activation: Activation

    def __call__(self, z, c, h_old=None):
        g = self.gate(z)
        new = g * self.activation.fn(c)
        return new if h_old is None else new + (1.0 - g) * h_old


@dataclass(frozen=True)
class GatedProduct:
    """Coordinatewise ``sig(g) * h`` (a GRU's reset gate applied to its state): arguments ``(g, h)``."""

    gate: Callable

    def __call__(self, g, h):
        return self.gate(g) * h


@dataclass(frozen=True)
class GatedCell:
    """Coordinatewise LSTM cell update ``sig(i) * phi(g) + sig(f) * c_old``: arguments ``(i, g)`` at
    the first step (c_0 = 0), ``(i, g, f, c_old)`` after it (docs/tensor_programs.md B5)."""

    gate: Callable
    activation: Activation

    def __call__(self, i, g, f=None, c_old=None):
        new = self.gate(i) * self.activation.fn(g)
        return new if f is None else new + self.gate(f) * c_old


@dataclass(frozen=True)
class GatedOutput:
    """Coordinatewise LSTM output ``sig(o) * psi(c)``: arguments ``(o, c)``."""

    gate: Callable
    activation: Activation

    def __call__(self, o, c):
        return self.gate(o) * self.activation.fn(c)


@dataclass(frozen=True, eq=False)
class Moment:
    """Scalar per row: ``(1/n) sum_alpha fn(*args)_alpha`` -> E fn(Z) at infinite width (NETSOR+)."""

    name: str
    fn: Callable
    args: tuple
    space: str


@dataclass(frozen=True, eq=False)
class Readout:
    """Output ``f = V h + b_o``: V entries N(0, var / (n * P)), b_o ~ N(0, bias_var).

    ``flatten`` (optional, (N, P) row indices): V reads all P rows of a pattern at once (a Dense layer
    on the flattened positions); otherwise each row of h is one output. A program may read out
    several H-variables (an RNN's output at every step); readouts that name the same ``matrix`` /
    ``vector`` share V / b_o, so their outputs are correlated (docs/design.md, taps).
    """

    name: str
    arg: str
    var: float
    bias_var: float
    flatten: np.ndarray | None = None
    matrix: str = "V"
    vector: str = "bo"


Instruction = Input | Bias | MatMul | LinComb | RowMap | LayerNorm | Attention | Nonlin | Moment | Readout
G_TYPES = (Input, Bias, MatMul, LinComb, LayerNorm, Attention)


@dataclass(frozen=True, eq=False)
class Program:
    """A validated NETSOR+ program.

    Attributes:
        instructions: in program order; at least one :class:`Readout`.
        feeds: input feature arrays (M, d) referenced by :class:`Input` instructions.
        spaces: {space name: number of rows}.
        kinds: {variable name: "G", "H", "M" (moment) or "out" (readout)}.
        taps: {family: {index: variable name}}: the variables a user may ask about by name
            (``"h"``: pre-activations / hidden states per layer or step; gates of gated networks).
        last: readout name per output row (each pattern's own last output), or None: every row of
            the final readout.
        batch_coupled: some function takes statistics over the batch of patterns (batch norm), so
            a pattern's kernel depends on the other patterns: the kernel has no exact tiles.
    """

    instructions: tuple
    feeds: tuple
    spaces: dict
    kinds: dict = field(default_factory=dict)
    taps: dict = field(default_factory=dict)
    last: tuple | None = None
    batch_coupled: bool = False

    def __post_init__(self):
        object.__setattr__(self, "_by_name", {ins.name: ins for ins in self.instructions})

    def __getitem__(self, name: str):
        return self._by_name[name]

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    @property
    def readout(self) -> Readout:
        """The final readout (the output of a single-readout program)."""
        return self.readouts[-1]

    @property
    def readouts(self) -> tuple:
        """Every :class:`Readout`, in program order."""
        return tuple(ins for ins in self.instructions if isinstance(ins, Readout))

    @property
    def output_readouts(self) -> tuple:
        """Readout name of each output row (``last``, or the final readout for every row)."""
        if self.last is not None:
            return self.last
        return (self.readout.name,) * self.outputs

    @property
    def outputs(self) -> int:
        """Number of output rows (patterns) of the final readout."""
        out = self.readout
        if out.flatten is not None:
            return out.flatten.shape[0]
        return self.spaces[self[out.arg].space]

    def tap(self, family: str, index: int) -> str:
        """Name of the variable tapped as ``family`` at ``index`` (ValueError naming what exists)."""
        if family not in self.taps:
            raise ValueError(f"tap family must be one of {sorted(self.taps)}, got {family!r}")
        names = self.taps[family]
        if index not in names:
            raise ValueError(f"{family!r} tap index must be one of {sorted(names)}, got {index!r}")
        return names[index]

    def kind(self, name: str) -> str:
        return self.kinds[name]

    def size(self, name: str) -> int:
        return self.spaces[self[name].space] if not isinstance(self[name], Readout) else 0

    @property
    def matrices(self) -> tuple:
        """Matrix / vector names of the hidden layers in order of first use (per-matrix random keys
        derive from it; the readout's V and b_o are integrated out and not listed)."""
        seen = {}
        for ins in self.instructions:
            if isinstance(ins, Readout):
                continue
            key = getattr(ins, "matrix", None) or getattr(ins, "vector", None)
            if key is not None:
                seen.setdefault(key, ins)
        return tuple(seen)


class ProgramError(ValueError):
    """A program that is not well formed; the message names the instruction."""


def _where(i: int, ins) -> str:
    return f"instruction {i} ({type(ins).__name__} {ins.name!r})"


def validate(instructions, feeds, spaces, taps=None, last=None, batch_coupled: bool = False) -> Program:
    """Check that a program is well formed (docs/theory.md 7) and return it as a :class:`Program`.

    Rejected, with a message naming the instruction: a variable used before it is defined or
    defined twice, an argument of the wrong kind (MatMul needs an H-variable, LinComb G-variables),
    rows that do not match (arguments on different row spaces, a row map or mask of the wrong shape),
    a matrix used both as W and as W^T, a matrix or vector used with two variances or two roles, an
    input matrix used with features of different dimensions, a program without a Readout, a tap that
    names no G- or H-variable, and per-row outputs (``last``) that name no Readout.
    """
    kinds: dict[str, str] = {}
    space_of: dict[str, str] = {}
    matrix_use: dict[str, tuple] = {}
    if not any(isinstance(ins, Readout) for ins in instructions):
        raise ProgramError("a program must have a Readout instruction (ProgramBuilder.readout)")

    def need(i, ins, arg, allowed):
        if arg not in kinds:
            raise ProgramError(f"{_where(i, ins)}: argument {arg!r} is used before it is defined")
        if kinds[arg] not in allowed:
            raise ProgramError(
                f"{_where(i, ins)}: argument {arg!r} is a {kinds[arg]}-variable, expected {' or '.join(allowed)}"
            )
        return space_of[arg]

    def same_space(i, ins, args):
        got = {a: space_of[a] for a in args}
        if len(set(got.values())) > 1 or (got and next(iter(got.values())) != ins.space):
            raise ProgramError(
                f"{_where(i, ins)}: arguments live on different row spaces {got}; "
                f"the instruction is on {ins.space!r}"
            )

    def use_matrix(i, ins, key, role, var, extra):
        if not is_traced(var) and not (np.isfinite(var) and var >= 0):
            raise ProgramError(f"{_where(i, ins)}: variance of {key!r} must be a finite number >= 0, got {var!r}")
        if key in matrix_use:
            role0, var0, extra0 = matrix_use[key]
            if role0 != role:
                raise ProgramError(f"{_where(i, ins)}: {key!r} is used as a {role} but was used as a {role0}")
            if var0 is not var and (is_traced(var0) or is_traced(var) or var0 != var):
                raise ProgramError(f"{_where(i, ins)}: {key!r} is used with variance {var} but earlier with {var0}")
            if extra0 != extra:
                if role == "matrix":
                    raise ProgramError(
                        f"{_where(i, ins)}: matrix {key!r} is used both as W and as W^T; NETSOR programs "
                        f"may use a matrix in one orientation only"
                    )
                raise ProgramError(
                    f"{_where(i, ins)}: input matrix {key!r} is used with features of dimension {extra} "
                    f"but earlier with dimension {extra0}"
                )
        matrix_use[key] = (role, var, extra)

    for i, ins in enumerate(instructions):
        if ins.name in kinds:
            raise ProgramError(f"{_where(i, ins)}: the name {ins.name!r} is already defined")
        if not isinstance(ins, Readout) and ins.space not in spaces:
            raise ProgramError(f"{_where(i, ins)}: unknown row space {ins.space!r}")
        if isinstance(ins, Input):
            feed = feeds[ins.feed]
            if feed.shape[0] != spaces[ins.space]:
                raise ProgramError(
                    f"{_where(i, ins)}: features have {feed.shape[0]} rows, the space {ins.space!r} has "
                    f"{spaces[ins.space]}"
                )
            use_matrix(i, ins, ins.matrix, "input matrix", ins.var, feed.shape[1])
            kind = G
        elif isinstance(ins, Bias):
            use_matrix(i, ins, ins.vector, "bias vector", ins.var, None)
            kind = G
        elif isinstance(ins, MatMul):
            need(i, ins, ins.arg, (H,))
            same_space(i, ins, [ins.arg])
            use_matrix(i, ins, ins.matrix, "matrix", ins.var, ins.transpose)
            kind = G
        elif isinstance(ins, LinComb):
            if not ins.terms:
                raise ProgramError(f"{_where(i, ins)}: a LinComb needs at least one term")
            for coef, arg in ins.terms:
                need(i, ins, arg, (G,))
                if not np.isfinite(coef):
                    raise ProgramError(f"{_where(i, ins)}: coefficient of {arg!r} must be finite, got {coef!r}")
            same_space(i, ins, [a for _, a in ins.terms])
            kind = G
        elif isinstance(ins, RowMap):
            src = need(i, ins, ins.arg, (G, H))
            want = (spaces[ins.space], spaces[src])
            if ins.rows.shape != want:
                raise ProgramError(
                    f"{_where(i, ins)}: row map has shape {ins.rows.shape}, expected {want} "
                    f"(rows of {ins.space!r} x rows of {src!r})"
                )
            kind = kinds[ins.arg]
        elif isinstance(ins, LayerNorm):
            need(i, ins, ins.arg, (G,))
            same_space(i, ins, [ins.arg])
            kind = G
        elif isinstance(ins, Attention):
            for arg in (ins.query, ins.key, ins.value):
                need(i, ins, arg, (G,))
            same_space(i, ins, [ins.query, ins.key, ins.value])
            m = spaces[ins.space]
            if ins.mask.shape != (m, m) or not ins.mask.any(axis=1).all():
                raise ProgramError(
                    f"{_where(i, ins)}: mask must be ({m}, {m}) booleans with at least one allowed row "
                    f"per row, got shape {ins.mask.shape}"
                )
            kind = G
        elif isinstance(ins, Nonlin | Moment):
            if not ins.args:
                raise ProgramError(f"{_where(i, ins)}: needs at least one argument")
            for arg in ins.args:
                need(i, ins, arg, (G, H))
            same_space(i, ins, list(ins.args))
            for p in getattr(ins, "params", ()):
                if kinds.get(p) != "M":
                    raise ProgramError(f"{_where(i, ins)}: parameter {p!r} must be a Moment defined before")
                if space_of[p] != ins.space:
                    raise ProgramError(f"{_where(i, ins)}: parameter {p!r} lives on another row space")
            kind = H if isinstance(ins, Nonlin) else "M"
        elif isinstance(ins, Readout):
            need(i, ins, ins.arg, (H,))
            concrete = not (is_traced(ins.var) or is_traced(ins.bias_var))
            if concrete and not (np.isfinite(ins.var) and ins.var > 0 and np.isfinite(ins.bias_var)
                                 and ins.bias_var >= 0):
                raise ProgramError(f"{_where(i, ins)}: readout variances must be finite, var > 0, bias_var >= 0")
            use_matrix(i, ins, ins.matrix, "readout matrix", ins.var, None)
            use_matrix(i, ins, ins.vector, "readout bias", ins.bias_var, None)
            if ins.flatten is not None and (
                    ins.flatten.ndim != 2 or ins.flatten.max() >= spaces[space_of[ins.arg]]):
                raise ProgramError(f"{_where(i, ins)}: flatten must be (N, P) row indices of {ins.arg!r}")
            kinds[ins.name] = "out"
            continue
        else:
            raise ProgramError(f"{_where(i, ins)}: unknown instruction type")
        kinds[ins.name] = kind
        space_of[ins.name] = ins.space
    taps = {family: dict(entries) for family, entries in (taps or {}).items()}
    for family, entries in taps.items():
        for index, name in entries.items():
            if name not in kinds or kinds[name] not in (G, H):
                raise ProgramError(f"tap {family!r}[{index}]: {name!r} is not a G- or H-variable of the program")
    if last is not None:
        last = tuple(last)
        readouts = [ins for ins in instructions if isinstance(ins, Readout)]
        rows = {space_of[r.arg] for r in readouts if r.flatten is None}
        if any(r.flatten is not None for r in readouts) or len(rows) != 1:
            raise ProgramError("per-row last outputs need readouts without flatten on one row space")
        if len(last) != spaces[rows.pop()] or any(kinds.get(r) != "out" for r in last):
            raise ProgramError("last must name one Readout per row of the readout space")
    return Program(tuple(instructions), tuple(feeds), dict(spaces), kinds, taps, last, batch_coupled)
