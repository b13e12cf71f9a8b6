"""Ensembles of empirical kernels of sampled finite networks, with statistics."""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from ..storage import Storable


def mean_and_sem(samples: np.ndarray):
    """Mean over axis 0 and its standard error (std with ddof=1 over sqrt(count))."""
    samples = np.asarray(samples)
    k = samples.shape[0]
    mean = samples.mean(axis=0)
    sem = samples.std(axis=0, ddof=1) / np.sqrt(k) if k > 1 else np.full_like(mean, np.inf)
    return mean, sem


@dataclass(frozen=True, eq=False)
class Ensemble(Storable):
    """Empirical kernels of ``networks`` sampled networks of one width.

    ``ens.save(path, network=net)`` / ``Ensemble.load(path)`` keep it in a portable .npz file
    (:mod:`netfield.storage`, README "Keeping results").

    Attributes:
        readout: (networks, M, M) conditional readout kernels (see :func:`netfield.sample`).
        preactivations: {(t, s): (networks, N, N)} empirical pre-activation kernels, t <= s.
        width, seed, readout_mode, first_network, steps: how it was sampled.
        ntk: (networks, M, M) empirical neural tangent kernels on the readout rows
            (``netfield.sample(..., ntk=True)``; docs/ntk.md), or None when not computed.
        parameterization: ``"ntk"`` or ``"standard"``, the parameterization of ``ntk`` (None without it).
        method: how the networks were sampled, ``"weights"`` (weight matrices) or ``"conditional"``
            (pre-activations by Gaussian conditioning, :mod:`netfield.finite.conditional`).
    """

    readout: np.ndarray
    preactivations: dict = field(default_factory=dict)
    width: int = 0
    seed: int = 0
    readout_mode: str = "last"
    first_network: int = 0
    steps: int = 0
    ntk: np.ndarray | None = None
    parameterization: str | None = None
    method: str = "weights"

    @property
    def networks(self) -> int:
        return self.readout.shape[0]

    def preactivation(self, t: int, s: int | None = None) -> np.ndarray:
        """(networks, N, N) empirical Cov(h_t(a), h_s(b)) = (1/n) sum_i h_i(t, a) h_i(s, b)."""
        s = t if s is None else s
        if (t, s) in self.preactivations:
            return self.preactivations[(t, s)]
        if (s, t) in self.preactivations:
            return np.swapaxes(self.preactivations[(s, t)], 1, 2)
        kept = sorted(self.preactivations)
        raise KeyError(
            f"pre-activation kernel ({t}, {s}) was not recorded; recorded pairs: {kept}. "
            f"Sample with preactivations='all' or a list of (t, s) pairs."
        )

    def readout_stats(self):
        """(mean, standard error) of the readout kernel over networks."""
        return mean_and_sem(self.readout)

    def ntk_stats(self):
        """(mean, standard error) of the empirical NTK over networks (ValueError if it was not computed)."""
        if self.ntk is None:
            raise ValueError("this ensemble has no NTK; sample with netfield.sample(..., ntk=True)")
        return mean_and_sem(self.ntk)

    def preactivation_stats(self, t: int, s: int | None = None):
        return mean_and_sem(self.preactivation(t, s))

    @staticmethod
    def concatenate(parts: list[Ensemble]) -> Ensemble:
        """Join ensembles of consecutive network ranges of one run (e.g. a resumed run)."""
        if not parts:
            raise ValueError("parts must be a non-empty list of Ensemble")
        first = parts[0]
        for p in parts[1:]:
            if (p.width, p.seed, p.readout_mode, set(p.preactivations), p.ntk is None, p.parameterization,
                    p.method) != (
                first.width, first.seed, first.readout_mode, set(first.preactivations), first.ntk is None,
                first.parameterization, first.method,
            ):
                raise ValueError("parts must come from the same run (width, seed, readout, preactivations, ntk, "
                                 "method)")
        return Ensemble(
            readout=np.concatenate([p.readout for p in parts]),
            preactivations={k: np.concatenate([p.preactivations[k] for p in parts]) for k in first.preactivations},
            width=first.width, seed=first.seed, readout_mode=first.readout_mode,
            first_network=first.first_network, steps=first.steps,
            ntk=None if first.ntk is None else np.concatenate([p.ntk for p in parts]),
            parameterization=first.parameterization, method=first.method,
        )
