"""Public mean-field API: ``kernel`` and ``mean_field`` (docs/theory.md 2.1, 2.2)."""

from __future__ import annotations

from dataclasses import dataclass

import jax.numpy as jnp
import numpy as np

from .._checks import check_choice, check_positive_int, is_traced
from ..program import HYPER_PARAMETERS, Network, Patterns, parse_inputs
from ..program.architectures import Architecture
from . import fused
from .interpreter import CovarianceEngine
from .netsor import program_kernel

READOUTS = ("last", "all")


def _check_net(net):
    if not isinstance(net, Network):
        raise TypeError(f"net must be a Network built by netfield.dnn or netfield.rnn, got {type(net).__name__}")


def _warm(engine: CovarianceEngine, t: int, s: int, A: str, B: str):
    """Fill the memo bottom-up along the chain (t-k, s-k) so the lazy recursion stays shallow."""
    hidden = engine.program.hidden
    for j in range(1, max(t, s) + 1):
        engine.variance(hidden[j - 1], A)
        engine.variance(hidden[j - 1], B)
    for k in range(min(t, s) - 1, -1, -1):
        engine.block(hidden[t - k - 1], hidden[s - k - 1], A, B)


def _group_sets(prefix: str, patterns: Patterns):
    return [(f"{prefix}:{length}", length, idx, x) for length, idx, x in patterns.groups()]


def _row_index(patterns: Patterns, readout: str):
    """For readout='all': the row of (pattern a, step t) in the sequence-by-sequence ordering."""
    if readout == "last":
        return None
    offsets = np.concatenate([[0], np.cumsum(patterns.lengths)[:-1]])
    return offsets


def readout_kernel(engine: CovarianceEngine, p1: Patterns, p2: Patterns, symmetric: bool, readout: str):
    prog = engine.program
    g1, g2 = _group_sets("x1", p1), (_group_sets("x1", p1) if symmetric else _group_sets("x2", p2))
    if readout == "last":
        out = jnp.zeros((p1.count, p2.count))
    else:
        out = jnp.zeros((int(p1.lengths.sum()), int(p2.lengths.sum())))
    off1, off2 = _row_index(p1, readout), _row_index(p2, readout)
    for i, (A, len_a, idx_a, _) in enumerate(g1):
        for j, (B, len_b, idx_b, _) in enumerate(g2):
            if symmetric and j < i:
                continue
            if readout == "last":
                _warm(engine, len_a, len_b, A, B)
                blk = engine.block_or_zeros(prog.readouts[len_a - 1], prog.readouts[len_b - 1], A, B)
                out = out.at[np.ix_(idx_a, idx_b)].set(blk)
                if symmetric and j != i:
                    out = out.at[np.ix_(idx_b, idx_a)].set(blk.T)
                continue
            for t in range(1, len_a + 1):
                for s in range(1, len_b + 1):
                    _warm(engine, t, s, A, B)
                    blk = engine.block_or_zeros(prog.readouts[t - 1], prog.readouts[s - 1], A, B)
                    rows, cols = off1[idx_a] + t - 1, off2[idx_b] + s - 1
                    out = out.at[np.ix_(rows, cols)].set(blk)
                    if symmetric and j != i:
                        out = out.at[np.ix_(cols, rows)].set(blk.T)
    return out


def _prepare(net, x1, x2):
    _check_net(net)
    p1 = parse_inputs(x1, net.steps, "x1")
    p2 = p1 if x2 is None else parse_inputs(x2, net.steps, "x2")
    if p2.dim != p1.dim:
        raise ValueError(f"x2 must have the same input dimension d as x1 ({p1.dim}), got d = {p2.dim}")
    sets = {A: x for A, _, _, x in _group_sets("x1", p1)}
    if x2 is not None:
        sets.update({B: x for B, _, _, x in _group_sets("x2", p2)})
    return p1, p2, sets


def kernel(net: Network, x1, x2=None, readout: str = "last", *, method: str = "auto"):
    """Readout (NNGP) kernel of a network: K_ab = readout_var <phi(h_a) phi(h_b)> + readout_bias_var.

    Args:
        net: from :func:`netfield.dnn` or :func:`netfield.rnn`.
        x1: inputs, (N1, d), (N1, T, d) or a list of (T_i, d) arrays (see :mod:`netfield.program.inputs`).
        x2: second inputs (default: x1, symmetric kernel).
        readout: ``"last"`` - output at each sequence's last step, shape (N1, N2); ``"all"`` - joint
            covariance of the outputs at every step of every sequence, ordered sequence by sequence
            and step by step inside it, shape (sum T_a, sum T_b).
        method: Gaussian-expectation method (``"auto"``, ``"closed"``, ``"panels"``, ``"hermite"``).

    Returns:
        A float64 JAX array.

    Example:
        >>> import numpy as np, netfield
        >>> x = np.random.default_rng(0).normal(size=(4, 3))
        >>> k_dnn = netfield.kernel(netfield.dnn(3, "erf", weight_var=2.0), x)
        >>> k_rnn = netfield.kernel(netfield.rnn(3, "erf", weight_var=2.0), x)
        >>> bool(np.allclose(k_dnn, k_rnn, rtol=0, atol=1e-13))
        True
    """
    if isinstance(net, Architecture):
        if readout != "last":
            raise ValueError(f"readout must be 'last' for {net.name} architectures, got {readout!r}")
        joined, n1 = joined_inputs(x1, x2)
        k = program_kernel(net.program(joined)).readout
        return jnp.asarray(k if n1 is None else k[:n1, n1:])
    check_choice("readout", readout, READOUTS)
    p1, p2, sets = _prepare(net, x1, x2)
    if _fused_applies(net, p1, p2, readout, method):
        x1_in = p1.x if p1.sequential else p1.x[:, :1]
        x2_in = None if x2 is None else (p2.x if p2.sequential else p2.x[:, :1])
        k = fused.readout_kernel(net, x1_in, x2_in, steps=int(p1.lengths[0]))
        if k is not None:
            return fused.as_jax(k)
    engine = CovarianceEngine(net, sets, method=method)
    return readout_kernel(engine, p1, p2, x2 is None, readout)


def _fused_applies(net, p1: Patterns, p2: Patterns, readout: str, method: str) -> bool:
    """The fused chain path (fused.py) gives the same numbers as the generic interpreter when every
    pattern is read out at the same step, hyper-parameters are concrete and phi has a closed form or
    a Mehler series (smooth phi; the generic interpreter uses the same series)."""
    lengths = np.concatenate([p1.lengths, p2.lengths])
    return (
        readout == "last"
        and method in ("auto", "closed")
        and fused.supports_readout(net.activation)
        and (lengths == lengths[0]).all()
        and p1.sequential == p2.sequential
        and not any(is_traced(net.hyper(k)) for k in HYPER_PARAMETERS)
    )


@dataclass(frozen=True, eq=False)
class MeanFieldResult:
    """Mean-field (infinite-width) kernels of a network on one set of inputs.

    Pre-activation blocks are computed on demand and cached. For a DNN the cross-layer blocks are
    exactly zero (independent weights); for an RNN they are the two-time kernel C(t, s).
    """

    net: Network
    patterns: Patterns
    _engine: CovarianceEngine

    @property
    def steps(self) -> int:
        return self.net.steps

    def _check_step(self, name, t):
        if isinstance(t, bool) or not isinstance(t, (int, np.integer)) or not 1 <= t <= self.steps:
            raise ValueError(f"{name} must be an integer step in 1..{self.steps}, got {t!r}")
        return int(t)

    def preactivation(self, t: int, s: int | None = None):
        """(N, N) covariance C_{ts}^{ab} = Cov(h_t(a), h_s(b)) of pre-activations (docs/theory.md 2.2)."""
        t = self._check_step("t", t)
        s = t if s is None else self._check_step("s", s)
        _warm(self._engine, t, s, "all", "all")
        hidden = self._engine.program.hidden
        return self._engine.block_or_zeros(hidden[t - 1], hidden[s - 1], "all", "all")

    def preactivations(self) -> np.ndarray:
        """Every block C(t, s), t, s = 1..steps, as one numpy array of shape (steps, steps, N, N).

        Uses the fused offset-chain path (fused.py) for closed-form activations with inputs of one
        length, and the generic interpreter otherwise; both agree to ~1e-15.
        """
        p = self.patterns
        x_all = p.x if p.sequential else p.x[:, :1]
        concrete = not any(is_traced(self.net.hyper(k)) for k in HYPER_PARAMETERS)
        if (fused.supports(self.net.activation) and concrete and self._engine.method in ("auto", "closed")
                and (p.lengths == p.lengths[0]).all()):
            return fused.two_time_kernels(self.net, x_all)
        T = self.steps
        out = np.empty((T, T, p.count, p.count))
        for t in range(1, T + 1):
            for s in range(t, T + 1):
                out[t - 1, s - 1] = np.asarray(self.preactivation(t, s))
                out[s - 1, t - 1] = out[t - 1, s - 1].T
        return out

    def two_time(self, a: int = 0, b: int | None = None):
        """(T, T) matrix C(t, s) for patterns a and b (default b = a)."""
        b = a if b is None else b
        T = self.steps
        return jnp.array([[self.preactivation(t, s)[a, b] for s in range(1, T + 1)] for t in range(1, T + 1)])

    @property
    def readout(self):
        """Readout kernel at each pattern's last step, (N, N)."""
        return self.readout_kernel("last")

    def readout_kernel(self, readout: str = "last"):
        check_choice("readout", readout, READOUTS)
        return readout_kernel(self._engine, self.patterns, self.patterns, True, readout)


def joined_inputs(x1, x2):
    """Inputs of a cross kernel K(x1, x2) of a program: one batch x1 + x2 (and where x2 starts)."""
    if x2 is None:
        return x1, None
    if isinstance(x1, (list, tuple)) != isinstance(x2, (list, tuple)):
        raise ValueError("x1 and x2 must both be arrays or both be lists of sequences")
    if isinstance(x1, (list, tuple)):
        return list(x1) + list(x2), len(x1)
    a1, a2 = np.asarray(x1, dtype=float), np.asarray(x2, dtype=float)
    if a1.shape[1:] != a2.shape[1:]:
        raise ValueError(f"x2 must have the shape of x1 after the first axis ({a1.shape[1:]}), got {a2.shape[1:]}")
    return np.concatenate([a1, a2]), len(a1)


def mean_field(net: Network, x, *, method: str = "auto", qmc_points: int = 2**12, qmc_replicates: int = 8,
               seed: int = 0):
    """Mean-field theory of ``net`` on inputs ``x``: pre-activation kernels and the readout kernel.

    Example:
        >>> import numpy as np, netfield
        >>> x = np.eye(3)
        >>> mf = netfield.mean_field(netfield.rnn(4, "tanh", bias_var=0.5), x)
        >>> mf.preactivation(3, 2).shape
        (3, 3)

    For an :class:`~netfield.program.architectures.Architecture` (GRU, LSTM, transformer, conv, batch
    norm, user programs) it returns a :class:`~netfield.meanfield.netsor.ProgramKernel` with the readout
    kernel and its numerical error estimate; ``qmc_points`` (a power of 2) and ``qmc_replicates`` set
    the quasi-Monte-Carlo back-end, ``seed`` its scrambling.
    """
    if isinstance(net, Architecture):
        check_positive_int("qmc_points", qmc_points)
        if qmc_points & (qmc_points - 1):
            raise ValueError(f"qmc_points must be a power of 2, got {qmc_points}")
        check_positive_int("qmc_replicates", qmc_replicates, minimum=2)
        return program_kernel(net.program(x), points=qmc_points, replicates=qmc_replicates, seed=seed)
    p, _, sets = _prepare(net, x, None)
    x_all = p.x if p.sequential else p.x[:, :1]
    sets = dict(sets, all=x_all)
    engine = CovarianceEngine(net, sets, method=method)
    return MeanFieldResult(net, p, engine)
