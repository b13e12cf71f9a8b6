"""What the posterior sampler's model covers, and the inputs it takes (docs/feature.md).

The model (:mod:`netfield.feature.sampler`) reads out one row per pattern with one readout vector
shared by all readouts, measures the kernels of the ``"h"`` taps as one array, and needs a likelihood
that depends on the training patterns only. :func:`check_model` and :func:`check_batch` raise
:class:`~netfield.program.shape.UnsupportedProgram` for programs outside it, naming the instruction and
the alternative; :func:`joint_inputs` validates the training and test inputs.
"""

from __future__ import annotations

import numpy as np

from .._checks import check_finite_array
from ..finite.netsor import run_program
from ..program.architectures import _SequenceInputs
from ..program.netsor import Nonlin
from ..program.network import ChainInputs, Network
from ..program.shape import UnsupportedProgram, recognise_chain

ALTERNATIVE = "netfield.sample (prior ensembles of any program)"


def _sequences(name, x, T):
    arr = check_finite_array(name, x)
    if arr.ndim == 2:
        arr = arr[:, None, :]
    if arr.ndim != 3 or min(arr.shape) < 1 or arr.shape[1] > T:
        raise ValueError(
            f"{name} must have shape (P, d) (input at step 1 only) or (P, T_in, d) with 1 <= T_in <= {T} "
            f"(the network's steps), got shape {np.shape(x)}"
        )
    return arr


def _pad(a, t_in):
    return np.concatenate([a, np.zeros((a.shape[0], t_in - a.shape[1], a.shape[2]))], axis=1)


def joint_inputs(net: Network, x, x_test):
    """(training inputs, training + test inputs) as the network's program takes them.

    x_test must have the shape of x beyond the first (pattern) axis; for DNN / RNN chains, whose
    zero-padded inputs give the same network, inputs of different lengths are padded (input at step 1
    only for (P, d))."""
    sequential = isinstance(net.prepare, (ChainInputs, _SequenceInputs))
    xs = _sequences("x", x, net.steps) if sequential else check_finite_array("x", x)
    x = check_finite_array("x", x)
    if x_test is None:
        return x, x
    xt = _sequences("x_test", x_test, net.steps) if sequential else check_finite_array("x_test", x_test)
    x_test = check_finite_array("x_test", x_test)
    if x_test.shape[1:] == x.shape[1:]:
        return x, np.concatenate([x, x_test])
    if sequential and xt.shape[2] != xs.shape[2]:
        raise ValueError(f"x_test must have d = {xs.shape[2]} features like x, got shape {np.shape(x_test)}")
    if sequential and recognise_chain(net.program(x))[0] is not None:
        t_in = max(xs.shape[1], xt.shape[1])
        xs, xt = _pad(xs, t_in), _pad(xt, t_in)
        return xs, np.concatenate([xs, xt])
    raise ValueError(
        f"x_test must have the shape of x beyond the first (pattern) axis, {x.shape[1:]}, got shape "
        f"{x_test.shape} (inputs of different lengths are padded only for DNN / RNN chains, where zero inputs "
        f"are the same network; pad them yourself for the {net.name} network if that is meant)"
    )


def _unsupported(net, what):
    return UnsupportedProgram(
        f"the posterior HMC sampler does not cover the {net.name} network: {what}. Use {ALTERNATIVE} instead "
        f"(or see docs/feature.md for what the sampler's model covers)."
    )


def check_model(net: Network, program, patterns: int):
    """UnsupportedProgram for a program outside the sampler's model (module docstring)."""
    readouts = program.readouts
    for r in readouts:
        if r.flatten is not None:
            raise _unsupported(net, f"readout {r.name!r} reads flattened rows (each pattern's rows at once, "
                                    f"e.g. conv(..., readout='flatten')); the model reads out one row per pattern "
                                    f"(readout='global_avg' is covered)")
    if len({r.matrix for r in readouts}) > 1:
        raise _unsupported(net, f"its readouts use different readout matrices "
                                f"({', '.join(sorted({r.matrix for r in readouts}))}); the model has one readout "
                                f"vector v shared by all readouts")
    spaces = {program[r.arg].space for r in readouts}
    if len(spaces) > 1:
        raise _unsupported(net, f"its readouts read variables on different row spaces ({', '.join(sorted(spaces))})")
    rows = program.spaces[spaces.pop()]
    if rows != patterns:
        raise _unsupported(net, f"readout {readouts[0].name!r} reads {rows} rows for {patterns} patterns; the "
                                f"model needs one readout row per pattern (pool or select rows with a row map)")
    taps = program.taps.get("h", {})
    tap_spaces = {program[v].space for v in taps.values()}
    if len(tap_spaces) > 1:
        raise _unsupported(net, f"its 'h' taps live on different row spaces ({', '.join(sorted(tap_spaces))}), so "
                                f"their kernels cannot be measured as one array (conv: padding='SAME' and no "
                                f"pool_window keep one space)")


def check_batch(net: Network, train, joint, params, width: int, P: int):
    """UnsupportedProgram if the training patterns' features change when the test patterns join the
    batch (the likelihood must not depend on test patterns)."""
    a = run_program(train, params, width)
    b = run_program(joint, params, width)
    for r in train.readouts:
        fa, fb = np.asarray(a[r.arg]), np.asarray(b[r.arg])[:, :P]
        if not np.allclose(fa, fb, rtol=1e-9, atol=1e-12 * max(1.0, np.abs(fa).max())):
            coupled = [ins.name for ins in train.instructions if isinstance(ins, Nonlin) and ins.coupled]
            raise _unsupported(net, f"the training patterns' features at readout {r.name!r} change when the test "
                                    f"patterns join the batch (the program couples the patterns of a batch"
                                    f"{': coupled instructions ' + ', '.join(coupled) if coupled else ''}), so the "
                                    f"likelihood would depend on x_test; sample without x_test")
