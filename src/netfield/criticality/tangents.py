"""Measured Lyapunov exponents of any program, by tangent propagation through the finite-width
interpreter (docs/criticality.md C8; docs/theory.md 3.3).

A network of width n is run by :func:`netfield.finite.netsor.run_program`; a unit perturbation
delta of the first ``tap`` variable (``"h"``: the pre-activation / hidden state at the first step)
of one input row is propagated forward with ``jax.jvp``, and the growth of its image at every later
tap,

    g_t = ln |d h_t| - ln |d h_{t-1}|,       lambda_n = mean over networks and steps t > burn_in of g_t,

is the finite-width Lyapunov exponent of the program's state dynamics (per step or layer). For a
chain program (DNN / RNN) it converges to the mean-field (1/2) ln chi_1 with a 1/n shift (the DNN's
shift is predicted, :func:`netfield.criticality.dnn_lyapunov_correction`); for gated or other
programs, which have no mean-field map here, it is the measurement itself, with its standard error and
a + b/n width fits (:func:`netfield.criticality.fit_inverse_width`).

Network i of a run uses the key fold_in(PRNGKey(seed), i) for its matrices (as :func:`netfield.sample`)
and the key fold_in(that, number of matrices) for delta.
"""

from __future__ import annotations

from dataclasses import dataclass

import jax
import jax.numpy as jnp
import numpy as np

from .._checks import check_positive_int
from ..finite.netsor import _sample_matrices, run_program
from ..meanfield.kernels import check_network


@dataclass(frozen=True, eq=False)
class TangentGrowth:
    """Per network and step the log growth g_t of a propagated perturbation (module docstring).

    Attributes:
        growth: (networks, T - 1) g_t for the taps t = 2..T.
        width, seed, tap, row: how it was measured.
    """

    growth: np.ndarray
    width: int
    seed: int
    tap: str
    row: int

    def lyapunov(self, burn_in: int = 0) -> np.ndarray:
        """(networks,) per-network exponent: mean of g_t over the steps after ``burn_in``."""
        burn_in = check_positive_int("burn_in", burn_in, minimum=0)
        if burn_in >= self.growth.shape[1]:
            raise ValueError(f"burn_in must be < {self.growth.shape[1]} (the measured steps), got {burn_in}")
        return self.growth[:, burn_in:].mean(axis=1)

    def exponent(self, burn_in: int = 0) -> tuple[float, float]:
        """(mean, standard error) over networks of the per-network exponent."""
        per = self.lyapunov(burn_in)
        return float(per.mean()), float(per.std(ddof=1) / np.sqrt(per.size))


def tangent_growth(net, x, width: int, networks: int = 64, seed: int = 0, *, tap: str = "h", row: int = 0,
                   chunk_size: int = 16) -> TangentGrowth:
    """Sample ``networks`` networks of width ``width`` of any program and measure the log growth of a
    perturbation of tap ``tap`` (module docstring) for input row ``row``.

    Cost: ``networks`` forward and tangent passes of the program (``chunk_size`` at a time).

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.criticality import tangent_growth
        >>> g = tangent_growth(netfield.gru(6), np.ones((1, 2)), width=32, networks=4)
        >>> g.growth.shape
        (4, 5)
    """
    check_network(net)
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks, minimum=2)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer, got {seed!r}")
    program = net.program(x)
    if tap not in program.taps or len(program.taps[tap]) < 2:
        raise ValueError(f"tap must name a family of at least two tapped variables of the program "
                         f"({sorted(program.taps)}), got {tap!r}")
    names = [program.taps[tap][t] for t in sorted(program.taps[tap])]
    rows = program.spaces[program[names[0]].space]
    if isinstance(row, bool) or not isinstance(row, (int, np.integer)) or not 0 <= row < rows:
        raise ValueError(f"row must be an integer in 0..{rows - 1}, got {row!r}")
    delta_key = len(program.matrices)

    def one(index):
        key = jax.random.fold_in(jax.random.PRNGKey(seed), index)
        params = _sample_matrices(program, key, width, jnp.float64)
        delta = jax.random.normal(jax.random.fold_in(key, delta_key), (width,), jnp.float64)
        direction = jnp.zeros((width, rows)).at[:, row].set(delta / jnp.linalg.norm(delta))

        def states(eps):
            values = run_program(program, params, width, jnp.float64, perturb={names[0]: eps * direction})
            return [values[name][:, row] for name in names]

        _, tangents = jax.jvp(states, (0.0,), (1.0,))
        logs = jnp.log(jnp.stack([jnp.linalg.norm(v) for v in tangents]))
        return logs[1:] - logs[:-1]

    batched = jax.jit(jax.vmap(one))
    parts = []
    for start in range(0, networks, chunk_size):
        count = min(chunk_size, networks - start)
        parts.append(np.asarray(batched(jnp.arange(start, start + chunk_size)))[:count])
    return TangentGrowth(np.concatenate(parts), width, int(seed), tap, int(row))


__all__ = ["TangentGrowth", "tangent_growth"]
