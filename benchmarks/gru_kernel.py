"""GRU kernels with GP4A's conventions: netfield's gated-recurrence back-ends (docs/tensor_programs.md
section 3: B6 separation of variables for erf gates up to 8 steps, B5 trajectory integral beyond)
side by side with the GP4A-style orthant computation (one Genz integral per term, the method of
GP4A's GRU notebook; tests/program/gru_gp4a_reference.py), issue 19 item 2.

    python benchmarks/gru_kernel.py [--output benchmarks/results/<date>-gru-kernel.json] [--quick]

Cases (x ~ N(0, 1), all variances 1, erf gates and candidate):
- "8x5": 8 sequences of 5 steps, d = 4 - the inputs of tests/data/gru_orthant_reference.npz, whose
  high-precision values (Genz abseps 2e-8) give the *actual* error of every run; netfield (B6) at
  qmc_points 2^12 .. 2^18 and B5 forced at 2^12 and 2^16 (first call, compilation included, then a
  warm call with a new seed), the peer at abseps 1e-6 (its accuracy) once;
- "50x10": 50 sequences of 10 steps, d = 8, netfield (B5: more than 8 steps) at 2^12, 2^13, 2^14 points
  (first and warm call, reported error); the peer is not run (about 1.6e6 Genz integrals; GP4A's
  approach extrapolates to hours), its cost is estimated from the 8x5 run per integral.
Timings are wall-clock seconds on this machine; the load average is recorded with them.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("gru_gp4a_reference", ROOT / "tests" / "program" / "gru_gp4a_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def _timed(fn):
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def _netfield(x, steps, points, backend="auto"):
    """(kernel, reported error, first-call s, warm s); backend "trajectory" forces B5 on erf gates."""
    import netfield as nf
    from netfield.meanfield import gated_sov

    saved = gated_sov.ORTHANT_MAX_STEPS
    if backend == "trajectory":
        gated_sov.ORTHANT_MAX_STEPS = 0
    try:
        def run(seed):  # a new seed per call: no memoised moments
            mf = nf.mean_field(nf.gru(steps), x, qmc_points=points, seed=seed)
            return np.asarray(mf.readout), float(mf.max_error)

        (k, err), first = _timed(lambda: run(0))
        _, warm = _timed(lambda: run(1))
    finally:
        gated_sov.ORTHANT_MAX_STEPS = saved
    return k, err, first, warm


def _backend(steps, backend):
    from netfield.meanfield import gated_sov

    if backend == "trajectory" or steps > gated_sov.ORTHANT_MAX_STEPS:
        return "B5 trajectory"
    return "B6 orthant"


def _orthant_terms(n, steps):
    """Number of orthant integrals of dimension > 3 the term-by-term computation needs."""
    count = 0
    for t in range(steps):
        for s in range(steps):
            for a in range(n):
                for b in range(n):
                    if (t, a) > (s, b):
                        continue
                    count += sum((t - j + 1) + (s - k + 1) > 3 for j in range(t + 1) for k in range(s + 1))
    return count


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default=None)
    parser.add_argument("--quick", action="store_true", help="fewer point counts, no peer run")
    args = parser.parse_args(argv)
    data = np.load(ROOT / "tests" / "data" / "gru_orthant_reference.npz")
    x85, exact = data["x"], data["state"][-1, -1]
    out = {"machine": platform.platform(), "cpus": os.cpu_count(), "load_before": os.getloadavg(), "cases": {}}
    rows = []
    runs = [(p, "auto") for p in ((2**12, 2**16) if args.quick else (2**12, 2**14, 2**16, 2**18))]
    runs += [(p, "trajectory") for p in ((2**12,) if args.quick else (2**12, 2**16))]
    for points, backend in runs:
        k, err, first, warm = _netfield(x85, 5, points, backend)
        actual = float(np.abs(k - exact).max())
        rows.append({"points": points, "backend": _backend(5, backend), "first_s": first, "warm_s": warm,
                     "reported_error": err, "actual_error": actual})
        print(f"8x5   netfield {_backend(5, backend)} 2^{points.bit_length() - 1}: first {first:6.1f} s, "
              f"warm {warm:6.1f} s, reported {err:.1e}, actual {actual:.1e}", flush=True)
    case = {"netfield": rows, "orthant_integrals": _orthant_terms(8, 5)}
    if not args.quick:
        peer, seconds = _timed(lambda: ref.gru_readout_kernel(x85, abseps=1e-6))
        case["peer"] = {"abseps": 1e-6, "seconds": seconds, "actual_error": float(np.abs(peer - exact).max())}
        print(f"8x5   GP4A-style orthant terms (Genz abseps 1e-6): {seconds:.1f} s, "
              f"actual {case['peer']['actual_error']:.1e}", flush=True)
    out["cases"]["8x5"] = case
    x50 = np.random.default_rng(0).normal(size=(50, 10, 8))
    rows = []
    for points in ((2**12,) if args.quick else (2**12, 2**13, 2**14)):
        k, err, first, warm = _netfield(x50, 10, points)
        rows.append({"points": points, "backend": _backend(10, "auto"), "first_s": first, "warm_s": warm,
                     "reported_error": err})
        print(f"50x10 netfield {_backend(10, 'auto')} 2^{points.bit_length() - 1}: first {first:6.1f} s, warm {warm:6.1f} s, "
              f"reported {err:.1e}", flush=True)
    case = {"netfield": rows, "orthant_integrals": _orthant_terms(50, 10)}
    if "peer" in out["cases"]["8x5"]:
        per = out["cases"]["8x5"]["peer"]["seconds"] / out["cases"]["8x5"]["orthant_integrals"]
        case["peer_estimate_s"] = per * case["orthant_integrals"]
        print(f"50x10 GP4A-style estimate: {case['orthant_integrals']} integrals x {per:.3f} s = "
              f"{case['peer_estimate_s'] / 3600:.1f} h (not run)")
    out["cases"]["50x10"] = case
    out["load_after"] = os.getloadavg()
    if args.output:
        Path(args.output).write_text(json.dumps(out, indent=1))
        print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
