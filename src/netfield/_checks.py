"""Argument validation shared by the public API.

Every error names the argument, the value received and what is accepted (docs/design.md section 3).
Values that are JAX tracers (inside ``jit``/``grad``) are not inspected, so validated functions stay
differentiable with respect to hyper-parameters.
"""

from __future__ import annotations

import math
import numbers

import jax
import numpy as np


def is_traced(value) -> bool:
    return isinstance(value, jax.core.Tracer)


def inside_trace() -> bool:
    """True while JAX traces a function (``jit``): every JAX operation then yields a tracer, even on
    constants, so paths that convert to numpy (the fused kernel) cannot run. ``device_put`` is staged
    under ``jit`` too but compiles nothing when eager (``jnp.zeros(()) + 0.0`` compiled two programs in
    every process)."""
    return isinstance(jax.device_put(np.zeros(())), jax.core.Tracer)


def check_variance(name: str, value, *, allow_zero: bool = True):
    """A variance hyper-parameter: a finite real number >= 0 (or > 0 when ``allow_zero`` is False)."""
    if is_traced(value):
        return value
    if isinstance(value, bool) or not isinstance(value, (numbers.Real, np.ndarray, jax.Array)):
        raise TypeError(f"{name} must be a real number, got {value!r} of type {type(value).__name__}")
    if np.ndim(value) != 0:
        raise ValueError(f"{name} must be a scalar, got an array of shape {np.shape(value)}")
    v = float(value)
    bound = ">= 0" if allow_zero else "> 0"
    if not math.isfinite(v) or v < 0 or (v == 0 and not allow_zero):
        raise ValueError(f"{name} must be a finite number {bound}, got {value!r}")
    return value


def check_positive_int(name: str, value, *, minimum: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"{name} must be an integer >= {minimum}, got {value!r} of type {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_choice(name: str, value, choices):
    if value not in choices:
        accepted = ", ".join(repr(c) for c in choices)
        raise ValueError(f"{name} must be one of {accepted}, got {value!r}")
    return value


def check_finite_array(name: str, array) -> np.ndarray:
    """Convert to an aligned float64 numpy array and reject NaN / inf with the position of the first bad entry.

    Aligned: an array unpickled in another process (a Dask worker) may start at any byte, and NumPy's
    reductions take other loops (other roundoff) on misaligned data; a copy makes every result the
    same bits wherever the inputs came from."""
    if np.iscomplexobj(array) or (isinstance(array, (list, tuple)) and _holds_complex(array)):
        raise TypeError(f"{name} must be a real array, got complex values of dtype {np.asarray(array).dtype} (pass the real part, np.real(x), "
                        f"or split real and imaginary parts into features)")
    if array is None:
        raise TypeError(f"{name} must be a numeric array, got None")
    try:
        arr = np.asarray(array, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise TypeError(f"{name} must be a numeric array, got {type(array).__name__}: {err}") from None
    bad = ~np.isfinite(arr)
    if bad.any():
        where = tuple(int(i) for i in np.argwhere(bad)[0])
        raise ValueError(f"{name} must contain only finite numbers, got {arr[where]} at index {where}")
    return np.require(arr, requirements=["ALIGNED"])



def _holds_complex(items) -> bool:
    """Whether a (nested) list holds a complex number (np.asarray of it would be complex)."""
    try:
        return np.iscomplexobj(np.asarray(items))
    except (TypeError, ValueError):  # ragged / mixed: the float conversion reports it
        return False
