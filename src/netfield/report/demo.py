"""``netfield demo``: the DNN-vs-RNN convergence study on real data, as a report folder.

Writes ``summary.json`` (every plotted number), the PNG figures and ``index.html`` into ``out``.
Inputs are digit images bundled with scikit-learn (no download). Two sizes (docs/design.md, "Run time
of the demo"):

- fast (default, ``full=False``): 2 architectures x 4 weight variances x 5 widths (16..256) x 32 networks
  of depth 8, then the sections of netfield.criticality (phase diagram), netfield.gp (digits
  classification), netfield.nlo (1/n fluctuations, DNN vs RNN), netfield.experiments.architecture_figures
  (kernels of any architecture vs sampled networks), netfield.feature.figures (feature learning) and
  netfield.experiments.training_figures (trained networks vs the NTK dynamics; ~12 s of CPU), each
  with a smaller but still resolving sample plan; measured on 2 idle cores (2026-12-06): 171 s wall /
  301 s CPU with an empty compilation cache, 107 s / 170 s with a warm one;
- full (``full=True``, ``netfield demo --full``): the larger plans (widths 16..512, more networks and
  posterior samples); 761 s wall / 516 s CPU with an empty cache under the same load.

The report states every section's wall time and sample sizes, and the command or API call that reproduces
it at full size. JAX's persistent compilation cache (:mod:`netfield._runtime.jaxcache`) is on unless
``cache=False`` or ``NETFIELD_NO_COMPILATION_CACHE=1``. Finished chunks of the convergence study and
finished sections are checkpointed in ``out/.checkpoints``; ``resume=True`` continues an interrupted run
with identical numbers.
"""

from __future__ import annotations

import contextlib
import json
import sys
import time
from dataclasses import asdict, dataclass, replace
from pathlib import Path

from .._checks import check_positive_int
from .._runtime.checkpoint import ChunkStore
from .._runtime.jaxcache import enable_compilation_cache
from .._runtime.progress import ProgressBar, Stages, silenced
from .._runtime.seeds import check_seed
from .._version import __version__
from ..experiments.convergence import convergence_study
from ..experiments.data import digits_inputs
from .figures import FIGURES
from .html import write_index
from .summary import (
    chi1_values,
    convergence_block,
    cross_time_block,
    depth_block,
    format_table,
    headline_rows,
    kernels_block,
    weight_var_block,
)


@dataclass(frozen=True)
class DemoConfig:
    """What the demo computes. ``weight_vars`` None: ordered, headline, critical (chi_1 = 1), chaotic."""

    activation: str = "erf"
    depth: int = 8
    bias_var: float = 0.5
    input_var: float = 1.0
    readout_var: float = 1.0
    readout_bias_var: float = 0.0
    headline_weight_var: float = 1.5
    ordered_weight_var: float = 0.8
    chaotic_weight_var: float = 4.0
    weight_vars: tuple | None = None
    widths: tuple | None = None  # None: the plan's (FAST_PLAN / FULL_PLAN)
    networks: int | None = None
    patterns: int = 8
    kernel_width: int | None = None
    cross_time_width: int | None = None
    seed: int = 0
    chunk_size: int = 8
    full: bool = False


# The convergence study's sample plans. Fast: the width 512 dropped (half the sampling time and two
# compilations); 32 networks per point keep the headline ratio's standard error at ~0.1 (the RNN/DNN
# amplitude ratio at weight_var 1.5 is resolved at > 4 standard errors, docs/design.md "Run time of the demo").
FAST_PLAN = {"widths": (16, 32, 64, 128, 256), "networks": 32, "kernel_width": 64, "cross_time_width": 256}
FULL_PLAN = {"widths": (16, 32, 64, 128, 256, 512), "networks": 32, "kernel_width": 64, "cross_time_width": 512}

# sections that run in a second process, beside the main study and the other sections (the longest:
# feature learning, about half the demo's CPU time, then training, which balances the two processes: measured 2026-12-06,
# main 173 s of work, the second 163 s); their numbers do not depend on where they run
BESIDE = ("feature", "training")

# (key, module with demo_section(out, full=...), title, stage message)
SECTIONS = (
    ("criticality", "criticality.demo", "6. Order-to-chaos phase diagram",
     "criticality section: order-to-chaos phase diagram (netfield.criticality)"),
    ("gp", "gp.figures", "7. Bayesian inference with network kernels",
     "Bayesian inference section: GP classification of digits, DNN vs RNN (netfield.gp)"),
    ("nlo", "nlo.figures", "8. Kernel fluctuations at next-to-leading order (1/n)",
     "next-to-leading order: kernel fluctuations of DNN vs RNN, theory and simulation (netfield.nlo)"),
    ("architectures", "experiments.architecture_figures", "9. Kernels of any architecture (tensor programs)",
     "any architecture: GRU, LSTM, transformer, batch norm, CNN vs sampled networks (tensor programs)"),
    ("feature", "feature.figures", "10. Feature learning: muP Bayesian networks",
     ("feature learning: the RNN-only transition and the sequential task, theory vs sampled posteriors "
     "(netfield.feature)")),
    ("training", "experiments.training_figures", "11. Training wide networks: the neural tangent kernel",
     "training: DNN vs RNN NTKs, trained finite networks vs the infinite-width dynamics (netfield.train)"),
)


def resolve(cfg: DemoConfig) -> DemoConfig:
    """``cfg`` with the fields left at None filled from its plan (FAST_PLAN, or FULL_PLAN when ``cfg.full``)."""
    plan = FULL_PLAN if cfg.full else FAST_PLAN
    return replace(cfg, **{k: v for k, v in plan.items() if getattr(cfg, k) is None})


def run_demo(out="netfield-report", *, config: DemoConfig | None = None, resume: bool = False, quiet: bool = False,
             stream=None, cache: bool = True, concurrent: bool = True, **overrides) -> dict:
    """Run the demo and write the report folder; returns the summary dict (as written to summary.json).

    Args:
        out: report folder (created if needed).
        config: :class:`DemoConfig` (default: the defaults above); ``overrides`` replace its fields
            (``full=True``: the full-size plans).
        resume: reuse finished chunks and sections in ``out/.checkpoints``.
        quiet: no progress output.
        stream: where progress goes (default stderr); the headline table goes to stdout.
        cache: JAX's persistent compilation cache (:mod:`netfield._runtime.jaxcache`); results do not depend on it.
        concurrent: run the sections of ``BESIDE`` (feature learning) in a second process while this one
            runs the rest (the same numbers; False: one after the other, in this process).

    Cost: 5 minutes of CPU (fast) or about 9 (``full=True``), less with a warm compilation cache (module
    docstring, docs/design.md "Run time of the demo"); ``full`` and the cache are the levers.
    """
    t0 = time.monotonic()
    cfg = resolve(replace(config or DemoConfig(), **overrides))
    check_positive_int("networks", cfg.networks, minimum=2)  # validate before creating anything
    check_seed(cfg.seed)
    err = sys.stderr if stream is None else stream
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, got the existing file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    cache_path = enable_compilation_cache(cache)
    stages = Stages(4 + len(SECTIONS), stream=err, enabled=not quiet)
    beside = _start_beside(out, cfg.full, resume, cache) if concurrent else {}

    stages(f"inputs: {cfg.patterns} digit images from scikit-learn's bundled digits dataset (no download)")
    digits = digits_inputs(cfg.patterns)
    x = digits.x
    from ..criticality import critical_weight_var

    critical = critical_weight_var(cfg.activation, cfg.bias_var)
    weight_vars = cfg.weight_vars or tuple(sorted({cfg.ordered_weight_var, cfg.headline_weight_var,
                                                   round(critical, 3), cfg.chaotic_weight_var}))
    chi1s = chi1_values(cfg.activation, weight_vars, cfg.bias_var)

    total = 2 * len(weight_vars) * len(cfg.widths) * cfg.networks
    stages(f"sampling {total} networks (DNN and RNN, {cfg.depth} steps, weight_var {', '.join(f'{w:g}' for w in weight_vars)}, "
           f"widths {cfg.widths[0]}..{cfg.widths[-1]}); the first network of each width compiles")
    t_study = time.monotonic()
    with ProgressBar(total, "networks", stream=err, enabled=not quiet) as bar:
        study = convergence_study(
            x, activation=cfg.activation, depth=cfg.depth, weight_vars=weight_vars, bias_var=cfg.bias_var,
            input_var=cfg.input_var, readout_var=cfg.readout_var, readout_bias_var=cfg.readout_bias_var,
            widths=cfg.widths, networks=cfg.networks, seed=cfg.seed, chunk_size=cfg.chunk_size,
            store=ChunkStore(out / ".checkpoints"), resume=resume, progress=bar,
        )
    t_study = time.monotonic() - t_study

    stages(f"kernel matrices (n={cfg.kernel_width}) and cross-time kernels (n={cfg.cross_time_width})")
    headline = cfg.headline_weight_var if cfg.headline_weight_var in weight_vars else weight_vars[0]
    figures = {
        "kernels": kernels_block(x, digits.labels, study, headline, cfg.kernel_width, cfg.networks, cfg.seed,
                                 chunk_size=cfg.chunk_size),
        "cross_time": cross_time_block(x, digits.labels, study, headline, cfg.cross_time_width, cfg.networks, cfg.seed,
                                       chunk_size=cfg.chunk_size),
        "convergence": convergence_block(study, headline),
        "weight_var": weight_var_block(study, chi1s, critical),
        "depth": depth_block(study, headline, chi1s),
    }
    rows = headline_rows(study, chi1s)
    main_s = time.monotonic() - t0
    summary = {
        "netfield_version": __version__,
        "config": {**asdict(cfg), "weight_vars": list(weight_vars), "headline_weight_var": headline},
        "inputs": {"dataset": "sklearn.datasets.load_digits", "indices": digits.indices.tolist(),
                   "labels": digits.labels.tolist(), "standardisation": "per pixel over all 1797 images"},
        "distance": "||K_emp - K_mft||_F / ||K_mft||_F per sampled network; mean and standard error over networks",
        "headline": rows,
        "figures": figures,
        "study": study.to_dict(),
        "main": {"seconds": main_s, "plan": _main_plan(cfg, weight_vars), "reproduce": _main_command(cfg, weight_vars)},
        "timing": {"study_s": t_study, "compilation_cache": cache_path},
    }

    sections = {}
    for key, module, title, message in SECTIONS:
        if key in beside:
            stages(f"{message} [ran in a second process beside the others]")
            sections[key] = _finish_beside(beside[key], title, err, quiet)
        else:
            stages(message)
            sections[key] = _section(key, module, title, out, err, quiet, cfg.full, resume)
    summary["sections"] = sections
    summary["timing"]["sections_s"] = {k: v.get("seconds") for k, v in sections.items()}

    stages("figures, summary.json and index.html")
    summary["timing"]["total_s"] = time.monotonic() - t0  # before writing: the report quotes it
    (out / "summary.json").write_text(json.dumps(summary, indent=1), encoding="utf-8")
    stored = json.loads((out / "summary.json").read_text(encoding="utf-8"))  # draw from the stored numbers
    for name, draw in FIGURES.items():
        draw(stored["figures"][name]).savefig(out / stored["figures"][name]["file"])
    write_index(stored, out)
    if not quiet:
        print(f"\nnetfield demo: {cfg.activation}, bias_var={cfg.bias_var}, step T={cfg.depth}, widths "
              f"{cfg.widths[0]}..{cfg.widths[-1]}, {cfg.networks} networks per point "
              f"(A = lim sqrt(n) E[distance]; A_RNN/A_DNN > 1: RNN converges slower)")
        print(format_table(rows))
        print(f"\nreport: {out / 'index.html'}  ({time.monotonic() - t0:.0f} s)")
    return stored


def _main_plan(cfg: DemoConfig, weight_vars) -> str:
    return (f"2 architectures x {len(weight_vars)} weight variances x {len(cfg.widths)} widths "
            f"({', '.join(map(str, cfg.widths))}) x {cfg.networks} networks of depth {cfg.depth} on {cfg.patterns} "
            f"digit images; kernel matrices at n = {cfg.kernel_width} and cross-time kernels at n = "
            f"{cfg.cross_time_width}, {cfg.networks} networks each")


def _main_command(cfg: DemoConfig, weight_vars) -> str:
    """The ``netfield converge`` command of the full-size convergence study (figures 3-5)."""
    widths = FULL_PLAN["widths"]
    return (f"netfield converge --activation {cfg.activation} --depth {cfg.depth} --bias-var {cfg.bias_var:g} "
            f"--weight-vars {','.join(f'{w:g}' for w in weight_vars)} --widths {','.join(map(str, widths))} "
            f"--networks {FULL_PLAN['networks']} --digits {cfg.patterns} --seed {cfg.seed} --out netfield-converge")


def _start_beside(out: Path, full: bool, resume: bool, cache: bool) -> dict:
    """Start the sections of BESIDE in one second process (spawned: a fresh JAX); {key: future}."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    pool = ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn"))
    futures = {}
    for key, module, title, _ in SECTIONS:
        if key in BESIDE:
            futures[key] = pool.submit(_section_beside, key, module, title, str(out), full, resume, cache)
    pool.shutdown(wait=False)  # the process exits when its sections are done
    return futures


def _section_beside(key, module, title, out, full, resume, cache) -> dict:
    """:func:`_section` in the second process: quiet (its progress would interleave with the main one's)."""
    enable_compilation_cache(cache)
    return _section(key, module, title, Path(out), sys.stderr, True, full, resume)


def _finish_beside(future, title: str, err, quiet: bool) -> dict:
    """The result of a section run beside the others; a crashed process is reported as the section's error."""
    try:
        result = future.result()
    except Exception as exc:  # noqa: BLE001 - the process died (killed, out of memory): report, keep the rest
        result = {"error": f"{type(exc).__name__}: {exc}"}
    if "error" in result and not quiet:
        print(f"netfield demo: warning: {title} section skipped: {result['error']}", file=err)
    return result


def _section(key: str, module: str, title: str, out: Path, err, quiet: bool, full: bool, resume: bool) -> dict:
    """A report section written by ``netfield.<module>.demo_section(out, full=full)`` (its figures,
    paragraphs, numbers, sample plan and full-size command), with its wall time.

    Finished sections are kept in ``out/.checkpoints/section-<key>-<size>.json``; ``resume`` reuses one
    whose figures still exist. A failure must not cost the user the convergence report: it is reported on
    stderr and in ``summary.json`` (``{"error": ...}``), and the section is left out of ``index.html``.
    """
    keep = out / ".checkpoints" / f"section-{key}-{'full' if full else 'fast'}.json"
    if resume and keep.is_file():
        kept = json.loads(keep.read_text(encoding="utf-8"))
        if all((out / f).is_file() for f in kept.get("figures", [])):
            return kept
    start = time.monotonic()
    try:
        import importlib

        with silenced() if quiet else contextlib.nullcontext():   # the sections' own bars follow --quiet
            section = importlib.import_module(f"netfield.{module}").demo_section(out, full=full)
    except Exception as exc:  # noqa: BLE001 - isolate an optional section, but say what went wrong
        if not quiet:
            print(f"netfield demo: warning: {title} section skipped: {type(exc).__name__}: {exc}", file=err)
        return {"error": f"{type(exc).__name__}: {exc}"}
    missing = [f for f in section.get("figures", []) if not (out / f).is_file()]
    if missing:
        return {"error": f"{title} section did not write {missing}"}
    result = {"title": title, **section, "seconds": time.monotonic() - start}
    keep.parent.mkdir(parents=True, exist_ok=True)
    keep.write_text(json.dumps(result), encoding="utf-8")
    return result
