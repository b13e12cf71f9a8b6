"""One network object for every architecture (docs/design.md, "Programs, taps and interpreters").

A :class:`Network` is a frozen pytree: a *program writer* ``write(p, data, hp)`` that writes the
network as a NETSOR+ program for concrete inputs (:mod:`netfield.program.netsor`), a ``prepare``
function that validates and normalises the inputs, static options, and the hyper-parameters as
pytree leaves (``hp``), so ``jax.grad`` with respect to any hyper-parameter works for every
architecture and ``net.replace(weight_var=...)`` gives a new network.

``dnn`` and ``rnn`` are the same ten-line program (docs/theory.md 1)::

    h_1 = U_1 x_1 + b_1
    h_t = W_t phi(h_{t-1}) + U_t x_t + b_t        t = 2..T
    f_t = V phi(h_t) + b_o                        (readout at every step, NNGP scaling)

and differ in one visible place, :func:`_chain_program`'s ``name``: a DNN names a fresh matrix per
layer, an RNN reuses one name (weight sharing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import jax

from .._checks import check_positive_int, check_variance
from .._runtime.limits import SizeLimitError
from ..gauss import get_activation
from .builder import ProgramBuilder
from .inputs import Patterns, parse_inputs
from .netsor import Program

HYPER_PARAMETERS = ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var")
POSITIVE = ("weight_var", "readout_var")  # variances that must be > 0


class Hyper:
    """The hyper-parameters handed to a program writer: ``hp.weight_var`` (leaves, maybe traced)."""

    def __init__(self, names, values):
        self._values = dict(zip(names, values))

    def __getattr__(self, name):
        try:
            return self._values[name]
        except KeyError:
            raise AttributeError(f"the network has no hyper-parameter {name!r}; it has "
                                 f"{', '.join(self._values)}") from None

    def __getitem__(self, name):
        return getattr(self, name)


@dataclass(frozen=True, eq=False)
class Network:
    """A network of any architecture and its weight prior, as a program writer (module docstring).

    Build with :func:`netfield.dnn`, :func:`netfield.rnn`, :func:`netfield.gru`, :func:`netfield.lstm`,
    :func:`netfield.transformer`, :func:`netfield.conv`, :func:`netfield.batchnorm_mlp` or
    :func:`netfield.architecture` (a program you write). Every capability takes it.

    Attributes:
        name: the builder's name (for display; no interpreter branches on it).
        options: static options of the builder (steps, activation, ...), a tuple of (key, value).
        hyper_names / hyper_values: the hyper-parameters (variances), pytree leaves.
    """

    name: str
    write: Callable
    prepare: Callable
    options: tuple
    hyper_names: tuple
    hyper_values: tuple
    builder: Callable | None = None

    # -- hyper-parameters ----------------------------------------------------------------------------
    def hyper(self, name: str):
        """Value of hyper-parameter ``name`` (a float, or a tracer inside ``jax.grad``)."""
        try:
            return self.hyper_values[self.hyper_names.index(name)]
        except ValueError:
            raise ValueError(f"hyper-parameter must be one of {', '.join(self.hyper_names)}, got {name!r}") from None

    @property
    def hyper_parameters(self) -> dict:
        """{name: value} of every hyper-parameter."""
        return dict(zip(self.hyper_names, self.hyper_values))

    def __getattr__(self, name):
        # hyper-parameters and options read as attributes: net.weight_var, net.steps, net.activation
        if name.startswith("_") or name in ("hyper_names", "hyper_values", "options", "builder"):
            raise AttributeError(name)
        if name in self.hyper_names:
            return self.hyper(name)
        for key, value in self.options:
            if key == name:
                return value
        raise AttributeError(f"{self.name} network has no attribute {name!r}")

    @property
    def steps(self) -> int | None:
        """Layers (DNN, conv, batch-norm MLP), time steps (RNN, GRU, LSTM) or blocks (transformer)."""
        opts = dict(self.options)
        for key in ("steps", "depth", "blocks"):
            if key in opts:
                return opts[key]
        return None

    def replace(self, **changes) -> Network:
        """A copy with some hyper-parameters changed (validated like the builders)."""
        unknown = set(changes) - set(self.hyper_names)
        if unknown:
            raise ValueError(
                f"replace accepts the hyper-parameters {', '.join(self.hyper_names)}, got {sorted(unknown)}"
            )
        for key, value in changes.items():
            check_variance(key, value, allow_zero=key not in POSITIVE)
        values = tuple(changes.get(k, v) for k, v in zip(self.hyper_names, self.hyper_values))
        return Network(self.name, self.write, self.prepare, self.options, self.hyper_names, values, self.builder)

    def rebuild(self, **options) -> Network:
        """The same network built again with some of its builder's options changed (e.g. ``steps``,
        ``depth``, ``blocks``), hyper-parameters kept. Networks written with
        :func:`netfield.architecture` have no builder options: ValueError."""
        known = dict(self.options)
        unknown = set(options) - set(known)
        if self.builder is None or unknown:
            raise ValueError(f"rebuild accepts the options of the {self.name} builder "
                             f"({', '.join(known) or 'none'}), got {sorted(options)}")
        return self.builder(**{**known, **options}, **self.hyper_parameters)

    # -- the program ---------------------------------------------------------------------------------
    def check_inputs(self, x, name: str = "x"):
        """Validate inputs as this network takes them (errors name ``name``); returns the prepared data."""
        return self.prepare(x, name)

    def program(self, x, *, batch_rows: int | None = None) -> Program:
        """The validated NETSOR+ program of this network on inputs ``x``; ``batch_rows``: batch-coupled
        layers (batch norm) take their statistics over the first ``batch_rows`` patterns only (default:
        all), the others are normalised with those statistics."""
        data = self.prepare(x)
        p = ProgramBuilder(batch_rows)
        try:
            self.write(p, data, Hyper(self.hyper_names, self.hyper_values))
        except SizeLimitError as err:  # name the network and its size argument (depth / steps) first
            size = next((f"{k}={v!r}: " for k, v in self.options if k in ("depth", "steps", "blocks")), "")
            raise SizeLimitError(f"{size}{self!r}: {err}") from None
        return p.build()

    def __repr__(self) -> str:
        opts = [f"{k}={getattr(v, 'name', v)!r}" if k == "activation" else f"{k}={v!r}" for k, v in self.options]
        hp = [f"{k}={v!r}" for k, v in zip(self.hyper_names, self.hyper_values)]
        return f"{self.name}({', '.join(opts + hp)})"


def _flatten(net: Network):
    return net.hyper_values, (net.name, net.write, net.prepare, net.options, net.hyper_names, net.builder)


def _unflatten(aux, leaves) -> Network:
    name, write, prepare, options, names, builder = aux
    return Network(name, write, prepare, options, names, tuple(leaves), builder)


jax.tree_util.register_pytree_node(Network, _flatten, _unflatten)


def check_hyper(**values) -> tuple:
    """Validate hyper-parameters (names of :data:`HYPER_PARAMETERS` or user-chosen) and return them."""
    for key, value in values.items():
        check_variance(key, value, allow_zero=key not in POSITIVE)
    return tuple(values.values())


def make_network(name: str, write: Callable, prepare: Callable, options: dict, builder: Callable | None = None,
                 **hyper) -> Network:
    """A :class:`Network` from a writer ``write(p, data, hp)``; ``hyper`` are validated variances;
    ``builder(**options, **hyper)`` builds it again (:meth:`Network.rebuild`)."""
    values = check_hyper(**hyper)
    return Network(name, write, prepare, tuple(options.items()), tuple(hyper), values, builder)


# -- DNN and RNN ----------------------------------------------------------------------------------------
@dataclass(frozen=True)
class ChainInputs:
    """``prepare`` of :func:`dnn` / :func:`rnn`: inputs as in :func:`netfield.program.parse_inputs`."""

    steps: int

    def __call__(self, x, name: str = "x") -> Patterns:
        return parse_inputs(x, self.steps, name)


@dataclass(frozen=True)
class ChainProgram:
    """``write`` of :func:`dnn` (``shared=False``) and :func:`rnn` (``shared=True``); equal writers
    compare equal, so equal networks share compiled functions."""

    steps: int
    activation: object
    shared: bool

    def __call__(self, p: ProgramBuilder, patterns: Patterns, hp: Hyper):
        _chain_program(p, patterns, hp, self.steps, self.activation, self.shared)


def _chain_program(p: ProgramBuilder, patterns: Patterns, hp: Hyper, steps: int, activation, shared: bool):
    """The program shared by :func:`dnn` and :func:`rnn` (module docstring); taps "h" = h_t."""

    def name(base: str, t: int) -> str:  # the ONLY difference between the architectures
        return base if shared else f"{base}{t}"

    x = patterns.x
    p.space("rows", x.shape[0])
    phi, outputs = None, []
    for t in range(1, steps + 1):
        terms = [] if phi is None else [p.matmul(name("W", t), phi, hp.weight_var)]
        if t <= x.shape[1]:
            terms.append(p.input(name("U", t), x[:, t - 1], hp.input_var))
        terms.append(p.bias(name("b", t), hp.bias_var))
        h = terms[0]
        for term in terms[1:]:
            h = h + term
        p.tap("h", t, h)
        phi = p.nonlin(activation, h)
        outputs.append(p.readout(phi, hp.readout_var, hp.readout_bias_var))
    if (patterns.lengths != steps).any():
        p.last([outputs[int(length) - 1] for length in patterns.lengths])


def _chain(kind: str, steps_name: str, steps, activation, weight_var, bias_var, input_var, readout_var,
           readout_bias_var, kinks) -> Network:
    steps = check_positive_int(steps_name, steps)
    act = get_activation(activation, kinks=kinks)
    builder = rnn if kind == "rnn" else dnn
    return make_network(kind, ChainProgram(steps, act, kind == "rnn"), ChainInputs(steps),
                        {steps_name: steps, "activation": act}, builder, weight_var=weight_var,
                        bias_var=bias_var, input_var=input_var, readout_var=readout_var,
                        readout_bias_var=readout_bias_var)


def dnn(depth: int, activation="erf", weight_var=1.0, bias_var=0.0, input_var=1.0, readout_var=1.0,
        readout_bias_var=0.0, *, kinks=None) -> Network:
    """A deep network with ``depth`` hidden layers, fresh weights in every layer.

    Example:
        >>> import netfield
        >>> net = netfield.dnn(3, "relu", weight_var=2.0, bias_var=0.1)
        >>> net.steps
        3
    """
    return _chain("dnn", "depth", depth, activation, weight_var, bias_var, input_var, readout_var,
                  readout_bias_var, kinks)


def rnn(steps: int, activation="erf", weight_var=1.0, bias_var=0.0, input_var=1.0, readout_var=1.0,
        readout_bias_var=0.0, *, kinks=None) -> Network:
    """A recurrent network run for ``steps`` time steps with one shared W, U and b.

    Example:
        >>> import netfield, numpy as np
        >>> net = netfield.rnn(5, "tanh", weight_var=1.5, bias_var=0.5)
        >>> net.program(np.eye(2)).taps["h"][2]
        'g7'
    """
    return _chain("rnn", "steps", steps, activation, weight_var, bias_var, input_var, readout_var,
                  readout_bias_var, kinks)
