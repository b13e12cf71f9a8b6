"""Numerical Gaussian expectations (activations without closed forms) against adaptive scipy quadrature.

The 'panels' rule (gauss/quadrature.py) is checked against an independent nested
scipy.integrate.quad over z1, z2 with u = sqrt(cuu) z1, v = sqrt(cvv) (c z1 + sqrt(1 - c^2) z2),
written with plain Python floats (math / scipy.special), not with JAX.
"""

from __future__ import annotations

import math

import jax.numpy as jnp
import numpy as np
import pytest
from scipy import integrate, special

import netfield as nf
from netfield import gauss

NUMERICAL = ["tanh", "sigmoid", "softplus", "gelu", "swish", "elu", "hard_tanh"]

PHI = {
    "tanh": math.tanh,
    "sigmoid": lambda x: float(special.expit(x)),
    "softplus": lambda x: max(x, 0.0) + math.log1p(math.exp(-abs(x))),
    "gelu": lambda x: 0.5 * x * (1.0 + math.erf(x / math.sqrt(2.0))),
    "swish": lambda x: x * float(special.expit(x)),
    "elu": lambda x: x if x > 0 else math.expm1(x),
    "hard_tanh": lambda x: min(max(x, -1.0), 1.0),
}
DPHI = {
    "tanh": lambda x: 1.0 - math.tanh(x) ** 2,
    "softplus": lambda x: float(special.expit(x)),
    "elu": lambda x: 1.0 if x > 0 else math.exp(x),
    "hard_tanh": lambda x: 1.0 if -1.0 < x < 1.0 else 0.0,
}
D2PHI = {"tanh": lambda x: -2.0 * math.tanh(x) * (1.0 - math.tanh(x) ** 2)}
BREAKS = {"elu": (0.0,), "hard_tanh": (-1.0, 1.0)}  # where phi' (hence DPHI) is not smooth
R = 12.0
_SQ2PI = math.sqrt(2.0 * math.pi)


def _npdf(z):
    return math.exp(-0.5 * z * z) / _SQ2PI


def _quad(f, points):
    """Adaptive Gauss-Kronrod on [-R, R]; tolerance 1e-11, three orders below what the tests assert."""
    pts = sorted(p for p in points if -R < p < R)
    return integrate.quad(f, -R, R, points=pts or None, epsabs=1e-13, epsrel=1e-11, limit=400)[0]


def scipy_expect(f, g, cuu, cvv, cuv, breaks=()):
    """E[f(u) g(v)] by nested adaptive quadrature, breakpoints of f, g passed to quad."""
    su, sv = math.sqrt(cuu), math.sqrt(cvv)
    c = max(-1.0, min(1.0, cuv / (su * sv)))
    sigma = sv * math.sqrt(max(1.0 - c * c, 0.0))

    def inner(z1):
        mu = sv * c * z1
        if sigma == 0.0:
            return g(mu)
        return _quad(lambda z2: g(mu + sigma * z2) * _npdf(z2), [(k - mu) / sigma for k in breaks])

    outer_points = [k / su for k in breaks] + ([k / (sv * c) for k in breaks] if c != 0 else [])
    return _quad(lambda z1: f(su * z1) * _npdf(z1) * inner(z1), outer_points)


COVS = [(1.0, 2.0, 0.7), (100.0, 1.0, 5.0), (0.5, 0.5, -0.45), (3.0, 0.2, 0.0),
        (1.0, 1.0, 1.0 - 1e-9), (0.01, 4.0, -0.19)]


def _scale(name, cuu, cvv):
    phi = PHI[name]
    sq = [scipy_expect(phi, phi, q, q, q, BREAKS.get(name, ())) for q in (cuu, cvv)]
    return math.sqrt(sq[0] * sq[1])


@pytest.mark.parametrize("name", NUMERICAL)
def test_panels_pair_matches_scipy(name):
    phi, breaks = PHI[name], BREAKS.get(name, ())
    for cov in COVS:
        ref = scipy_expect(phi, phi, *cov, breaks)
        got = float(gauss.pair(name, *cov, method="panels"))
        err = abs(got - ref)
        # relative 1e-8, or absolute in units of sqrt(E phi(u)^2 E phi(v)^2) where E[phi phi] ~ 0
        assert err <= 1e-8 * abs(ref) or err <= 1e-10 * _scale(name, cov[0], cov[1]), (name, cov, got, ref)


@pytest.mark.parametrize("name", NUMERICAL)
def test_auto_pair_on_a_kernel_block_matches_scipy(name):
    """method='auto' on a symmetric block (diagonal: 1-D rule, off-diagonal: Mehler series or panels)."""
    q = np.array([0.3, 2.0, 25.0])
    k = np.array([[0.3, 0.5, -1.0], [0.5, 2.0, 3.0], [-1.0, 3.0, 25.0]])
    got = np.asarray(gauss.pair_kernel(name, k))
    phi, breaks = PHI[name], BREAKS.get(name, ())
    for i in range(3):
        for j in range(i, 3):
            ref = scipy_expect(phi, phi, q[i], q[j], k[i, j], breaks)
            assert abs(got[i, j] - ref) <= 1e-8 * abs(ref) + 1e-12, (name, i, j, got[i, j], ref)
            # panels integrate over (u, v) in a fixed order: the swapped entry agrees to rounding only
            assert got[j, i] == pytest.approx(got[i, j], rel=1e-10)


@pytest.mark.parametrize("name", sorted(DPHI))
def test_panels_dpair_matches_scipy(name):
    for cov in [(1.0, 2.0, 0.7), (100.0, 1.0, 5.0), (0.5, 0.5, -0.45)]:
        ref = scipy_expect(DPHI[name], DPHI[name], *cov, BREAKS.get(name, ()))
        got = float(gauss.dpair(name, *cov, method="panels"))
        assert got == pytest.approx(ref, rel=1e-8), (name, cov)


def _kink_delta_terms(name, cuu, cvv, cuv):
    """sum_k J_k N(k; 0, cuu) E[phi(v) | u = k]  (J_k = jump of phi' at k), by 1-D quadrature."""
    phi = PHI[name]
    jumps = {"hard_tanh": {-1.0: 1.0, 1.0: -1.0}, "tanh": {}}[name]
    total = 0.0
    for k, jump in jumps.items():
        mean, sd = cuv * k / cuu, math.sqrt(cvv - cuv * cuv / cuu)
        cond = _quad(lambda z, m=mean, sd=sd: phi(m + sd * z) * _npdf(z), [(b - mean) / sd for b in (-1.0, 1.0)])
        total += jump * math.exp(-0.5 * k * k / cuu) / math.sqrt(2 * math.pi * cuu) * cond
    return total


@pytest.mark.parametrize("name", ["tanh", "hard_tanh"])
def test_panels_d2pair_matches_scipy(name):
    """tanh: smooth phi''.  hard_tanh: phi'' = delta(u + 1) - delta(u - 1), the kink terms only."""
    for cov in [(1.0, 2.0, 0.7), (4.0, 1.0, -1.5), (0.5, 0.5, 0.1)]:
        smooth = scipy_expect(D2PHI[name], PHI[name], *cov) if name in D2PHI else 0.0
        ref = smooth + _kink_delta_terms(name, *cov)
        got = float(gauss.d2pair(name, *cov, method="panels"))
        assert got == pytest.approx(ref, rel=1e-8), (name, cov)


@pytest.mark.parametrize("name", ["tanh", "hard_tanh"])
def test_price_theorem_for_numerical_activations(name):
    """d pair / d cuv = dpair and 2 d pair / d cuu = d2pair for the numerical rules too
    (central differences of the panel rule)."""
    cuu, cvv, cuv = 1.5, 0.8, 0.4
    h = 1e-4

    def p(a, b, c):
        return float(gauss.pair(name, a, b, c, method="panels"))

    fd_uv = (p(cuu, cvv, cuv + h) - p(cuu, cvv, cuv - h)) / (2 * h)
    fd_uu = (p(cuu + h, cvv, cuv) - p(cuu - h, cvv, cuv)) / (2 * h)
    assert fd_uv == pytest.approx(float(gauss.dpair(name, cuu, cvv, cuv)), rel=1e-6)
    assert 2 * fd_uu == pytest.approx(float(gauss.d2pair(name, cuu, cvv, cuv)), rel=1e-6)


def test_undeclared_kink_is_less_accurate_than_declared():
    """Declaring kinks matters: the same relu as a plain callable (no kinks) is off by more."""
    fn = lambda x: jnp.maximum(x, 0.0)
    with_kinks = nf.get_activation(fn, kinks=(0.0,))
    without = nf.get_activation(lambda x: jnp.maximum(x, 0.0))
    exact = float(gauss.pair("relu", 1.0, 2.0, 0.7))
    err_with = abs(float(gauss.pair(with_kinks, 1.0, 2.0, 0.7)) - exact)
    err_without = abs(float(gauss.pair(without, 1.0, 2.0, 0.7)) - exact)
    assert err_with < 1e-8 * exact
    assert with_kinks.kinks == (0.0,) and without.kinks == ()
    assert err_without >= err_with


@pytest.mark.parametrize("name", ["tanh", "erf", "sign"])
@pytest.mark.parametrize("scale", [1e15, 1e25, 1e300])
def test_huge_variances_give_the_sign_limit(name, scale):
    """At variances q >> 1 a saturating phi is sign(u): E[phi(u) phi(v)] -> (2/pi) arcsin(c), finite, for
    c = 1, -1/2 and 0 (found by the API fuzz test: tanh at c = 1 and q ~ 1e31 gave NaN, 0 * inf where the
    panel rule maps a kink to z = inf; erf's and the correlation's products overflowed beyond ~1e154)."""
    for c in (1.0, -0.5, 0.0):
        cuu, cvv = jnp.asarray(scale), jnp.asarray(4.0 * scale)
        got = float(gauss.pair(name, cuu, cvv, jnp.asarray(2.0 * c * scale)))
        assert got == pytest.approx(2 / math.pi * math.asin(c), abs=1e-6), (name, scale, c, got)
