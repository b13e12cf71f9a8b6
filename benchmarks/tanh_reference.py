"""High-order reference for the NNGP readout kernel of a DNN with an activation that has no closed form.

The kernel recursion (docs/theory.md 2.1)

    K_1(a, b) = bias_var + input_var x_a . x_b / d
    K_t(a, b) = bias_var + weight_var E[phi(u) phi(v)]_{K_{t-1}}        t = 2..L
    K_out     = readout_var E[phi(u) phi(v)]_{K_L} + readout_bias_var

is evaluated entry by entry with a tensor-product composite Gauss-Legendre rule in standard-normal
coordinates, u = sqrt(q1) z1, v = sqrt(q2) (c z1 + sqrt(1 - c^2) z2), z1, z2 ~ N(0, 1):

    E[phi(u) phi(v)] = sum_i sum_j w_i w_j phi(u(z1_i)) phi(v(z1_i, z2_j)),

with nodes on [-zmax, zmax] (default zmax = 10: the Gaussian mass outside is < 2e-23) split into
equal panels of ``order`` Gauss-Legendre nodes each, w = Legendre weight x normal density. For an
analytic phi such as tanh (poles at +-i pi/2) and sqrt(q) <~ 2, panels of width 0.5 with 10 nodes
converge far below 1e-12; :func:`self_check` confirms it on the (q1, q2, c) triples the recursion
actually visits, against a rule with twice the panels and more nodes, and against scipy's nested
adaptive quadrature (``scipy.integrate.dblquad``) on a few of them.

numpy only (plus scipy for the self-check): independent of both libraries being measured.
"""

from __future__ import annotations

import numpy as np

RULE = {"zmax": 10.0, "panels": 40, "order": 10}  # the reference rule
FINER_RULE = {"zmax": 12.0, "panels": 96, "order": 14}  # its accuracy check


def panel_rule(zmax: float = RULE["zmax"], panels: int = RULE["panels"], order: int = RULE["order"]):
    """Nodes z and weights w (normal density included) of the composite Gauss-Legendre rule."""
    t, wt = np.polynomial.legendre.leggauss(order)
    edges = np.linspace(-zmax, zmax, panels + 1)
    half = 0.5 * np.diff(edges)
    mid = 0.5 * (edges[1:] + edges[:-1])
    z = (mid[:, None] + half[:, None] * t[None, :]).ravel()
    w = (half[:, None] * wt[None, :]).ravel() * np.exp(-0.5 * z * z) / np.sqrt(2.0 * np.pi)
    return z, w


def pair_expectation(phi, q1, q2, c, rule, batch: int = 16):
    """E[phi(u) phi(v)] for arrays q1, q2 (variances) and c (correlations) of the same shape."""
    q1, q2, c = (np.asarray(a, dtype=np.float64).ravel() for a in np.broadcast_arrays(q1, q2, c))
    z, w = rule
    out = np.empty(q1.shape)
    for lo in range(0, q1.size, batch):
        sl = slice(lo, lo + batch)
        s1, s2 = np.sqrt(q1[sl])[:, None], np.sqrt(q2[sl])[:, None, None]
        cc = np.clip(c[sl], -1.0, 1.0)[:, None, None]
        fu = phi(s1 * z[None, :])  # (B, n)
        v = s2 * (cc * z[None, :, None] + np.sqrt(1.0 - cc * cc) * z[None, None, :])  # (B, n, n)
        inner = phi(v) @ w  # (B, n): E[phi(v) | z1]
        out[sl] = (fu * inner) @ w
    return out


def readout_kernel(x, depth: int, phi, weight_var: float, bias_var: float, input_var: float,
                   readout_var: float, readout_bias_var: float, rule=None, record=None):
    """Reference readout kernel (N, N) of a depth-``depth`` DNN on inputs x of shape (N, d).

    ``record``: optional list; the (q1, q2, c) triples of every layer are appended to it.
    """
    rule = panel_rule() if rule is None else rule
    x = np.asarray(x, dtype=np.float64)
    n, d = x.shape
    iu, ju = np.triu_indices(n)
    K = bias_var + input_var * (x @ x.T) / d
    for layer in range(1, depth + 1):
        q = np.diagonal(K).copy()
        q1, q2 = q[iu], q[ju]
        c = K[iu, ju] / np.sqrt(q1 * q2)
        c[iu == ju] = 1.0
        if record is not None:
            record.append((q1.copy(), q2.copy(), c.copy()))
        e = pair_expectation(phi, q1, q2, c, rule)
        scale, shift = (weight_var, bias_var) if layer < depth else (readout_var, readout_bias_var)
        K = np.empty((n, n))
        K[iu, ju] = shift + scale * e
        K[ju, iu] = K[iu, ju]
    return K


def self_check(phi, record, samples: int = 200, adaptive: int = 3, seed: int = 0) -> dict:
    """Accuracy of the reference rule (:data:`RULE`) on triples visited by the recursion: max
    |difference| to :data:`FINER_RULE` (``samples`` triples, plus the extreme ones) and to
    scipy.integrate.dblquad, nested adaptive Gauss-Kronrod (``adaptive`` triples)."""
    from scipy import integrate

    rule = panel_rule(**RULE)
    fine = panel_rule(**FINER_RULE)
    q1 = np.concatenate([r[0] for r in record])
    q2 = np.concatenate([r[1] for r in record])
    c = np.concatenate([r[2] for r in record])
    rng = np.random.default_rng(seed)
    pick = rng.choice(q1.size, size=min(samples, q1.size), replace=False)
    # always include the extreme correlations and variances
    pick = np.unique(np.concatenate([pick, [np.argmin(c), np.argmax(np.where(c < 1, c, -2)),
                                            np.argmax(q1), np.argmin(q1)]]))
    base = pair_expectation(phi, q1[pick], q2[pick], c[pick], rule)
    finer = pair_expectation(phi, q1[pick], q2[pick], c[pick], fine)
    adaptive_diffs = []
    for k in pick[:adaptive]:
        a, b, r = q1[k], q2[k], min(c[k], 1.0)
        s = np.sqrt(max(1.0 - r * r, 0.0))

        def f(z2, z1, a=a, b=b, r=r, s=s):
            return (phi(np.sqrt(a) * z1) * phi(np.sqrt(b) * (r * z1 + s * z2))
                    * np.exp(-0.5 * (z1 * z1 + z2 * z2)) / (2.0 * np.pi))

        val, _ = integrate.dblquad(f, -12.0, 12.0, -12.0, 12.0, epsabs=1e-14, epsrel=1e-13)
        adaptive_diffs.append(abs(val - pair_expectation(phi, [a], [b], [r], rule)[0]))
    return {
        "triples_checked": int(pick.size),
        "max_abs_diff_finer_rule": float(np.abs(base - finer).max()),
        "max_abs_diff_dblquad": float(max(adaptive_diffs)) if adaptive_diffs else None,
        "rule": dict(RULE),
        "finer_rule": dict(FINER_RULE),
    }
