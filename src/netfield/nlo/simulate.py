"""Simulation-based 1/n statistics of the kernel entries: the oracle for the one-loop theory.

For every fluctuating entry i of :func:`netfield.nlo.observables` (hidden conditional kernels and
readout kernels, each ``O_i = const_i + scale_i (1/n) sum_j phi(h_{u_i, j}) phi(h_{v_i, j})``) this
module samples finite networks of several widths n with the finite-width interpreter
(:func:`netfield.sample`) and measures, per width,

- the mean E_n[O_i] and its standard error,
- the covariance Cov_n(O_i, O_j) (ddof = 1) and its standard error (delta method: the standard error
  of the mean of Z = (O_i - mean_i)(O_j - mean_j); on the diagonal, the s.e. of the variance).

docs/theory.md 4.1 predicts, at large n,

    n Cov_n(O_i, O_j)    -> Sigma_ij                                   (4.1a)
    n (E_n[O_i] - K*_i)  -> shift_i                                    (4.1b)

with K*_i the mean-field value. Both limits are extracted by Richardson-type weighted least-squares
fits over the widths, vectorised over entries:

    n (E_n - K*)  = shift     + b_1 / n [+ b_2 / n^2]
    n Cov_n       = cov_limit + c_1 / n [+ c_2 / n^2]

(``order`` = number of 1/n correction terms; order 0 fits a constant, i.e. a weighted mean), with
weights 1 / se^2 of the fitted quantity, parameter standard errors from (X^T W X)^{-1} multiplied by
the Birge ratio sqrt(chi^2 / dof) when it exceeds 1 (never shrunk; the house style of
:mod:`netfield.experiments.fitting`). As a check of the mean-field value itself, the means are also
fitted with the infinite-width value free, E_n = K + a_1 / n + ... + a_{order+1} / n^{order+1}
(``free_limit`` should agree with ``mft`` within its error).

This is the tool to reach for when no theory exists: it needs nothing but the network's program.
Deep linear networks (docs/theory.md 4.2) are exact checks: E_n = K* at every n and, for the hidden
entry of step t, n Var_n = n K_t^2 [(1 + 2/n)^(t-1) - 1] -> 2 (t - 1) K_t^2.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import numpy as np

from .._checks import check_choice, check_positive_int
from .._runtime.checkpoint import ChunkStore, array_digest, run_chunks, run_key
from .._runtime.progress import check_progress, progress_bar
from .._runtime.seeds import check_seed, derive_seed
from ..distributed import executor
from ..finite import sample
from ..finite.netsor import _chunk_size as netsor_chunk_size
from ..finite.sampler import default_chunk_size
from ..meanfield import kernel
from ..meanfield.kernels import check_network
from ..program import Network
from ..program.shape import recognise_chain, require_chain
from ..storage import Storable
from .observables import Observables, observables, readout_observables

ORDERS = (0, 1, 2)
DEFAULT_CHUNK = 250  # networks per checkpoint chunk when chunk_size is None


# ----------------------------------------------------------------------------------------- fitting

@dataclass(frozen=True, eq=False)
class _Fit:
    """Vectorised weighted least-squares fit y(n) = sum_k coef_k n^-(k + power0), over leading axes."""

    coef: np.ndarray  # (..., p)
    coef_se: np.ndarray  # (..., p), Birge-inflated
    chi2: np.ndarray  # (...)
    dof: int


def _fit_inverse_powers(widths, y, se, powers) -> _Fit:
    """Fit y[..., w] = sum_k coef[..., k] * widths[w] ** -powers[k] by weighted least squares.

    Weights 1 / se^2 (se floored at 1e-12 of the entry's largest |y| so that exact points stay finite);
    coefficient covariance (X^T W X)^{-1}, standard errors multiplied by sqrt(chi2 / dof) where that
    exceeds 1 (Birge ratio, never shrunk; not applied when dof = 0).
    """
    n = np.asarray(widths, float)
    y = np.asarray(y, float)
    se = np.asarray(se, float)
    powers = np.asarray(powers, float)
    n0 = n.min()
    X = (n0 / n)[:, None] ** powers[None, :]  # (W, p), columns scaled to O(1) for conditioning
    floor = 1e-12 * np.maximum(np.abs(y).max(axis=-1, keepdims=True), np.finfo(float).tiny)
    w = 1.0 / np.maximum(se, floor) ** 2
    A = np.einsum("...w,wp,wq->...pq", w, X, X)
    rhs = np.einsum("...w,wp,...w->...p", w, X, y)
    cov = np.linalg.inv(A)
    beta = np.einsum("...pq,...q->...p", cov, rhs)
    resid = y - np.einsum("wp,...p->...w", X, beta)
    chi2 = np.sum(w * resid**2, axis=-1)
    dof = len(n) - len(powers)
    inflate = np.sqrt(np.maximum(1.0, chi2 / dof)) if dof > 0 else np.ones_like(chi2)
    beta_se = np.sqrt(np.maximum(np.diagonal(cov, axis1=-2, axis2=-1), 0.0)) * inflate[..., None]
    unscale = n0**powers  # column k is (n0/n)^k: the coefficient of n^-k is beta_k * n0^k
    return _Fit(beta * unscale, beta_se * unscale, chi2, dof)


# ------------------------------------------------------------------------------------------ result

@dataclass(frozen=True, eq=False)
class SimulatedNLO(Storable):
    """Per-width moments of the kernel entries and their 1/n limits (module docstring).

    ``sim.save(path, network=net)`` / ``SimulatedNLO.load(path)``: a portable .npz file (:mod:`netfield.storage`).

    Shapes: M = ``len(observables)`` entries, W = ``len(widths)`` widths, p = order + 1 fit terms.

    Attributes:
        observables: the :class:`~netfield.nlo.observables.Observables` index set.
        widths: (W,) sampled widths n, increasing.
        networks: networks sampled per width (an int, or a tuple with one count per width).
        seed: the run seed (``seeds`` holds the seed derived for each width).
        order: number of 1/n correction terms in the fits (0, 1 or 2).
        mft: (M,) mean-field values K*_i.
        mean, mean_se: (W, M) mean over networks and its standard error.
        cov, cov_se: (W, M, M) covariance over networks (ddof = 1) and its standard error.
        shift, shift_se: (M,) lim n (E_n - K*) (docs/theory.md eq. 4.1b) and its standard error.
        shift_coef, shift_coef_se: (M, p) coefficients of n (E_n - K*) = sum_k coef_k n^-k.
        shift_chi2: (M,) chi^2 of the shift fits (``dof`` degrees of freedom).
        cov_limit, cov_limit_se: (M, M) lim n Cov_n = Sigma (docs/theory.md eq. 4.1a) and its standard error.
        cov_coef, cov_coef_se: (M, M, p) coefficients of n Cov_n = sum_k coef_k n^-k.
        cov_chi2: (M, M) chi^2 of the covariance fits (``dof`` degrees of freedom).
        dof: degrees of freedom of the shift and covariance fits, W - (order + 1).
        free_limit, free_limit_se: (M,) infinite-width value K of the free fit
            E_n = K + a_1/n + ... + a_{order+1}/n^{order+1} (a check of ``mft``).
        free_shift, free_shift_se: (M,) its 1/n coefficient a_1 (compare with ``shift``).
        free_chi2, free_dof: chi^2 (M,) and degrees of freedom of the free fit.
        seeds: (W,) seed used at each width.
    """

    observables: Observables
    widths: tuple
    networks: int | tuple
    seed: int
    order: int
    mft: np.ndarray
    mean: np.ndarray
    mean_se: np.ndarray
    cov: np.ndarray
    cov_se: np.ndarray
    shift: np.ndarray
    shift_se: np.ndarray
    shift_coef: np.ndarray
    shift_coef_se: np.ndarray
    shift_chi2: np.ndarray
    cov_limit: np.ndarray
    cov_limit_se: np.ndarray
    cov_coef: np.ndarray
    cov_coef_se: np.ndarray
    cov_chi2: np.ndarray
    dof: int
    free_limit: np.ndarray
    free_limit_se: np.ndarray
    free_shift: np.ndarray
    free_shift_se: np.ndarray
    free_chi2: np.ndarray
    free_dof: int
    seeds: tuple = ()

    _storage_types = (Observables,)

    @classmethod
    def from_moments(cls, observables: Observables, widths, networks: int, mft, mean, mean_se, cov, cov_se, *,
                     order: int = 1, seed: int = 0, seeds=()) -> SimulatedNLO:
        """Fit the 1/n limits from given per-width moments (what :func:`simulate` does after sampling).

        Args:
            observables: index set of the M entries.
            widths: (W,) distinct widths, in any order (the moments' first axis follows it; the
                result is sorted by width).
            networks: networks per width (recorded only).
            mft: (M,) mean-field values.
            mean, mean_se: (W, M) means and standard errors.
            cov, cov_se: (W, M, M) covariances and standard errors.
            order: 1/n correction terms in the fits (0, 1, 2).
            seed, seeds: recorded only.
        """
        order = _check_order(order)
        given = _check_widths(widths, order)
        rank = np.argsort(given)  # the moments follow the given width order; the result is sorted
        widths = tuple(given[k] for k in rank)
        W, M = len(widths), len(observables)
        mft = np.asarray(mft, float).reshape(M)
        mean = np.asarray(mean, float).reshape(W, M)[rank]
        mean_se = np.asarray(mean_se, float).reshape(W, M)[rank]
        cov = np.asarray(cov, float).reshape(W, M, M)[rank]
        cov_se = np.asarray(cov_se, float).reshape(W, M, M)[rank]
        seeds = [seeds[k] for k in rank] if len(seeds) == W else seeds
        n = np.asarray(widths, float)
        powers = np.arange(order + 1)

        shift = _fit_inverse_powers(n, (n[:, None] * (mean - mft)).T, (n[:, None] * mean_se).T, powers)
        ncov = np.moveaxis(n[:, None, None] * cov, 0, -1)
        ncov_se = np.moveaxis(n[:, None, None] * cov_se, 0, -1)
        covfit = _fit_inverse_powers(n, ncov, ncov_se, powers)
        free = _fit_inverse_powers(n, mean.T, mean_se.T, np.arange(order + 2))
        return cls(
            observables=observables, widths=tuple(int(w) for w in widths), networks=(int(networks) if np.ndim(networks) == 0
                                                                       else tuple(int(m) for m in networks)), seed=int(seed),
            order=order, mft=mft, mean=mean, mean_se=mean_se, cov=cov, cov_se=cov_se,
            shift=shift.coef[:, 0], shift_se=shift.coef_se[:, 0], shift_coef=shift.coef,
            shift_coef_se=shift.coef_se, shift_chi2=shift.chi2,
            cov_limit=covfit.coef[..., 0], cov_limit_se=covfit.coef_se[..., 0], cov_coef=covfit.coef,
            cov_coef_se=covfit.coef_se, cov_chi2=covfit.chi2, dof=shift.dof,
            free_limit=free.coef[:, 0], free_limit_se=free.coef_se[:, 0], free_shift=free.coef[:, 1],
            free_shift_se=free.coef_se[:, 1], free_chi2=free.chi2, free_dof=free.dof,
            seeds=tuple(int(s) for s in seeds),
        )

    # -- views -------------------------------------------------------------------------------------

    @property
    def variance_limit(self) -> np.ndarray:
        """(M,) lim n Var_n(O_i) = Sigma_ii."""
        return np.diagonal(self.cov_limit).copy()

    @property
    def variance_limit_se(self) -> np.ndarray:
        return np.diagonal(self.cov_limit_se).copy()

    @property
    def variance_chi2(self) -> np.ndarray:
        return np.diagonal(self.cov_chi2).copy()

    @property
    def free_limit_pull(self) -> np.ndarray:
        """(M,) (free_limit - mft) / free_limit_se: should be O(1) when the mean field is right."""
        return (self.free_limit - self.mft) / self.free_limit_se

    def entry(self, kind: str, t: int, s: int, a: int = 0, b: int = 0) -> int:
        """Index of entry (t, s, a, b) of ``kind`` ("hidden" or "readout"); see ``Observables.index``."""
        return self.observables.index(kind, t, s, a, b)

    def _check_index(self, i) -> int:
        M = len(self.observables)
        if isinstance(i, bool) or not isinstance(i, numbers.Integral) or not -M <= i < M:
            raise IndexError(f"i must be an entry index in 0..{M - 1} (see entry()), got {i!r}")
        return int(i) % M

    def n_variance(self, i: int, j: int | None = None) -> tuple[np.ndarray, np.ndarray]:
        """(W,) n Cov_n(O_i, O_j) (default j = i: n Var_n) and its standard error, per width."""
        i = self._check_index(i)
        j = i if j is None else self._check_index(j)
        n = np.asarray(self.widths, float)
        return n * self.cov[:, i, j], n * self.cov_se[:, i, j]

    def n_shift(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(W,) n (E_n[O_i] - K*_i) and its standard error, per width."""
        i = self._check_index(i)
        n = np.asarray(self.widths, float)
        return n * (self.mean[:, i] - self.mft[i]), n * self.mean_se[:, i]

    def to_dict(self) -> dict:
        """Everything as JSON-ready numbers and lists (entry order of ``labels``)."""
        obs = self.observables

        def lst(a):
            return np.asarray(a, float).tolist()

        return {
            "architecture": obs.architecture, "steps": obs.steps, "patterns": obs.patterns,
            "labels": obs.labels(), "kind": obs.kind.tolist(),
            "t": obs.t.tolist(), "s": obs.s.tolist(), "a": obs.a.tolist(), "b": obs.b.tolist(),
            "hyper": {k: float(v) for k, v in obs.hyper.items()},
            "widths": list(self.widths), "networks": list(self.networks) if isinstance(self.networks, tuple) else self.networks, "seed": self.seed, "seeds": list(self.seeds),
            "order": self.order, "dof": self.dof, "free_dof": self.free_dof,
            **{name: lst(getattr(self, name)) for name in (
                "mft", "mean", "mean_se", "cov", "cov_se", "shift", "shift_se", "shift_coef", "shift_coef_se",
                "shift_chi2", "cov_limit", "cov_limit_se", "cov_coef", "cov_coef_se", "cov_chi2",
                "variance_limit", "variance_limit_se", "free_limit", "free_limit_se", "free_shift",
                "free_shift_se", "free_chi2")},
        }


# ------------------------------------------------------------------------------------------ checks

def _check_order(order) -> int:
    if isinstance(order, bool) or not isinstance(order, numbers.Integral):
        raise TypeError(f"order must be one of 0, 1, 2 (number of 1/n correction terms), got {order!r}")
    return int(check_choice("order", int(order), ORDERS))


def _check_widths(widths, order: int) -> tuple:
    if isinstance(widths, (numbers.Integral, str, bytes)):
        raise TypeError(f"widths must be a list of integers >= 1, got {widths!r}")
    try:
        values = list(widths)
    except TypeError:
        raise TypeError(f"widths must be a list of integers >= 1, got {widths!r}") from None
    for w in values:
        if isinstance(w, bool) or not isinstance(w, numbers.Integral) or w < 1:
            raise ValueError(f"widths must hold integers >= 1, got {w!r} in {values!r}")
    if len(set(values)) != len(values):
        raise ValueError(f"widths must not repeat a value (each width is sampled once), got {values!r}")
    need = order + 2
    if len(values) < need:
        raise ValueError(
            f"widths: order={order} needs at least {need} distinct widths ({order + 1} fit terms plus one degree "
            f"of freedom; the check fit with the infinite-width value free has {need} terms), got {values!r}")
    return tuple(int(w) for w in values)


# ---------------------------------------------------------------------------------------- sampling

def _moments(values: np.ndarray):
    """Mean, its s.e., covariance (ddof = 1) and the s.e. of every covariance element (delta method)."""
    N = values.shape[0]
    mean = values.mean(axis=0)
    d = values - mean
    mean_se = d.std(axis=0, ddof=1) / math.sqrt(N)
    dd = d.T @ d
    cov = dd / (N - 1)
    zbar = dd / N  # mean of Z_ij = d_i d_j
    sq = d * d
    z2 = sq.T @ sq  # sum_k Z_ij^2
    var_z = np.maximum(z2 - N * zbar**2, 0.0) / (N - 1)
    cov_se = np.sqrt(var_z / N)
    return mean, mean_se, cov, cov_se


def simulate(net: Network, x, widths=(32, 64, 128, 256), networks: int = 2000, seed: int = 0, *, order: int = 1,
             chunk_size: int | None = None, store: ChunkStore | None = None, resume: bool = False,
             progress=True, client=None, workers: int | None = None) -> SimulatedNLO:
    """Sample finite networks and measure the 1/n statistics of every kernel entry (module docstring).

    Cost: one compilation per width, then roughly linear in ``networks`` x width^2 x steps (the
    demo's 4 widths 32..256 with a few thousand networks take ~1 min on 2 cores); ``networks`` and
    the largest width are the levers.

    For each width n, ``networks`` networks are sampled with :func:`netfield.sample` (readout weights
    integrated out, ``readout="all"``), each reduced at once to the M entries of
    :func:`netfield.nlo.observables`; widths use independent seeds derived from ``seed`` and n.
    Then n Cov_n -> Sigma (docs/theory.md eq. 4.1a) and n (E_n - K*) -> shift (eq. 4.1b) are extrapolated
    in 1/n (see :class:`SimulatedNLO`).

    Args:
        net: any network. A chain program (DNN / RNN) is measured on the entries of the one-loop
            theory (hidden conditional kernels and readout, :func:`netfield.nlo.observables`); any other
            program on its readout kernel entries (:func:`netfield.nlo.observables.readout_observables`,
            every output row of ``kernel(net, x, readout="all")``), whose mean-field values come from a
            converged quasi-Monte-Carlo theory (2^15 points).
        x: inputs as the network takes them (DNN / RNN: (N, d) fed at step 1, or (N, T, d) of the
            network's length T).
        widths: at least order + 2 distinct widths n.
        networks: networks per width (>= 3), or one count per width in the order of ``widths`` (e.g. fewer
            at large widths, where each network costs more).
        seed: run seed, an integer in [0, 2**63).
        order: 1/n correction terms in the extrapolations: 0, 1 (default) or 2.
        chunk_size: networks per checkpoint chunk (default min(networks, 250)); resuming needs the
            same value.
        store: :class:`netfield.experiments.ChunkStore` in which finished chunks are saved.
        resume: load finished chunks from ``store`` instead of sampling them again (identical numbers).
        progress: True (default): a bar on stderr over the sampled networks; False / None: quiet; or
            a callable ``progress(k)`` told about k more finished networks (e.g. the caller's
            :class:`netfield._runtime.progress.ProgressBar`; :mod:`netfield._runtime.progress`).
        client, workers: run the chunks as tasks on Dask (a ``distributed.Client`` or scheduler address,
            or a local cluster of ``workers`` processes; docs/distributed.md); the same numbers.

    Returns:
        :class:`SimulatedNLO`.

    Example:
        >>> import numpy as np, netfield
        >>> from netfield.nlo.simulate import simulate
        >>> res = simulate(netfield.dnn(2, "linear"), np.ones((1, 2)), widths=(8, 16, 32), networks=50)
        >>> res.mean.shape, res.cov.shape, res.variance_limit.shape
        ((3, 2), (3, 2, 2), (2,))
    """
    order = _check_order(order)
    given = _check_widths(widths, order)
    if isinstance(networks, (list, tuple, np.ndarray)):
        if len(networks) != len(given):
            raise ValueError(f"networks must be an int or one count per width ({len(given)}), got {networks!r}")
        per_width = dict(zip(given, (check_positive_int("networks", m, minimum=3) for m in networks)))
    else:
        m = check_positive_int("networks", networks, minimum=3)
        per_width = dict.fromkeys(given, m)
    widths = tuple(sorted(given))
    seed = check_seed(seed)
    if chunk_size is not None:
        chunk_size = check_positive_int("chunk_size", chunk_size)
    if store is not None and not isinstance(store, ChunkStore):
        raise TypeError(f"store must be a netfield.experiments.ChunkStore or None, got {store!r}")
    check_progress(progress)
    check_network(net)
    program = net.program(x)
    if recognise_chain(program)[0] is not None:  # the entries of the one-loop theory (docs/nlo.md N1)
        obs = observables(net, x)
        sampled = require_chain(net, "nlo.simulate", "-", x).network().replace(readout_var=1.0,
                                                                               readout_bias_var=0.0)
        k_all = np.asarray(kernel(sampled, x, readout="all"))  # readout kernel = (1/n) sum phi phi
    else:  # any other program: its readout entries, from a converged quasi-Monte-Carlo theory
        obs = readout_observables(net, x)
        sampled = net
        k_all = np.asarray(kernel(net, x, readout="all", qmc_points=MFT_QMC_POINTS))
    mft = obs.const + obs.scale * k_all[obs.u, obs.v]
    lengths = [len(r) for r in x] if isinstance(x, (list, tuple)) else list(np.shape(x))

    chunk = min(max(per_width.values()), DEFAULT_CHUNK) if chunk_size is None else chunk_size
    x_digest = array_digest(np.concatenate([np.ravel(f) for f in program.feeds]))
    moments, seeds = [], []
    with progress_bar(progress, sum(per_width.values()), "networks") as bar, executor(client, workers) as where:
        for width in widths:
            moments.append(_simulate_width(program, sampled, x, obs, net, width, seed, chunk, per_width[width],
                                           x_digest, lengths, store, resume, bar, where))
            seeds.append(derive_seed(seed, "nlo-simulate", width))
    mean, mean_se, cov, cov_se = (np.stack([m[k] for m in moments]) for k in range(4))
    counts = [per_width[w] for w in widths]
    networks = counts[0] if len(set(counts)) == 1 else tuple(counts)
    return SimulatedNLO.from_moments(obs, widths, networks, mft, mean, mean_se, cov, cov_se, order=order,
                                     seed=seed, seeds=seeds)


def _simulate_width(program, sampled, x, obs, net, width, seed, chunk, networks, x_digest, lengths, store, resume,
                    progress, where):
    """The moments of the observables at one width (``networks`` sampled networks, chunked)."""
    run_seed = derive_seed(seed, "nlo-simulate", width)
    # one compiled batch shape per width: every call evaluates `inner` networks (the last padded)
    inner = min(chunk, _chunk_networks(program, width))

    def compute(first, count, tick):
        ens = sample(sampled, x, width, count, run_seed, readout="all", preactivations="none", method="weights",
                     chunk_size=inner, first_network=first)
        for _ in range(count):
            tick()
        return {"values": obs.values(ens.readout)}

    # the stored values depend on the full net (readout_var / readout_bias_var enter const, scale)
    key = run_key(kind="nlo-simulate-v2", net=repr(net), x=x_digest, lengths=lengths,
                  width=width, seed=run_seed, entries=obs.labels())
    values = run_chunks(networks, chunk, compute, store=store, key=key, resume=resume, progress=progress,
                        client=where)["values"]
    return _moments(values)


MFT_QMC_POINTS = 2**15  # mean-field readout of programs with quasi-Monte-Carlo moments: error ~1e-5


def _chunk_networks(program, width: int) -> int:
    """Networks evaluated together by ``sample``, within its memory budget."""
    chain, _ = recognise_chain(program)
    if chain is not None:
        return default_chunk_size(width, chain.x.shape[0], int(chain.last.max()))
    return netsor_chunk_size(program, width, 8)


__all__ = ["SimulatedNLO", "simulate"]
