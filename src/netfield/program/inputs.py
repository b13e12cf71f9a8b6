"""Input conventions (docs/theory.md section 1, docs/design.md section 3).

- ``(N, d)`` array: the input enters at step 1 only; every pattern runs all ``steps`` of the network
  and is read out at the last one.
- ``(N, T, d)`` array: a sequence; x_t enters at step t; read out at step T (T <= steps).
- list of ``(T_i, d)`` arrays: variable-length sequences; sequence i runs T_i steps and is read out
  at its own last step. Pre-activation kernels of the whole batch treat a sequence that has ended as
  receiving no further input (the same convention in the mean-field and finite-width interpreters).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .._checks import check_finite_array


@dataclass(frozen=True, eq=False)
class Patterns:
    """Parsed inputs.

    Attributes:
        x: (N, T_in, d) float64, zero-padded after each sequence's end.
        lengths: (N,) readout step of each pattern.
        sequential: False for (N, d) inputs (input at step 1 only).
    """

    x: np.ndarray
    lengths: np.ndarray
    sequential: bool

    @property
    def count(self) -> int:
        return self.x.shape[0]

    @property
    def dim(self) -> int:
        return self.x.shape[2]

    @staticmethod
    def join(first: Patterns, second: Patterns) -> Patterns:
        """One batch of both pattern sets (zero-padded to the longer input), each pattern keeping its
        own readout step: the inputs of a cross kernel."""
        if first.dim != second.dim:
            raise ValueError(f"x2 must have the same input dimension d as x1 ({first.dim}), got d = {second.dim}")
        t_in = max(first.x.shape[1], second.x.shape[1])
        x = np.zeros((first.count + second.count, t_in, first.dim))
        x[: first.count, : first.x.shape[1]] = first.x
        x[first.count:, : second.x.shape[1]] = second.x
        sequential = first.sequential or second.sequential or t_in > 1
        return Patterns(x, np.concatenate([first.lengths, second.lengths]), sequential)

    def groups(self):
        """Patterns grouped by length: list of (length, indices, x of shape (n_i, T_in_i, d))."""
        out = []
        for length in np.unique(self.lengths):
            idx = np.flatnonzero(self.lengths == length)
            t_in = int(length) if self.sequential else 1
            out.append((int(length), idx, self.x[idx, :t_in]))
        return out


def parse_inputs(x, steps: int, name: str = "x") -> Patterns:
    """Validate and normalise inputs for a network with ``steps`` layers / time steps (parsed
    :class:`Patterns` pass through after a check of their lengths)."""
    if isinstance(x, Patterns):
        if x.lengths.max() > steps:
            raise ValueError(f"{name} has sequences of length up to {int(x.lengths.max())}, but the network has "
                             f"only {steps} steps")
        return x
    if isinstance(x, (list, tuple)):
        if len(x) == 0:
            raise ValueError(f"{name} must be a non-empty list of (T_i, d) arrays, got an empty list")
        seqs = [check_finite_array(f"{name}[{i}]", s) for i, s in enumerate(x)]
        for i, s in enumerate(seqs):
            if s.ndim != 2 or s.shape[0] < 1 or s.shape[1] < 1:
                raise ValueError(f"{name}[{i}] must be a (T_i, d) array with T_i, d >= 1, got shape {s.shape}")
        dims = {s.shape[1] for s in seqs}
        if len(dims) != 1:
            raise ValueError(f"all sequences in {name} must have the same dimension d, got dimensions {sorted(dims)}")
        lengths = np.array([s.shape[0] for s in seqs])
        padded = np.zeros((len(seqs), lengths.max(), seqs[0].shape[1]))
        for i, s in enumerate(seqs):
            padded[i, : s.shape[0]] = s
        arr, sequential = padded, True
    else:
        arr = check_finite_array(name, x)
        if arr.ndim == 2:
            if arr.shape[0] < 1 or arr.shape[1] < 1:
                raise ValueError(f"{name} must have at least one pattern and one feature, got shape {arr.shape}")
            _check_scale(name, arr)
            return Patterns(arr[:, None, :], np.full(arr.shape[0], steps), False)
        if arr.ndim != 3:
            raise ValueError(
                f"{name} must have shape (N, d), (N, T, d) or be a list of (T_i, d) arrays, "
                f"got an array of shape {arr.shape}"
            )
        if min(arr.shape) < 1:
            raise ValueError(f"{name} must have N, T, d >= 1, got shape {arr.shape}")
        lengths, sequential = np.full(arr.shape[0], arr.shape[1]), True
    if lengths.max() > steps:
        raise ValueError(
            f"{name} has sequences of length up to {int(lengths.max())}, but the network has only "
            f"{steps} steps; build it with depth/steps >= {int(lengths.max())}"
        )
    _check_scale(name, arr)
    return Patterns(arr, lengths, sequential)


# |x|^2 / d above this overflows float64 in the kernels' products (e.g. (1 + 2 C_aa)(1 + 2 C_bb) of erf)
MAX_SQUARED_NORM = 1e150


def _check_scale(name: str, arr: np.ndarray) -> None:
    """Reject inputs whose Gram matrix x x^T / d (or the kernels' products of it) would overflow float64:
    max over patterns (and steps) of |x|^2 / d must be <= :data:`MAX_SQUARED_NORM`."""
    scale = float(np.max(np.abs(arr))) if arr.size else 0.0
    if scale <= 1e60:  # |x|^2 / d <= 1e120: nothing to check
        return
    norms = np.sum((arr / scale) ** 2, axis=-1) / arr.shape[-1]  # overflow-free: scaled by the largest entry
    flat = int(np.argmax(norms))
    where = np.unravel_index(flat, norms.shape)
    log10 = float(np.log10(norms[where]) + 2 * np.log10(scale))
    if log10 > np.log10(MAX_SQUARED_NORM):
        pattern = int(where[0])
        raise ValueError(f"{name} is too large: pattern {pattern} has |x|^2 / d = 10^{log10:.1f} (largest entry "
                         f"{scale:.3g}); the kernels need |x|^2 / d <= {MAX_SQUARED_NORM:.0e} to stay within "
                         f"float64; rescale the inputs")
