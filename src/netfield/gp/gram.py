"""Kernel matrices for inference: which readout, and the training Gram matrix in a writable buffer.

Readouts (docs/theory.md 1, 2.2):

- ``"last"``: f(x) = f_T(x), the output at each pattern's last step - a single readout layer / time,
  where DNN and RNN kernels coincide (docs/theory.md 2.2).
- ``"mean"``: f(x) = (1/T) sum_t f_t(x), the outputs of all steps t = 1..T averaged (T = the
  pattern's own length).
- a tuple of steps, e.g. ``(4, 6, 8)``: f(x) = (1/|S|) sum_{t in S} f_t(x).

For several readout times the kernel is the average of the joint output covariance
``netfield.kernel(net, x1, x2, readout="all")`` over the chosen steps,

    K_S(a, b) = (1/|S_a| |S_b|) sum_{t in S_a, s in S_b} Cov(f_t(a), f_s(b)),

which contains the cross-time blocks C(t, s), t != s, that only the RNN has: this is where DNN and
RNN kernels differ at leading order.
"""

from __future__ import annotations

import numbers
from functools import lru_cache

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_finite_array, check_positive_int, is_traced
from ..gauss import pair
from ..meanfield import kernel as _kernel
from ..meanfield import mean_field
from ..meanfield.interpreter import CovarianceEngine
from ..program import HYPER_PARAMETERS, Network, dnn, parse_inputs, rnn

READOUT_NAMES = ("last", "mean")


def check_readout(readout):
    """Normalise a readout specification: ``"last"``, ``"mean"`` or a tuple of steps >= 1."""
    if isinstance(readout, str):
        if readout not in READOUT_NAMES:
            raise ValueError(
                f"readout must be 'last', 'mean' or a sequence of steps (integers >= 1), got {readout!r}"
            )
        return readout
    if isinstance(readout, (list, tuple, np.ndarray)) and len(readout) > 0 and all(
            isinstance(t, numbers.Integral) and not isinstance(t, bool) and t >= 1 for t in readout):
        steps = tuple(sorted({int(t) for t in readout}))
        return steps
    raise ValueError(
        f"readout must be 'last', 'mean' or a non-empty sequence of steps (integers >= 1), got {readout!r}"
    )


def _check_net(net):
    if not isinstance(net, Network):
        raise TypeError(f"net must be a Network built by netfield.dnn or netfield.rnn, got {type(net).__name__}")


def _averaging(lengths: np.ndarray, readout, name: str) -> np.ndarray:
    """(N, sum T_a) matrix that averages each pattern's outputs over its readout steps."""
    offsets = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    out = np.zeros((len(lengths), int(lengths.sum())))
    for a, (start, length) in enumerate(zip(offsets, lengths)):
        steps = range(1, length + 1) if readout == "mean" else readout
        if max(steps) > length:
            raise ValueError(
                f"readout steps {readout} go beyond pattern {a} of {name}, which is read out over "
                f"{int(length)} steps; use steps <= {int(length)}"
            )
        for t in steps:
            out[a, start + t - 1] = 1.0 / len(steps)
    return out


def network_kernel(net: Network, x1, x2=None, readout="last"):
    """Readout kernel K(x1, x2) for GP inference, differentiable w.r.t. the hyper-parameters.

    Args:
        net: from :func:`netfield.dnn` or :func:`netfield.rnn`.
        x1, x2: inputs in any form accepted by :func:`netfield.kernel`; ``x2=None`` means x1.
        readout: ``"last"``, ``"mean"`` or a tuple of steps (module docstring).

    Returns:
        (N1, N2) float64 JAX array.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.gp import network_kernel
        >>> x = np.random.default_rng(0).normal(size=(5, 3))
        >>> network_kernel(netfield.rnn(4, "erf"), x, readout="mean").shape
        (5, 5)
    """
    _check_net(net)
    readout = check_readout(readout)
    if readout == "last":
        return _bucketed_kernel(net, x1, x2)
    fast = _multi_readout_fast(net, x1, x2, readout)
    if fast is not None:
        return fast
    k_all = _kernel(net, x1, x2, readout="all")
    p1 = parse_inputs(x1, net.steps, "x1")
    a1 = _averaging(p1.lengths, readout, "x1")
    a2 = a1 if x2 is None else _averaging(parse_inputs(x2, net.steps, "x2").lengths, readout, "x2")
    return jnp.asarray(a1) @ k_all @ jnp.asarray(a2).T


def _bucket(n: int) -> int:
    """Pattern counts rounded up to a power of two <= 256, else to a multiple of 256 (the fused path's tile)."""
    return 1 << max(4, (n - 1).bit_length()) if n <= 256 else -(-n // 256) * 256


def _pad(a: np.ndarray) -> np.ndarray:
    """Pad with copies of the first pattern (a valid input: no degenerate zero-variance rows)."""
    extra = _bucket(a.shape[0]) - a.shape[0]
    return np.concatenate([a, np.repeat(a[:1], extra, axis=0)]) if extra else a


def _bucketed_kernel(net: Network, x1, x2):
    """netfield.kernel with the pattern counts padded (rows discarded afterwards) to a few bucket sizes.

    The fused path compiles one program per tile size and its per-pattern set-up per pattern count;
    estimators called on many data sizes (scikit-learn's checks, cross-validation, batches) would
    otherwise compile for every size. Entries are computed independently, so padding does not change
    them (tested). Lists of sequences and traced hyper-parameters go straight through.
    """
    if (isinstance(x1, (list, tuple)) or isinstance(x2, (list, tuple))
            or any(is_traced(net.hyper(k)) for k in HYPER_PARAMETERS)):
        return _kernel(net, x1, x2)
    p1 = parse_inputs(x1, net.steps, "x1")  # validate with the caller's names before padding
    a1 = np.asarray(x1, dtype=np.float64)
    if x2 is None:
        return _kernel(net, _pad(a1))[: p1.count, : p1.count]
    p2 = parse_inputs(x2, net.steps, "x2")
    a2 = np.asarray(x2, dtype=np.float64)
    return _kernel(net, _pad(a1), _pad(a2))[: p1.count, : p2.count]


MAX_FAST_ENTRIES = 4 * 10**7  # T^2 N^2 pre-activation entries (320 MB) for the fast multi-readout path


@lru_cache(maxsize=32)
def _weighted_readout(activation):
    """Jitted sum_{t, s} w_t w_s E[phi(h_t(a)) phi(h_s(b))] over all blocks C(t, s) at once (docs/theory.md 1:
    the readout kernel is readout_var E[phi phi] + readout_bias_var at each pair of steps)."""

    @jax.jit
    def run(blocks, w):
        steps = blocks.shape[0]
        diag = jnp.diagonal(blocks[jnp.arange(steps), jnp.arange(steps)], axis1=1, axis2=2)  # (T, N): Var h_t(a)
        moments = pair(activation, diag[:, None, :, None], diag[None, :, None, :], blocks)  # (T, T, N, N)
        return jnp.einsum("t,s,tsab->ab", w, w, moments)

    return run


def _multi_readout_fast(net: Network, x1, x2, readout):
    """Several readout times from the pre-activation blocks C(t, s) of :func:`netfield.mean_field`
    (fused two-time path) instead of the generic joint-output kernel; None where it does not apply
    (traced hyper-parameters, variable-length lists, mixed input forms, numerical activations, or
    more than MAX_FAST_ENTRIES entries). Agrees with the generic path to ~1e-15 (tested)."""
    if any(is_traced(net.hyper(k)) for k in HYPER_PARAMETERS) or not net.activation.has_closed_form:
        return None
    if isinstance(x1, (list, tuple)) or isinstance(x2, (list, tuple)):
        return None
    a1 = check_finite_array("x1", x1)
    a2 = None if x2 is None else check_finite_array("x2", x2)
    if a2 is not None and (a1.ndim != a2.ndim or a1.shape[1:] != a2.shape[1:]):
        return None
    p1 = parse_inputs(a1, net.steps, "x1")
    if a2 is not None:
        parse_inputs(a2, net.steps, "x2")
    length = int(p1.lengths[0])
    n = a1.shape[0] + (0 if a2 is None else a2.shape[0])
    if length ** 2 * n ** 2 > MAX_FAST_ENTRIES:
        return None
    w = _averaging(np.array([length]), readout, "x1")[0]
    x = a1 if a2 is None else np.concatenate([a1, a2])
    run_net = net if length == net.steps else _shorter(net, length)
    blocks = mean_field(run_net, x).preactivations()
    k = _weighted_readout(net.activation)(jnp.asarray(blocks), jnp.asarray(w))
    k = net.readout_var * k + net.readout_bias_var
    return k if a2 is None else k[: a1.shape[0], a1.shape[0]:]


def _shorter(net: Network, steps: int) -> Network:
    """``net`` run for ``steps`` <= net.steps (sequences shorter than the network are read out at their
    own last step, so only their first ``steps`` blocks matter)."""
    build = dnn if net.architecture == "dnn" else rnn
    return build(steps, net.activation, **{k: net.hyper(k) for k in HYPER_PARAMETERS})


def kernel_diag(net: Network, x, readout="last") -> np.ndarray:
    """Diagonal K(x_a, x_a) in O(N T^2) pointwise covariances, without the (N, N) matrix.

    Uses the master-theorem interpreter's pointwise covariances Cov(f_t(a), f_s(a)) (docs/theory.md 2.2).
    """
    _check_net(net)
    readout = check_readout(readout)
    p = parse_inputs(x, net.steps, "x")
    if not isinstance(x, (list, tuple)) and p.count != _bucket(p.count):
        # bucketed pattern counts: the interpreter's element-wise operations compile once per size
        return kernel_diag(net, _pad(np.asarray(x, dtype=np.float64)), readout)[: p.count]
    out = np.empty(p.count)
    readouts = net.program.readouts
    for length, idx, xs in p.groups():
        engine = CovarianceEngine(net, {"x": xs})
        steps = (length,) if readout == "last" else tuple(range(1, length + 1)) if readout == "mean" else readout
        if max(steps) > length:
            raise ValueError(
                f"readout steps {readout} go beyond patterns of x read out over {length} steps; "
                f"use steps <= {length}"
            )
        total = np.zeros(len(idx))
        for t in steps:
            for s in steps:
                value = engine.pointwise(readouts[t - 1], readouts[s - 1], "x")
                if value is not None:
                    total = total + np.asarray(value)
        out[idx] = total / len(steps) ** 2
    return out


def _count(x) -> int:
    return len(x) if isinstance(x, (list, tuple)) else np.shape(x)[0]


def gram_matrix(net: Network, x, readout="last", *, block_size: int = 2048) -> np.ndarray:
    """Training Gram matrix K(x, x) as a writable, C-contiguous numpy float64 array.

    Built block-row by block-row (diagonal blocks symmetric, blocks right of the diagonal mirrored),
    so besides the result only one (block_size, N) strip is alive at a time: at N = 10,000 the peak
    is the 800 MB result plus a 160 MB strip, and the result can be factorised in place
    (:func:`netfield.gp.regression.factorize` with ``overwrite=True``).
    """
    _check_net(net)
    block_size = check_positive_int("block_size", block_size)
    readout = check_readout(readout)
    n = _count(x)
    if readout != "last" or n <= block_size:
        out = np.array(network_kernel(net, x, None, readout), dtype=np.float64, order="C")
        return out
    parse_inputs(x, net.steps, "x")  # validate once, with the user's argument name
    out = np.empty((n, n))
    for i0 in range(0, n, block_size):
        i1 = min(n, i0 + block_size)
        out[i0:i1, i0:i1] = np.asarray(_kernel(net, x[i0:i1]))
        if i1 < n:
            strip = np.asarray(_kernel(net, x[i0:i1], x[i1:]))
            out[i0:i1, i1:] = strip
            out[i1:, i0:i1] = strip.T
            del strip
    return out


__all__ = ["READOUT_NAMES", "check_readout", "gram_matrix", "kernel_diag", "network_kernel"]
