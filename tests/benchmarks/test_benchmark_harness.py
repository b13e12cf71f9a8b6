"""The pure-python parts of benchmarks/: baselines, reference, work counts, tables.

No timing assertions, and nothing that needs the neural-tangents environment.
"""

import importlib.util
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.special import erf

import netfield as nf

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"
sys.path.insert(0, str(BENCH))


def _load(name, filename):
    spec = importlib.util.spec_from_file_location(name, BENCH / filename)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


common = _load("bench_common", "common.py")
gp4a = _load("bench_gp4a_style", "gp4a_style.py")
tanh_ref = _load("bench_tanh_reference", "tanh_reference.py")
runner = _load("bench_run", "run.py")

HYPER = {"weight_var": 2.25, "bias_var": 0.01, "input_var": 1.3}


def netfield_two_time(x, steps):
    mf = nf.mean_field(nf.rnn(steps, "erf", **HYPER), x)
    return np.array([[np.asarray(mf.preactivation(t, s)) for s in range(1, steps + 1)]
                     for t in range(1, steps + 1)])


@pytest.mark.parametrize("shape", [(5, 6, 3), (5, 4, 3), (5, 3)], ids=["sequence", "shorter-sequence", "static"])
def test_gp4a_style_recursion_equals_netfield(shape):
    x = np.random.default_rng(1).normal(size=shape)
    expected = netfield_two_time(x, 6)
    causal = gp4a.two_time_kernel(x, steps=6, **HYPER)
    sweep = gp4a.two_time_kernel_sweep(x, steps=6, **HYPER)
    assert causal.shape == (6, 6, 5, 5)
    scale = np.abs(expected).max()
    assert np.abs(causal - expected).max() <= 1e-10 * scale
    assert np.abs(sweep - expected).max() <= 1e-10 * scale
    # cross-time blocks are not trivially zero: the check above compares real two-time kernels
    assert np.abs(causal[1, 4]).max() > 1e-3


def test_gp4a_style_is_symmetric_under_token_exchange():
    x = np.random.default_rng(2).normal(size=(4, 5, 2))
    c = gp4a.two_time_kernel(x, **HYPER)
    np.testing.assert_array_equal(c, c.transpose(1, 0, 3, 2))


def test_gp4a_style_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        gp4a.two_time_kernel(np.zeros(3), **HYPER)
    with pytest.raises(ValueError, match="steps"):
        gp4a.two_time_kernel(np.zeros((2, 4, 3)), steps=3, **HYPER)


NT_NTK = BENCH.parent / "tests" / "data" / "neural_tangents_ntk.json"
NT_HYPER = {"weight_var": 2.25, "bias_var": 0.01, "input_var": 2.25, "readout_var": 2.25, "readout_bias_var": 0.01}


@pytest.mark.parametrize("depth", [1, 3, 10])
def test_numpy_ntk_recursion_equals_neural_tangents(depth):
    """gp4a_style.ntk_kernel (the rnn-ntk-T50 baseline) with the input at step 1 only is the erf DNN:
    NNGP and NTK equal neural-tangents' stored values (tests/data/neural_tangents_ntk.json)."""
    import json

    ref = json.loads(NT_NTK.read_text())["dnn"]
    x, case = np.array(ref["inputs_x"]), ref["cases"][f"erf_L{depth}"]
    k, theta = gp4a.ntk_kernel(x, steps=depth, **NT_HYPER)
    for got, want in ((k, case["nngp"]), (theta, case["ntk"])):
        want = np.array(want)
        assert np.abs(got - want).max() <= 1e-13 * np.abs(want).max()


@pytest.mark.parametrize("act", ["erf", "relu"])
def test_ntk_diagonal_equals_neural_tangents(act):
    import json

    ref = json.loads(NT_NTK.read_text())["dnn"]
    x = np.array(ref["inputs_x"])
    for depth in (1, 3, 10):
        want = np.diagonal(np.array(ref["cases"][f"{act}_L{depth}"]["ntk"]))
        got = gp4a.ntk_diagonal(x, act, depth, **NT_HYPER)
        assert np.abs(got - want).max() <= 1e-13 * np.abs(want).max()


def test_numpy_ntk_recursion_nngp_equals_netfield_for_sequences():
    """Inputs at every step: the NNGP half of gp4a_style.ntk_kernel is netfield's RNN readout kernel."""
    x = np.random.default_rng(6).normal(size=(5, 4, 3))
    hyper = {**HYPER, "readout_var": 0.8, "readout_bias_var": 0.05}
    k, theta = gp4a.ntk_kernel(x, **hyper)
    expected = np.asarray(nf.kernel(nf.rnn(4, "erf", **hyper), x))
    np.testing.assert_allclose(k, expected, rtol=0, atol=1e-13)
    assert np.all(np.diagonal(theta) > np.diagonal(k))  # Theta = K + positive gradient terms


def test_ntk_agreement_uses_the_exact_diagonal():
    """NT's diagonal error does not count against netfield; netfield's does."""
    x = np.random.default_rng(7).normal(size=(4, 3))
    _, theta = gp4a.ntk_kernel(x, steps=2, **runner.HYPER)
    peer = theta + 1e-8 * np.eye(4)  # an NT-like rounding error on the diagonal
    out = runner._ntk_agreement(x, "erf", 2, theta, peer)
    assert out["nt_diagonal_error"] > 1e-9 and out["agreement"] < 1e-14 and out["agreement_vs_nt"] > 1e-9
    assert runner._ntk_agreement(x, "erf", 2, peer, theta)["agreement"] > 1e-9
    assert "agreement" not in runner._ntk_agreement(x, "erf", 2, None, peer)


def test_expectation_counts():
    # tokens (t, a) with t >= 2: 2 patterns x 2 steps = 4 tokens -> 4 * 5 / 2 unordered pairs
    assert gp4a.expectation_count(2, 3) == 10
    assert common.dnn_expectation_count(5000, 10) == 5000 * 5001 // 2 * 10


def test_panel_rule_integrates_the_normal_density():
    z, w = tanh_ref.panel_rule()
    assert abs(w.sum() - 1.0) < 1e-14
    assert abs(w @ z**2 - 1.0) < 1e-13
    assert abs(w @ z**4 - 3.0) < 1e-12


def test_reference_pair_expectation_matches_the_erf_closed_form():
    rng = np.random.default_rng(3)
    q1, q2 = rng.uniform(0.1, 2.5, 20), rng.uniform(0.1, 2.5, 20)
    c = np.concatenate([rng.uniform(-0.99, 0.99, 18), [1.0, -1.0]])
    got = tanh_ref.pair_expectation(erf, q1, q2, c, tanh_ref.panel_rule())
    cov = c * np.sqrt(q1 * q2)
    closed = gp4a.erf_pair(q1, q2, cov)
    np.testing.assert_allclose(got, closed, rtol=0, atol=1e-13)


def test_reference_kernel_recursion_matches_netfield_for_erf():
    x = np.random.default_rng(4).normal(size=(4, 6))
    hyper = {"weight_var": 2.25, "bias_var": 0.01, "input_var": 2.25, "readout_var": 2.25,
             "readout_bias_var": 0.01}
    got = tanh_ref.readout_kernel(x, 3, erf, **hyper)
    expected = np.asarray(nf.kernel(nf.dnn(3, "erf", **hyper), x))
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_sample_flops_by_hand():
    out = common.sample_flops(depth=3, width=4, n=2, dim=5, networks=7, preactivation_kernels=3)
    per = out["per_network"]
    assert per == {"input_layer": 2 * 4 * 5 * 2, "hidden_layers": 2 * 2 * 16 * 2, "readout_kernel": 2 * 4 * 4,
                   "preactivation_kernels": 3 * 2 * 4 * 4}
    assert out["total"] == 7 * sum(per.values())


def test_format_table():
    rows = [
        {"case": "erf L=10 N=5000", "peer": "NT", "peer_s": 8.0, "ours_s": 0.5, "ours_first_s": 1.25,
         "peer_new_size": {"first_s": 9.0, "ratio": 1.125}, "ours_new_size": {"first_s": 0.6, "ratio": 1.2},
         "peer_mem_bytes": 3 * 5000**2 * 8, "ours_mem_bytes": 5000**2 * 8, "n": 5000, "check": "diff 1e-15",
         "target": ">=10x", "met": True},
        {"case": "sample", "peer": "matmul rate", "peer_s": 1.0, "ours_s": 2.0, "ratio": 0.5, "ratio_text": "50%",
         "met": False},
        {"case": "no peer"},
    ]
    lines = common.format_table(rows).splitlines()
    assert len(lines) == 2 + len(rows)
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[:5] == ["case", "peer", "peer time", "netfield time", "ratio"]
    first = [c.strip() for c in lines[2].strip("|").split("|")]
    assert first[:6] == ["erf L=10 N=5000", "NT", "8.00 s", "500 ms", "16.0x", "1.25 s"]
    assert first[6:8] == ["9.00 s (1.12x warm)", "600 ms (1.20x warm)"]  # first call at a new N
    assert first[8] == "572 MB (3.00 N^2)" and first[9] == "191 MB (1.00 N^2)"
    assert first[-1] == "yes"
    second = [c.strip() for c in lines[3].strip("|").split("|")]
    assert second[4] == "50%" and second[-1] == "NO"
    third = [c.strip() for c in lines[4].strip("|").split("|")]
    assert third[0] == "no peer" and set(third[1:]) == {"-"}


@pytest.mark.parametrize("seconds, text", [(None, "-"), (123.4, "123 s"), (12.34, "12.3 s"), (1.234, "1.23 s"),
                                           (0.01234, "12.3 ms"), (2e-6, "2 us")])
def test_fmt_seconds(seconds, text):
    assert common.fmt_seconds(seconds) == text


def test_targets_and_case_parameters():
    assert runner._target(12.0, ">=", 10.0)["met"] is True
    assert runner._target(2e-10, "<=", 1e-10)["met"] is False
    assert runner._target(None, "<", 2.0)["met"] is None
    assert runner._all_met({"a": runner._target(1, ">=", 0), "b": runner._target(1, "<=", 0)}) is False
    assert runner._all_met({"a": runner._target(None, ">=", 0)}) is None
    kind, p = runner.case_params("dnn-erf-L10", quick=True)
    assert kind == "dnn" and p["n"] < 5000 and p["depth"] == 10
    kind, p = runner.case_params("dnn-erf-L10", quick=False)
    assert p["n"] == 5000
    assert set(runner.DEFAULT_CASES) <= set(runner.CASES)
    for key, kind in (("ntk-erf-L10", "dnn"), ("ntk-relu-L10", "dnn"), ("rnn-ntk-T50", "rnn")):
        got_kind, p = runner.case_params(key, quick=False)
        assert got_kind == kind and p["kind"] == "ntk" and key in runner.DEFAULT_CASES
    assert runner.case_params("ntk-erf-L10", quick=False)[1]["n"] == 5000
    assert runner.case_params("rnn-ntk-T50", quick=False)[1] == {"n": 200, "steps": 50, "kind": "ntk"}


def test_peak_memory_sees_an_allocation():
    mem = common.PeakMemory().start()
    block = np.ones(64 * 2**20 // 8)  # 64 MiB, touched
    out = mem.stop()
    del block
    assert out["peak_above_baseline_bytes"] >= 60 * 2**20
    assert out["method"]


def test_readme_table_is_written_between_the_markers(tmp_path):
    """run.py writes its own markdown report into the README (the table there is the script's)."""
    import json

    # the newest full run of run.py (other scripts, such as gru_kernel.py, store their own layouts there)
    stored = [json.loads(p.read_text()) for p in sorted((BENCH / "results").glob("2*.json"))
              if not p.stem.endswith("quick")]
    result = next(r for r in reversed(stored) if "netfield" in r)
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{runner.README_START}\nold table\n{runner.README_END}\noutro\n")
    runner.update_readme(result, tmp_path / "run.json", readme)
    text = readme.read_text()
    assert text.startswith("intro\n") and text.endswith(runner.README_END + "\noutro\n")
    assert "old table" not in text and runner.markdown_report(result) in text
    readme.write_text("no markers\n")
    with pytest.raises(ValueError, match="markers"):
        runner.update_readme(result, tmp_path / "run.json", readme)


def test_readme_table_is_the_scripts_report_of_a_stored_run():
    """The README's benchmark table is run.py's report of the results file it names, verbatim."""
    import json
    import re

    text = (BENCH.parent / "README.md").read_text()
    block = text.split(runner.README_START, 1)[1].split(runner.README_END, 1)[0]
    name = re.search(r"Results file: `([^`]+)`", block).group(1)
    result = json.loads((BENCH.parent / name).read_text())
    assert not result["quick"] and runner.markdown_report(result) in block
