"""Mean-field criticality (docs/criticality.md section 1): fixed points, slopes, depth scales, phases."""

import json
import math

import numpy as np
import pytest

import netfield
from netfield.criticality import correlation_map, critical_weight_var, criticality, length_map
from netfield.gauss import ACTIVATIONS, d2pair, dpair, get_activation


def test_tanh_critical_points():
    # docs/theory.md 3.1: tanh is critical at weight_var = 1 for bias_var = 0 ...
    assert criticality("tanh", 1.0, 0.0).phase == "critical"
    assert critical_weight_var("tanh", 0.0) == pytest.approx(1.0, abs=1e-6)
    # ... and at weight_var = 1.7610 for bias_var = 0.05 (Schoenholz et al.; public reproduction)
    w = critical_weight_var("tanh", 0.05)
    assert abs(w - 1.7610) < 1e-3
    r = criticality("tanh", w, 0.05)
    assert abs(r.chi_1 - 1.0) < 1e-9 and r.phase == "critical" and math.isinf(r.xi_c)
    assert criticality("tanh", w - 0.01, 0.05).phase == "ordered"
    assert criticality("tanh", w + 0.01, 0.05).phase == "chaotic"


def test_relu_critical_point():
    r = criticality("relu", 2.0, 0.0)
    assert r.chi_1 == pytest.approx(1.0, abs=1e-12) and r.phase == "critical" and r.lyapunov == pytest.approx(0.0)
    assert critical_weight_var("relu", 0.0) == 2.0
    assert criticality("relu", 1.5, 0.1).chi_1 == pytest.approx(0.75, abs=1e-12)   # D = 1/2 for every q
    with pytest.raises(ValueError, match="not on the critical line"):
        critical_weight_var("relu", 0.05)
    # above weight_var = 2 the length diverges: phase "unbounded", lambda from the large-q limit
    u = criticality("relu", 2.5, 0.1)
    assert u.phase == "unbounded" and math.isinf(u.q_star) and u.lyapunov == pytest.approx(0.5 * math.log(1.25))


def test_erf_against_closed_forms():
    wv, bv = 2.0, 0.1
    r = criticality("erf", wv, bv)
    q = r.q_star
    # (C1) with <erf^2> = (2/pi) arcsin(2q / (1 + 2q)) and (C4) with <erf'^2> = (4/pi) / sqrt(1 + 4q)
    assert q == pytest.approx(wv * (2 / math.pi) * math.asin(2 * q / (1 + 2 * q)) + bv, rel=1e-13)
    assert r.chi_1 == pytest.approx(wv * (4 / math.pi) / math.sqrt(1 + 4 * q), rel=1e-12)
    assert critical_weight_var("erf", 0.0) == pytest.approx(math.pi / 4, rel=1e-7)


@pytest.mark.parametrize("name, wv, bv", [("tanh", 1.2, 0.05), ("tanh", 3.0, 0.05), ("erf", 2.0, 0.3),
                                           ("relu", 1.5, 0.2), ("sin", 2.0, 0.1)])
def test_autodiff_slopes_equal_price_formulas(name, wv, bv):
    act = get_activation(name)
    r = criticality(name, wv, bv)
    q = r.q_star
    # (C6'): dq'/dq = weight_var (<phi'^2> + <phi'' phi>)
    price = wv * float(dpair(act, q, q, q) + d2pair(act, q, q, q))
    assert r.q_slope == pytest.approx(price, rel=1e-7, abs=1e-10)
    assert r.xi_q == pytest.approx(-1 / math.log(abs(r.q_slope)), rel=1e-12)
    # (C5): the autodiff slope of the correlation map at c* is weight_var <phi' phi'>(q*, c*)
    assert r.chi_c == pytest.approx(wv * float(dpair(act, q, q, r.c_star * q)), rel=1e-7)
    assert r.lyapunov == pytest.approx(0.5 * math.log(r.chi_1), rel=1e-14)


def test_both_correlation_fixed_points_and_near_critical_root():
    act = get_activation("tanh")
    r = criticality("tanh", 3.0, 0.05)
    cs = [p.c for p in r.c_fixed_points]
    assert 1.0 in cs and len(cs) == 2
    one = next(p for p in r.c_fixed_points if p.c == 1.0)
    assert one.slope == pytest.approx(r.chi_1) and not one.stable
    assert 0 < r.c_star < 1 and r.chi_c < 1
    assert float(correlation_map(act, r.c_star, r.q_star, 3.0, 0.05)) == pytest.approx(r.c_star, abs=1e-12)
    # just above the critical line the second fixed point sits next to 1: 1 - c* = O(chi_1 - 1)
    w = critical_weight_var("tanh", 0.05)
    near = criticality("tanh", w * (1 + 1e-4), 0.05)
    assert near.phase == "chaotic" and 0.999 < near.c_star < 1.0
    assert float(correlation_map(act, near.c_star, near.q_star, w * (1 + 1e-4), 0.05)) == pytest.approx(
        near.c_star, abs=1e-12)
    # odd activation, no bias: c = -1, 0 and 1 are all fixed points, c* = 0 attracts
    e = criticality("erf", 3.0, 0.0)
    assert [round(p.c, 12) for p in e.c_fixed_points] == [-1.0, 0.0, 1.0]
    assert e.c_star == pytest.approx(0.0, abs=1e-12)


def test_degenerate_q_star_zero():
    r = criticality("tanh", 0.8, 0.0)
    assert r.q_star == 0.0 and r.chi_1 == pytest.approx(0.8, rel=1e-6) and r.phase == "ordered"
    assert math.isinf(r.xi_c) and r.notes and "identity" in r.notes[0]


def test_network_objects_dnn_rnn_and_input_drive():
    d = criticality(netfield.dnn(5, "tanh", weight_var=2.0, bias_var=0.1, input_var=0.5))
    r = criticality(netfield.rnn(5, "tanh", weight_var=2.0, bias_var=0.1, input_var=0.5))
    assert (d.architecture, r.architecture) == ("dnn", "rnn")
    assert d.chi_1 == r.chi_1 and d.c_star == r.c_star and d.xi_c == r.xi_c   # identical at infinite width
    # the drive input_var |x|^2/d at every step adds to the bias variance (C0)
    driven = criticality(netfield.rnn(5, "tanh", weight_var=2.0, bias_var=0.1, input_var=0.5), input_power=0.6)
    same = criticality("tanh", 2.0, 0.1 + 0.5 * 0.6)
    assert driven.sigma2 == pytest.approx(0.4) and driven.q_star == pytest.approx(same.q_star, rel=1e-12)
    assert driven.lyapunov == pytest.approx(same.lyapunov, rel=1e-12)
    q = driven.q_star
    assert float(length_map(get_activation("tanh"), q, 2.0, 0.4)) == pytest.approx(q, rel=1e-13)


def test_result_serialises():
    r = criticality("relu", 2.5, 0.1)
    text = json.dumps(r.as_dict())
    assert '"inf"' in text and "unbounded" in text
    assert "lambda_max" in str(criticality("tanh", 1.2, 0.05))


@pytest.mark.parametrize("kwargs, exc, words", [
    ({"activation_or_net": "tanh", "weight_var": -1.0}, ValueError, "weight_var must be a finite number > 0, got -1.0"),
    ({"activation_or_net": "tanh", "weight_var": 1.0, "bias_var": float("nan")}, ValueError, "bias_var"),
    ({"activation_or_net": "tanh"}, TypeError, "weight_var is required"),
    ({"activation_or_net": "nope", "weight_var": 1.0}, ValueError, "activation must be one of"),
    ({"activation_or_net": "tanh", "weight_var": 1.0, "input_power": -2}, ValueError, "input_power"),
    ({"activation_or_net": "tanh", "weight_var": 1.0, "q0": 0.0}, ValueError, "q0 must be a finite number > 0"),
    ({"activation_or_net": netfield.dnn(2, "tanh"), "weight_var": 1.0}, ValueError, "must not be given together"),
])
def test_errors_name_argument_value_and_accepted(kwargs, exc, words):
    with pytest.raises(exc, match=words.replace("(", r"\(")):
        criticality(**kwargs)


# Every closed form, and numerically integrated activations of each kind: smooth (tanh elsewhere,
# gelu), kinked (elu, hard_tanh, abs), saturating (sigmoid). softplus / swish / silu go through the
# same panel rule as gelu (about 4 s of compilation each on 2 cores, left out for the time budget).
SWEEP = ("linear", "relu", "leaky_relu", "erf", "sign", "step", "sin", "cos", "gelu", "elu", "hard_tanh", "abs",
         "sigmoid")


def test_sweep_covers_every_kind():
    assert set(SWEEP) <= set(ACTIVATIONS)
    assert {a for a in ACTIVATIONS if get_activation(a).has_closed_form} <= set(SWEEP)


@pytest.mark.slow
@pytest.mark.parametrize("name", SWEEP)
def test_every_activation_gives_finite_or_infinite_numbers_never_nan(name):
    r = criticality(name, 1.5, 0.1)
    assert r.phase in ("ordered", "critical", "chaotic", "unbounded")
    for key in ("q_star", "q_slope", "xi_q", "chi_1", "c_star", "chi_c", "xi_c", "lyapunov"):
        value = getattr(r, key)
        assert not math.isnan(value), key
    if math.isfinite(r.q_star) and r.q_star > 0:
        act = get_activation(name)
        assert float(length_map(act, r.q_star, 1.5, 0.1)) == pytest.approx(r.q_star, rel=1e-10)
    if r.phase == "chaotic" and math.isfinite(r.chi_1):
        assert r.c_star < 1 and abs(r.chi_c) < 1
    np.testing.assert_equal(r.lyapunov, 0.5 * np.log(r.chi_1) if r.chi_1 > 0 else -np.inf)
