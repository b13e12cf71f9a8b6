"""``netfield demo``: the DNN-vs-RNN convergence study on real data, as a report folder.

Writes ``summary.json`` (every plotted number), the PNG figures and ``index.html`` into ``out``.
Inputs are digit images bundled with scikit-learn (no download). Default size: 2 architectures x
4 weight variances x 6 widths x 32 networks of depth 8 (about a minute on 2 CPU cores), then the
sections of netfield.criticality (phase diagram), netfield.gp (digits classification), netfield.nlo
(1/n fluctuations, DNN vs RNN), netfield.experiments.architecture_figures (kernels of any architecture
vs sampled networks) and netfield.feature.figures (feature learning: the RNN-only transition and the
sequential task, theory vs posterior sampling): 7-8 minutes in all. Finished chunks are checkpointed in ``out/.checkpoints``; ``resume=True``
continues an interrupted run with identical numbers.
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
    widths: tuple = (16, 32, 64, 128, 256, 512)
    networks: int = 32
    patterns: int = 8
    kernel_width: int = 64
    cross_time_width: int = 512
    seed: int = 0
    chunk_size: int = 8


def run_demo(out="netfield-report", *, config: DemoConfig | None = None, resume: bool = False, quiet: bool = False,
             stream=None, **overrides) -> dict:
    """Run the demo and write the report folder; returns the summary dict (as written to summary.json).

    Args:
        out: report folder (created if needed).
        config: :class:`DemoConfig` (default: the defaults above); ``overrides`` replace its fields.
        resume: reuse finished chunks in ``out/.checkpoints``.
        quiet: no progress output.
        stream: where progress goes (default stderr); the headline table goes to stdout.
    """
    t0 = time.monotonic()
    cfg = replace(config or DemoConfig(), **overrides)
    check_positive_int("networks", cfg.networks, minimum=2)  # validate before creating anything
    check_seed(cfg.seed)
    err = sys.stderr if stream is None else stream
    out = Path(out)
    if out.exists() and not out.is_dir():
        raise ValueError(f"out must be a folder, got the existing file {str(out)!r}")
    out.mkdir(parents=True, exist_ok=True)
    stages = Stages(9, stream=err, enabled=not quiet)

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
        "kernels": kernels_block(x, digits.labels, study, headline, cfg.kernel_width, cfg.networks, cfg.seed),
        "cross_time": cross_time_block(x, digits.labels, study, headline, cfg.cross_time_width, cfg.networks, cfg.seed),
        "convergence": convergence_block(study, headline),
        "weight_var": weight_var_block(study, chi1s, critical),
        "depth": depth_block(study, headline, chi1s),
    }
    rows = headline_rows(study, chi1s)
    summary = {
        "netfield_version": __version__,
        "config": {**asdict(cfg), "weight_vars": list(weight_vars), "headline_weight_var": headline},
        "inputs": {"dataset": "sklearn.datasets.load_digits", "indices": digits.indices.tolist(),
                   "labels": digits.labels.tolist(), "standardisation": "per pixel over all 1797 images"},
        "distance": "||K_emp - K_mft||_F / ||K_mft||_F per sampled network; mean and standard error over networks",
        "headline": rows,
        "figures": figures,
        "study": study.to_dict(),
        "timing": {"study_s": t_study},
    }

    stages("criticality section: order-to-chaos phase diagram (netfield.criticality)")
    sections = {"criticality": _section("criticality.demo", "6. Order-to-chaos phase diagram", out, err, quiet)}
    stages("Bayesian inference section: GP classification of digits, DNN vs RNN (netfield.gp, ~1 min)")
    sections["gp"] = _section("gp.figures", "7. Bayesian inference with network kernels", out, err, quiet)
    stages("next-to-leading order: kernel fluctuations of DNN vs RNN, theory and simulation (netfield.nlo, ~45 s)")
    sections["nlo"] = _section("nlo.figures", "8. Kernel fluctuations at next-to-leading order (1/n)", out, err, quiet)
    stages("any architecture: GRU, LSTM, transformer, batch norm, CNN vs sampled networks (tensor programs, ~40 s)")
    sections["architectures"] = _section("experiments.architecture_figures",
                                         "9. Kernels of any architecture (tensor programs)", out, err, quiet)
    stages("feature learning: the RNN-only transition and the sequential task, theory vs sampled posteriors "
           "(netfield.feature, ~4 min)")
    sections["feature"] = _section("feature.figures", "10. Feature learning: muP Bayesian networks", out, err, quiet)
    summary["sections"] = sections

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


def _section(module: str, title: str, out: Path, err, quiet: bool) -> dict:
    """A report section written by ``netfield.<module>.demo_section(out)`` (its figures, paragraphs, numbers).

    A failure there must not cost the user the convergence report: it is reported on stderr and in
    ``summary.json`` (``{"error": ...}``), and the section is left out of ``index.html``.
    """
    try:
        import importlib

        with silenced() if quiet else contextlib.nullcontext():   # the sections' own bars follow --quiet
            section = importlib.import_module(f"netfield.{module}").demo_section(out)
    except Exception as exc:  # noqa: BLE001 - isolate an optional section, but say what went wrong
        if not quiet:
            print(f"netfield demo: warning: {title} section skipped: {type(exc).__name__}: {exc}", file=err)
        return {"error": f"{type(exc).__name__}: {exc}"}
    missing = [f for f in section.get("figures", []) if not (out / f).is_file()]
    if missing:
        return {"error": f"{title} section did not write {missing}"}
    return {"title": title, **section}
