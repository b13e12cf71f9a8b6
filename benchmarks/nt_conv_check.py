"""Finite-width Monte Carlo check of ``tests/program/data/nt_conv_kernels.json`` (numpy only).

Samples the convolutional network of the JSON's convention (see ``benchmarks/nt_conv_reference.py``)
at a finite width n with independent Gaussian weights, integrates the readout weights out
analytically,

    K_hat(a, b) = readout_var * <R(phi(g_depth))(x_a), R(phi(g_depth))(x_b)> / n_features + readout_bias_var

(n_features = n for global_avg, n * positions for flatten), averages K_hat over many independent
networks and compares the mean with the neural-tangents NNGP kernel stored in the JSON: entry by
entry z = (mean - nngp) / standard error of the mean. Agreement within 4 standard errors (the
finite-width bias is O(1/n), well below the Monte Carlo error at the defaults) confirms that the
convention written in the JSON is the one neural-tangents computed.

Independent of neural-tangents, jax and netfield:

    python3 benchmarks/nt_conv_check.py                 # cases 1 and 5, n = 256, 100 networks
    python3 benchmarks/nt_conv_check.py --cases all --exact

``--exact`` also evaluates the infinite-width kernel deterministically, by propagating the full
(input, position) x (input, position) covariance through the closed-form relu (arc-cosine) and
erf (arcsine) Gaussian expectations, the zero-padded convolution sums and the pooling averages.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_DATA = ROOT / "tests" / "program" / "data" / "nt_conv_kernels.json"

_erf = np.frompyfunc(math.erf, 1, 1)


def phi(name, h):
    if name == "relu":
        return np.maximum(h, 0.0)
    if name == "erf":
        return _erf(h).astype(np.float64)
    raise ValueError(name)


def conv(h, var, bias_var, filter_shape, padding, width, rng):
    """Stride-1 convolution of h (N, *S, C) with weights N(0, var / (C prod F)) and bias N(0, bias_var)."""
    nsp = len(filter_shape)
    cin = h.shape[-1]
    if padding == "SAME":  # XLA's SAME: zeros, lo = (F - 1) // 2, hi = F - 1 - lo
        pads = [(0, 0)] + [((f - 1) // 2, f - 1 - (f - 1) // 2) for f in filter_shape] + [(0, 0)]
        h = np.pad(h, pads)
    elif padding != "VALID":
        raise ValueError(padding)
    patches = sliding_window_view(h, tuple(filter_shape), axis=tuple(range(1, 1 + nsp)))
    out_shape = patches.shape[: 1 + nsp]  # (N, *S_out); then C, *F
    fan_in = cin * int(np.prod(filter_shape))
    W = rng.standard_normal((fan_in, width)) * math.sqrt(var / fan_in)
    b = rng.standard_normal(width) * math.sqrt(bias_var)
    return (patches.reshape(-1, fan_in) @ W + b).reshape(*out_shape, width)


def avg_pool(h, window):
    """Average pooling, window = stride, VALID, over the spatial axes of h (N, *S, C)."""
    for ax, w in enumerate(window, start=1):
        m = (h.shape[ax] // w) * w
        h = np.take(h, np.arange(m), axis=ax)
        shape = h.shape[:ax] + (m // w, w) + h.shape[ax + 1:]
        h = h.reshape(shape).mean(axis=ax + 1)
    return h


def sample_kernel(case, x, width, rng):
    F, pad = case["filter_shape"], case["padding"]
    g = conv(x, case["input_var"], case["bias_var"], F, pad, width, rng)
    for _ in range(case["depth"] - 1):
        a = phi(case["activation"], g)
        if case["skip"]:
            g = g + conv(a, case["weight_var"], case["bias_var"], F, pad, width, rng)
        else:
            if case["pool_window"] is not None:
                a = avg_pool(a, case["pool_window"])
            g = conv(a, case["weight_var"], case["bias_var"], F, pad, width, rng)
    a = phi(case["activation"], g)
    n = x.shape[0]
    if case["readout"] == "global_avg":
        feats = a.reshape(n, -1, width).mean(axis=1)
    elif case["readout"] == "flatten":
        feats = a.reshape(n, -1)
    else:
        raise ValueError(case["readout"])
    return case["readout_var"] * (feats @ feats.T) / feats.shape[1] + case["readout_bias_var"]


def check_case(case, width, networks, seed):
    x = np.asarray(case["x"], dtype=np.float64)
    ref = np.asarray(case["nngp"], dtype=np.float64)
    rng = np.random.default_rng(seed)
    ks = np.stack([sample_kernel(case, x, width, rng) for _ in range(networks)])
    mean = ks.mean(axis=0)
    se = ks.std(axis=0, ddof=1) / math.sqrt(networks)
    iu = np.triu_indices(x.shape[0])
    z = (mean - ref)[iu] / se[iu]
    rel = np.abs(mean - ref)[iu] / np.abs(ref[iu])
    return z, rel


# --- deterministic closed-form recursion (relu and erf have closed-form Gaussian expectations) ---

def _shift_matrices(spatial, filter_shape, padding):
    """Per filter offset, the 0/1 matrix (P_out, P_in) picking input position s + f - lo (zero if padded)."""
    spatial, filter_shape = tuple(spatial), tuple(filter_shape)
    if padding == "SAME":
        lo = [(f - 1) // 2 for f in filter_shape]
        out = spatial
    else:
        lo = [0] * len(filter_shape)
        out = tuple(s - f + 1 for s, f in zip(spatial, filter_shape))
    mats = []
    for off in np.ndindex(*filter_shape):
        A = np.zeros((int(np.prod(out)), int(np.prod(spatial))))
        for o_flat, o in enumerate(np.ndindex(*out)):
            i = tuple(oo + ff - ll for oo, ff, ll in zip(o, off, lo))
            if all(0 <= ii < ss for ii, ss in zip(i, spatial)):
                A[o_flat, np.ravel_multi_index(i, spatial)] = 1.0
        mats.append(A)
    return mats, out


def _conv_map(K, N, spatial, filter_shape, padding, var, bias_var):
    """K (N*P_in, N*P_in) -> bias_var + var/prod(F) * sum_f (I x A_f) K (I x A_f)^T."""
    mats, out = _shift_matrices(spatial, filter_shape, padding)
    eye = np.eye(N)
    acc = sum(np.kron(eye, A) @ K @ np.kron(eye, A).T for A in mats)
    return bias_var + var / len(mats) * acc, out


def _pool_map(K, N, spatial, window):
    out = tuple(s // w for s, w in zip(spatial, window))
    B = np.zeros((int(np.prod(out)), int(np.prod(spatial))))
    for o_flat, o in enumerate(np.ndindex(*out)):
        for off in np.ndindex(*window):
            i = tuple(oo * w + ff for oo, w, ff in zip(o, window, off))
            B[o_flat, np.ravel_multi_index(i, spatial)] = 1.0 / np.prod(window)
    M = np.kron(np.eye(N), B)
    return M @ K @ M.T, out


def _dual(name, K):
    """E[phi(u) phi(v)] for (u, v) ~ N(0, K) entrywise over a full covariance matrix K."""
    q = np.diag(K)
    if name == "relu":
        s = np.sqrt(np.outer(q, q))
        c = np.clip(np.divide(K, s, out=np.zeros_like(K), where=s > 0), -1.0, 1.0)
        th = np.arccos(c)
        return s / (2 * np.pi) * (np.sin(th) + (np.pi - th) * np.cos(th))
    if name == "erf":
        return 2 / np.pi * np.arcsin(np.clip(2 * K / np.sqrt(np.outer(1 + 2 * q, 1 + 2 * q)), -1, 1))
    raise ValueError(name)


def exact_kernel(case):
    """Infinite-width readout kernel by the closed-form full-spatial-covariance recursion."""
    x = np.asarray(case["x"], dtype=np.float64)
    N, spatial, C = x.shape[0], x.shape[1:-1], x.shape[-1]
    X = x.reshape(N * int(np.prod(spatial)), C)
    K, spatial = _conv_map(X @ X.T / C, N, spatial, case["filter_shape"], case["padding"],
                           case["input_var"], case["bias_var"])
    for _ in range(case["depth"] - 1):
        E = _dual(case["activation"], K)
        if case["skip"]:
            Kc, _ = _conv_map(E, N, spatial, case["filter_shape"], case["padding"],
                              case["weight_var"], case["bias_var"])
            K = K + Kc
        else:
            if case["pool_window"] is not None:
                E, spatial = _pool_map(E, N, spatial, tuple(case["pool_window"]))
            K, spatial = _conv_map(E, N, spatial, case["filter_shape"], case["padding"],
                                   case["weight_var"], case["bias_var"])
    E = _dual(case["activation"], K)
    P = int(np.prod(spatial))
    E4 = E.reshape(N, P, N, P)
    if case["readout"] == "global_avg":
        feat = E4.mean(axis=(1, 3))
    else:
        feat = np.einsum("asbs->ab", E4) / P
    return case["readout_var"] * feat + case["readout_bias_var"]


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--cases", default="1,5", help="1-based case numbers, comma separated, or 'all'")
    ap.add_argument("--width", type=int, default=256)
    ap.add_argument("--networks", type=int, default=100)
    ap.add_argument("--seed", type=int, default=20240601)
    ap.add_argument("--zmax", type=float, default=4.0)
    ap.add_argument("--exact", action="store_true",
                    help="also compare with the closed-form (relu / erf) infinite-width recursion")
    args = ap.parse_args(argv)

    data = json.loads(args.data.read_text())
    cases = data["cases"]
    idx = range(1, len(cases) + 1) if args.cases == "all" else [int(c) for c in args.cases.split(",")]
    ok = True
    print(f"width n = {args.width}, {args.networks} networks per case, pass if max |z| < {args.zmax}")
    for i in idx:
        case = cases[i - 1]
        z, rel = check_case(case, args.width, args.networks, args.seed + i)
        worst = float(np.max(np.abs(z)))
        passed = worst < args.zmax
        ok &= passed
        print(f"case {i} {case['name']}: max |z| = {worst:.3f} over {z.size} entries, "
              f"max rel. dev. {float(rel.max()):.2e}  {'PASS' if passed else 'FAIL'}")
        if args.exact:
            ref = np.asarray(case["nngp"], dtype=np.float64)
            err = float(np.max(np.abs(exact_kernel(case) - ref)) / np.max(np.abs(ref)))
            passed = err < 1e-10
            ok &= passed
            print(f"    closed-form recursion: max |diff| / max |nngp| = {err:.2e}  {'PASS' if passed else 'FAIL'}")
    print("ALL PASS" if ok else "SOME FAILED")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
