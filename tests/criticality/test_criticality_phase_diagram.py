"""Critical line by continuation and the phase-diagram maps (docs/criticality.md section 2)."""

import math

import numpy as np
import pytest

import netfield
from netfield.criticality import critical_line, critical_weight_var, criticality, phase_diagram


@pytest.fixture(scope="module")
def tanh_line():
    return critical_line("tanh", bias_max=0.3, weight_max=4.0)


def test_tanh_line_by_continuation(tanh_line):
    line = tanh_line
    assert len(line) >= 20 and line.newton_residual < 1e-10 and line.q_stable.all()
    # it runs from the bias_var = 0 critical point (1, 0) to the box boundary bias_var = 0.3; the line
    # is tangent to bias_var = 0 there (bias_var ~ (weight_var - 1)^3 / 8 for tanh), so rounding of
    # bias_var at 1e-16 places that end point only to ~1e-4 in weight_var
    assert line.bias_var.min() == 0.0 and line.weight_var[np.argmin(line.bias_var)] == pytest.approx(1.0, abs=2e-4)
    assert line.bias_var.max() == pytest.approx(0.3, abs=1e-12)
    # consecutive points are close (a traced curve, not scattered grid crossings) and monotone here
    steps = np.hypot(np.diff(line.weight_var), np.diff(line.bias_var))
    assert steps.max() < 0.1 and np.all(np.diff(line.bias_var) != 0)
    assert line.weight_var_at(0.05) == pytest.approx(1.7610, abs=1e-3)
    assert line.weight_var_at(0.05) == pytest.approx(critical_weight_var("tanh", 0.05), abs=1e-12)
    # every traced point is critical: chi_1 = 1 at its own length fixed point
    for k in (1, len(line) // 2, len(line) - 1):
        r = criticality("tanh", line.weight_var[k], line.bias_var[k])
        assert r.chi_1 == pytest.approx(1.0, abs=1e-9)
        assert r.q_star == pytest.approx(line.q_star[k], rel=1e-8)


def test_relu_line_is_the_point_2_0_and_erf_starts_at_pi_over_4():
    line = critical_line("relu")
    assert len(line) == 1 and line.weight_var[0] == pytest.approx(2.0, abs=1e-12) and line.bias_var[0] == 0.0
    erf = critical_line("erf", bias_max=0.1)
    assert erf.weight_var[np.argmin(erf.bias_var)] == pytest.approx(math.pi / 4, rel=1e-7)
    assert critical_line("sign").notes and "infinite" in critical_line("sign").notes[0]


def test_input_drive_shifts_the_line():
    # (C0): a drive input_var * input_power acts as extra bias variance
    driven = critical_line("erf", bias_max=0.2, input_var=0.5, input_power=0.2)
    assert driven.weight_var_at(0.05) == pytest.approx(critical_weight_var("erf", 0.15), rel=1e-10)


@pytest.mark.parametrize("name", ["tanh", "erf", "relu"])
def test_maps_agree_with_scalar_criticality(name):
    pd = phase_diagram(name, weight_range=(0.5, 3.5), bias_range=(0.0, 0.2), resolution=(13, 7))
    assert pd.lyapunov.shape == (7, 13) and np.isfinite(pd.lyapunov).all()
    rng = np.random.default_rng(1)
    for _ in range(5):
        i, j = rng.integers(7), rng.integers(13)
        r = criticality(name, pd.weight_var[j], pd.bias_var[i])
        assert ["ordered", "critical", "chaotic", "unbounded"][pd.phase[i, j]] == r.phase
        assert pd.lyapunov[i, j] == pytest.approx(r.lyapunov, abs=1e-7)
        assert pd.c_star[i, j] == pytest.approx(r.c_star, abs=1e-5)
        assert pd.chi_c[i, j] == pytest.approx(r.chi_c, abs=2e-5)      # spline derivative for chi_c
        if r.xi_c < 50:
            assert pd.xi_c[i, j] == pytest.approx(r.xi_c, rel=1e-4)
        if math.isfinite(r.q_star):
            assert pd.q_star[i, j] == pytest.approx(r.q_star, rel=1e-6, abs=1e-12)
    # the sign change of lambda along every row lies within one grid step of the traced line
    dw = pd.weight_var[1] - pd.weight_var[0]
    for i, b in enumerate(pd.bias_var):
        chaotic = np.nonzero(pd.lyapunov[i] > 0)[0]
        if len(chaotic) and chaotic[0] > 0 and name != "relu":
            crossing = pd.weight_var[chaotic[0]]
            assert abs(crossing - pd.line.weight_var_at(b)) <= dw + 1e-12
    if name == "relu":
        # the length diverges for weight_var >= 2 (q' = (weight_var / 2) q + bias_var), except at (2, 0)
        W, B = np.meshgrid(pd.weight_var, pd.bias_var)
        assert np.array_equal(pd.phase == 3, (W > 2.0) | ((W == 2.0) & (B > 0)))
        assert pd.phase[0, list(pd.weight_var).index(2.0)] == 1


@pytest.mark.parametrize("kwargs, words", [
    ({"resolution": (1, 5)}, "resolution\\[0\\] must be an integer >= 2"),
    ({"resolution": 10}, "resolution must be a pair"),
    ({"weight_range": (2.0, 1.0)}, "weight_range must satisfy min < max"),
    ({"bias_range": (-0.1, 0.2)}, "bias_range must be a finite number >= 0"),
    ({"input_power": -1.0}, "input_power"),
])
def test_phase_diagram_errors(kwargs, words):
    with pytest.raises(ValueError, match=words):
        phase_diagram("erf", **kwargs)


def test_exports():
    assert netfield.mean_field_criticality is criticality and netfield.phase_diagram is phase_diagram
