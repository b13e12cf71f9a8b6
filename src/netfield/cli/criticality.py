"""Command line: ``netfield phase-diagram`` (registered by the main CLI through :func:`add_parser`).

Example:
    netfield phase-diagram --activation tanh --out fig.png
"""

from __future__ import annotations

import argparse
import json
import math
import sys

from .common import add_cluster, check_output_file, cluster, one_line

EXAMPLE = """examples:
  netfield phase-diagram --activation tanh --out fig.png
  netfield phase-diagram --activation relu --weight-max 3 --bias-max 0.2 --out relu.png
  netfield phase-diagram --activation erf --input-power 0.5 --resolution 81x51 --out erf.pdf --json erf.json

The critical line chi_1 = 1 is traced by pseudo-arclength continuation; the maps show the Lyapunov
exponent lambda = (1/2) ln chi_1 and the correlation depth scale xi_c (docs/criticality.md)."""

FORMATS = (".png", ".pdf", ".svg")


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register the ``phase-diagram`` subcommand on an argparse subparsers object.

    The parser's default ``func`` is :func:`run`, so a main CLI can dispatch with ``args.func(args)``.
    """
    p = subparsers.add_parser(
        "phase-diagram",
        help="order-to-chaos phase diagram: critical line, Lyapunov exponent and xi_c maps",
        description="Phase diagram of a deep / recurrent network in the (weight_var, bias_var) plane.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--activation", default="tanh", help="activation name (default: tanh)")
    p.add_argument("--out", default="phase_diagram.png", help="output figure (.png, .pdf or .svg)")
    p.add_argument("--bias-max", type=float, default=0.3, help="largest bias_var (default 0.3)")
    p.add_argument("--weight-min", type=float, default=0.5, help="smallest weight_var (default 0.5)")
    p.add_argument("--weight-max", type=float, default=4.0, help="largest weight_var (default 4.0)")
    p.add_argument("--resolution", default="61x41", help="grid points NWxNB of the maps (default 61x41)")
    p.add_argument("--input-var", type=float, default=1.0, help="input weight variance (default 1.0)")
    p.add_argument("--input-power", type=float, default=0.0,
                   help="|x_t|^2/d of an input fed at every step (RNN input drive; default 0)")
    p.add_argument("--json", default=None, help="also write the key numbers to this JSON file")
    add_cluster(p)
    p.set_defaults(func=run)
    return p


def _resolution(text: str):
    parts = str(text).lower().split("x")
    if len(parts) != 2 or not all(s.strip().isdigit() for s in parts):
        raise ValueError(f"--resolution must look like NWxNB with integers >= 2 (e.g. 61x41), got {text!r}")
    return int(parts[0]), int(parts[1])


def run(args) -> int:
    """Compute and draw the phase diagram; print the critical points. Returns the exit status."""
    try:
        from ..criticality.figures import plot_phase_diagram
        from ..criticality.phase_diagram import phase_diagram

        check_output_file(args.out, "--out", FORMATS)
        if args.json is not None:
            check_output_file(args.json, "--json", (".json",))
        for name, positive in (("bias_max", True), ("weight_min", True), ("weight_max", True),
                               ("input_var", False), ("input_power", False)):
            value = getattr(args, name)
            if not math.isfinite(value) or value < 0 or (positive and value == 0):
                raise ValueError(f"--{name.replace('_', '-')} must be a finite number {'> 0' if positive else '>= 0'}, "
                                 f"got {value!r}")
        if not args.weight_min < args.weight_max:
            raise ValueError(f"--weight-min must be smaller than --weight-max, got {args.weight_min!r} and "
                             f"{args.weight_max!r}")
        pd = phase_diagram(args.activation, weight_range=(args.weight_min, args.weight_max),
                           bias_range=(0.0, args.bias_max), resolution=_resolution(args.resolution),
                           input_var=args.input_var, input_power=args.input_power, **cluster(args))
        summary = _summary(pd)
        marks = [(w, b, f"({w:.4g}, {b:g})") for b, w in summary["critical_points"] if w is not None][:3]
        plot_phase_diagram(pd, args.out, marks=marks)
    except (ValueError, TypeError) as err:  # one line in the format of netfield.cli.main, naming the option
        text = one_line(err)
        if text.startswith("activation "):  # the API argument, named as the option typed
            text = "--" + text
        print(f"netfield: error: {text}", file=sys.stderr)
        return 2
    print(f"phase diagram of {pd.activation!r} written to {args.out}")
    if len(pd.line) == 0:
        print("no critical line in the box: " + "; ".join(pd.line.notes))
    for b, w in summary["critical_points"]:
        if w is not None:
            print(f"  critical point: weight_var = {w:.6f} at bias_var = {b:g}")
    if args.json is not None:
        with open(args.json, "w") as fh:
            json.dump(summary, fh, indent=2)
        print(f"numbers written to {args.json}")
    return 0


def _summary(pd) -> dict:
    """Critical weight_var at a few bias_var values along the traced line, and map ranges."""
    points = []
    line = pd.line
    if len(line):
        lo, hi = float(line.bias_var.min()), float(line.bias_var.max())
        for b in sorted({0.0, 0.05, 0.1, 0.2, hi}):
            if lo <= b <= hi:
                try:
                    points.append((b, line.weight_var_at(b)))
                except ValueError:
                    points.append((b, float(line.weight_var[0])) if hi == lo else (b, None))
    def span(a):
        return [float(a.min()), float(a.max())] if a.size else None

    lam = pd.lyapunov[pd.phase != 3]
    return {
        "activation": pd.activation, "drive": pd.drive, "critical_points": points,
        "line_points": len(line), "lyapunov_range": span(lam[lam > -1e300]),
        "phase_fractions": {name: float((pd.phase == code).mean())
                            for name, code in (("ordered", 0), ("critical", 1), ("chaotic", 2), ("unbounded", 3))},
    }
