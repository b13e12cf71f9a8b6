"""Public mean-field API: ``kernel`` and ``mean_field`` for every network (docs/theory.md 2.1, 2.2, 7).

Both write the network's program for the inputs and interpret it with the master theorem
(:class:`~netfield.meanfield.netsor.ProgramEngine`). When the program is recognised as a chain
(:func:`netfield.program.shape.recognise_chain`: a DNN or an RNN, written by a builder or by hand)
and the request allows it, the fused tiled recursion (:mod:`.fused`) computes the same numbers
faster; both paths are tested against each other.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_choice, check_positive_int
from .._runtime.limits import check_memory
from .._runtime.seeds import check_seed
from ..gauss.expect import METHODS
from ..program import Network, Patterns
from ..program.shape import recognise_chain
from . import fused
from .netsor import ProgramEngine
from .ntk import PARAMETERIZATIONS, TangentEngine, check_parameterization
from .result import MeanFieldResult, assemble, assemble_readouts, check_finite_result, readout_rows

READOUTS = ("last", "all")
KINDS = ("nngp", "ntk")
BATCHES = ("joint", "x1")


def check_network(net, name: str = "net"):
    """A :class:`~netfield.program.network.Network` (TypeError naming the builders otherwise)."""
    if not isinstance(net, Network):
        raise TypeError(f"{name} must be a network built by netfield.dnn, rnn, gru, lstm, transformer, conv, "
                        f"batchnorm_mlp or architecture, got {type(net).__name__}")
    return net


def joined_inputs(net: Network, x1, x2):
    """Inputs of a cross kernel K(x1, x2): one batch x1 + x2 (and the number of patterns in x1), each
    validated first with its own name. Sequences of different lengths are joined as a list (each
    pattern read out at its own last step)."""
    p1 = net.check_inputs(x1, "x1")
    if x2 is None:
        return x1, None
    p2 = net.check_inputs(x2, "x2")
    if isinstance(p1, Patterns) and isinstance(p2, Patterns):  # DNN / RNN / gated input conventions
        return Patterns.join(p1, p2), p1.count
    if isinstance(x1, (list, tuple)) or isinstance(x2, (list, tuple)):
        seqs = [_as_list(x, name) for x, name in ((x1, "x1"), (x2, "x2"))]
        return seqs[0] + seqs[1], len(seqs[0])
    a1, a2 = np.asarray(x1, dtype=float), np.asarray(x2, dtype=float)
    if a1.shape[-1] != a2.shape[-1]:
        raise ValueError(f"x2 must have the same input dimension d as x1 ({a1.shape[-1]}), got d = {a2.shape[-1]}")
    if a1.ndim == a2.ndim == 3 and a1.shape[1] != a2.shape[1] and a1.shape[2:] == a2.shape[2:]:
        return list(a1) + list(a2), len(a1)
    if a1.shape[1:] != a2.shape[1:]:
        raise ValueError(f"x2 must have the shape of x1 after the first axis ({a1.shape[1:]}), got {a2.shape[1:]}")
    return np.concatenate([a1, a2]), len(a1)


def _as_list(x, name):
    if isinstance(x, (list, tuple)):
        return list(x)
    arr = np.asarray(x, dtype=float)
    if arr.ndim != 3:
        raise ValueError(f"{name} must be (N, T, d) sequences to be paired with a list of sequences, got shape "
                         f"{arr.shape}")
    return list(arr)


def check_qmc(qmc_points: int, qmc_replicates: int):
    check_positive_int("qmc_points", qmc_points)
    if qmc_points & (qmc_points - 1):
        raise ValueError(f"qmc_points must be a power of 2, got {qmc_points}")
    check_positive_int("qmc_replicates", qmc_replicates, minimum=2)


def _fused_kernel(program, n1, readout: str, method: str, kind: str = "nngp", parameterization: str = "ntk",
                  width: int | None = None):
    """The fused chain path (fused.py) when it gives the generic interpreter's numbers: a chain
    program, every row read out at the same step, concrete variances, phi with a closed form or a
    Mehler series (the NTK: a finite E[phi' phi'] too). Returns numpy (N1, N2) or None."""
    if readout != "last" or method not in ("auto", "closed"):
        return None
    chain, _ = recognise_chain(program)
    supported = fused.supports_ntk if kind == "ntk" else fused.supports_readout
    if chain is None or not chain.concrete or not supported(chain.activation):
        return None
    if not (chain.last == chain.last[0]).all():
        return None
    x = chain.x
    x1, x2 = (x, None) if n1 is None else (x[:n1], x[n1:])
    return fused.readout_kernel(chain, x1, x2, steps=int(chain.last[0]), kind=kind,
                                parameterization=parameterization, width=width)


def kernel(net: Network, x1, x2=None, readout: str = "last", *, kind: str = "nngp", parameterization: str = "ntk",
           width: int | None = None, method: str = "auto", batch: str = "joint", qmc_points: int = 2**12,
           qmc_replicates: int = 8, seed: int = 0, tile: int | None = None, client=None, workers: int | None = None,
           out=None, progress=True):
    """Readout kernel of any network at infinite width: the NNGP kernel K_ab = Cov(f(a), f(b)), or
    the neural tangent kernel Theta_ab = sum_p df(a)/dp df(b)/dp (``kind="ntk"``, docs/ntk.md).

    Args:
        net: any network (:func:`netfield.dnn`, :func:`netfield.rnn`, :func:`netfield.gru`, ...).
        x1: inputs as the network takes them: (N1, d), (N1, T, d) or a list of (T_i, d) arrays for
            DNN / RNN / GRU / LSTM; (N1, L, d) tokens for a transformer; images for a conv net.
        x2: second inputs (default: x1, symmetric kernel). The cross kernel is that of the joint
            program on x1 + x2.
        readout: ``"last"`` - each pattern's output (at its last step), shape (N1, N2); ``"all"`` -
            joint covariance of the outputs at every step of every sequence, ordered sequence by
            sequence and step by step inside it, shape (sum T_a, sum T_b) (networks with one
            output per pattern: the same as "last").
        kind: ``"nngp"`` (default) or ``"ntk"``.
        parameterization: of the NTK: ``"ntk"`` (default; every parameter N(0, 1), scaled by
            sqrt(var / fan_in) in the forward pass, as neural-tangents) or ``"standard"`` (the
            parameters sqrt(var / fan_in) omega trained directly: the NTK grows linearly with the
            width, docs/ntk.md section 3). The NNGP kernel is the same in both.
        width: hidden width n, required by (and only used with) ``parameterization="standard"``.
        method: Gaussian-expectation method of single-activation moments (``"auto"``, ``"closed"``,
            ``"panels"``, ``"hermite"``).
        batch: for batch-coupled networks (batch norm), whose kernel depends on the whole batch:
            ``"joint"`` - x1 and x2 form one batch; ``"x1"`` - statistics of x1 only (the training
            batch), x2 normalised with them, so K(x1, x1) does not depend on x2. No effect on other
            networks.
        qmc_points, qmc_replicates, seed: the quasi-Monte-Carlo back-end, used only by programs
            whose moments have no closed form or low-dimensional quadrature (see :func:`mean_field`,
            which also returns the error estimate).
        tile, client, workers, out: compute the kernel in tiles of ``tile`` patterns (default 2048
            when any of the four is given), each tile a task (docs/distributed.md): ``client`` a
            ``distributed.Client`` or a Dask scheduler's address, ``workers`` the worker processes of
            a local Dask cluster started for the call (neither: in this process); ``out`` a path
            (``"K.zarr"``) to write the tiles to a Zarr store instead of memory, resumable: a
            restarted call with the same arguments computes only the tiles not yet finished. The
            result is the same, bit for bit, wherever the tiles run. Not for batch-coupled networks
            (batch norm) or inside ``jax.grad``.
        progress: with tiles, a bar of finished tiles (True, default), quiet (False) or a callable.

    Returns:
        A float64 JAX array (differentiable with respect to the network's hyper-parameters); in
        tiles a NumPy array, or with ``out`` the Zarr array (read-only).

    Cost: a chain program (DNN, RNN) read out at one step runs the fused tiled recursion (the NTK
    carried along with the NNGP kernel per entry), O(N1 N2 steps) closed-form evaluations (about
    0.35 s at N = 5000, 10 layers on 2 cores; the NTK ~1.5x that) and memory O(N1 N2) for the
    result only; any
    other program costs O(blocks x N^2) per covariance block it needs, and quasi-Monte-Carlo moments
    O(qmc_points x qmc_replicates) per entry: lower ``qmc_points`` to trade accuracy for time.

    Example:
        >>> import numpy as np, netfield
        >>> x = np.random.default_rng(0).normal(size=(4, 3))
        >>> k_dnn = netfield.kernel(netfield.dnn(3, "erf", weight_var=2.0), x)
        >>> k_rnn = netfield.kernel(netfield.rnn(3, "erf", weight_var=2.0), x)
        >>> bool(np.allclose(k_dnn, k_rnn, rtol=0, atol=1e-13))
        True
    """
    check_network(net)
    check_choice("readout", readout, READOUTS)
    check_choice("kind", kind, KINDS)
    if kind == "ntk":
        width = check_parameterization(parameterization, width)
    elif width is not None:
        raise ValueError(f"width applies to kind='ntk' with parameterization='standard' only (the NNGP kernel does "
                         f"not depend on the width), got width={width!r} with kind='nngp'")
    elif parameterization != "ntk":
        check_choice("parameterization", parameterization, PARAMETERIZATIONS)
        raise ValueError(f"parameterization applies to kind='ntk' only (the NNGP kernel is the same in both "
                         f"parameterizations), got parameterization={parameterization!r} with kind='nngp'")
    check_choice("batch", batch, BATCHES)
    check_choice("method", method, METHODS)
    check_qmc(qmc_points, qmc_replicates)
    check_seed(seed)  # used only by programs with quasi-Monte-Carlo moments: checked for every one
    if tile is not None or client is not None or workers is not None or out is not None:
        from .tiled import tiled_kernel

        joined_inputs(net, x1, x2)  # validates x1, x2 with their names
        options = {"readout": readout, "kind": kind, "parameterization": parameterization, "width": width,
                   "method": method, "batch": batch, "qmc_points": qmc_points, "qmc_replicates": qmc_replicates,
                   "seed": seed}
        return tiled_kernel(net, x1, x2, options, tile=tile, client=client, workers=workers, out=out,
                            progress=progress)
    joined, n1 = joined_inputs(net, x1, x2)
    program = net.program(joined, batch_rows=n1 if batch == "x1" else None)
    rows = readout_rows(program, readout)
    split = len(rows) if n1 is None else sum(1 for _, a in rows if a < n1)
    shape = (split, len(rows) - split) if n1 is not None else (split, split)
    check_memory("readout", readout, 8 * shape[0] * shape[1],
                 f"the {shape[0]} x {shape[1]} kernel matrix of x1 (float64; netfield.kernel(..., out='K.zarr') writes "
                 f"one that does not fit in memory to disk tile by tile)")
    k = _fused_kernel(program, n1, readout, method, kind, parameterization, width)
    if k is not None:
        return fused.as_jax(check_finite_result(k, net, "kernel"))
    patterns = max(program.spaces.values())
    check_memory("x1", f"{patterns} patterns", 8 * len(program.instructions) * patterns ** 2,
                 f"the generic interpreter's covariances ({len(program.instructions)} variables of {patterns} rows)")
    engine = ProgramEngine(program, points=qmc_points, replicates=qmc_replicates, seed=seed, method=method)
    if kind == "ntk":
        tangents = TangentEngine(engine, parameterization, width)
        full = assemble(tangents.readout_ntk, rows, rows, engine.replicates).mean(axis=0)
    else:
        full = assemble_readouts(engine, rows, rows).mean(axis=0)
    check_finite_result(full, net, "kernel")
    if n1 is None:
        return full
    return full[:split, split:]


def mean_field(net: Network, x, *, method: str = "auto", qmc_points: int = 2**12, qmc_replicates: int = 8,
               seed: int = 0) -> MeanFieldResult:
    """Mean-field theory of any network on inputs ``x``: readout kernel, its numerical error
    estimate, and the kernels of the program's taps (pre-activations / hidden states per layer or
    step, gates), all computed on demand.

    ``qmc_points`` (a power of 2) and ``qmc_replicates`` set the quasi-Monte-Carlo back-end of
    programs that need it (gated networks over many steps, batch norm); ``seed`` its scrambling.

    Example:
        >>> import numpy as np, netfield
        >>> x = np.eye(3)
        >>> mf = netfield.mean_field(netfield.rnn(4, "tanh", bias_var=0.5), x)
        >>> mf.preactivation(3, 2).shape
        (3, 3)
    """
    check_network(net)
    check_choice("method", method, METHODS)
    check_qmc(qmc_points, qmc_replicates)
    check_seed(seed)
    net.check_inputs(x)
    program = net.program(x)
    engine = ProgramEngine(program, points=qmc_points, replicates=qmc_replicates, seed=seed, method=method)
    return MeanFieldResult(net, program, engine)


__all__ = ["READOUTS", "check_network", "joined_inputs", "kernel", "mean_field"]
