"""The width study (netfield.feature.study.width_study): crossing estimator, partial results and resume."""

from __future__ import annotations

import json

import numpy as np
import pytest

from netfield.feature import study

TINY = {"chains": 2, "samples": 12, "thin": 1, "burn_in": 12}


def test_crossing_of_two_piecewise_linear_curves():
    s = [0.4, 0.5, 0.6, 0.7]
    a = [1.0, 1.2, 1.4, 1.6]  # smaller width
    b = [0.6, 1.0, 1.6, 2.2]  # larger width: below a, then above
    assert study._crossing(s, a, b) == pytest.approx(0.5 + 0.1 * 0.2 / 0.4)
    assert study._crossing(s, b, a) is None  # never crosses from below
    assert study._crossing(s, a, [v + 1 for v in a]) is None


def test_width_study_writes_partial_results_and_resumes(tmp_path, monkeypatch):
    out = tmp_path / "widths.json"
    # the theory curve at one further signal, 0.9 (above s* ~ 0.56, so q > 0 there: the curve's entries are
    # the branch's, not zeros), between the sampled 0.3 and 1.0
    kw = {"signals": (0.3, 1.0), "widths": (8, 16), "extra": ((1.0, 24),), "points": 2**11, "sampler": TINY,
          "curve": (0.9,)}
    first = study.width_study(out=out, **kw)
    assert [(e["signal"], e["width"]) for e in first["samples"]] == [(0.3, 8), (1.0, 8), (0.3, 16), (1.0, 16),
                                                                      (1.0, 24)]
    assert json.loads(out.read_text())["samples"] == json.loads(json.dumps(first["samples"]))
    assert first["signals"] == [0.3, 1.0] and first["theory"]["signals"] == [0.3, 0.9, 1.0]
    order = first["theory"]["order"]
    assert order[0] < 1e-12 and 0.3 < order[1] < order[2]  # 0.3 below s*, 0.9 and 1.0 above: q grows with s
    for e in first["samples"]:  # each sampled point compared with the theory at its own signal
        assert e["theory_order_sq"] == pytest.approx(order[first["theory"]["signals"].index(e["signal"])] ** 2)
    assert len(first["crossings"]) == 1 and first["crossings"][0]["widths"] == [8, 16]

    def no_sampling(*a, **k):
        raise AssertionError("a resumed study must not sample what the file holds")

    monkeypatch.setattr(study, "_sampled", no_sampling)
    again = study.width_study(out=out, **kw)
    assert again["samples"] == first["samples"]
    with pytest.raises(ValueError, match=r"out .*widths.json' holds samples of another sampler configuration"):
        study.width_study(out=out, **{**kw, "sampler": {**TINY, "samples": 13}})
    assert np.isfinite([e["order_sq"] for e in again["samples"]]).all()
