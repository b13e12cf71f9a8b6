"""Kernels of any architecture: finite networks converge to the tensor-program mean field (docs/theory.md 7).

For every architecture written as a NETSOR+ program (simple RNN, GRU, LSTM, transformer, batch-norm
MLP, convolutional net) the master theorem gives the infinite-width readout kernel K
(:func:`netfield.mean_field`); a sampled network of width n gives the empirical conditional readout
kernel K^ (the readout matrix integrated out given the last hidden layer, :func:`netfield.sample`).
The relative squared Frobenius distance

    d2 = || K^ - K ||_F^2 / || K ||_F^2

has mean E[d2] = sum_ab Var(K^_ab) / ||K||^2 + O(n^-2) = c / n + O(n^-2): fluctuations of order
n^{-1/2} per entry, and a bias E[K^] - K of order 1/n (docs/theory.md 4.1a, 7). This module measures
E[d2] against n for each architecture, fits E[d2] = B n^beta (expected beta = -1,
:func:`netfield.experiments.fitting.fit_power_law`), and tests the mean empirical kernel at the
largest width against the theory entry by entry (z-scores with the sampling standard error and the
theory's own numerical error estimate combined).

The neural tangent kernel (``kind="ntk"``, docs/ntk.md) is studied the same way: the empirical NTK
Theta^ = sum_p df/dp df/dp of each sampled network (:func:`netfield.sample` with ``ntk=True``, NTK
parameterization) against the analytic Theta of :func:`netfield.kernel` (``kind="ntk"``), whose
numerical error is estimated as for the NNGP kernel (spread of the quasi-Monte-Carlo replicates plus
the low-dimensional quadrature's estimate). Theta^ also fluctuates by O(n^{-1/2}) per entry around a
mean O(1/n) away from Theta, so again E[d2] = c / n + O(n^-2). ``readout="all"`` compares the kernels
of the outputs at every step (recurrent networks).

Sampling. Networks are those of :func:`netfield.sample` (the finite-width program interpreter,
:func:`netfield.finite.netsor.sample_program`): network i of a run uses the JAX key
fold_in(PRNGKey(run_seed), i) and draws the program's matrices in first-use order, so the result is
deterministic in the seed and independent of chunking (and of interrupted / resumed runs). The
program is written once per architecture and its compiled evaluation is reused for every chunk of a
width. Every network (``netfield.rnn`` and ``netfield.dnn`` included) is sampled through its program
and its theory kernel is :func:`netfield.mean_field`'s readout with its error estimate.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np

from .._checks import check_choice, check_positive_int
from .._runtime.checkpoint import ChunkStore, array_digest, run_chunks, run_key
from .._runtime.progress import check_progress, progress_bar
from .._runtime.seeds import check_seed, derive_seed
from ..distributed import executor
from ..finite import mean_and_sem
from ..finite.netsor import sample_program
from ..meanfield import mean_field
from ..meanfield.kernels import check_network
from ..meanfield.netsor import ProgramEngine
from ..meanfield.ntk import TangentEngine
from ..meanfield.result import assemble, readout_rows
from ..program import Network, batchnorm_mlp, conv, gru, lstm, rnn, transformer
from .fitting import PowerLawFit, fit_power_law

CASE_NAMES = ("rnn", "gru", "lstm", "transformer", "batchnorm", "conv")
X_SOURCES = ("digits", "random")
EXPECTED_EXPONENT = -1.0
KERNEL_KINDS = ("nngp", "ntk")


# -- inputs and cases ------------------------------------------------------------------------------
def digit_sequences(patterns: int = 4, source: str = "digits", seed: int = 0):
    """(patterns, 4, 4) inputs: 4x4 images read row by row as sequences of 4 steps (tokens) of 4 features.

    ``source="digits"``: the first ``patterns`` images of classes 0, 1, 2, ... of scikit-learn's
    bundled digits (:func:`netfield.experiments.data.digits_inputs`: 8x8 pixels standardised per pixel
    over the dataset), downsampled to 4x4 by averaging 2x2 blocks. ``source="random"``: standard
    normal entries from ``numpy.random.default_rng(seed)``. Either way the array is then scaled by one
    number so that the mean of |x_t|^2 / d over patterns and steps is 1 (pre-activations of order 1).

    Returns:
        (x, labels): labels are the digit classes (None for random inputs).
    """
    patterns = check_positive_int("patterns", patterns, minimum=2)
    check_choice("source", source, X_SOURCES)
    if source == "digits":
        from .data import digits_inputs

        d = digits_inputs(patterns)
        x = d.x.reshape(patterns, 4, 2, 4, 2).mean(axis=(2, 4))
        labels = d.labels
    else:
        x = np.random.default_rng(check_seed(seed)).normal(size=(patterns, 4, 4))
        labels = None
    x = x / np.sqrt(np.mean(x**2))
    return x, labels


@dataclass(frozen=True, eq=False)
class ArchitectureCase:
    """One architecture with its inputs: ``net`` (any network), ``x``."""

    name: str
    net: Network
    x: np.ndarray
    description: str

    def to_dict(self) -> dict:
        return {"name": self.name, "network": repr(self.net), "description": self.description,
                "x_shape": list(np.shape(self.x))}


def default_cases(x_source: str = "digits", patterns: int = 4, *, include_conv: bool = True,
                  seed: int = 0) -> tuple:
    """The architectures of the study, on small inputs so each theory kernel takes a few seconds.

    Inputs (:func:`digit_sequences`): N = ``patterns`` 4x4 images (digits 0, 1, 2, 3 by default),
    each read as a sequence of 4 rows of d = 4 pixels.

    - ``rnn``: ``netfield.rnn(4, "erf", weight_var=1.5, bias_var=0.5)`` on the 4-step sequences.
    - ``gru``: ``netfield.gru(3)`` (GP4A's conventions: erf gates and candidate, all variances 1) on
      the first 3 rows (the theory's quasi-Monte-Carlo cost grows fast with T).
    - ``lstm``: ``netfield.lstm(3)`` (tanh, erf gates, variances 1) on the first 3 rows.
    - ``transformer``: ``netfield.transformer(1, "relu", tie_query_key=True)``: one block, the 4 rows
      as 4 tokens, tied query/key so that the infinite-width attention is not uniform, mean readout.
    - ``batchnorm``: ``netfield.batchnorm_mlp(3, "relu")`` on the flattened images (d = 16), the N
      patterns forming the batch.
    - ``conv`` (``include_conv``): ``netfield.conv(2, "relu", filter_shape=(3,))``, a 1-D convolution
      over the 4 rows with the 4 columns as channels, SAME padding, global average readout.

    Args:
        x_source: ``"digits"`` (scikit-learn's bundled digits) or ``"random"`` (fixed NumPy seed).
        patterns: N, the number of inputs (kernel size N x N).
        include_conv: add the convolutional network as a sixth case.
        seed: seed of the random inputs (``x_source="random"``).
    """
    x, labels = digit_sequences(patterns, x_source, seed)
    what = (f"digits {labels.tolist()} (sklearn load_digits, 2x2-averaged to 4x4)" if labels is not None
            else f"N(0, 1) entries, numpy seed {seed}")
    seq = f"{patterns} sequences of 4 rows x 4 features: {what}"
    cases = [
        ArchitectureCase("rnn", rnn(4, "erf", weight_var=1.5, bias_var=0.5), x,
                         f"simple RNN, erf, weight_var 1.5, bias_var 0.5, T = 4; {seq}"),
        ArchitectureCase("gru", gru(3), x[:, :3],
                         f"GRU (erf gates and candidate, variances 1), T = 3; first 3 rows of the {seq}"),
        ArchitectureCase("lstm", lstm(3), x[:, :3],
                         f"LSTM (tanh, erf gates, variances 1), T = 3; first 3 rows of the {seq}"),
        ArchitectureCase("transformer", transformer(1, "relu", tie_query_key=True), x,
                         f"transformer, 1 block, relu MLP, tied query/key, layer norm, mean readout, "
                         f"L = 4 tokens; {seq}"),
        ArchitectureCase("batchnorm", batchnorm_mlp(3, "relu"), x.reshape(patterns, -1),
                         f"MLP with batch norm, depth 3, relu, batch of {patterns}; flattened 4x4 images (d = 16): "
                         f"{what}"),
    ]
    if include_conv:
        cases.append(ArchitectureCase("conv", conv(2, "relu", filter_shape=(3,)), x,
                                      f"1-D CNN, depth 2, relu, filter 3, SAME padding, global average "
                                      f"readout; 4 positions x 4 channels: {seq}"))
    return tuple(cases)


# -- networks as programs --------------------------------------------------------------------------
def theory_kernel(net, x, *, kind: str = "nngp", readout: str = "last", qmc_points: int = 2**12):
    """(K, error, backends, seconds): mean-field readout kernel (``kind="nngp"``) or analytic NTK in the
    NTK parameterization (``kind="ntk"``) on the rows of ``readout``, and its numerical error estimate:
    the standard error over the quasi-Monte-Carlo replicates plus the low-dimensional quadrature's
    estimate (as :attr:`netfield.meanfield.result.MeanFieldResult.error`; ~0 for closed forms)."""
    check_choice("kind", kind, KERNEL_KINDS)
    check_choice("readout", readout, ("last", "all"))
    start = time.perf_counter()
    net = check_network(net)
    if kind == "nngp" and readout == "last" and qmc_points == 2**12:
        mf = mean_field(net, x)
        k, err, backends = np.asarray(mf.readout, np.float64), np.asarray(mf.error, np.float64), dict(mf.backends)
        return k, err, backends, time.perf_counter() - start
    net.check_inputs(x)
    program = net.program(x)
    engine = ProgramEngine(program, points=qmc_points)
    rows = readout_rows(program, readout)
    block = TangentEngine(engine).readout_ntk if kind == "ntk" else engine.readout_cov
    reps = np.asarray(assemble(block, rows, rows, engine.replicates), np.float64)
    sem = reps.std(axis=0, ddof=1) / np.sqrt(reps.shape[0]) if reps.shape[0] > 1 else np.zeros(reps.shape[1:])
    err = sem + engine.lowdim_error
    return reps.mean(axis=0), err, dict(engine.backend_counts), time.perf_counter() - start


SAMPLING_BATCH = 16  # networks per compiled evaluation (the default chunk_size: no padding)


# -- one architecture ------------------------------------------------------------------------------
def relative_squared_distance(empirical, reference) -> np.ndarray:
    """||K^ - K||_F^2 / ||K||_F^2 over the last two axes."""
    empirical, reference = np.asarray(empirical), np.asarray(reference)
    return np.sum((empirical - reference) ** 2, axis=(-2, -1)) / np.sum(reference**2)


@dataclass(frozen=True, eq=False)
class ArchitectureConvergence:
    """Empirical vs theory readout kernels (or NTKs) of one architecture at several widths.

    Attributes:
        name, description: the architecture.
        kind, readout: ``"nngp"`` (conditional readout kernel) or ``"ntk"``; rows ``"last"`` or ``"all"``.
        widths, networks, seeds: widths n, networks sampled at each, run seed of each width.
        theory, theory_error: (N, N) mean-field kernel and its numerical error estimate.
        backends: moments per mean-field back-end.
        d2: per width, the (networks,) relative squared distances ||K^ - K||_F^2 / ||K||_F^2.
        d2_mean, d2_sem: their mean and standard error per width.
        fit: E[d2] = B n^beta, weighted log-log fit (expect beta = -1).
        inverse_fit: E[d2] = c / n, the same fit with the exponent held at -1 (the 1/width reference).
        mean_kernel, kernel_sem: (N, N) mean empirical kernel at the largest width and its standard error.
        z: (N, N) (mean_kernel - theory) / sqrt(kernel_sem^2 + theory_error^2).
        max_abs_z: max |z| over the N (N + 1) / 2 distinct entries.
        theory_floor: ||theory_error||_F^2 / ||K||_F^2, the part of d2 the theory's own error may explain.
        timing: seconds: theory, sampling per width, total.
    """

    name: str
    description: str
    widths: tuple
    networks: tuple
    seeds: tuple
    theory: np.ndarray
    theory_error: np.ndarray
    backends: dict
    d2: tuple
    d2_mean: tuple
    d2_sem: tuple
    fit: PowerLawFit
    inverse_fit: PowerLawFit
    mean_kernel: np.ndarray
    kernel_sem: np.ndarray
    z: np.ndarray
    max_abs_z: float
    theory_floor: float
    timing: dict
    kind: str = "nngp"
    readout: str = "last"

    @property
    def slope(self) -> float:
        return self.fit.exponent

    @property
    def slope_se(self) -> float:
        return self.fit.exponent_se

    def to_dict(self) -> dict:
        """JSON-ready numbers (per-network distances included)."""
        return {
            "name": self.name, "description": self.description, "kind": self.kind, "readout": self.readout,
            "widths": list(self.widths),
            "networks": list(self.networks), "seeds": list(self.seeds),
            "theory": self.theory.tolist(), "theory_error": self.theory_error.tolist(), "backends": dict(self.backends),
            "d2": [d.tolist() for d in self.d2], "d2_mean": list(self.d2_mean), "d2_sem": list(self.d2_sem),
            "fit": self.fit.to_dict(), "inverse_fit": self.inverse_fit.to_dict(), "slope": self.slope,
            "slope_se": self.slope_se,
            "largest_width": self.widths[-1], "mean_kernel": self.mean_kernel.tolist(),
            "kernel_sem": self.kernel_sem.tolist(), "z": self.z.tolist(), "max_abs_z": self.max_abs_z,
            "theory_floor": self.theory_floor, "timing": dict(self.timing),
        }


def _check_widths_networks(widths, networks):
    widths = tuple(int(check_positive_int("widths entries", w)) for w in widths)
    if len(widths) < 2 or len(set(widths)) != len(widths) or list(widths) != sorted(widths):
        raise ValueError(f"widths must be >= 2 distinct increasing integers, got {list(widths)}")
    if np.ndim(networks) == 0:
        networks = (networks,) * len(widths)
    networks = tuple(int(check_positive_int("networks entries", k, minimum=2)) for k in networks)
    if len(networks) != len(widths):
        raise ValueError(f"networks must be one integer or one per width ({len(widths)}), got {list(networks)}")
    return widths, networks


def architecture_convergence(arch, x, widths, networks, seed: int = 0, *, name: str | None = None,
                             description: str = "", chunk_size: int = 16, store: ChunkStore | None = None,
                             resume: bool = False, progress=True, kind: str = "nngp",
                             readout: str = "last", client=None, workers: int | None = None) -> ArchitectureConvergence:
    """Distance of sampled networks' readout kernels (or NTKs) to the theory, against width (module docstring).

    Cost: the mean-field theory kernel (quasi-Monte Carlo for non-chain programs: seconds), then one
    compilation per width and sampling roughly linear in networks x width^2; ``networks`` and the
    largest width are the levers.

    Args:
        arch: an :class:`~netfield.program.architectures.Architecture` or a ``netfield.rnn`` / ``dnn`` network.
        x: its inputs.
        widths: increasing widths n (>= 2 of them).
        networks: networks per width: one integer, or one per width (>= 2 each).
        seed: study seed; width n uses ``derive_seed(seed, "architectures", name, n)``.
        name: label of the architecture (default: ``arch.name`` / ``arch.architecture``).
        description: free text kept in the result.
        chunk_size: networks per chunk (checkpointing granularity; results do not depend on it).
        store, resume: checkpoint directory (:class:`~netfield.experiments.ChunkStore`) and
            whether to reuse its finished chunks, so an interrupted long run loses at most a chunk.
        progress: True (default): a bar on stderr over the sampled networks; False / None: quiet; or a
            callable ``progress(k)`` told about finished networks (:mod:`netfield._runtime.progress`).
        kind: ``"nngp"`` (default: the conditional readout kernel against the mean field) or ``"ntk"``
            (each network's empirical NTK, NTK parameterization, against the analytic NTK).
        readout: rows ``"last"`` (default: each pattern's output) or ``"all"`` (every step's output).
        client, workers: run the chunks as tasks on Dask (docs/distributed.md); the same numbers.

    Returns:
        :class:`ArchitectureConvergence`.
    """
    start = time.perf_counter()
    check_choice("kind", kind, KERNEL_KINDS)
    check_choice("readout", readout, ("last", "all"))
    widths, networks = _check_widths_networks(widths, networks)
    seed = check_seed(seed)
    chunk_size = check_positive_int("chunk_size", chunk_size)
    check_progress(progress)
    name = name or check_network(arch).name
    with progress_bar(progress, sum(networks), f"{name}: networks") as bar, executor(client, workers) as where:
        return _convergence(arch, x, widths, networks, seed, name, description, chunk_size, store, resume, bar,
                            start, kind, readout, where)


def _convergence(arch, x, widths, networks, seed, name, description, chunk_size, store, resume, progress,
                 start, kind="nngp", readout="last", where=None) -> ArchitectureConvergence:
    k_th, k_err, backends, theory_s = theory_kernel(arch, x, kind=kind, readout=readout)
    program = check_network(arch).program(x)
    try:
        digest = array_digest(np.asarray(x, np.float64))
    except ValueError:  # ragged sequences (a list of (T_i, d) arrays): one digest per sequence
        digest = [array_digest(np.asarray(seq, np.float64)) for seq in x]
    structure = [(type(ins).__name__, getattr(ins, "matrix", None) or getattr(ins, "vector", None),
                  getattr(ins, "var", None), getattr(ins, "args", None) or getattr(ins, "arg", None))
                 for ins in program.instructions]  # user programs of one name differ here
    d2, seeds, sampling_s, kernels = [], [], [], None
    for width, count in zip(widths, networks):
        t0 = time.perf_counter()
        run_seed = derive_seed(seed, "architectures", name, width) if kind == "nngp" else \
            derive_seed(seed, "architectures", kind, name, width)

        def compute(first, n_nets, tick, width=width, run_seed=run_seed):
            # a fixed batch shape: a network's numbers do not depend on the checkpoint chunking (a vmapped
            # batch of another size rounds its products differently, ~1e-16)
            ens = sample_program(program, width, n_nets, run_seed, chunk_size=SAMPLING_BATCH, first_network=first,
                                 readout=readout, ntk="ntk" if kind == "ntk" else None)
            for _ in range(n_nets):
                if tick is not None:
                    tick()
            return {"readout": ens.ntk if kind == "ntk" else ens.readout}

        extra = {} if (kind, readout) == ("nngp", "last") else {"kernel": kind, "readout": readout}
        key = run_key(kind="architecture-kernels-v2", net=repr(arch), program=structure, x=digest, width=width,
                      seed=run_seed, **extra)
        out = run_chunks(count, chunk_size, compute, store=store, key=key, resume=resume, progress=progress,
                         client=where)
        kernels = out["readout"]
        d2.append(relative_squared_distance(kernels, k_th))
        seeds.append(run_seed)
        sampling_s.append(time.perf_counter() - t0)
    mean_sq, sem_sq = zip(*[(float(m), float(s)) for m, s in (mean_and_sem(d) for d in d2)])
    n, y, sy = np.asarray(widths, float), np.asarray(mean_sq), np.asarray(sem_sq)
    fit, inverse_fit = fit_power_law(n, y, sy), fit_power_law(n, y, sy, exponent=EXPECTED_EXPONENT)
    mean_k, sem_k = mean_and_sem(kernels)  # largest width
    z = (mean_k - k_th) / np.sqrt(sem_k**2 + k_err**2)
    upper = np.triu_indices(k_th.shape[0])
    return ArchitectureConvergence(
        name=name, description=description, widths=widths, networks=networks, seeds=tuple(seeds),
        theory=k_th, theory_error=k_err, backends=backends, d2=tuple(d2), d2_mean=mean_sq, d2_sem=sem_sq,
        fit=fit, inverse_fit=inverse_fit, mean_kernel=mean_k, kernel_sem=sem_k, z=z,
        max_abs_z=float(np.max(np.abs(z[upper]))),
        theory_floor=float(np.sum(k_err**2) / np.sum(k_th**2)),
        timing={"theory_s": theory_s, "sampling_s": sampling_s, "total_s": time.perf_counter() - start},
        kind=kind, readout=readout,
    )


# -- all architectures ---------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class ArchitectureStudy:
    """:class:`ArchitectureConvergence` of every case, in order, and the settings that produced them."""

    results: tuple
    cases: tuple
    widths: tuple
    networks: tuple
    seed: int

    def __getitem__(self, name: str) -> ArchitectureConvergence:
        for r in self.results:
            if r.name == name:
                return r
        raise KeyError(f"no architecture {name!r}; studied: {[r.name for r in self.results]}")

    def to_dict(self) -> dict:
        return {"widths": list(self.widths), "networks": list(self.networks), "seed": self.seed,
                "expected_exponent": EXPECTED_EXPONENT,
                "distance": "||K_emp - K_theory||_F^2 / ||K_theory||_F^2 of the conditional readout kernel",
                "cases": [c.to_dict() for c in self.cases],
                "architectures": [r.to_dict() for r in self.results]}


def architecture_study(cases=None, widths=(32, 64, 128, 256, 512, 1024), networks=16, seed: int = 0, *,
                       chunk_size: int = 16, store: ChunkStore | None = None, resume: bool = False,
                       progress=True, client=None, workers: int | None = None) -> ArchitectureStudy:
    """:func:`architecture_convergence` for every case (default: :func:`default_cases`).

    Cost: the sum of the cases' (the demo's section, widths 32..1024 with 32-48 networks, ~40 s on 2
    cores); the number of cases, ``networks`` and the largest width are the levers. ``progress``:
    True (default): one bar on stderr over all cases' networks; False / None: quiet; or a callable
    ``progress(k)`` (:mod:`netfield._runtime.progress`). ``client`` / ``workers``: the chunks of every
    case as tasks on one Dask cluster (docs/distributed.md).

    Example:
        >>> from netfield.experiments.architectures import architecture_study, default_cases
        >>> cases = [c for c in default_cases() if c.name in ("rnn", "conv")]
        >>> study = architecture_study(cases, widths=(8, 16), networks=3)
        >>> [r.name for r in study.results], study["conv"].networks
        (['rnn', 'conv'], (3, 3))
    """
    cases = default_cases() if cases is None else tuple(cases)
    if not cases:
        raise ValueError("cases must not be empty")
    names = [c.name for c in cases]
    if len(set(names)) != len(names):
        raise ValueError(f"case names must be distinct, got {names}")
    widths, networks = _check_widths_networks(widths, networks)
    check_progress(progress)
    with progress_bar(progress, len(cases) * sum(networks), f"{len(cases)} architectures: networks") as bar, \
            executor(client, workers) as where:
        results = tuple(
            architecture_convergence(c.net, c.x, widths, networks, seed, name=c.name, description=c.description,
                                     chunk_size=chunk_size, store=store, resume=resume, progress=bar, client=where)
            for c in cases
        )
    return ArchitectureStudy(results, cases, widths, networks, check_seed(seed))


__all__ = [
    "CASE_NAMES",
    "KERNEL_KINDS",
    "ArchitectureCase",
    "ArchitectureConvergence",
    "ArchitectureStudy",
    "architecture_convergence",
    "architecture_study",
    "default_cases",
    "digit_sequences",
    "relative_squared_distance",
    "theory_kernel",
]
