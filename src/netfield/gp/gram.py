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

from .._checks import check_finite_array, check_positive_int
from ..gauss import pair
from ..meanfield import kernel as _kernel
from ..meanfield import mean_field
from ..meanfield.kernels import check_network, joined_inputs
from ..meanfield.result import readout_rows
from ..program import Network
from ..program.shape import chain_of

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


_check_net = check_network


def output_lengths(net: Network, x) -> np.ndarray:
    """Number of outputs (readout steps) of each pattern of ``x``: its own length for sequence
    networks, 1 for networks with one output per pattern."""
    rows = readout_rows(net.program(x), "all")
    return np.bincount(np.array([a for _, a in rows]))


def _coupled(net: Network, x) -> bool:
    """True if the program couples the rows of a batch (batch norm): padding or chunking the batch
    would change its kernel."""
    return any(getattr(ins, "coupled", False) for ins in net.program(x).instructions)


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
        net: any network (:func:`netfield.dnn`, :func:`netfield.rnn`, :func:`netfield.gru`, ...).
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
    joined, n1 = joined_inputs(net, x1, x2)
    lengths = output_lengths(net, joined)
    a1 = _averaging(lengths if n1 is None else lengths[:n1], readout, "x1")
    a2 = a1 if x2 is None else _averaging(lengths[n1:], readout, "x2")
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
    otherwise compile for every size. For a chain program entries are computed independently, so
    padding does not change them (tested). Other programs, lists of sequences and traced
    hyper-parameters go straight through.
    """
    if isinstance(x1, (list, tuple)) or isinstance(x2, (list, tuple)):
        return _kernel(net, x1, x2)
    a1 = check_finite_array("x1", x1)  # validate with the caller's names before padding
    a2 = None if x2 is None else check_finite_array("x2", x2)
    chain = chain_of(net, a1)
    if chain is None or not chain.concrete:
        return _kernel(net, a1, a2)
    n1 = a1.shape[0]
    if a2 is None:
        return _kernel(net, _pad(a1))[:n1, :n1]
    return _kernel(net, _pad(a1), _pad(a2))[:n1, : a2.shape[0]]


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
    if isinstance(x1, (list, tuple)) or isinstance(x2, (list, tuple)):
        return None
    a1 = check_finite_array("x1", x1)
    a2 = None if x2 is None else check_finite_array("x2", x2)
    if a2 is not None and (a1.ndim != a2.ndim or a1.shape[1:] != a2.shape[1:]):
        return None
    x = a1 if a2 is None else np.concatenate([a1, a2])
    chain = chain_of(net, x)
    if chain is None or not chain.concrete or not chain.activation.has_closed_form:
        return None
    if not (chain.last == chain.last[0]).all():
        return None
    length = int(chain.last[0])
    if length ** 2 * x.shape[0] ** 2 > MAX_FAST_ENTRIES:
        return None
    w = _averaging(np.array([length]), readout, "x1")[0]
    # sequences shorter than the network are read out at their own last step: only their first
    # ``length`` blocks matter
    run_net = chain.network(length)
    blocks = mean_field(run_net, x).preactivations()
    k = _weighted_readout(chain.activation)(jnp.asarray(blocks), jnp.asarray(w))
    k = chain.readout_var * k + chain.readout_bias_var
    return k if a2 is None else k[: a1.shape[0], a1.shape[0]:]


def kernel_diag(net: Network, x, readout="last", *, chunk: int = 256) -> np.ndarray:
    """Diagonal K(x_a, x_a) without the (N, N) matrix: the kernel of ``chunk`` patterns at a time
    (O(N chunk) entries instead of O(N^2)); a batch-coupled program (batch norm), whose diagonal
    depends on the whole batch, takes the diagonal of the full kernel.
    """
    _check_net(net)
    readout = check_readout(readout)
    chunk = check_positive_int("chunk", chunk)
    if isinstance(x, (list, tuple)):
        parts = [list(x[i:i + chunk]) for i in range(0, len(x), chunk)]
    else:
        arr = check_finite_array("x", x)
        if _coupled(net, arr):
            return np.diagonal(np.asarray(network_kernel(net, arr, None, readout))).copy()
        parts = [arr[i:i + chunk] for i in range(0, arr.shape[0], chunk)]
    return np.concatenate([np.diagonal(np.asarray(network_kernel(net, part, None, readout))) for part in parts])


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
    if not isinstance(x, (list, tuple)):
        x = check_finite_array("x", x)  # validate once, with the user's argument name
        if _coupled(net, x):  # the kernel depends on the whole batch: no blocks
            return np.array(network_kernel(net, x, None, readout), dtype=np.float64, order="C")
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


__all__ = ["READOUT_NAMES", "check_readout", "gram_matrix", "kernel_diag", "network_kernel", "output_lengths"]
