"""The ``phase-diagram`` subcommand (cli/criticality.py) and the demo section (criticality/demo.py)."""

import argparse
import json
import os

import pytest

from netfield.cli import criticality as cli
from netfield.criticality import demo_section


def _parser():
    parser = argparse.ArgumentParser(prog="netfield")
    cli.add_parser(parser.add_subparsers(dest="command"))
    return parser


def test_phase_diagram_command_writes_figure_and_numbers(tmp_path, capsys):
    out, js = tmp_path / "fig.png", tmp_path / "numbers.json"
    args = _parser().parse_args(["phase-diagram", "--activation", "erf", "--out", str(out), "--json", str(js),
                                 "--resolution", "21x11", "--bias-max", "0.1"])
    assert args.func(args) == 0
    assert out.stat().st_size > 10_000
    numbers = json.loads(js.read_text())
    first = {b: w for b, w in numbers["critical_points"]}
    assert first[0.0] == pytest.approx(0.7853981633974483, rel=1e-7)
    assert "critical point" in capsys.readouterr().out


@pytest.mark.parametrize("argv, words", [
    (["--activation", "nope"], "activation must be one of"),
    (["--out", "fig.txt"], "--out must end in one of .png, .pdf, .svg"),
    (["--resolution", "10"], "--resolution must look like NWxNB"),
    (["--bias-max", "-1"], "--bias-max must be a finite number > 0, got -1.0"),
    (["--weight-min", "3", "--weight-max", "2"], "--weight-min must be smaller than --weight-max"),
])
def test_bad_input_is_one_line_on_stderr_and_status_2(tmp_path, capsys, argv, words):
    if "--out" not in argv:
        argv = argv + ["--out", str(tmp_path / "f.png")]
    args = _parser().parse_args(["phase-diagram", *argv])
    assert args.func(args) == 2
    err = capsys.readouterr().err.strip()
    assert words in err and len(err.splitlines()) == 1 and "Traceback" not in err


def test_help_shows_an_example(capsys):
    with pytest.raises(SystemExit):
        _parser().parse_args(["phase-diagram", "--help"])
    assert "netfield phase-diagram --activation tanh --out fig.png" in capsys.readouterr().out


def test_demo_section(tmp_path):
    section = demo_section(tmp_path)
    json.dumps(section)
    assert section["figures"] == ["phase_diagram_tanh.png"]
    for name in section["figures"]:
        assert os.path.getsize(tmp_path / name) > 10_000 and name in section["paragraphs"]
    numbers = section["numbers"]
    assert abs(numbers["tanh_critical_weight_var_at_bias_0.05"] - 1.7610) < 1e-3
    assert numbers["tanh_ordered_point"]["phase"] == "ordered" and numbers["tanh_chaotic_point"]["phase"] == "chaotic"
    with pytest.raises(ValueError, match="out_dir must be an existing folder"):
        demo_section(tmp_path / "missing")
