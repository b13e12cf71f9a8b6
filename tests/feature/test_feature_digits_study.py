"""The digits transition study (netfield.feature.study.digits_transition_study, issue 23 item 3): its
estimators and its bookkeeping here; its stored research-scale results (20 digit images x 5 steps,
widths 256-1024: docs/results/feature_digits_transition.json) in test_feature_digits_results.py."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netfield.feature import study

TINY = {"chains": 2, "samples": 10, "thin": 1, "burn_in": 10}


def test_onset_is_the_zero_of_the_line_through_the_first_points_above_the_floor():
    s = [0.25, 0.5, 0.75, 1.0, 1.5]
    q2 = [0.0, 0.0, 0.05, 0.1, 0.2]  # q^2 = 0.2 (s - 0.5) above s* = 0.5
    se = [0.001] * 5
    crit, err = study._onset(s, q2, se, floor=np.full(5, 0.01))
    assert crit == pytest.approx(0.5, abs=1e-9) and 0 < err < 0.02
    assert study._onset(s, q2, se, floor=np.full(5, 0.15)) == (None, None)  # one point above: no line
    curved = [0.0, 0.0, 0.05, 0.1, 0.3]  # the third point off the line: its shift of the zero joins the error
    crit2, err2 = study._onset(s, curved, se, floor=np.full(5, 0.01))
    assert crit2 == pytest.approx(0.5, abs=1e-9) and err2 > 10 * err


def test_order_sq_error_is_the_delta_method_of_one_entry():
    K = np.zeros((3, 3, 1, 1))
    K[1, 1], K[2, 2], K[1, 2], K[2, 1] = 2.0, 2.0, 1.0, 1.0  # q^2 = 1 / 4
    E = np.zeros_like(K)
    E[1, 2] = 0.1
    assert study._order_sq_error(K, E, 1) == pytest.approx(2 * 1.0 * 0.1 / 4)


def test_study_writes_every_point_and_resumes_to_the_same_numbers(tmp_path):
    out = tmp_path / "digits.json"
    kw = {"signals": (0.5, 2.0), "widths": (8, 16), "extra": ((2.0, 24),), "P_train": 3, "P_test": 2, "steps": 3,
          "points": 2**12, "sampler": TINY, "branch_from": 2.0, "sample_signals": (0.5, 2.0)}
    first = study.digits_transition_study(out=out, **kw)
    assert [(e["signal"], e["width"]) for e in first["samples"]] == [(0.5, 8), (2.0, 8), (0.5, 16), (2.0, 16),
                                                                      (2.0, 24)]
    assert set(first["theory"]) == {"0.5", "2"} and set(first["branch"]) == {"0.5", "2"}
    for e in first["samples"]:
        assert np.asarray(e["prediction"]).shape == (3, 2)  # every step's readout
        assert e["vs_theory"]["kernel_rms_z"] > 0 and e["vs_branch"]["kernel_rms_z"] > 0
    stored = json.loads(out.read_text())
    stored["samples"] = stored["samples"][:2]  # as if killed after two points
    out.write_text(json.dumps(stored))
    again = study.digits_transition_study(out=out, **kw)
    timeless = lambda entries: [{k: v for k, v in e.items() if k != "seconds"} for e in json.loads(json.dumps(entries))]
    assert timeless(again["samples"]) == timeless(first["samples"])  # the resampled points: the same numbers
    assert again["theory"] == json.loads(json.dumps(first["theory"]))  # read back, not recomputed
    with pytest.raises(ValueError, match="another configuration"):
        study.digits_transition_study(out=out, **{**kw, "steps": 4})
