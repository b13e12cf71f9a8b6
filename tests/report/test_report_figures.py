"""Summary blocks, figures and HTML of the report, on a tiny real study (fast)."""

import io
import json
import re

import numpy as np
import pytest

from netfield._runtime.progress import ProgressBar, Stages
from netfield.experiments.convergence import convergence_study
from netfield.experiments.data import digits_inputs
from netfield.report.figures import FIGURES
from netfield.report.html import write_index
from netfield.report.summary import (
    convergence_block,
    cross_time_block,
    depth_block,
    format_table,
    headline_rows,
    kernels_block,
    regime,
    weight_var_block,
)


@pytest.fixture(scope="module")
def tiny_summary():
    d = digits_inputs(4)
    study = convergence_study(d.x, depth=3, weight_vars=(1.0, 3.0), bias_var=0.5, widths=(8, 16), networks=3, seed=1)
    chi1s = [0.6, 1.2]
    blocks = {
        "kernels": kernels_block(d.x, d.labels, study, 1.0, 8, 3, 1),
        "cross_time": cross_time_block(d.x, d.labels, study, 1.0, 16, 3, 1),
        "convergence": convergence_block(study, 1.0),
        "weight_var": weight_var_block(study, chi1s, 2.0),
        "depth": depth_block(study, 1.0, chi1s),
    }
    summary = {"netfield_version": "test", "config": {"activation": "erf", "depth": 3, "bias_var": 0.5,
                                                      "widths": [8, 16], "networks": 3, "seed": 1},
               "headline": headline_rows(study, chi1s), "figures": blocks, "timing": {"total_s": 1.0}}
    return json.loads(json.dumps(summary, allow_nan=False)), study


@pytest.mark.parametrize("name", list(FIGURES))
def test_each_figure_plots_exactly_its_summary_numbers(tiny_summary, figure_check, name):
    summary, _ = tiny_summary
    figure_check(name, summary["figures"][name])


def test_blocks_hold_the_study_numbers(tiny_summary):
    summary, study = tiny_summary
    conv = summary["figures"]["convergence"]["panels"][0]
    comp = study.comparison(1.0, "readout")
    assert conv["rnn"]["mean"] == list(comp.rnn.mean)
    assert conv["ratio"] == comp.ratio
    k = summary["figures"]["kernels"]
    assert k["max_abs_difference"] < 1e-12  # DNN and RNN mean-field kernels coincide (docs/theory.md 2.2)
    ct = summary["figures"]["cross_time"]
    assert np.allclose(np.triu(ct["mft_dnn"], 1), 0.0)  # no cross-layer covariance in a DNN
    assert np.min(np.asarray(ct["mft_rnn"])) > 0.4  # the shared bias (0.5) correlates every pair of steps


def test_html_references_only_existing_files(tiny_summary, tmp_path):
    summary, _ = tiny_summary
    for name, draw in FIGURES.items():
        draw(summary["figures"][name]).savefig(tmp_path / summary["figures"][name]["file"])
    (tmp_path / "summary.json").write_text(json.dumps(summary))
    text = write_index(summary, tmp_path).read_text()
    refs = re.findall(r"(?:src|href)=['\"]([^'\"#][^'\"]*)['\"]", text)
    anchors = re.findall(r"href=['\"]#([^'\"]+)['\"]", text)  # the table of contents
    assert anchors and all(f"id='{a}'" in text for a in anchors), anchors
    assert {f"{n}.png" for n in FIGURES} <= set(refs)
    assert all((tmp_path / r).is_file() for r in refs)
    assert text.count("<figcaption>") == len(FIGURES)


def test_table_and_regimes():
    assert regime(0.5) == "ordered" and regime(1.01) == "critical" and regime(1.3) == "chaotic"
    row = {"weight_var": 1.5, "regime": "ordered", "kernel": "readout", "dnn_exponent": -0.5, "dnn_exponent_se": 0.01,
           "rnn_exponent": -0.49, "rnn_exponent_se": 0.02, "dnn_amplitude": 1.0, "dnn_amplitude_se": 0.1,
           "rnn_amplitude": 1.5, "rnn_amplitude_se": 0.1, "ratio": 1.5, "ratio_se": 0.2}
    table = format_table([row])
    assert "1.50 ± 0.20" in table and len(table.splitlines()) == 3


def test_progress_bar_and_stages_write_to_their_stream():
    buf = io.StringIO()
    with ProgressBar(20, "work", stream=buf) as bar:
        for _ in range(20):
            bar(1)
    lines = buf.getvalue().splitlines()
    assert lines[-1].startswith("  work |" + "#" * 28 + "| 100% 20/20")
    assert len(lines) <= 11  # not a terminal: one line per 10 %
    Stages(2, stream=buf)("step one")
    assert "[1/2] step one" in buf.getvalue()
    silent = io.StringIO()
    ProgressBar(3, stream=silent, enabled=False)(3)
    assert silent.getvalue() == ""
