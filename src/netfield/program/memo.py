"""The program of a (network, inputs) pair met before, as the same :class:`~netfield.program.netsor.Program`.

Interpreters that compile keep the compiled function with the program object (finite/netsor.py,
finite/training.py, criticality/lyapunov.py), so a second call with an equal network and equal
inputs compiles nothing, as long as it gets the *same* program object. ``net.program(x)`` builds a
new one every time; :func:`program_of` returns the one built before when the network (its builder and
static options, or its program writer, and its hyper-parameter values) and the inputs (shape, dtype and bytes) are equal.
Measured: ``netfield.sample`` on a GRU (3 steps, width 64, NTK recorded) took 2.5 s on every call,
compilation included; a second call with another seed now takes ~0.05 s. A study that samples chunk
after chunk (``netfield.nlo.simulate`` of any program) compiles once per width instead of once per
chunk.

A network's program writer is taken to be a function of the inputs and the hyper-parameters only
(docs/design.md: a network is its program); a writer that reads changing global state must not be
memoised (build the program with ``net.program(x)`` and use the interpreters of the program).

Not memoised (built afresh, as before): hyper-parameters or inputs that are JAX tracers (gradients
with respect to the variances), and networks whose static options cannot be hashed. The memo holds
the last :data:`SIZE` programs (each with its inputs) and costs one hash of the inputs' bytes per
call (~1 ms per MB).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict

import jax
import numpy as np

from .netsor import Program

SIZE = 8
_MEMO: OrderedDict = OrderedDict()


def _array_key(a):
    if isinstance(a, jax.core.Tracer):
        return None
    a = np.ascontiguousarray(np.asarray(a))
    if a.dtype == object:
        return None
    return (a.shape, a.dtype.str, hashlib.blake2b(a.view(np.uint8).reshape(-1), digest_size=16).digest())


def _inputs_key(x):
    if isinstance(x, (list, tuple)):
        keys = tuple(_array_key(s) for s in x)
        return None if any(k is None for k in keys) else (type(x).__name__, keys)
    return _array_key(x)


def _frozen(value):
    """A hashable stand-in for a static option (dicts and lists by their items, arrays by their bytes)."""
    if isinstance(value, dict):
        return ("dict", tuple((k, _frozen(v)) for k, v in sorted(value.items(), key=lambda kv: repr(kv[0]))))
    if isinstance(value, (list, tuple)):
        return (type(value).__name__, tuple(_frozen(v) for v in value))
    if isinstance(value, (np.ndarray, jax.Array)):
        key = _array_key(value)
        if key is None:
            raise TypeError("an option that is a traced array")
        return ("array", key)
    return value


def network_key(net, *, skip=()):
    """A hashable key equal for equal networks (builder and static options, or program writer, and the
    hyper-parameter values, those named in ``skip`` left out), or None where it cannot be formed (traced
    values, options that cannot be hashed)."""
    values = tuple(None if name in skip else _array_key(v) for name, v in zip(net.hyper_names, net.hyper_values))
    if any(v is None for name, v in zip(net.hyper_names, values) if name not in skip):
        return None
    try:
        # a builder's network is determined by the builder and its options (Network.rebuild); its writer
        # is a new closure per build, so it is compared only where there is no builder
        writer = (net.builder,) if net.builder is not None else (net.write, net.prepare)
        key = (net.name, writer, _frozen(net.options), net.hyper_names, values)
        hash(key)
    except TypeError:
        return None
    return key


def inputs_key(x):
    """A hashable key of inputs (an array or a list of arrays: shapes, dtypes and bytes), or None (traced or
    object arrays, or inputs numpy cannot read)."""
    try:
        return _inputs_key(x)
    except (TypeError, ValueError):
        return None


def kept(cache: OrderedDict, key, make, size: int):
    """``cache[key]``, made by ``make()`` and kept if absent (the least recently used entries beyond
    ``size`` dropped); ``make()`` unkept where ``key`` is None or cannot be hashed."""
    if key is None:
        return make()
    try:
        value = cache.get(key)
    except TypeError:  # a part of the key that cannot be hashed
        return make()
    if value is None:
        value = cache[key] = make()
        while len(cache) > size:
            cache.popitem(last=False)
    else:
        cache.move_to_end(key)
    return value


def program_of(net, x, *, batch_rows: int | None = None) -> Program:
    """``net.program(x, batch_rows=batch_rows)``, the same object as an earlier call's for an equal
    network and equal inputs (module docstring)."""
    network, inputs = network_key(net), inputs_key(x)  # None for inputs numpy cannot read: net.program reports them
    key = None if network is None or inputs is None else (network, inputs, batch_rows)
    return kept(_MEMO, key, lambda: net.program(x, batch_rows=batch_rows), SIZE)


__all__ = ["SIZE", "inputs_key", "kept", "network_key", "program_of"]
