"""Closed-form Gaussian expectations against the panel rule, Monte Carlo and reference values.

For (u, v) ~ N(0, [[cuu, cuv], [cuv, cvv]]) every activation with a closed form provides
pair = E[phi(u) phi(v)], dpair = E[phi'(u) phi'(v)] and d2pair = E[phi''(u) phi(v)] (docs/theory.md 2.1;
gauss/activations.py). Independent routes must agree: the closed forms, the numerical 'panels' rule
(gauss/quadrature.py), Monte Carlo (gauss/montecarlo.py), autodiff / finite differences of the
closed forms (Price's theorem) and the stored reference values (tests/data/).
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import netfield as nf
from netfield import gauss

CLOSED_FORM = ["linear", "relu", "leaky_relu", "erf", "sign", "step", "sin", "cos"]
JUMPS = {"sign", "step"}              # phi itself jumps: dpair, d2pair infinite at |c| = 1
OSCILLATING = {"sin", "cos"}
REFERENCE = Path(__file__).parent.parent / "data" / "gaussian_expectations.json"
FUNCTIONS = {"pair": gauss.pair, "dpair": gauss.dpair, "d2pair": gauss.d2pair}

RTOL = 1e-8            # closed vs panels, relative ...
ATOL_FRACTION = 1e-10  # ... or absolute in units of the quantity's natural scale (near-zero values)
ULPS = 4               # cuv is only defined to a few ulp (see _roundoff)
EPS = 2.0 ** -52


def _f(x) -> float:
    return float(np.asarray(x))


# ---------------------------------------------------------------------------------------------
# closed form vs panels, property-based over valid covariances

def _variances(top_exponent):
    return st.floats(min_value=-6.0, max_value=top_exponent).map(lambda e: 10.0 ** e)


CORRELATIONS = st.one_of(
    st.floats(min_value=-1.0, max_value=1.0),
    st.sampled_from([1.0, -1.0, 1.0 - 1e-9, -1.0 + 1e-9, 1.0 - 1e-6, 0.5, 0.0]),
)


def _cov(cuu, cvv, c):
    return cuu, cvv, c * math.sqrt(cuu * cvv)


def _scale(quantity, name, cuu, cvv):
    """Natural absolute scale of each quantity (Cauchy-Schwarz bounds), for near-zero values."""
    if quantity == "pair":
        return math.sqrt(_f(gauss.pair(name, cuu, cuu, cuu)) * _f(gauss.pair(name, cvv, cvv, cvv)))
    if quantity == "dpair":
        dd = _f(gauss.dpair(name, cuu, cuu, cuu)) * _f(gauss.dpair(name, cvv, cvv, cvv))
        return math.sqrt(dd) if math.isfinite(dd) else 0.0
    # E[phi''(u) phi(v)]: phi'' ~ phi / u^2, and one factor of u is taken by the Gaussian density
    return math.sqrt(_f(gauss.pair(name, cvv, cvv, cvv)) / cuu)


def _roundoff(fn, name, cuu, cvv, cuv):
    """How much the closed form moves when cuv moves by a few ulp.

    At |c| = 1 the maps have square-root singularities (E[step step] = (pi - arccos c) / 2pi): one
    ulp of c changes it by sqrt(2.2e-16) / 2pi = 2.4e-9. Whether c = cuv / sqrt(cuu cvv) rounds to
    exactly 1 or to 1 - ulp differs between the eager closed form and the jitted rule, so this much
    disagreement is the conditioning of the problem, not an error of either method.
    """
    moved = cuv * (1.0 + np.array([-1.0, 0.0, 1.0]) * ULPS * EPS)
    vals = np.asarray(fn(name, cuu, cvv, moved, method="closed"))
    finite = vals[np.isfinite(vals)]
    return float(np.max(np.abs(finite - vals[1]))) if finite.size == 3 else 0.0


def check_closed_vs_panels(quantity, name, cuu, cvv, c):
    fn = FUNCTIONS[quantity]
    cov = _cov(cuu, cvv, c)
    closed = _f(fn(name, *cov, method="closed"))
    if quantity != "pair" and name in JUMPS and abs(c) == 1.0:
        # E[phi' phi'] and E[phi'' phi] hold delta(u) delta(v) on the line u = +-v: infinite (or, when
        # c rounds to 1 - ulp, ~1/sqrt(ulp)); no finite value to compare
        assert abs(closed) > 1e6
        return
    panels = _f(fn(name, *cov, method="panels"))
    assert math.isfinite(closed) and math.isfinite(panels), (quantity, name, cov, closed, panels)
    err = abs(closed - panels)
    allowed = max(RTOL * abs(closed), ATOL_FRACTION * _scale(quantity, name, cuu, cvv))
    allowed += _roundoff(fn, name, *cov)
    assert err <= allowed, (
        f"{quantity} {name} {cov}: closed {closed!r} vs panels {panels!r} (err {err:.3e} > {allowed:.3e})"
    )


@pytest.mark.parametrize("name", CLOSED_FORM)
@pytest.mark.parametrize("quantity", list(FUNCTIONS))
@settings(max_examples=20, deadline=None, derandomize=True, database=None)
@given(data=st.data())
def test_closed_forms_match_panels(quantity, name, data):
    # sin/cos oscillate sqrt(q) times faster in z than the fixed panels resolve: the rule is accurate
    # to 1e-10 for q <= 4 only (the larger variances are test_panels_underresolve_sin_cos_at_large_variance)
    top = math.log10(4.0) if name in OSCILLATING else 1.0
    cuu, cvv = data.draw(_variances(top), "cuu"), data.draw(_variances(top), "cvv")
    c = data.draw(CORRELATIONS, "c")
    if quantity == "d2pair" and name == "erf":
        # the rule reaches only ~1e-8 relative for E[erf'' erf] at variances ~0.1-0.2
        # (test_panels_erf_d2pair_at_variance_near_one_tenth)
        cuu, cvv = max(cuu, 0.3), max(cvv, 0.3)
    if quantity != "pair" and name in JUMPS and abs(c) < 1e-2:
        # autodiff of the rule is wrong at c = 0 and loses digits for small |c|
        # (test_panels_derivatives_of_jump_activations_near_zero_correlation)
        c = 1e-2 if c >= 0 else -1e-2
    check_closed_vs_panels(quantity, name, cuu, cvv, c)


FIXED_POINTS = [  # the |c| -> 1 and tiny-variance corners, always checked
    (1.0, 1.0, 1.0 - 1e-9), (1.0, 4.0, -1.0 + 1e-9), (1e-6, 1e-6, 0.99), (1e-6, 1.0, 0.3),
    (2.0, 2.0, 1.0), (3.0, 0.5, -1.0), (1.0, 2.0, 0.0), (1e-6, 3.0, 1.0 - 1e-9),
]


@pytest.mark.parametrize("name", CLOSED_FORM)
@pytest.mark.parametrize("quantity", list(FUNCTIONS))
def test_closed_forms_match_panels_at_corners(quantity, name):
    for cuu, cvv, c in FIXED_POINTS:
        if quantity != "pair" and name == "sign" and c == 0.0:
            continue  # known defect, see test_panels_derivatives_of_jump_activations_at_zero_correlation
        check_closed_vs_panels(quantity, name, cuu, cvv, c)


@pytest.mark.xfail(strict=True, reason=(
    "known defect: the panel rule (8 Gauss-Legendre nodes per panel) reaches only 1.2e-8 relative "
    "for E[erf'' erf] at variances ~0.1; 10 nodes per panel give 1e-11, but cost 1.6x on the "
    "numerical kernel path"))
def test_panels_erf_d2pair_at_variance_near_one_tenth():
    check_closed_vs_panels("d2pair", "erf", 0.1333521432163324, 0.1778279410038923, -0.9)


@pytest.mark.xfail(strict=True, reason=(
    "known defect: with 8 uniform panels of 8 nodes on [-10, 10], sin(sqrt(q) z) is under-resolved "
    "for q >~ 8: absolute error 2e-7 at q = 10 and 4e-7 at q = 100 (closed forms are used by "
    "method='auto', so kernels are unaffected)"))
@pytest.mark.parametrize("name", sorted(OSCILLATING))
def test_panels_underresolve_sin_cos_at_large_variance(name):
    for cov in [(10.0, 10.0, 0.0), (10.0, 10.0, 3.0), (100.0, 1.0, 5.0)]:
        for quantity in FUNCTIONS:
            check_closed_vs_panels(quantity, name, *cov[:2], cov[2] / math.sqrt(cov[0] * cov[1]))


@pytest.mark.xfail(strict=True, reason=(
    "known defect: for activations with jumps (sign, step) method='panels' gets dpair / d2pair by "
    "autodiff of the rule through moving panel breaks; at c = 0 the moving break coincides with the "
    "fixed grid point z = 0 and half of the delta term is lost (dpair = 0.225 instead of 0.450 for "
    "sign at cov (1, 2, 0)); for 0 < |c| < 1e-154 the break derivative overflows to NaN"))
@pytest.mark.parametrize("name, c", [("sign", 0.0), ("sign", 1e-200), ("step", 1e-200)])
def test_panels_derivatives_of_jump_activations_at_zero_correlation(name, c):
    check_closed_vs_panels("dpair", name, 1.0, 2.0, c)
    check_closed_vs_panels("d2pair", name, 1.0, 2.0, c)


@pytest.mark.xfail(strict=True, reason=(
    "known defect (same mechanism as at c = 0): near c = 0 the moving panel break of a jump activation "
    "sits next to the fixed grid point z = 0 and d2pair loses digits: for step at variances (0.178, 1.0), "
    "c = 1e-3 the panels are off by 2.0e-10 (1.2x the 1e-10-relative tolerance); found by hypothesis in a "
    "fresh environment"))
def test_panels_derivatives_of_jump_activations_near_zero_correlation():
    check_closed_vs_panels("d2pair", "step", 0.1778279410038923, 1.0, 1e-3)


def test_whole_kernel_blocks_in_one_call():
    """Closed forms and panels broadcast over kernel matrices (the way the interpreter calls them)."""
    rng = np.random.default_rng(0)
    q1, q2 = rng.uniform(0.2, 3.0, 5), rng.uniform(0.2, 3.0, 4)
    cov = rng.uniform(-1, 1, (5, 4)) * np.sqrt(np.outer(q1, q2))
    for name in ("relu", "erf", "step"):
        closed = np.asarray(gauss.pair(name, q1[:, None], q2[None, :], cov))
        panels = np.asarray(gauss.pair(name, q1[:, None], q2[None, :], cov, method="panels"))
        assert closed.shape == (5, 4)
        scalar = [[_f(gauss.pair(name, q1[i], q2[j], cov[i, j])) for j in range(4)] for i in range(5)]
        np.testing.assert_allclose(closed, scalar, rtol=1e-14, atol=0)
        np.testing.assert_allclose(panels, closed, rtol=1e-8, atol=1e-10)


# ---------------------------------------------------------------------------------------------
# Monte Carlo: closed forms within 5 standard errors

MC_POINTS = [(1.0, 2.0, 0.7), (2.0, 1.5, -0.9), (0.3, 3.0, 0.5)]
CONTINUOUS = [n for n in CLOSED_FORM if n not in JUMPS]  # phi' is a function: E[phi' phi'] by sampling


def _check_mc(exact, mean, sem, what):
    if sem == 0.0:  # e.g. linear: phi' = 1, every sample is exact
        assert mean == pytest.approx(exact, rel=1e-12), what
    else:
        assert abs(mean - exact) < 5 * sem, f"{what}: exact {exact}, MC {mean} +- {sem}"


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_pair_matches_monte_carlo(name):
    for k, cov in enumerate(MC_POINTS):
        mean, sem = gauss.pair_mc(name, *cov, samples=200_000, seed=10 + k)
        _check_mc(_f(gauss.pair(name, *cov, method="closed")), mean, sem, f"pair {name} {cov}")


@pytest.mark.parametrize("name", CONTINUOUS)
def test_dpair_matches_monte_carlo(name):
    for k, cov in enumerate(MC_POINTS):
        mean, sem = gauss.pair_mc(name, *cov, samples=200_000, seed=20 + k, derivative=1)
        _check_mc(_f(gauss.dpair(name, *cov, method="closed")), mean, sem, f"dpair {name} {cov}")


def _d2pair_mc(name, cuu, cvv, cuv, samples=200_000, seed=0):
    """E[phi''(u) phi(v)] by sampling (smooth phi only: relu's phi'' is a delta)."""
    act = nf.get_activation(name)
    d2 = jnp.vectorize(jax.grad(jax.grad(act.fn)))
    chol = np.linalg.cholesky(np.array([[cuu, cuv], [cuv, cvv]]))
    z = np.asarray(jax.random.normal(jax.random.PRNGKey(seed), (samples, 2)))
    uv = z @ chol.T
    vals = np.asarray(d2(jnp.asarray(uv[:, 0])) * act.fn(jnp.asarray(uv[:, 1])))
    return vals.mean(), vals.std(ddof=1) / math.sqrt(samples)


@pytest.mark.parametrize("name", ["linear", "erf", "sin", "cos"])
def test_d2pair_matches_monte_carlo(name):
    for k, cov in enumerate(MC_POINTS):
        mean, sem = _d2pair_mc(name, *cov, seed=30 + k)
        _check_mc(_f(gauss.d2pair(name, *cov, method="closed")), mean, sem, f"d2pair {name} {cov}")


def test_monte_carlo_detects_a_wrong_value():
    """The 5-standard-error criterion has teeth: a 5% error in E[relu relu] is far outside it."""
    mean, sem = gauss.pair_mc("relu", 1.0, 2.0, 0.7, samples=200_000, seed=1)
    exact = _f(gauss.pair("relu", 1.0, 2.0, 0.7))
    assert abs(mean - 1.05 * exact) > 5 * sem


# ---------------------------------------------------------------------------------------------
# reference values

def test_reference_gaussian_expectations():
    ref = json.loads(REFERENCE.read_text())
    assert len(ref["cases"]) >= 2
    for case in ref["cases"]:
        cov = tuple(case["cov"])
        for method in ("auto", "panels"):
            got = {
                "erf_erf": gauss.pair("erf", *cov, method=method),
                "derf_derf": gauss.dpair("erf", *cov, method=method),
                "relu_relu": gauss.pair("relu", *cov, method=method),
                "drelu_drelu": gauss.dpair("relu", *cov, method=method),
            }
            for key, value in got.items():
                # values are printed with 7 decimals: rounding error <= 5e-8
                assert abs(_f(value) - case[key]) <= 5e-8 + 1e-12, (key, cov, method, _f(value), case[key])


# ---------------------------------------------------------------------------------------------
# Price's theorem: d pair / d cuv = dpair, 2 d pair / d cuu = d2pair

PRICE_POINTS = [(1.0, 2.0, 0.7), (2.0, 1.5, -0.9), (0.3, 0.8, 0.1), (4.0, 0.5, -1.2)]


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_price_theorem_autodiff_of_closed_forms(name):
    """Autodiff of the raw closed form of pair (no custom derivative rule) gives dpair and d2pair:
    three independently written formulas are consistent, off the diagonal."""
    act = nf.get_activation(name)
    grad_uv = jax.grad(act.pair, argnums=2)
    grad_uu = jax.grad(act.pair, argnums=0)
    grad_vv = jax.grad(act.pair, argnums=1)
    for cov in PRICE_POINTS:
        cov = tuple(jnp.float64(v) for v in cov)
        np.testing.assert_allclose(_f(grad_uv(*cov)), _f(act.dpair(*cov)), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(2 * _f(grad_uu(*cov)), _f(act.d2pair(*cov)), rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(2 * _f(grad_vv(*cov)), _f(act.d2pair(cov[1], cov[0], cov[2])),
                                   rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("name", CLOSED_FORM)
def test_price_theorem_grad_of_public_pair(name):
    """jax.grad of gauss.pair equals dpair / d2pair / 2, and so do central finite differences."""
    g_uv = jax.grad(gauss.pair, argnums=3)
    g_uu = jax.grad(gauss.pair, argnums=1)
    for cuu, cvv, cuv in PRICE_POINTS:
        dp = _f(gauss.dpair(name, cuu, cvv, cuv))
        d2 = _f(gauss.d2pair(name, cuu, cvv, cuv))
        np.testing.assert_allclose(_f(g_uv(name, cuu, cvv, cuv)), dp, rtol=1e-12, atol=1e-14)
        np.testing.assert_allclose(2 * _f(g_uu(name, cuu, cvv, cuv)), d2, rtol=1e-12, atol=1e-14)
        h = 1e-5
        fd_uv = (_f(gauss.pair(name, cuu, cvv, cuv + h)) - _f(gauss.pair(name, cuu, cvv, cuv - h))) / (2 * h)
        fd_uu = (_f(gauss.pair(name, cuu + h, cvv, cuv)) - _f(gauss.pair(name, cuu - h, cvv, cuv))) / (2 * h)
        np.testing.assert_allclose(fd_uv, dp, rtol=1e-6, atol=1e-9)
        np.testing.assert_allclose(2 * fd_uu, d2, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("q", [0.25, 1.0, 3.0])
def test_price_gradients_finite_on_the_diagonal(q):
    """At c = 1 (the diagonal of every kernel) autodiff of arccos / arcsin gives inf * 0; gauss.pair's
    gradients must be finite and equal the known values: relu dpair = 1/2, d2pair = 0;
    erf dpair = (4/pi) / sqrt(1 + 4q), d2pair = -8q / (pi (1 + 2q) sqrt(1 + 4q))."""
    expected = {
        "relu": (0.5, 0.0),
        "erf": (4 / math.pi / math.sqrt(1 + 4 * q), -8 * q / (math.pi * (1 + 2 * q) * math.sqrt(1 + 4 * q))),
    }
    for name, (dp, d2) in expected.items():
        g = jax.grad(gauss.pair, argnums=(1, 2, 3))(name, q, q, q)
        g = [_f(v) for v in g]
        assert all(math.isfinite(v) for v in g), (name, g)
        assert g[2] == pytest.approx(dp, rel=1e-12, abs=1e-15)
        assert 2 * g[0] == pytest.approx(d2, rel=1e-12, abs=1e-15)
        assert 2 * g[1] == pytest.approx(d2, rel=1e-12, abs=1e-15)
        # the derivative along the diagonal (all three entries move) is d/dq E[phi(u)^2]
        along = _f(jax.grad(lambda s, name=name: gauss.pair(name, s, s, s))(q))
        h = 1e-5
        fd = (_f(gauss.pair(name, q + h, q + h, q + h)) - _f(gauss.pair(name, q - h, q - h, q - h))) / (2 * h)
        assert along == pytest.approx(fd, rel=1e-7)


# ---------------------------------------------------------------------------------------------
# kinks: user callables, and why the 'hermite' rule is not the default

def test_user_callable_with_kink_reproduces_relu():
    act = nf.get_activation(lambda x: jnp.maximum(x, 0.0), kinks=(0.0,))
    assert not act.has_closed_form
    for cov in [(1.0, 2.0, 0.7), (2.0, 1.5, -0.9), (100.0, 1.0, 5.0), (1.0, 1.0, 1.0 - 1e-9),
                (1e-6, 1.0, 1e-4), (0.5, 0.5, 0.5)]:
        for fn in (gauss.pair, gauss.dpair, gauss.d2pair):  # d2pair: the kink's delta term
            exact = _f(fn("relu", *cov))
            got = _f(fn(act, *cov))
            assert abs(got - exact) <= 1e-8 * abs(exact) + _roundoff(fn, "relu", *cov) + 1e-15, (
                fn.__name__, cov, got, exact)


def test_user_callable_kernel_equals_relu_kernel():
    x = np.random.default_rng(1).normal(size=(5, 3))
    custom = nf.kernel(nf.dnn(3, lambda x: jnp.maximum(x, 0.0), weight_var=2.0, bias_var=0.1, kinks=(0.0,)), x)
    exact = nf.kernel(nf.dnn(3, "relu", weight_var=2.0, bias_var=0.1), x)
    np.testing.assert_allclose(np.asarray(custom), np.asarray(exact), rtol=1e-8)


def test_hermite_is_inaccurate_for_relu_but_panels_is_not():
    covs = [(1.0, 2.0, 0.7), (1.0, 1.0, 0.0), (1.0, 1.0, 0.999), (1.0, 1.0, -0.999)]
    exact = np.array([_f(gauss.pair("relu", *c)) for c in covs])
    hermite = np.array([_f(gauss.pair("relu", *c, method="hermite")) for c in covs])
    panels = np.array([_f(gauss.pair("relu", *c, method="panels")) for c in covs])
    assert np.max(np.abs(hermite - exact)) > 1e-4           # 1.2e-3 at (1, 2, 0.7)
    assert np.max(np.abs(hermite - exact) / np.abs(exact)) > 0.5  # ~100% at c = -0.999
    np.testing.assert_allclose(panels, exact, rtol=1e-8)
    # and the same for the derivative: E[step step] by Gauss-Hermite is off by ~7e-3
    dh = _f(gauss.dpair("relu", 1.0, 2.0, 0.7, method="hermite"))
    assert abs(dh - _f(gauss.dpair("relu", 1.0, 2.0, 0.7))) > 1e-3


def test_hermite_is_accurate_for_smooth_erf():
    """The contrast: Gauss-Hermite is fine for an entire function at moderate variance."""
    for cov in [(1.0, 2.0, 0.7), (0.5, 0.5, -0.2)]:
        assert _f(gauss.pair("erf", *cov, method="hermite")) == pytest.approx(_f(gauss.pair("erf", *cov)), rel=1e-10)


# ---------------------------------------------------------------------------------------------
# dispatch

def test_method_dispatch_and_errors():
    with pytest.raises(ValueError, match=r"method must be one of .*got 'simpson'"):
        gauss.pair("erf", 1.0, 1.0, 0.5, method="simpson")
    with pytest.raises(ValueError, match=r"method='closed' needs an activation with a closed form, got 'tanh'"):
        gauss.pair("tanh", 1.0, 1.0, 0.5, method="closed")
    for name in CLOSED_FORM:
        assert nf.get_activation(name).has_closed_form
    for name in ("tanh", "sigmoid", "softplus", "gelu", "swish", "elu", "hard_tanh"):
        assert not nf.get_activation(name).has_closed_form


def test_leaky_relu_slope_validation_and_limits():
    with pytest.raises(ValueError, match=r"slope must be a number in \[0, 1\], got -0.5"):
        nf.leaky_relu(-0.5)
    # slope 1 is the identity: the leaky closed forms reduce to linear
    for fn in (gauss.pair, gauss.dpair, gauss.d2pair):
        assert _f(fn(nf.leaky_relu(1.0), 1.0, 2.0, 0.7)) == pytest.approx(_f(fn("linear", 1.0, 2.0, 0.7)), abs=1e-15)
    assert nf.leaky_relu(0.0).name == "relu"
