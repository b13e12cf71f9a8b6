"""The outlier eigenvalue of a trained RNN's W (docs/feature.md F13) against posterior samples of finite networks.

The sampled side is stored (docs/results/feature_outlier.json, written by scripts/feature_outlier.py: 4 HMC
chains per width at n = 256 and 512, about 5 minutes); the theory is recomputed here."""

import json
from pathlib import Path

import numpy as np
import pytest

import netfield
from netfield.feature.outlier import weight_outliers
from netfield.feature.study import TOY, toy_task
from netfield.feature.transition import broken_solution

STORED = Path(__file__).resolve().parents[2] / "docs" / "results" / "feature_outlier.json"


def _net():
    return netfield.rnn(TOY["steps"], TOY["activation"], weight_var=TOY["weight_var"])


@pytest.fixture(scope="module")
def stored():
    return json.loads(STORED.read_text())


def test_no_outlier_below_the_transition():
    """Below the transition (s = 0.2) M = Q^-1 R is nilpotent up to noise (the recurrent input of step s is
    uncorrelated with phi at steps < s - 1), so W has no outlier; a regression of eta on the wrong steps
    (eta_s on phi_s instead of phi_{s-1}) gives eigenvalues 1.02-1.11 there and fails."""
    x, y = toy_task()
    r = weight_outliers(broken_solution(_net(), x, y, kappa=TOY["kappa"], signal=0.2, points=2**13))
    assert np.abs(r.eigenvalues).max() < 0.2 and r.outliers.size == 0


@pytest.mark.slow
def test_outlier_position_matches_sampled_networks(stored):
    """Where the theory puts an outlier clearly beyond the bulk (sqrt(1.5) = 1.225; s = 2 and 3), the sampled
    largest real eigenvalue of W lies within 3 combined standard errors of it at the largest width (a
    prediction off by the bulk-to-outlier gap, ~0.5, fails: 12 or more standard errors), and its deviation
    there is no larger than at the smallest width up to their combined standard error (the issue's
    "approaching with width"; the stored run: s = 3 off by 0.128 = 3.2 s.e. at n = 256, a finite-width
    bias, 0.039 = 1.4 s.e. at n = 512 and 0.019 = 0.7 s.e. at n = 1024); where it puts none (s = 1.0), the
    sampled extreme eigenvalue at the largest width stays within 0.1 of the bulk edge (an outlier beyond
    ~1.33 fails) and does not exceed the smallest width's by more than 3 combined standard errors (an
    outlier growing out of the bulk with n fails). Both widths' means are noisy (4 chains each): a
    comparison without that allowance fails by chance where nothing grows (the stored run: 1.230 +- 0.042
    at n = 256, 1.209 +- 0.027 at 512, 1.291 +- 0.030 at 1024, 1.2 combined s.e. above n = 256). (With 4
    chains per width the exponent of the deviation's trend with n is not resolved: docs/feature.md
    section 8.) The theory recomputed here equals the stored one within its error."""
    x, y = toy_task()
    edge = stored["bulk_radius"]
    outside = [p for p in stored["points"] if p["theory"] > edge + 0.1]
    inside = [p for p in stored["points"] if p["theory"] < edge]
    assert outside and inside
    for point in outside:
        small, large = point["sampled"][0], point["sampled"][-1]
        off_small, off_large = (abs(q["mean"] - point["theory"]) for q in (small, large))
        assert off_large < 3 * np.hypot(large["se"], point["theory_error"]), point
        assert off_large <= off_small + np.hypot(small["se"], large["se"]), point
    for point in inside:
        small, large = point["sampled"][0], point["sampled"][-1]
        assert large["mean"] <= small["mean"] + 3 * np.hypot(small["se"], large["se"]), point
        assert abs(large["mean"] - edge) < 0.1, point
    s = next(p for p in stored["points"] if p["signal"] == 2.0)
    live = weight_outliers(broken_solution(_net(), x, y, kappa=TOY["kappa"], signal=2.0, points=2**15))
    assert abs(abs(live.eigenvalues[0]) - s["theory"]) < 4 * np.hypot(live.eigenvalue_errors[0], s["theory_error"])
    assert live.outliers.size == 1
