"""The independent GP4A-style GRU kernel reference (gru_gp4a_reference.py) checked on its own.

(a) T = 1 against the direct formula E[h_1 h_1'] = E[sig sig'] E[erf erf'];
(b) against brute-force simulations of finite GRUs (numpy): width 1000 x 40 networks, every entry
    of E[h_t(a) h_s(b)] within 4 standard errors; the O(1/n) finite-width bias is bounded with a
    width-16 simulation (many networks), which shows it is < 10% of the width-1000 error bars;
(c) with both gates open the reference equals the simple erf-RNN recursion to 1e-12.
Pure numpy/scipy: netfield is not imported.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special
from scipy.stats import multivariate_normal

_spec = importlib.util.spec_from_file_location("gru_gp4a_reference",
                                               Path(__file__).with_name("gru_gp4a_reference.py"))
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

X = np.random.default_rng(0).normal(size=(3, 3, 2))  # N = 3 patterns, T = 3 steps, d = 2


def sig(u):
    return 0.5 * (1.0 + special.erf(u))


def _mm(a, b):
    """Stacked matmul; a single network uses the (faster) 2-d BLAS call."""
    return (a[0] @ b[0])[None] if a.shape[0] == 1 else a @ b


def simulate(x, width, nets, seed, weight_var=1.0, input_var=1.0, bias_var=1.0, batch=1):
    """Empirical (1/n) h_t(a).h_s(b) of `nets` random GRUs: array (nets, T, T, N, N)."""
    n_pat, n_t, d = x.shape
    rng = np.random.default_rng(seed)
    sw, su, sb = math.sqrt(weight_var / width), math.sqrt(input_var / d), math.sqrt(bias_var)
    out = np.empty((nets, n_t, n_t, n_pat, n_pat))
    for start in range(0, nets, batch):
        k = min(batch, nets - start)
        w = rng.standard_normal((3, k, width, width), dtype=np.float32)  # float32: 2.5x faster sampling;
        # rounding (~1e-7 relative) is negligible against the ~1e-3 standard errors
        u = rng.standard_normal((3, k, width, d)) * su
        b = rng.standard_normal((3, k, width, 1)) * sb
        h = np.zeros((k, width, n_pat))
        states = []
        for t in range(n_t):
            xt = x[:, t, :].T  # (d, N)
            h32 = h.astype(np.float32)
            z = sig(sw * _mm(w[0], h32) + u[0] @ xt + b[0])
            r = sig(sw * _mm(w[1], h32) + u[1] @ xt + b[1])
            hc = special.erf(sw * _mm(w[2], (r * h).astype(np.float32)) + u[2] @ xt + b[2])
            h = (1.0 - z) * h + z * hc
            states.append(h)
        hs = np.stack(states, axis=1)  # (k, T, n, N)
        out[start:start + k] = np.einsum("ktia,ksib->ktsab", hs, hs) / width
    return out


@pytest.fixture(scope="module")
def theory():
    return ref.gru_state_kernel(X)


def test_orthant_closed_forms_match_scipy():
    rng = np.random.default_rng(1)
    for dim in (2, 3):
        b = rng.normal(size=(dim, dim))
        w = b @ b.T + 0.5 * np.eye(dim)
        exact = multivariate_normal(mean=np.zeros(dim), cov=w, abseps=1e-8, releps=1e-8,
                                    seed=0).cdf(np.zeros(dim))
        assert abs(ref.orthant(w) - exact) < 1e-7
    assert ref.orthant(np.eye(5)) == pytest.approx(1 / 32, abs=1e-6)


def test_t1_direct_formula():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(4, 1, 3))
    wv, iv, bv = 1.7, 0.6, 0.3
    k = iv * x[:, 0] @ x[:, 0].T / 3 + bv  # h_0 = 0: only inputs and bias drive every gate at t = 1
    dg = np.diag(k)
    ee = 2 / np.pi * np.arcsin(2 * k / np.sqrt(np.outer(1 + 2 * dg, 1 + 2 * dg)))
    expected = (0.25 + ee / 4) * ee  # E[z z'] E[hc hc']
    state = ref.gru_state_kernel(x, wv, iv, bv)
    assert state.shape == (1, 1, 4, 4)
    np.testing.assert_allclose(state[0, 0], expected, rtol=0, atol=1e-14)
    np.testing.assert_allclose(ref.gru_state_kernel(x, wv, iv, bv, update_gate_open=True)[0, 0], ee,
                               rtol=0, atol=1e-14)
    np.testing.assert_allclose(ref.gru_readout_kernel(x, 2.0, 0.5, weight_var=wv, input_var=iv, bias_var=bv),
                               2.0 * expected + 0.5, rtol=0, atol=1e-14)


def test_both_gates_open_is_the_simple_rnn():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 4, 2))
    n_pat, n_t, d = x.shape
    wv, iv, bv = 1.3, 0.8, 0.2
    gram = np.einsum("atd,bsd->tsab", x, x) / d
    # simple erf-RNN, h_t = erf(W h_{t-1} + U x_t + b): C_ts = wv E[h_{t-1} h_{s-1}] + iv gram + bv
    cov = np.zeros((n_t, n_t, n_pat, n_pat))
    hh = np.zeros_like(cov)
    for t in range(n_t):
        for s in range(t + 1):  # C_ts, C_st need E[h_{t-1} h_{s-1}]: both times < t, already known
            for u, v in ((t, s), (s, t)):
                prev = hh[u - 1, v - 1] if u > 0 and v > 0 else 0.0
                cov[u, v] = wv * prev + iv * gram[u, v] + bv
        for s in range(t + 1):  # E[h_t h_s] needs C_tt, C_ss, C_ts
            for u, v in ((t, s), (s, t)):
                du, dv = np.diag(cov[u, u]), np.diag(cov[v, v])
                hh[u, v] = 2 / np.pi * np.arcsin(2 * cov[u, v] / np.sqrt(np.outer(1 + 2 * du, 1 + 2 * dv)))
    got = ref.gru_state_kernel(x, wv, iv, bv, update_gate_open=True, reset_gate_open=True)
    np.testing.assert_allclose(got, hh, rtol=0, atol=1e-12)


def _zscores(theory, sim):
    mean = sim.mean(axis=0)
    se = sim.std(axis=0, ddof=1) / math.sqrt(sim.shape[0])
    return (mean - theory) / se, mean, se


def test_against_finite_width_simulation(theory):
    sim = simulate(X, width=1000, nets=40, seed=11)
    z, _, se = _zscores(theory, sim)
    print(f"\nwidth 1000 x 40 nets: max|z| = {np.abs(z).max():.2f}, standard errors "
          f"{se.min():.2e}..{se.max():.2e}")
    assert np.all(np.abs(z) < 4), np.abs(z).max()
    # O(1/n) bias: at width 16 (20000 nets, error bars as small as above) every entry is within
    # 4 se as well; the bias bound there, scaled by 16/1000, is far below the width-1000 error bars.
    small = simulate(X, width=16, nets=20000, seed=12, batch=500)
    z16, mean16, se16 = _zscores(theory, small)
    bias_bound_1000 = (np.abs(mean16 - theory) + 2 * se16).max() * 16 / 1000
    print(f"width 16 x 20000 nets: max|z| = {np.abs(z16).max():.2f}; 1/n bias at width 1000 "
          f"<= {bias_bound_1000:.1e} vs se >= {se.min():.1e}")
    assert np.all(np.abs(z16) < 4), np.abs(z16).max()
    assert bias_bound_1000 < 0.1 * se.min()


def test_flags_and_shapes(theory):
    assert theory.shape == (3, 3, 3, 3)
    np.testing.assert_allclose(theory, theory.transpose(1, 0, 3, 2), atol=0)  # S[t,s][a,b] = S[s,t][b,a]
    assert np.all(np.linalg.eigvalsh(theory.transpose(0, 2, 1, 3).reshape(9, 9)) > -1e-5)  # a covariance


def test_update_gate_open_is_a_reset_gated_rnn():
    # z = 1: h_t = erf(W_h (r_t * h_{t-1}) + U_h x_t + b_h), r_t = sig(W_r h_{t-1} + U_r x_t + b_r)
    x = X[:2]
    n_pat, n_t, d = x.shape
    wv, iv, bv = 1.5, 0.7, 0.4
    gram = np.einsum("atd,bsd->tsab", x, x) / d
    kr = np.zeros((n_t, n_t, n_pat, n_pat))
    kh, hh = np.zeros_like(kr), np.zeros_like(kr)

    def erf_erf(kuu, kvv, kuv):
        return 2 / np.pi * np.arcsin(2 * kuv / np.sqrt(np.outer(1 + 2 * kuu, 1 + 2 * kvv)))

    for t in range(n_t):
        for s in range(t + 1):
            for u, v in ((t, s), (s, t)):
                prev = hh[u - 1, v - 1] if u > 0 and v > 0 else 0.0
                kr[u, v] = wv * prev + iv * gram[u, v] + bv
        for s in range(t + 1):
            for u, v in ((t, s), (s, t)):
                prev = hh[u - 1, v - 1] if u > 0 and v > 0 else 0.0
                rr = 0.25 + 0.25 * erf_erf(np.diag(kr[u, u]), np.diag(kr[v, v]), kr[u, v])
                kh[u, v] = wv * rr * prev + iv * gram[u, v] + bv
        for s in range(t + 1):
            for u, v in ((t, s), (s, t)):
                hh[u, v] = erf_erf(np.diag(kh[u, u]), np.diag(kh[v, v]), kh[u, v])
    got = ref.gru_state_kernel(x, wv, iv, bv, update_gate_open=True)
    np.testing.assert_allclose(got, hh, rtol=0, atol=1e-12)
    both_open = ref.gru_state_kernel(x, wv, iv, bv, update_gate_open=True, reset_gate_open=True)
    assert not np.allclose(got, both_open)
