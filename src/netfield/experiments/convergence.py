"""How fast do finite DNNs and RNNs converge to their mean-field kernels? (paper A; docs/theory.md 4.1)

For one set of hyper-parameters, a DNN and an RNN of the same depth T have identical mean-field
kernels at every layer / time step (docs/theory.md 2.2). Their finite-width kernels differ: the empirical
kernel fluctuates around the mean field by O(n^{-1/2}) (docs/theory.md 4.1a), and in the RNN the shared
W, U and b correlate the sampling noise of different time steps, which accumulates instead of
saturating with depth (docs/theory.md eq. 4.1d). This module measures it.

Per sampled network and time step t the distance is the relative Frobenius distance

    d_t = || K_emp(t) - K_mft(t) ||_F / || K_mft(t) ||_F

for the readout kernel (conditional on the hidden layer, see :func:`netfield.sample`) and for the
pre-activation kernel C(t, t). Its mean and standard error over networks, at each width n, give a
convergence curve; :func:`netfield.experiments.fitting.fit_power_law` fits E[d] = A n^alpha (expected
alpha = -1/2), E[d^2] = B n^beta (beta = -1) and the amplitude A at fixed alpha = -1/2. The RNN/DNN
ratio of amplitudes says by how much the RNN converges slower: it needs (A_rnn / A_dnn)^2 times the
width of the DNN for the same distance.

One network of depth T yields all depths t <= T: the first t layers of a depth-T network are a
depth-t network (same law), so every step is measured on the same samples.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from .._checks import check_positive_int
from .._runtime.checkpoint import ChunkStore, array_digest, run_chunks, run_key
from .._runtime.seeds import check_seed, derive_seed
from ..distributed import executor
from ..finite import mean_and_sem
from ..meanfield import kernel, mean_field
from ..program import Network, dnn, parse_inputs, rnn
from .fitting import PowerLawFit, fit_power_law, prefactor_ratio
from .sampling import sample_range

KERNELS = ("readout", "preactivation")
ARCHITECTURES = ("dnn", "rnn")
AMPLITUDE_EXPONENT = -0.5
DEFAULT_WIDTHS = (16, 32, 64, 128, 256, 512, 1024)


def _study_patterns(net: Network, x):
    patterns = parse_inputs(x, net.steps, "x")
    if not np.all(patterns.lengths == net.steps):
        raise ValueError(
            f"x must have shape (N, d) or (N, {net.steps}, d) for a study of all {net.steps} steps, "
            f"got sequences of lengths {sorted(set(patterns.lengths.tolist()))}"
        )
    return patterns


def equal_time_blocks(k_all: np.ndarray, patterns: int, steps: int) -> np.ndarray:
    """(..., N T, N T) readout kernel of ``readout='all'`` (pattern-major rows) -> (..., T, N, N)."""
    k = np.asarray(k_all).reshape(k_all.shape[:-2] + (patterns, steps, patterns, steps))
    return np.stack([k[..., :, t, :, t] for t in range(steps)], axis=-3)


@dataclass(frozen=True, eq=False)
class MeanFieldReference:
    """Mean-field kernels at every step: ``readout`` and ``preactivation``, each (T, N, N)."""

    readout: np.ndarray
    preactivation: np.ndarray


def mean_field_reference(net: Network, x) -> MeanFieldReference:
    """Equal-time mean-field readout kernels K(t) and pre-activation kernels C(t, t), t = 1..T."""
    patterns = _study_patterns(net, x)
    k_all = np.asarray(kernel(net, x, readout="all"))
    mf = mean_field(net, x)
    pre = np.stack([np.asarray(mf.preactivation(t)) for t in range(1, net.steps + 1)])
    return MeanFieldReference(equal_time_blocks(k_all, patterns.count, net.steps), pre)


def relative_distances(empirical: np.ndarray, reference: np.ndarray) -> np.ndarray:
    """||K_emp - K_mft||_F / ||K_mft||_F over the last two axes; (K, T, N, N), (T, N, N) -> (K, T)."""
    return np.linalg.norm(empirical - reference, axis=(-2, -1)) / np.linalg.norm(reference, axis=(-2, -1))


@dataclass(frozen=True, eq=False)
class Measurement:
    """Per-network distances of one architecture and weight prior at several widths.

    Attributes:
        architecture, weight_var, depth: the network.
        widths: the widths n.
        readout, preactivation: per width, an array (networks, depth) of relative distances d_t.
        seeds: the sampling seed of each width.
    """

    architecture: str
    weight_var: float
    depth: int
    widths: tuple
    readout: tuple
    preactivation: tuple
    seeds: tuple

    def distances(self, kernel: str) -> tuple:
        if kernel not in KERNELS:
            raise ValueError(f"kernel must be one of {', '.join(map(repr, KERNELS))}, got {kernel!r}")
        return self.readout if kernel == "readout" else self.preactivation


def measure(net: Network, x, widths, networks: int, seed: int = 0, *, chunk_size: int = 8,
            store: ChunkStore | None = None, resume: bool = False, progress=None, client=None,
            workers: int | None = None) -> Measurement:
    """Sample ``networks`` networks at every width and measure their distances to the mean field.

    Args:
        net: DNN or RNN; all steps 1..net.steps are measured.
        x: inputs (N, d) or (N, T, d).
        widths: widths n to sample.
        networks: networks per width (>= 2 for a standard error).
        seed: study seed (each architecture and width gets its own derived seed).
        chunk_size: networks per checkpoint chunk.
        store: checkpoint directory for resumable runs (:class:`netfield.experiments.ChunkStore`).
        resume: reuse finished chunks in ``store``.
        progress: callable told about finished networks (``progress(k)``).
        client, workers: run the chunks as tasks on Dask (docs/distributed.md); the same numbers.

    Returns:
        :class:`Measurement`.
    """
    widths = _check_widths(widths)
    networks = check_positive_int("networks", networks, minimum=2)
    seed = check_seed(seed)
    patterns = _study_patterns(net, x)
    reference = mean_field_reference(net, x)
    readout, pre, seeds = [], [], []
    with executor(client, workers) as where:
        for width in widths:
            run_seed = derive_seed(seed, net.name, width)
            out = _measure_width(net, x, width, run_seed, networks, chunk_size, reference, patterns, store, resume,
                                 progress, where)
            readout.append(out["readout"])
            pre.append(out["preactivation"])
            seeds.append(run_seed)
    return Measurement(net.name, float(net.weight_var), net.steps, widths, tuple(readout), tuple(pre),
                       tuple(seeds))


def _measure_width(net, x, width, run_seed, networks, chunk_size, reference, patterns, store, resume, progress,
                   where) -> dict:
    """Distances of ``networks`` sampled networks of one width (chunks run where ``where`` says)."""
    steps, n_pat = net.steps, patterns.count

    def compute(first, count, tick):
        ens = sample_range(net, x, width, first, count, run_seed, readout="all", preactivations="all",
                           on_network=tick)
        k_emp = equal_time_blocks(ens.readout, n_pat, steps)
        c_emp = np.stack([ens.preactivation(t) for t in range(1, steps + 1)], axis=1)
        return {"readout": relative_distances(k_emp, reference.readout),
                "preactivation": relative_distances(c_emp, reference.preactivation)}

    key = run_key(kind="convergence-distances-v1", net=repr(net), x=array_digest(patterns.x),
                  width=width, seed=run_seed)
    return run_chunks(networks, chunk_size, compute, store=store, key=key, resume=resume, progress=progress,
                      client=where)


def _check_widths(widths) -> tuple:
    widths = tuple(widths)
    if not widths:
        raise ValueError("widths must be a non-empty list of integers >= 1")
    for w in widths:
        check_positive_int("widths entries", w)
    if len(set(widths)) != len(widths):
        raise ValueError(f"widths must not repeat a value, got {list(widths)}")
    return tuple(sorted(int(w) for w in widths))


@dataclass(frozen=True)
class ConvergenceCurve:
    """Mean relative distance to the mean field vs width, with its power-law fits.

    Attributes:
        architecture, kernel, step, weight_var: what was measured.
        widths, networks: widths and sampled networks per width.
        mean, sem: mean and standard error over networks of the distance d.
        sq_mean, sq_sem: the same for d^2.
        fit: E[d] = A n^alpha, free exponent (expect -1/2).
        fit_squared: E[d^2] = B n^beta, free exponent (expect -1).
        amplitude: E[d] = A n^{-1/2}, exponent fixed (A = lim sqrt(n) E[d]).
    """

    architecture: str
    kernel: str
    step: int
    weight_var: float
    widths: tuple
    networks: tuple
    mean: tuple
    sem: tuple
    sq_mean: tuple
    sq_sem: tuple
    fit: PowerLawFit
    fit_squared: PowerLawFit
    amplitude: PowerLawFit

    def to_dict(self) -> dict:
        out = {k: v for k, v in asdict(self).items() if k not in ("fit", "fit_squared", "amplitude")}
        out.update(fit=self.fit.to_dict(), fit_squared=self.fit_squared.to_dict(), amplitude=self.amplitude.to_dict())
        return out


def convergence_curve(measurement: Measurement, kernel: str = "readout", step: int | None = None) -> ConvergenceCurve:
    """Statistics and fits of one kernel at one step (default: the last) of a :class:`Measurement`."""
    step = measurement.depth if step is None else step
    if isinstance(step, bool) or not isinstance(step, (int, np.integer)) or not 1 <= step <= measurement.depth:
        raise ValueError(f"step must be an integer in 1..{measurement.depth}, got {step!r}")
    per_width = [d[:, step - 1] for d in measurement.distances(kernel)]
    stats = [mean_and_sem(d) for d in per_width]
    sq_stats = [mean_and_sem(d**2) for d in per_width]
    mean, sem = (np.array([s[i] for s in stats], float) for i in (0, 1))
    sq_mean, sq_sem = (np.array([s[i] for s in sq_stats], float) for i in (0, 1))
    n = np.asarray(measurement.widths, float)
    return ConvergenceCurve(
        architecture=measurement.architecture, kernel=kernel, step=int(step), weight_var=measurement.weight_var,
        widths=measurement.widths, networks=tuple(len(d) for d in per_width),
        mean=tuple(mean.tolist()), sem=tuple(sem.tolist()), sq_mean=tuple(sq_mean.tolist()),
        sq_sem=tuple(sq_sem.tolist()),
        fit=fit_power_law(n, mean, sem), fit_squared=fit_power_law(n, sq_mean, sq_sem),
        amplitude=fit_power_law(n, mean, sem, exponent=AMPLITUDE_EXPONENT),
    )


@dataclass(frozen=True)
class ArchitectureComparison:
    """DNN and RNN convergence curves of one configuration and the RNN/DNN amplitude ratio.

    ``ratio`` = A_rnn / A_dnn (amplitudes at fixed exponent -1/2) with standard error ``ratio_se``
    (independent samples: errors of ln A add in quadrature). ``ratio > 1``: the RNN converges slower;
    it needs ``ratio**2`` times the DNN's width for the same distance.
    """

    dnn: ConvergenceCurve
    rnn: ConvergenceCurve
    ratio: float
    ratio_se: float

    @property
    def significance(self) -> float:
        """(ratio - 1) / ratio_se: how many standard errors the RNN is slower (negative: faster)."""
        return (self.ratio - 1.0) / self.ratio_se

    def to_dict(self) -> dict:
        return {"dnn": self.dnn.to_dict(), "rnn": self.rnn.to_dict(), "ratio": self.ratio,
                "ratio_se": self.ratio_se, "significance": self.significance}


def compare_architectures(dnn_curve: ConvergenceCurve, rnn_curve: ConvergenceCurve) -> ArchitectureComparison:
    """RNN/DNN amplitude ratio of two curves of the same kernel and step."""
    if (dnn_curve.kernel, dnn_curve.step) != (rnn_curve.kernel, rnn_curve.step):
        raise ValueError("dnn_curve and rnn_curve must describe the same kernel and step")
    ratio, se = prefactor_ratio(rnn_curve.amplitude, dnn_curve.amplitude)
    return ArchitectureComparison(dnn_curve, rnn_curve, ratio, se)


@dataclass(frozen=True)
class StudySettings:
    """Everything that defines a convergence study (see :func:`convergence_study`)."""

    activation: str
    depth: int
    weight_vars: tuple
    bias_var: float
    input_var: float
    readout_var: float
    readout_bias_var: float
    widths: tuple
    networks: int
    seed: int
    chunk_size: int

    def network(self, architecture: str, weight_var: float) -> Network:
        build = {"dnn": dnn, "rnn": rnn}[architecture]   # the study's two builders, by their names
        return build(self.depth, self.activation, weight_var=weight_var, bias_var=self.bias_var,
                     input_var=self.input_var, readout_var=self.readout_var,
                     readout_bias_var=self.readout_bias_var)

    @property
    def total_networks(self) -> int:
        """Networks sampled by the whole study (for progress bars)."""
        return len(ARCHITECTURES) * len(self.weight_vars) * len(self.widths) * self.networks


@dataclass(frozen=True, eq=False)
class ConvergenceStudy:
    """DNN and RNN measurements for every weight variance of a study."""

    settings: StudySettings
    measurements: tuple

    def measurement(self, architecture: str, weight_var: float) -> Measurement:
        for m in self.measurements:
            if m.architecture == architecture and m.weight_var == float(weight_var):
                return m
        raise KeyError(f"no measurement for {architecture} with weight_var={weight_var}; "
                       f"studied weight_vars: {list(self.settings.weight_vars)}")

    def comparison(self, weight_var: float, kernel: str = "readout", step: int | None = None) -> ArchitectureComparison:
        """DNN vs RNN at one weight variance, kernel and step (default: the last step)."""
        curves = [convergence_curve(self.measurement(a, weight_var), kernel, step) for a in ARCHITECTURES]
        return compare_architectures(*curves)

    def to_dict(self) -> dict:
        """Settings and every comparison (weight_var x kernel x step) as JSON-ready numbers."""
        comps = []
        for wv in self.settings.weight_vars:
            for k in KERNELS:
                for t in range(1, self.settings.depth + 1):
                    comps.append({"weight_var": wv, "kernel": k, "step": t, **self.comparison(wv, k, t).to_dict()})
        return {"settings": asdict(self.settings), "comparisons": comps}


def convergence_study(x, *, activation: str = "erf", depth: int = 6, weight_vars=(1.5,), bias_var: float = 0.5,
                      input_var: float = 1.0, readout_var: float = 1.0, readout_bias_var: float = 0.0,
                      widths=DEFAULT_WIDTHS, networks: int = 32, seed: int = 0, chunk_size: int = 8,
                      store: ChunkStore | None = None, resume: bool = False, progress=None, client=None,
                      workers: int | None = None) -> ConvergenceStudy:
    """DNN vs RNN convergence to the mean field for several weight variances (module docstring).

    Args:
        x: inputs (N, d) (input at step 1 only) or (N, depth, d).
        activation: activation name.
        depth: layers (DNN) = time steps (RNN); every step 1..depth is measured.
        weight_vars: weight variances to compare (e.g. ordered, critical, chaotic).
        bias_var, input_var, readout_var, readout_bias_var: the rest of the prior (docs/theory.md 1).
        widths: widths n.
        networks: networks per architecture, weight variance and width.
        seed: study seed.
        chunk_size: networks per checkpoint chunk.
        store, resume: checkpoint directory and whether to reuse its finished chunks.
        progress: callable told about finished networks (``progress(k)``).
        client, workers: run the chunks as tasks on Dask (docs/distributed.md); the same numbers.

    Returns:
        :class:`ConvergenceStudy`.

    Example:
        >>> import numpy as np
        >>> x = np.random.default_rng(0).normal(size=(3, 4))
        >>> study = convergence_study(x, depth=2, widths=(8, 32), networks=4)
        >>> c = study.comparison(1.5, "readout")
        >>> c.dnn.widths, c.rnn.networks
        ((8, 32), (4, 4))
    """
    weight_vars = tuple(float(w) for w in (weight_vars if np.ndim(weight_vars) else [weight_vars]))
    if not weight_vars or len(set(weight_vars)) != len(weight_vars):
        raise ValueError(f"weight_vars must be a non-empty list of distinct numbers, got {list(weight_vars)}")
    settings = StudySettings(
        activation=activation if isinstance(activation, str) else getattr(activation, "name", str(activation)),
        depth=check_positive_int("depth", depth), weight_vars=weight_vars, bias_var=float(bias_var),
        input_var=float(input_var), readout_var=float(readout_var), readout_bias_var=float(readout_bias_var),
        widths=_check_widths(widths), networks=check_positive_int("networks", networks, minimum=2),
        seed=check_seed(seed), chunk_size=check_positive_int("chunk_size", chunk_size),
    )
    nets = [(a, settings.network(a, wv)) for wv in weight_vars for a in ARCHITECTURES]  # validates all first
    with executor(client, workers) as where:
        measurements = tuple(
            measure(net, x, settings.widths, settings.networks, settings.seed, chunk_size=settings.chunk_size,
                    store=store, resume=resume, progress=progress, client=where)
            for _, net in nets
        )
    return ConvergenceStudy(settings, measurements)
