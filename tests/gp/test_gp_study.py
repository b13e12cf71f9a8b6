"""The digits study and its demo-report section (issue item 4)."""

import json
import math

import pytest

from netfield.gp import figures


@pytest.fixture(scope="module")
def section(netfield_demo):
    """(folder, figures.demo_section(folder)) as run by ``netfield demo`` (tests/conftest.py runs the command
    once per session): the demo calls demo_section on its report folder and stores the returned dict as the
    "gp" section of summary.json (plus its title); repeating the 30-60 s study here would compute the same."""
    out, _, _, summary = netfield_demo
    gp = summary["sections"]["gp"]
    assert "error" not in gp, gp["error"]
    return out, {key: value for key, value in gp.items() if key != "title"}


@pytest.mark.slow
def test_demo_section_files_text_and_numbers(section):
    out, result = section
    assert result["figures"] == [figures.SWEEPS_PNG, figures.COMPARISON_PNG]
    for name in result["figures"]:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 20_000
        assert len(result["paragraphs"][name]) > 300
    json.dumps(result)  # JSON-serialisable
    for key, value in result["numbers"].items():
        if isinstance(value, float):
            assert math.isfinite(value), key
    # "< 60 s on 2 cores": CPU time of the process (all threads) bounds the wall time on an idle 2-core
    # machine for this compute-bound job, and unlike wall time it does not grow when other jobs share
    # the cores (measured: about 42 s CPU; wall 40-85 s on this shared machine depending on its load)
    assert result["numbers"]["cpu_seconds"] < 60


@pytest.mark.slow
def test_study_reproduces_the_seed_claim(section):
    n = section[1]["numbers"]
    # a single readout layer / time: identical kernels, predictions and accuracy
    assert n["accuracy_dnn"] == n["accuracy_rnn"] and n["max_prediction_difference"] < 1e-10
    assert n["generic_rnn_max_kernel_difference"] < 1e-12
    assert n["laplace_accuracy_dnn"] == n["laplace_accuracy_rnn"]
    assert n["rows-last_disagreement"] == 0.0 and n["rows-last_max_kernel_difference"] < 1e-12
    # outputs of several times averaged: the RNN's cross-time kernels make them differ
    assert n["static-mean_max_kernel_difference"] > 0.1 and n["rows-mean_max_kernel_difference"] > 0.1
    assert n["rows-mean_disagreement"] > 0.0
    # the evidence finds the edge of chaos at depth 32, where accuracy is best
    assert n["evidence_optimal_weight_var"] == pytest.approx(n["critical_weight_var"], rel=0.1)
    assert n["evidence_optimal_weight_var_accuracy"] >= n["best_accuracy_vs_weight_var"] - 0.01
    assert min(n["depth_curve_ordered_accuracy"][-1], n["depth_curve_chaotic_accuracy"][-1]) < 0.3
    assert n["accuracy_dnn"] > 0.9 and n["rbf_accuracy"] > 0.9
