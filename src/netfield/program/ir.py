"""The tensor-program IR (docs/design.md section 1, docs/theory.md section 7).

A program is a list of instructions over named variables:

- G-variables (:class:`LinComb`): sums of *atoms* - :class:`MatMul` (an A-matrix times an
  H-variable), :class:`InputProj` (an input matrix times the input at one step) and :class:`Bias`.
  Their coordinates become jointly Gaussian at infinite width (master theorem).
- H-variables (:class:`Nonlin`): a coordinatewise activation of a G-variable.

Every matrix and bias vector is named; its prior variance is the network hyper-parameter named in
``Program.variances``. Two atoms are correlated only if they use the *same* matrix/vector: this one
rule makes cross-layer covariances vanish in a DNN (fresh names per layer) and keeps the cross-time
covariances of an RNN (one shared name).
"""

from __future__ import annotations

from dataclasses import dataclass

from ..gauss import Activation


@dataclass(frozen=True)
class MatMul:
    """Atom ``W h``: matrix ``matrix`` (entries N(0, var / n)) times H-variable ``arg``."""

    matrix: str
    arg: str


@dataclass(frozen=True)
class InputProj:
    """Atom ``U x_step``: input matrix (entries N(0, var / d)) times the input at ``step`` (1-based)."""

    matrix: str
    step: int


@dataclass(frozen=True)
class Bias:
    """Atom ``b``: a bias vector with iid N(0, var) entries."""

    vector: str


Atom = MatMul | InputProj | Bias


@dataclass(frozen=True)
class LinComb:
    """G-variable ``name = sum of atoms`` (unit coefficients)."""

    name: str
    atoms: tuple[Atom, ...]


@dataclass(frozen=True)
class Nonlin:
    """H-variable ``name = activation(arg)`` applied coordinatewise."""

    name: str
    activation: Activation
    arg: str


@dataclass(frozen=True)
class Program:
    """A network as a tensor program.

    Attributes:
        instructions: LinComb / Nonlin instructions in program order.
        variances: pairs (matrix or vector name, hyper-parameter field name of the network).
        hidden: G-variable names of the pre-activations h_t, t = 1..steps.
        readouts: G-variable names of the outputs f_t = V phi(h_t) + b_o, t = 1..steps.
    """

    instructions: tuple[LinComb | Nonlin, ...]
    variances: tuple[tuple[str, str], ...]
    hidden: tuple[str, ...]
    readouts: tuple[str, ...]

    def __post_init__(self):
        by_name = {ins.name: ins for ins in self.instructions}
        object.__setattr__(self, "_by_name", by_name)
        object.__setattr__(self, "_variance_of", dict(self.variances))

    @property
    def steps(self) -> int:
        return len(self.hidden)

    def __getitem__(self, name: str) -> LinComb | Nonlin:
        return self._by_name[name]

    def hyper_of(self, matrix_or_vector: str) -> str:
        """Name of the network hyper-parameter that is the variance of this matrix / vector."""
        return self._variance_of[matrix_or_vector]

    @property
    def matrices(self) -> tuple[str, ...]:
        """All matrix and vector names, in a fixed order (used to derive per-matrix random keys)."""
        return tuple(name for name, _ in self.variances)
