"""``netfield demo --out DIR``: every promised file, figures = summary.json numbers, HTML links exist, every
section with its time, sample sizes and a valid full-size command; a second run with the same seed (warm
compilation cache) gives the same numbers.

Runs the real command twice per session (the fast default plans; measured on 2 cores in
docs/design.md "Run time of the demo"); marked slow.
"""

import ast
import html
import importlib
import inspect
import re
import shlex

import matplotlib.image as mpimg
import numpy as np
import pytest

from netfield.cli import build_parser
from netfield.report.demo import BESIDE, SECTIONS
from netfield.report.figures import FIGURES

PROMISED = {"kernels.png", "cross_time.png", "convergence.png", "weight_var.png", "depth.png", "summary.json",
            "index.html"}


@pytest.fixture(scope="module")
def demo(netfield_demo):
    """The real command, run once per session (tests/conftest.py): (out, process, CPU seconds, summary)."""
    return netfield_demo


@pytest.mark.slow
def test_every_promised_file_exists(demo):
    out, proc, _, summary = demo
    names = {p.name for p in out.iterdir()}
    assert PROMISED <= names
    for block in summary["figures"].values():
        assert (out / block["file"]).stat().st_size > 20_000  # a real figure, not an empty canvas
    sections = summary["sections"]
    assert set(sections) == {"criticality", "gp", "nlo", "architectures", "feature", "training"}
    for name, section in sections.items():  # the phase diagram and the digits GP study
        assert "error" not in section, (name, section)
        assert all((out / f).is_file() for f in section["figures"])
    gp = sections["gp"]["numbers"]  # the seed's claim: one readout time -> identical DNN and RNN predictions
    assert gp["accuracy_dnn"] == gp["accuracy_rnn"] and gp["static-last_disagreement"] == 0.0
    assert gp["rows-mean_disagreement"] > 0.0  # several readout times: the RNN's cross-time kernels matter
    ordered = sections["nlo"]["numbers"]["regimes"][0]  # 1/n: RNN fluctuations grow past the DNN's
    assert ordered["theory"]["rnn"][-1] > 1.3 * ordered["theory"]["dnn"][-1]
    sim = ordered["simulation"]
    assert sim["rnn"]["limit"][-1] - sim["dnn"]["limit"][-1] > 2 * np.hypot(sim["rnn"]["limit_se"][-1],
                                                                            sim["dnn"]["limit_se"][-1])
    training = sections["training"]["numbers"]  # identical NTKs for one readout time, different for two lengths
    assert training["ntk"]["inputs at every step"]["rel_diff"] < 1e-12 < training["ntk"]["inputs at every step, two lengths"]["rel_diff"]
    for arch in training["architectures"]:  # trained finite networks vs netfield.train
        assert max(max(p["max_z_mean"], p["max_z_var"]) for w in arch["widths"] for p in w["per_step"]) < 4, arch["name"]
    # progress on stderr, the headline table on stdout
    assert "[2/10] sampling" in proc.stderr and "100%" in proc.stderr
    assert "A_RNN/A_DNN" in proc.stdout and "report:" in proc.stdout
    # the demo's time is a performance target, measured and reported (docs/design.md "Run time of the
    # demo", the report's per-section times), not asserted in a unit test (machine-dependent)


@pytest.mark.slow
@pytest.mark.parametrize("name", list(FIGURES))
def test_figures_show_the_numbers_in_summary_json(demo, figure_check, name):
    out, _, _, summary = demo
    data = summary["figures"][name]
    figure_check(name, data)
    png = mpimg.imread(out / data["file"])
    fig = FIGURES[name](data)
    width, height = fig.canvas.get_width_height()
    assert png.shape[:2] == (height, width)  # the PNG is this figure, drawn from these numbers


@pytest.mark.slow
def test_html_references_only_existing_files(demo):
    out, _, _, _ = demo
    text = (out / "index.html").read_text()
    refs = re.findall(r"(?:src|href)=['\"]([^'\"#][^'\"]*)['\"]", text)
    anchors = re.findall(r"href=['\"]#([^'\"]+)['\"]", text)  # the table of contents
    assert anchors and all(f"id='{a}'" in text for a in anchors), anchors
    assert refs and all((out / r).is_file() for r in refs), refs
    pngs = {p.name for p in out.glob("*.png")}
    assert pngs <= set(refs)  # and every figure is shown
    assert "summary.json" in refs
    assert text.count("<figcaption>") == len(pngs)


@pytest.mark.slow
def test_headline_numbers_are_printed_and_physical(demo):
    _, proc, _, summary = demo
    rows = summary["headline"]
    for row in rows:
        assert f"{row['ratio']:.2f} ± {row['ratio_se']:.2f}" in proc.stdout
    head = next(r for r in rows if r["weight_var"] == 1.5 and r["kernel"] == "readout")
    assert head["ratio"] - 1 > 2 * head["ratio_se"]  # the RNN converges slower (paper A)
    assert summary["figures"]["kernels"]["max_abs_difference"] < 1e-12  # identical mean-field kernels


def _valid_call(text: str) -> None:
    """``text`` (statements ``netfield.<module>.<function>(keyword=literal, ...)``) names existing functions
    and binds to their signatures (checked without running them)."""
    for stmt in ast.parse(text).body:
        call = stmt.value
        assert isinstance(call, ast.Call) and not call.args, text  # keyword arguments only: self-explaining
        dotted = ast.unparse(call.func)
        module, name = dotted.rsplit(".", 1)
        func = getattr(importlib.import_module(module), name)
        kwargs = {}
        for kw in call.keywords:
            value = kw.value
            if isinstance(value, ast.Call):  # a nested call, e.g. default_cases(): must name a function too
                inner = ast.unparse(value.func).rsplit(".", 1)
                assert callable(getattr(importlib.import_module(inner[0]), inner[1])), ast.unparse(value)
                kwargs[kw.arg] = None
            else:
                kwargs[kw.arg] = ast.literal_eval(value)
        inspect.signature(func).bind(**kwargs)


def _valid_reproduction(text: str) -> None:
    if text.startswith("netfield "):
        args = build_parser().parse_args(shlex.split(text)[1:])  # exits (SystemExit) on a bad option
        assert callable(args.func)
    else:
        _valid_call(text)


@pytest.mark.slow
def test_report_is_complete_with_times_plans_and_valid_full_size_commands(demo):
    """Every section present, its wall time, sample sizes and a full-size command that parses (CLI) or
    binds to the named function (API); the HTML shows them, with a table of contents and references."""
    out, _, _, summary = demo
    assert [k for k, *_ in SECTIONS] == list(summary["sections"])
    blocks = [summary["main"]] + list(summary["sections"].values())
    for block in blocks:
        assert "error" not in block, block
        assert block["seconds"] > 0 and len(block["plan"]) > 40, block.get("title")
        _valid_reproduction(block["reproduce"])
        for name in block.get("figures", []):
            assert (out / name).stat().st_size > 20_000, name
    assert summary["main"]["reproduce"].startswith("netfield converge ")
    assert build_parser().parse_args(["demo", "--full", "--resume", "--out", "x"]).full
    text = (out / "index.html").read_text()
    for block in blocks:
        assert html.escape(block["plan"]) in text and html.escape(block["reproduce"]) in text
    assert text.count("How to reproduce this at full size") == len(blocks)
    assert "<h2>Contents</h2>" in text and "id='references'" in text and "Segadlo" in text
    # the main process runs its sections one after the other; BESIDE's run in a second process meanwhile
    beside = [summary["sections"][k] for k in BESIDE]
    here = [b for b in blocks if not any(b is other for other in beside)]
    assert summary["timing"]["total_s"] >= sum(b["seconds"] for b in here) * 0.99
    assert all(summary["timing"]["total_s"] >= b["seconds"] for b in beside)


def _numbers(value):
    """summary.json without what may differ between identical runs: wall and CPU times (and the captions,
    which quote them; every number they quote is compared in the numbers)."""
    if isinstance(value, dict):
        return {k: _numbers(v) for k, v in value.items()
                if k not in ("timing", "seconds_by_part", "paragraphs") and not k.endswith("seconds")}
    if isinstance(value, list):
        return [_numbers(v) for v in value]
    return value


@pytest.mark.slow
def test_second_run_with_the_same_seed_gives_the_same_numbers(demo, demo_cache, netfield_demo_again):
    """The session's run (cold compilation cache) and a second run into another folder (warm cache, started
    when the first finished; tests/conftest.py): every number of summary.json is identical, so the cache
    does not change results."""
    _, _, _, summary = demo
    assert summary["config"]["seed"] == 0  # the second run passes --seed 0 explicitly
    assert any(demo_cache.rglob("*")), "the first run filled the compilation cache"
    _, _, _, again = netfield_demo_again
    assert _numbers(again) == _numbers(summary)
