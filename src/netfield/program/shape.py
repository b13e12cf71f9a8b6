"""Recognising a program's shape (docs/design.md, "How a fast path is recognised").

Fast paths (the fused tiled kernel, the RNN two-time recursion, the fast sampler) and theories
derived only for some programs (the 1/n one-loop theory, the criticality maps, the muP saddle point)
apply to *chain* programs: a chain of single-argument nonlinearities,

    h_1 = U_1 x_1 + b_1,    h_t = W_t phi(h_{t-1}) [+ U_t x_t] + b_t,    f_t = V phi(h_t) + b_o,

with either a fresh matrix per layer (a DNN) or one shared matrix (an RNN); docs/theory.md 1. They
are chosen by matching the program's instructions against this shape, never by a name or string
field of the network: a chain written by hand with :class:`~netfield.program.builder.ProgramBuilder`
is recognised as well. Anything else raises :class:`UnsupportedProgram` naming the instruction that
breaks the shape and the simulation-based alternative.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np

from .._checks import inside_trace, is_traced
from .._runtime.limits import SizeLimitError
from .netsor import Bias, Input, LinComb, MatMul, Nonlin, Program, ProgramError, Readout

CHAIN_HYPER = ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var")


class UnsupportedProgram(ValueError):
    """A theory or fast path was asked for a program outside the shapes it is derived for."""


@dataclass(frozen=True, eq=False)
class Chain:
    """A recognised chain program (module docstring).

    Attributes:
        shared: True if every layer uses the same W, U, b (an RNN), False if each has its own (a DNN).
        steps: number of layers / time steps (pre-activations h_1..h_steps).
        activation: phi, the same at every step.
        x: (N, T_in, d) inputs fed at steps 1..T_in (zeros where a sequence has ended).
        last: (N,) step at which each row is read out.
        hidden: names of h_1..h_steps; readouts: {step: readout name}.
        weight_var, bias_var, input_var, readout_var, readout_bias_var: the variances (maybe tracers).
    """

    shared: bool
    steps: int
    activation: object
    x: np.ndarray
    last: np.ndarray
    hidden: tuple
    readouts: dict
    weight_var: object
    bias_var: object
    input_var: object
    readout_var: object
    readout_bias_var: object
    source: object = None  # the network the program was written from, if known

    def hyper(self, name: str):
        value = getattr(self, name)
        if value is None:  # weight_var of a one-layer chain, which has no W: any value gives the same network
            return self.source.hyper(name) if self.source is not None and name in self.source.hyper_names else 1.0
        return value

    @property
    def concrete(self) -> bool:
        """True if no variance is a JAX tracer and no JAX trace is active (the compiled fast paths
        convert to numpy and need numbers)."""
        return not any(is_traced(self.hyper(k)) for k in CHAIN_HYPER) and not inside_trace()

    @property
    def kind(self) -> str:
        """"rnn" (shared weights) or "dnn" (fresh weights): for labels and file names only."""
        return "rnn" if self.shared else "dnn"

    def network(self, steps: int | None = None):
        """The :func:`~netfield.dnn` / :func:`~netfield.rnn` network of this chain (optionally with
        another number of steps): what the chain-specific theories rebuild when they vary depth."""
        from .network import dnn, rnn

        build = rnn if self.shared else dnn
        steps = self.steps if steps is None else steps
        source = self.source
        if source is not None and source.builder is build:
            key = "depth" if "depth" in dict(source.options) else "steps"
            return source if steps == source.steps else source.rebuild(**{key: steps})
        return build(steps, self.activation, **{k: self.hyper(k) for k in CHAIN_HYPER})


def _same(a, b) -> bool:
    if a is b:
        return True
    if is_traced(a) or is_traced(b):
        return False
    return float(a) == float(b)


def recognise_chain(program: Program):
    """(Chain, None) if ``program`` is a chain (module docstring), else (None, reason) where reason
    names the first instruction that does not fit."""
    ins_of = program.__getitem__
    nonlins = [i for i in program.instructions if isinstance(i, Nonlin)]
    if not nonlins:
        return None, "the program has no nonlinearity"
    act = nonlins[0].activation
    for n in nonlins:
        if n.activation is None or n.coupled or n.params or len(n.args) != 1:
            return None, (f"instruction {n.name!r} is a Nonlin of {len(n.args)} argument(s)"
                          f"{', batch-coupled' if n.coupled else ''}; a chain needs a named "
                          f"single-argument activation")
        if n.activation != act:
            return None, f"instruction {n.name!r} uses activation {n.activation.name!r}, earlier ones {act.name!r}"
    for ins in program.instructions:
        if not isinstance(ins, (Input, Bias, MatMul, LinComb, Nonlin, Readout)):
            return None, f"instruction {ins.name!r} is a {type(ins).__name__}, which a chain does not have"
        if isinstance(ins, MatMul) and ins.transpose:
            return None, f"instruction {ins.name!r} multiplies by a transposed matrix"
        if isinstance(ins, Readout) and ins.flatten is not None:
            return None, f"readout {ins.name!r} reads flattened rows"

    def atoms(g):
        ins = ins_of(g)
        if isinstance(ins, LinComb):
            out = []
            for coef, arg in ins.terms:
                if coef != 1.0 or not isinstance(ins_of(arg), (Input, Bias, MatMul)):
                    return None
                out.append(ins_of(arg))
            return out
        return [ins]

    # follow the chain: step 1 has no MatMul; step t + 1 multiplies phi_t
    by_arg = {}
    for ins in program.instructions:
        if isinstance(ins, MatMul):
            if ins.arg in by_arg:
                return None, f"{ins.arg!r} is multiplied by two matrices (a chain uses each layer once)"
            by_arg[ins.arg] = ins
    layers = []  # per step: (pre-activation name, {role: instruction}, phi name)
    for n in nonlins:
        parts = atoms(n.args[0])
        if parts is None:
            return None, f"pre-activation {n.args[0]!r} is not a plain sum of W h, U x and b"
        roles = {}
        for a in parts:
            role = {MatMul: "W", Input: "U", Bias: "b"}[type(a)]
            if role in roles:
                return None, f"pre-activation {n.args[0]!r} has two {role} terms"
            roles[role] = a
        if "b" not in roles:
            return None, f"pre-activation {n.args[0]!r} has no bias term"
        layers.append((n.args[0], roles, n.name))
    first = [layer for layer in layers if "W" not in layer[1]]
    if len(first) != 1:
        return None, f"a chain has one first layer without W, found {len(first)}"
    order = [first[0]]
    by_phi_pre = {layer[1]["W"].arg: layer for layer in layers if "W" in layer[1]}
    while order[-1][2] in by_phi_pre:
        order.append(by_phi_pre[order[-1][2]])
    if len(order) != len(layers):
        return None, "the nonlinearities do not form one chain"
    steps = len(order)
    names = {role: [layer[1][role].matrix if role != "b" else layer[1][role].vector
                    for layer in order if role in layer[1]] for role in ("W", "U", "b")}
    for role, used in names.items():
        if len(set(used)) not in (1, len(used)) and used:
            return None, f"the {role} matrices are neither all shared nor all distinct: {used}"
    shared_flags = {len(set(used)) == 1 and len(used) > 1 for used in names.values() if len(used) > 1}
    if len(shared_flags) > 1:
        return None, "some matrices are shared across layers and others are not"
    shared = shared_flags.pop() if shared_flags else False
    var = {}
    for role, key in (("W", "weight_var"), ("U", "input_var"), ("b", "bias_var")):
        values = [layer[1][role].var for layer in order if role in layer[1]]
        for v in values[1:]:
            if not _same(v, values[0]):
                return None, f"the {role} terms of different layers have different variances"
        var[key] = values[0] if values else (None if key == "weight_var" else 0.0)
    inputs = [layer[1].get("U") for layer in order]
    t_in = 0
    while t_in < steps and inputs[t_in] is not None:
        t_in += 1
    if t_in == 0 or any(u is not None for u in inputs[t_in:]):
        return None, "the inputs must enter at steps 1..T_in of the chain"
    feeds = [program.feeds[u.feed] for u in inputs[:t_in]]
    x = np.stack(feeds, axis=1)
    readouts = {}
    step_of_phi = {layer[2]: t for t, layer in enumerate(order, start=1)}
    ro = program.readouts
    for r in ro:
        if r.arg not in step_of_phi:
            return None, f"readout {r.name!r} reads {r.arg!r}, which is not a layer's activation"
        if r.matrix != ro[0].matrix or r.vector != ro[0].vector or not _same(r.var, ro[0].var) \
                or not _same(r.bias_var, ro[0].bias_var):
            return None, f"readout {r.name!r} does not share V and b_o with the other readouts"
        readouts[step_of_phi[r.arg]] = r.name
    step_of_readout = {name: t for t, name in readouts.items()}
    last = np.array([step_of_readout[r] for r in program.output_readouts])
    chain = Chain(shared, steps, act, x, last, tuple(layer[0] for layer in order), readouts,
                  var["weight_var"], var["bias_var"], var["input_var"], ro[0].var, ro[0].bias_var)
    return chain, None


def _probe_program(net, x, *, strict: bool = False):
    """``net.program(x)`` or None where it cannot be written; ``strict``: errors of the caller's inputs
    (named ``x``) and a program over the size limit propagate instead, as they are no reason why the
    program is not a chain."""
    if x is None:
        x = np.ones((1, 1))
    elif strict:
        net.check_inputs(x)
    try:
        return net.program(x)
    except SizeLimitError:
        if strict:
            raise
        return None
    except (ValueError, TypeError, ProgramError):
        return None


def chain_of(net, x=None) -> Chain | None:
    """The :class:`Chain` of ``net`` written for inputs ``x`` (default: one probe input), or None."""
    program = _probe_program(net, x)
    chain = None if program is None else recognise_chain(program)[0]
    return None if chain is None else dataclasses.replace(chain, source=net)


def require_chain(net, capability: str, alternative: str, x=None) -> Chain:
    """The :class:`Chain` of ``net`` or :class:`UnsupportedProgram` naming what breaks the shape.

    Args:
        net: a :class:`~netfield.program.network.Network`.
        capability: what needs the chain shape (named in the error).
        alternative: the simulation-based alternative offered in the error.
        x: inputs to write the program for (default: one probe input).
    """
    from .network import Network

    if not isinstance(net, Network):
        raise TypeError(f"net must be a network built by netfield.dnn, rnn, gru, lstm, transformer, conv, "
                        f"batchnorm_mlp or architecture, got {type(net).__name__}")
    program = _probe_program(net, x, strict=True)
    if program is None:
        reason = f"its program cannot be written for {'a single (1, 1) input' if x is None else 'these inputs'}"
    else:
        chain, reason = recognise_chain(program)
        if chain is not None:
            return dataclasses.replace(chain, source=net)
    raise UnsupportedProgram(
        f"{capability} is derived for chain programs (DNN / RNN: one single-argument activation per "
        f"layer, fresh or shared matrices); the {net.name} network is not one: {reason}. "
        f"Use {alternative} instead (it runs sampled networks of any program)."
    )
