"""Network descriptions: ``dnn`` and ``rnn`` build the same program (docs/theory.md section 1).

    h_1 = U_1 x_1 + b_1
    h_t = W_t phi(h_{t-1}) + U_t x_t + b_t        t = 2..T
    f_t = V phi(h_t) + b_o                        (readout, NNGP scaling)

DNN: W_t, U_t, b_t are fresh for every layer.  RNN: W_t = W, U_t = U, b_t = b (weight sharing is
the only difference, visible in :func:`build_program`'s ``name`` helper).
"""

from __future__ import annotations

from dataclasses import dataclass, fields, replace
from functools import lru_cache

import jax

from .._checks import check_positive_int, check_variance
from ..gauss import Activation, get_activation
from .ir import Bias, InputProj, LinComb, MatMul, Nonlin, Program

ARCHITECTURES = ("dnn", "rnn")
HYPER_PARAMETERS = ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var")


@lru_cache(maxsize=256)
def build_program(architecture: str, steps: int, activation: Activation) -> Program:
    """The tensor program of a DNN (fresh matrices per layer) or an RNN (one shared W, U, b)."""
    shared = architecture == "rnn"

    def name(base: str, t: int) -> str:  # the ONLY difference between the architectures
        return base if shared else f"{base}{t}"

    instructions, variances = [], {}
    hidden, readouts = [], []
    for t in range(1, steps + 1):
        atoms = []
        if t > 1:
            atoms.append(MatMul(name("W", t), f"phi{t - 1}"))
            variances[name("W", t)] = "weight_var"
        atoms += [InputProj(name("U", t), t), Bias(name("b", t))]
        variances[name("U", t)] = "input_var"
        variances[name("b", t)] = "bias_var"
        instructions.append(LinComb(f"h{t}", tuple(atoms)))
        instructions.append(Nonlin(f"phi{t}", activation, f"h{t}"))
        instructions.append(LinComb(f"f{t}", (MatMul("V", f"phi{t}"), Bias("bo"))))
        hidden.append(f"h{t}")
        readouts.append(f"f{t}")
    variances["V"] = "readout_var"
    variances["bo"] = "readout_bias_var"
    return Program(tuple(instructions), tuple(variances.items()), tuple(hidden), tuple(readouts))


@dataclass(frozen=True)
class Network:
    """A deep (``dnn``) or recurrent (``rnn``) network and its weight prior.

    Hyper-parameters are variances (docs/theory.md section 1) and are pytree leaves, so
    ``jax.grad`` of any kernel with respect to them works. Build with :func:`dnn` / :func:`rnn`.
    """

    architecture: str
    depth: int
    activation: Activation
    weight_var: float = 1.0
    bias_var: float = 0.0
    input_var: float = 1.0
    readout_var: float = 1.0
    readout_bias_var: float = 0.0

    @property
    def steps(self) -> int:
        """Number of layers (DNN) or time steps (RNN)."""
        return self.depth

    @property
    def program(self) -> Program:
        return build_program(self.architecture, self.depth, self.activation)

    def replace(self, **changes) -> Network:
        """A copy with some hyper-parameters changed (validated like the builders)."""
        unknown = set(changes) - set(HYPER_PARAMETERS)
        if unknown:
            raise ValueError(
                f"replace accepts the hyper-parameters {', '.join(HYPER_PARAMETERS)}, got {sorted(unknown)}"
            )
        for key, value in changes.items():
            check_variance(key, value, allow_zero=key not in ("weight_var", "readout_var"))
        return replace(self, **changes)

    def hyper(self, name: str):
        return getattr(self, name)

    def __repr__(self) -> str:
        hp = ", ".join(f"{k}={getattr(self, k)!r}" for k in HYPER_PARAMETERS)
        return f"{self.architecture}(depth={self.depth}, activation={self.activation.name!r}, {hp})"


def _flatten(net: Network):
    return tuple(getattr(net, k) for k in HYPER_PARAMETERS), (net.architecture, net.depth, net.activation)


def _unflatten(aux, leaves) -> Network:
    net = object.__new__(Network)
    for f, v in zip(("architecture", "depth", "activation"), aux):
        object.__setattr__(net, f, v)
    for k, v in zip(HYPER_PARAMETERS, leaves):
        object.__setattr__(net, k, v)
    return net


jax.tree_util.register_pytree_node(Network, _flatten, _unflatten)
assert {f.name for f in fields(Network)} == {"architecture", "depth", "activation", *HYPER_PARAMETERS}


def _build(architecture, depth_name, depth, activation, weight_var, bias_var, input_var, readout_var,
           readout_bias_var, kinks):
    depth = check_positive_int(depth_name, depth)
    act = get_activation(activation, kinks=kinks)
    check_variance("weight_var", weight_var, allow_zero=False)
    check_variance("bias_var", bias_var)
    check_variance("input_var", input_var)
    check_variance("readout_var", readout_var, allow_zero=False)
    check_variance("readout_bias_var", readout_bias_var)
    return Network(architecture, depth, act, weight_var, bias_var, input_var, readout_var, readout_bias_var)


def dnn(depth: int, activation="erf", weight_var=1.0, bias_var=0.0, input_var=1.0, readout_var=1.0,
        readout_bias_var=0.0, *, kinks=None) -> Network:
    """A deep network with ``depth`` hidden layers, fresh weights in every layer.

    Example:
        >>> import netfield
        >>> net = netfield.dnn(3, "relu", weight_var=2.0, bias_var=0.1)
        >>> net.steps
        3
    """
    return _build("dnn", "depth", depth, activation, weight_var, bias_var, input_var, readout_var,
                  readout_bias_var, kinks)


def rnn(steps: int, activation="erf", weight_var=1.0, bias_var=0.0, input_var=1.0, readout_var=1.0,
        readout_bias_var=0.0, *, kinks=None) -> Network:
    """A recurrent network run for ``steps`` time steps with one shared W, U and b.

    Example:
        >>> import netfield
        >>> net = netfield.rnn(5, "tanh", weight_var=1.5, bias_var=0.5)
        >>> net.program.hidden[:2]
        ('h1', 'h2')
    """
    return _build("rnn", "steps", steps, activation, weight_var, bias_var, input_var, readout_var,
                  readout_bias_var, kinks)
