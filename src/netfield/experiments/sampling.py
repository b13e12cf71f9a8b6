"""A range of sampled networks of one run, with a per-network progress callback.

Thin wrapper over :func:`netfield.sample` (which compiles once per network structure and takes the
hyper-parameters, inputs and seed as runtime arguments), used by the studies and the resumable
command-line runs: networks [first, first + count) of a run equal the same slice of a longer run.
"""

from __future__ import annotations

from .._checks import check_choice, check_positive_int
from .._runtime.seeds import check_seed
from ..finite import Ensemble, sample
from ..finite import sampler as _finite
from ..meanfield.kernels import READOUTS
from ..meanfield.kernels import check_network as _check_net
from ..program import Network


def preactivation_pairs(preactivations, steps: int) -> tuple:
    """The (t, s) pairs recorded for a ``preactivations`` argument of :func:`netfield.sample`."""
    return _finite._preactivation_pairs(preactivations, steps)


def sample_range(net: Network, x, width: int, first_network: int, networks: int, seed: int = 0, *,
                 readout: str = "last", preactivations="equal", dtype: str = "float64",
                 on_network=None, method: str = "auto") -> Ensemble:
    """Networks ``first_network .. first_network + networks - 1`` of a run, as :func:`netfield.sample`.

    Args:
        net: from :func:`netfield.dnn` / :func:`netfield.rnn`.
        x: inputs (N, d), (N, T, d) or a list of (T_i, d) arrays.
        width: hidden width n.
        first_network: index of the first network of the range.
        networks: number of networks in the range.
        seed: run seed; network i uses ``fold_in(PRNGKey(seed), i)``.
        readout, preactivations, dtype, method: as for :func:`netfield.sample`.
        on_network: optional callable, called with no argument after each network.

    Returns:
        :class:`netfield.Ensemble`, equal to ``netfield.sample(net, x, width, networks, seed,
        first_network=first_network, ...)``.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.experiments.sampling import sample_range
        >>> net = netfield.rnn(3, "erf")
        >>> a = sample_range(net, np.eye(2), 16, 2, 3, seed=1)
        >>> b = netfield.sample(net, np.eye(2), 16, 3, seed=1, first_network=2)
        >>> bool(np.array_equal(a.readout, b.readout))
        True
    """
    _check_net(net)
    width = check_positive_int("width", width)
    networks = check_positive_int("networks", networks)
    first_network = check_positive_int("first_network", first_network, minimum=0)
    seed = check_seed(seed)
    check_choice("readout", readout, READOUTS)
    check_choice("dtype", str(dtype), ("float32", "float64"))
    ens = sample(net, x, width, networks, seed, readout=readout, preactivations=preactivations,
                 dtype=dtype, first_network=first_network, method=method)
    if on_network is not None:
        for _ in range(networks):
            on_network()
    return ens
