"""Reference NNGP and NTK kernels of DNNs and 1-D conv nets, computed with neural-tangents' ``stax``.

Runs ONLY in the separate neural-tangents environment (neural-tangents is never a netfield
dependency, and this script never imports netfield; it imports benchmarks/gp4a_style.py, numpy only):

    benchmarks/.venv-nt/bin/python benchmarks/nt_ntk_reference.py

(``python benchmarks/run.py --list`` creates the environment first if it is missing: run.py's
``ensure_venv``) and writes ``tests/data/neural_tangents_ntk.json`` (``--out`` to write elsewhere).
Every kernel is ``kernel_fn(x, None, ("nngp", "ntk"))`` with ``jax_enable_x64``, symmetrised
(0.5 (K + K^T); NT's is symmetric up to rounding).

DNN cases (``dnn``): ``stax.serial(*[Dense(512, W_std, b_std), Act()] * L, Dense(1, W_std, b_std))``,
Act in {Erf, Relu}, L in {1, 3, 10}, W_std = 1.5, b_std = 0.1, on 6 fixed inputs of dimension 5
(stored). NT's ``Erf()`` is ``Erf(a=1, b=1, c=0)`` = plain erf; ``Relu()`` = max(0, x). netfield:
``netfield.dnn(L, act, weight_var=W_std**2, bias_var=b_std**2, input_var=W_std**2,
readout_var=W_std**2, readout_bias_var=b_std**2)``.

NTK parameterization (NT's default, ``linear.py`` Dense ``kernel_fn``, 'ntk' branch): a Dense layer
maps (nngp, ntk) -> (W_std^2 nngp + b_std^2, nngp' + W_std^2 ntk), with nngp' the new nngp and
inputs' nngp = x.x'/d; an activation maps ntk -> E[phi'(u) phi'(v)] ntk. So, with K_1 = Theta_1 =
b^2 + W^2 x.x'/d, K_l = b^2 + W^2 E[phi phi](K_{l-1}), Theta_l = K_l + W^2 E[phi' phi'](K_{l-1})
Theta_{l-1}, and the readout the same map once more. Layer widths do not enter.

Standard parameterization (``standard`` in each case: every Dense / Conv with
``parameterization="standard"``, widths 512 / 512 channels, ``s=(1, 1)``). From NT 0.6.5's source
(``neural_tangents/_src/stax/linear.py``): Dense ``kernel_fn`` 'standard' branch:
``ntk = input_width * nngp + W_std**2 * ntk (+ 1. if b_std is not None)`` with
``input_width = k.shape1[channel_axis] / s[0]`` = the fan-in of the layer (d = 5 for the first, the
previous Dense's out_dim = 512 after), then nngp -> W_std^2 nngp + b_std^2 as before; Conv:
``ntk = fan_in / s[0] * conv(nngp) + W_std**2 * conv(ntk) (+ 1 per position pair if b_std is not
None)`` with fan_in = in_channels * prod(filter_shape) and conv() the window mean. The NNGP is the
same as in NTK parameterization. Hence each parameter group's contribution is its NTK-
parameterization contribution (W_std^2 nngp, b_std^2) divided by s^2, with s^2 = W_std^2 / fan_in
for a weight and s^2 = b_std^2 for a bias (the trainable parameter is the weight itself,
W ~ N(0, W_std^2 / fan_in), z = W x + b): the weight of a layer with fan-in n contributes n nngp,
a bias 1 (also when b_std = 0, as long as b_std is not None). That is netfield's standard
parameterization (theta = s omega) with ``width = 512`` and the same fan-ins (the input layer's is
d, the readout's the last hidden width; conv: channels x filter size); the script checks this
reading with a numpy recursion of exactly that rule for the erf DNNs (``checks`` in the JSON).

Conv cases (``conv``): 1-D inputs (N = 4, length 6, 2 channels), stride 1; netfield's
``netfield.conv(depth, act, weight_var, bias_var, input_var, readout_var, readout_bias_var,
filter_shape=(3,), padding=..., pool_window=..., readout=..., skip=...)`` with the conventions of
benchmarks/nt_conv_reference.py (one Conv per layer; global_avg = GlobalAvgPool() then Dense(1);
flatten = Flatten() then Dense(1); pooling = AvgPool(window, window, VALID) before every conv
after the first; skip = FanOut(2), parallel(Identity(), serial(Act, Conv)), FanInSum()).

Accuracy of NT's relu NTK: NT's relu angle is arccos(K_ab / sqrt(K_aa K_bb)), which can be ~1e-8
instead of 0 on the diagonal (sqrt of the rounding error), and E[relu' relu'] is linear in the angle:
NT's relu NTK diagonal is then off by ~1e-8 relative (3.6e-8 for the benchmark's N = 500, d = 64
inputs at L = 10). The stored relu DNN values are checked against an extended-precision recursion
with an exact angle (``checks.relu_extended_precision_vs_nt``, must be < 1e-12).

Check of the numpy RNN-NTK recursion used by the benchmarks (``gp4a_style.ntk_kernel``): with the
input at step 1 only, the erf-RNN with T steps is the erf DNN with T hidden layers; the maximum
relative difference to NT's DNN NNGP / NTK is stored under ``checks``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import warnings
from importlib import metadata
from pathlib import Path

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

from neural_tangents import stax
from scipy.special import erf

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))
import gp4a_style  # numpy only

warnings.filterwarnings("ignore", message="`FanIn` layers assume independent inputs")

ROOT = HERE.parent
DEFAULT_OUT = ROOT / "tests" / "data" / "neural_tangents_ntk.json"
COMMAND = "benchmarks/.venv-nt/bin/python benchmarks/nt_ntk_reference.py"

W_STD, B_STD, WIDTH = 1.5, 0.1, 512
DNN_SEED, DNN_SHAPE = 7, (6, 5)
DNN_CASES = [(act, depth) for act in ("erf", "relu") for depth in (1, 3, 10)]

CONV_SEED, CONV_SHAPE = 11, (4, 6, 2)
CONV_BASE = {"depth": 2, "filter_shape": (3,), "padding": "SAME", "pool_window": None, "readout": "global_avg",
             "skip": False}
CONV_CASES = [
    {"name": "relu_same_gap", "activation": "relu"},
    {"name": "erf_same_gap", "activation": "erf"},
    {"name": "erf_valid_flatten", "activation": "erf", "padding": "VALID", "readout": "flatten"},
    {"name": "relu_same_pool_gap", "activation": "relu", "depth": 3, "pool_window": (2,)},
    {"name": "relu_same_skip_gap", "activation": "relu", "depth": 3, "skip": True},
]

HYPER = {"weight_var": W_STD**2, "bias_var": B_STD**2, "input_var": W_STD**2, "readout_var": W_STD**2,
         "readout_bias_var": B_STD**2}


def _act(name):
    return {"erf": stax.Erf, "relu": stax.Relu}[name]()


def _sym(k):
    k = np.asarray(k, dtype=np.float64)
    assert np.all(np.isfinite(k)), "non-finite kernel"
    return 0.5 * (k + k.T)


def _kernels(layers, x):
    _, _, kernel_fn = stax.serial(*layers)
    k = kernel_fn(x, None, ("nngp", "ntk"))
    return _sym(k.nngp), _sym(k.ntk)


def _rows(k):
    return [[float(v) for v in row] for row in k]


def dnn_layers(act, depth, parameterization):
    def dense(n):
        return stax.Dense(n, W_std=W_STD, b_std=B_STD, parameterization=parameterization)

    return [*([dense(WIDTH), _act(act)] * depth), dense(1)]


def dnn_description(act, depth, parameterization):
    p = "" if parameterization == "ntk" else ", parameterization='standard'"
    name = {"erf": "Erf", "relu": "Relu"}[act]
    return (f"stax.serial(*[Dense({WIDTH}, W_std={W_STD}, b_std={B_STD}{p}), {name}()] * {depth}, "
            f"Dense(1, W_std={W_STD}, b_std={B_STD}{p}))")


def conv_layers(case, parameterization):
    F, pad, P = tuple(case["filter_shape"]), case["padding"], parameterization
    w, b = W_STD, B_STD

    def conv():
        return stax.Conv(WIDTH, F, padding=pad, W_std=w, b_std=b, parameterization=P)

    layers = [conv()]
    for _ in range(case["depth"] - 1):
        if case["skip"]:
            layers.append(stax.serial(stax.FanOut(2), stax.parallel(stax.Identity(),
                                                                    stax.serial(_act(case["activation"]), conv())),
                                      stax.FanInSum()))
            continue
        layers.append(_act(case["activation"]))
        if case["pool_window"] is not None:
            pw = tuple(case["pool_window"])
            layers.append(stax.AvgPool(pw, strides=pw, padding="VALID"))
        layers.append(conv())
    layers.append(_act(case["activation"]))
    layers.append(stax.GlobalAvgPool() if case["readout"] == "global_avg" else stax.Flatten())
    layers.append(stax.Dense(1, W_std=w, b_std=b, parameterization=P))
    return layers


def conv_description(case):
    act = {"erf": "Erf", "relu": "Relu"}[case["activation"]]
    conv = f"Conv({WIDTH}, {tuple(case['filter_shape'])}, padding='{case['padding']}', W_std={W_STD}, b_std={B_STD})"
    if case["skip"]:
        mid = f"serial(FanOut(2), parallel(Identity(), serial({act}(), {conv})), FanInSum())"
    else:
        pool = "" if case["pool_window"] is None else (
            f"AvgPool({tuple(case['pool_window'])}, strides={tuple(case['pool_window'])}, padding='VALID'), ")
        mid = f"{act}(), {pool}{conv}"
    read = "GlobalAvgPool()" if case["readout"] == "global_avg" else "Flatten()"
    return (f"stax.serial({conv}, *[{mid}] * {case['depth'] - 1}, {act}(), {read}, "
            f"Dense(1, W_std={W_STD}, b_std={B_STD}))")


# ---- independent numpy checks (no neural-tangents) ---------------------------------------------------------

def erf_dnn_standard(x, depth, width):
    """NNGP and standard-parameterization NTK of the erf DNN by the rule stated in the docstring:
    Theta_l = fan_in_l K^post_{l-1} + 1 + W^2 E[phi' phi'] Theta_{l-1}, K^post_0 = x.x'/d, fan_in_1 = d."""
    d = x.shape[1]
    post = x @ x.T / d
    k = B_STD**2 + W_STD**2 * post
    theta = d * post + 1.0
    for _ in range(depth):
        dg = np.diagonal(k)
        va, vb = dg[:, None], dg[None, :]
        post = gp4a_style.erf_pair(va, vb, k)
        theta = width * post + 1.0 + W_STD**2 * gp4a_style.erf_dot_pair(va, vb, k) * theta
        k = B_STD**2 + W_STD**2 * post
    return k, theta


def relu_dnn_extended(x, depth):
    """NNGP and NTK (NTK parameterization) of the relu DNN in extended precision (numpy longdouble),
    with the angle as atan2(sqrt(K_aa K_bb - K_ab^2), K_ab) (exactly 0 on the diagonal). NT computes
    arccos(K_ab / sqrt(K_aa K_bb)): where that ratio rounds to 1 - 1e-16 on the diagonal, the angle is
    ~1e-8 instead of 0, and E[relu' relu'] = (pi - angle) / (2 pi) is off by ~1e-9 per layer (it
    happens for the benchmark's inputs, not for the ones stored here: ``checks``)."""
    x = np.asarray(x, dtype=np.longdouble)
    w2, b2, pi = np.longdouble(W_STD) ** 2, np.longdouble(B_STD) ** 2, np.arctan2(np.longdouble(0), np.longdouble(-1))
    k = b2 + w2 * (x @ x.T) / x.shape[1]
    theta = k.copy()
    for _ in range(depth):
        dg = np.diagonal(k).copy()
        prod = dg[:, None] * dg[None, :]
        angle = np.arctan2(np.sqrt(np.maximum(prod - k * k, 0)), k)
        np.fill_diagonal(angle, 0)
        post = np.sqrt(prod) * (np.sin(angle) + (pi - angle) * np.cos(angle)) / (2 * pi)
        k = b2 + w2 * post
        theta = k + w2 * (pi - angle) / (2 * pi) * theta
    return np.asarray(k, dtype=np.float64), np.asarray(theta, dtype=np.float64)


def rel(a, b):
    return float(np.abs(np.asarray(a) - np.asarray(b)).max() / np.abs(np.asarray(b)).max())


def closed_form_check():
    """gp4a_style's E[erf' erf'] against Gauss-Hermite quadrature (the formula the NTK needs)."""
    z, w = np.polynomial.hermite_e.hermegauss(120)
    w = w / w.sum()
    out = 0.0
    for va, vb, c in ((0.7, 1.3, 0.4), (2.0, 0.5, -0.6), (1.1, 1.1, 1.05)):
        chol = np.linalg.cholesky(np.array([[va, c], [c, vb]]))
        u = chol[0, 0] * z[:, None] + chol[0, 1] * z[None, :]
        v = chol[1, 0] * z[:, None] + chol[1, 1] * z[None, :]
        dphi = 2.0 / np.sqrt(np.pi)
        quad = np.sum(w[:, None] * w[None, :] * dphi * np.exp(-u * u) * dphi * np.exp(-v * v))
        out = max(out, abs(quad - gp4a_style.erf_dot_pair(va, vb, c)) / abs(quad))
        quad_phi = np.sum(w[:, None] * w[None, :] * erf(u) * erf(v))
        out = max(out, abs(quad_phi - gp4a_style.erf_pair(va, vb, c)) / abs(quad_phi))
    return out


# ---- main ---------------------------------------------------------------------------------------------

def compute_dnn():
    x = np.random.default_rng(DNN_SEED).standard_normal(DNN_SHAPE)
    cases, checks = {}, {"numpy_rnn_ntk_recursion_vs_nt": {}, "numpy_standard_rule_vs_nt": {},
                         "relu_extended_precision_vs_nt": {}}
    for act, depth in DNN_CASES:
        nngp, ntk = _kernels(dnn_layers(act, depth, "ntk"), x)
        s_nngp, s_ntk = _kernels(dnn_layers(act, depth, "standard"), x)
        assert rel(s_nngp, nngp) < 1e-13, "the standard parameterization changed the NNGP"
        cases[f"{act}_L{depth}"] = {
            "activation": act, "depth": depth,
            "nt_network": dnn_description(act, depth, "ntk"),
            "nngp": _rows(nngp), "ntk": _rows(ntk),
            "standard": {"nt_network": dnn_description(act, depth, "standard"), "width": WIDTH,
                         "nngp": _rows(s_nngp), "ntk": _rows(s_ntk)},
        }
        if act == "erf":
            k, theta = gp4a_style.ntk_kernel(x, steps=depth, **HYPER)
            checks["numpy_rnn_ntk_recursion_vs_nt"][f"erf_L{depth}"] = {"nngp": rel(k, nngp), "ntk": rel(theta, ntk)}
            k, theta = erf_dnn_standard(x, depth, WIDTH)
            checks["numpy_standard_rule_vs_nt"][f"erf_L{depth}"] = {"nngp": rel(k, s_nngp), "ntk": rel(theta, s_ntk)}
        else:
            k, theta = relu_dnn_extended(x, depth)
            checks["relu_extended_precision_vs_nt"][f"relu_L{depth}"] = {"nngp": rel(k, nngp), "ntk": rel(theta, ntk)}
    checks["erf_closed_forms_vs_quadrature"] = closed_form_check()
    return {"W_std": W_STD, "b_std": B_STD, "width": WIDTH, "seed": DNN_SEED,
            "inputs_x": _rows(x), "cases": cases}, checks


def compute_conv():
    x = np.random.default_rng(CONV_SEED).standard_normal(CONV_SHAPE)
    cases = {}
    for spec in CONV_CASES:
        case = {**CONV_BASE, **spec}
        nngp, ntk = _kernels(conv_layers(case, "ntk"), x)
        s_nngp, s_ntk = _kernels(conv_layers(case, "standard"), x)
        assert rel(s_nngp, nngp) < 1e-13, "the standard parameterization changed the NNGP"
        cases[case["name"]] = {
            "activation": case["activation"], "depth": case["depth"], "filter_shape": list(case["filter_shape"]),
            "padding": case["padding"], "readout": case["readout"], "skip": case["skip"],
            "pool_window": None if case["pool_window"] is None else list(case["pool_window"]),
            "nt_network": conv_description(case),
            "nngp": _rows(nngp), "ntk": _rows(ntk),
            "standard": {"width": WIDTH, "nngp": _rows(s_nngp), "ntk": _rows(s_ntk)},
        }
    return {"W_std": W_STD, "b_std": B_STD, "width": WIDTH, "seed": CONV_SEED, "inputs_x": x.tolist(),
            "cases": cases}


CONVENTIONS = {
    "kernels": "kernel_fn(x, None, ('nngp', 'ntk')) of neural_tangents.stax, float64 (jax_enable_x64), CPU; "
               "symmetrised 0.5 (K + K^T). nngp = covariance of the scalar output f at initialisation in the "
               "infinite-width limit; ntk = sum over trainable parameters of df(x)/dtheta . df(x')/dtheta, same limit.",
    "ntk_parameterization": "NT default: z = W_std / sqrt(fan_in) * W x + b_std * b with W, b ~ N(0, 1) the trainable "
                            "parameters. Dense: nngp -> W_std^2 nngp + b_std^2, ntk -> nngp_new + W_std^2 ntk; "
                            "activation: ntk -> E[phi'(u) phi'(v)] ntk. Inputs' nngp = x.x'/d. Widths do not enter.",
    "standard_parameterization": "parameterization='standard', s=(1, 1): z = W x + b with W ~ N(0, W_std^2 / fan_in), "
                                 "b ~ N(0, b_std^2) the trainable parameters. NT 0.6.5 linear.py Dense kernel_fn: "
                                 "ntk -> input_width * nngp + W_std^2 * ntk + 1 (the 1 whenever b_std is not None, even "
                                 "b_std = 0), input_width = fan-in (d for the first layer, then the previous out_dim); "
                                 "Conv: ntk -> fan_in * conv(nngp) + W_std^2 conv(ntk) + 1, fan_in = in_channels * "
                                 "prod(filter_shape), conv = mean over the filter window. The NNGP is unchanged. So each "
                                 "parameter group's NTK contribution is its NTK-parameterization one divided by s^2, "
                                 "s^2 = W_std^2 / fan_in (weights), b_std^2 (biases): the same convention as netfield's "
                                 "(theta = s omega), with the widths given here (width = 512; the readout's fan-in is "
                                 "the last hidden width, times the positions after Flatten).",
    "erf": "NT Erf() = Erf(a=1, b=1, c=0): phi(z) = erf(z); E[phi phi] = (2/pi) arcsin(2 K_ab / sqrt((1 + 2 K_aa)"
           "(1 + 2 K_bb))), E[phi' phi'] = (4/pi) / sqrt((1 + 2 K_aa)(1 + 2 K_bb) - 4 K_ab^2)",
    "relu": "NT Relu(): phi(z) = max(z, 0); arc-cosine closed forms",
    "conv": "see benchmarks/nt_conv_reference.py: stride 1, SAME = zero padding with fan-in still C prod(F), "
            "GlobalAvgPool averages over all position pairs, Flatten is the mean of the position diagonal",
}

MAPPING = {
    "dnn": "netfield.dnn(depth, activation, weight_var=W_std**2, bias_var=b_std**2, input_var=W_std**2, "
           "readout_var=W_std**2, readout_bias_var=b_std**2); nngp = netfield.kernel(net, x), ntk = "
           "netfield.kernel(net, x, kind='ntk'); standard: netfield.kernel(net, x, kind='ntk', "
           "parameterization='standard', width=512)",
    "conv": "netfield.conv(depth, activation, weight_var=W_std**2, bias_var=b_std**2, input_var=W_std**2, "
            "readout_var=W_std**2, readout_bias_var=b_std**2, filter_shape=tuple(filter_shape), padding=padding, "
            "pool_window=pool_window, readout=readout, skip=skip), x of shape (N, length, channels)",
}


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    dnn, checks = compute_dnn()
    conv = compute_conv()
    worst = max(v for c in ("numpy_rnn_ntk_recursion_vs_nt", "numpy_standard_rule_vs_nt",
                            "relu_extended_precision_vs_nt")
                for d in checks[c].values() for v in d.values())
    assert worst < 1e-12, f"numpy checks disagree with neural-tangents: {checks}"
    assert checks["erf_closed_forms_vs_quadrature"] < 1e-10, checks
    data = {
        "generator": "benchmarks/nt_ntk_reference.py",
        "command": COMMAND,
        "versions": {n: metadata.version(n) for n in ("neural-tangents", "jax", "jaxlib", "numpy", "scipy")},
        "python": platform.python_version(),
        "tolerance": "compare with max |netfield - ref| / max |ref| <= 1e-10",
        "conventions": CONVENTIONS,
        "mapping_to_netfield": MAPPING,
        "standard_matches_netfield": True,
        "checks": checks,
        "dnn": dnn,
        "conv": conv,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1) + "\n"
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text)} bytes, {len(dnn['cases'])} DNN + {len(conv['cases'])} conv cases)")
    print(f"numpy checks vs NT: worst {worst:.1e}; erf closed forms vs quadrature "
          f"{checks['erf_closed_forms_vs_quadrature']:.1e}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
