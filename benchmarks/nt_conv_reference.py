"""Reference NNGP kernels of small convolutional networks, computed with neural-tangents' ``stax``.

Runs ONLY with the separate neural-tangents environment (neural-tangents is never a netfield
dependency, and this script never imports netfield):

    benchmarks/.venv-nt/bin/python benchmarks/nt_conv_reference.py

and writes ``tests/program/data/nt_conv_kernels.json`` (``--out`` to write elsewhere). The
independent finite-width Monte Carlo check of that file is ``benchmarks/nt_conv_check.py``
(numpy only, runs with any python3 that has numpy).

Convention (netfield's convolutional network; inputs x of shape (N, *spatial, C), channels last,
stride 1, filter shape F, padding "SAME" = zero padding or "VALID"):

    g_1 = Conv_U(x) + b_1                     U ~ N(0, input_var / (C prod F)),  b_1 ~ N(0, bias_var)
    g_l = Conv_W(P(phi(g_{l-1}))) + b_l       W ~ N(0, weight_var / (n prod F)), l = 2..depth
      (skip=True:  g_l = g_{l-1} + Conv_W(phi(g_{l-1})) + b_l)
    f   = V R(phi(g_depth)) + b_o             b_o ~ N(0, readout_bias_var)

P = identity or average pooling (window = stride = pool_window, VALID) before every conv layer
after the first; R = "global_avg" (mean over positions, V ~ N(0, readout_var / n)) or "flatten"
(V ~ N(0, readout_var / (n * positions))). The NNGP kernel is the n -> infinity covariance of f.

NT equivalent (NTK parameterization: weight variance W_std^2 / fan_in, which for the NNGP kernel
is the convention above; the channel counts passed to NT do not enter its NNGP kernel):

    serial(Conv(8, F, padding, W_std=sqrt(input_var), b_std=sqrt(bias_var)),
           [Act, AvgPool(pool_window, pool_window, "VALID")?, Conv(8, F, padding,
            W_std=sqrt(weight_var), b_std=sqrt(bias_var))] * (depth - 1),
           Act, GlobalAvgPool() | Flatten(),
           Dense(1, W_std=sqrt(readout_var), b_std=sqrt(readout_bias_var)))
    skip=True: each middle block is serial(FanOut(2), parallel(Identity(), serial(Act, Conv(...))),
           FanInSum()).

Checked against NT 0.6.5's source (``neural_tangents/_src/stax/linear.py``): the Conv kernel
transform sums the input covariance over the filter window with ``lax.reduce_window`` /
``conv_general_dilated`` padded with zeros and always divides by prod(F) (``SAME`` = zero padding,
fan-in C prod F also at the edges); ``Flatten``'s NNGP is the trace over positions divided by the
number of positions (mean of the position diagonal); ``GlobalAvgPool`` averages over all position
pairs; ``AvgPool`` with VALID padding divides by prod(window).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import warnings
from pathlib import Path

os.environ["JAX_PLATFORMS"] = "cpu"
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"

import jax
import numpy as np

jax.config.update("jax_enable_x64", True)

import neural_tangents
from neural_tangents import stax

# The skip blocks sum an identity branch with a Conv branch: their cross-covariance is zero (the
# Conv weights are independent and zero-mean), which is exactly what FanInSum assumes.
warnings.filterwarnings("ignore", message="`FanIn` layers assume independent inputs")

ROOT = Path(__file__).resolve().parents[1]
DEFAULT_OUT = ROOT / "tests" / "program" / "data" / "nt_conv_kernels.json"

CONVENTION = (
    "x: (N, *spatial, C), channels last; stride-1 convs with filter F, padding SAME (zero padding, "
    "fan-in still C*prod(F)) or VALID. g_1 = Conv_U(x) + b_1, U ~ N(0, input_var/(C*prod(F))), "
    "b ~ N(0, bias_var); g_l = Conv_W(P(phi(g_{l-1}))) + b_l, W ~ N(0, weight_var/(n*prod(F))), "
    "l = 2..depth (skip: g_l = g_{l-1} + Conv_W(phi(g_{l-1})) + b_l); P = identity or average "
    "pooling with window = stride = pool_window, VALID, before every conv after the first; "
    "f = V R(phi(g_depth)) + b_o, R = global_avg (mean over positions, V ~ N(0, readout_var/n)) "
    "or flatten (V ~ N(0, readout_var/(n*positions))), b_o ~ N(0, readout_bias_var). "
    "nngp = n -> infinity covariance of f = neural-tangents stax kernel_fn(x, None, 'nngp') "
    "(NTK parameterization)."
)

BASE = {"pool_window": None, "skip": False}

CASES = [
    {"name": "2d_relu_same_gap", "seed": 101, "n_inputs": 3, "spatial": (5, 5), "channels": 2, "depth": 2,
         "activation": "relu", "filter_shape": (3, 3), "padding": "SAME", "readout": "global_avg",
         "weight_var": 2.0, "bias_var": 0.1, "input_var": 2.0, "readout_var": 1.5, "readout_bias_var": 0.05},
    {"name": "2d_erf_valid_flatten", "seed": 102, "n_inputs": 3, "spatial": (5, 5), "channels": 2, "depth": 2,
         "activation": "erf", "filter_shape": (3, 3), "padding": "VALID", "readout": "flatten",
         "weight_var": 1.5, "bias_var": 0.2, "input_var": 1.0, "readout_var": 1.0, "readout_bias_var": 0.0},
    {"name": "2d_relu_same_pool_gap", "seed": 103, "n_inputs": 3, "spatial": (6, 6), "channels": 2, "depth": 3,
         "activation": "relu", "filter_shape": (3, 3), "padding": "SAME", "pool_window": (2, 2),
         "readout": "global_avg",
         "weight_var": 2.0, "bias_var": 0.05, "input_var": 1.5, "readout_var": 1.0, "readout_bias_var": 0.1},
    {"name": "2d_relu_same_skip_gap", "seed": 104, "n_inputs": 3, "spatial": (5, 5), "channels": 2, "depth": 3,
         "activation": "relu", "filter_shape": (3, 3), "padding": "SAME", "skip": True, "readout": "global_avg",
         "weight_var": 1.0, "bias_var": 0.1, "input_var": 1.0, "readout_var": 1.0, "readout_bias_var": 0.0},
    {"name": "1d_erf_same_gap", "seed": 105, "n_inputs": 4, "spatial": (8,), "channels": 3, "depth": 3,
         "activation": "erf", "filter_shape": (3,), "padding": "SAME", "readout": "global_avg",
         "weight_var": 2.25, "bias_var": 0.01, "input_var": 1.0, "readout_var": 1.0, "readout_bias_var": 0.0},
    {"name": "1d_relu_valid_flatten", "seed": 106, "n_inputs": 4, "spatial": (8,), "channels": 3, "depth": 2,
         "activation": "relu", "filter_shape": (2,), "padding": "VALID", "readout": "flatten",
         "weight_var": 2.0, "bias_var": 0.0, "input_var": 1.0, "readout_var": 1.0, "readout_bias_var": 0.0},
]

WIDTH = 8  # channel count handed to NT; irrelevant to its NNGP kernel


def _act(name):
    return {"relu": stax.Relu, "erf": stax.Erf}[name]()


def nt_network(case):
    """(layers, description) of the NT network for one case."""
    F, pad = tuple(case["filter_shape"]), case["padding"]
    w, b = float(np.sqrt(case["weight_var"])), float(np.sqrt(case["bias_var"]))
    act_name = {"relu": "Relu", "erf": "Erf"}[case["activation"]]
    conv_txt = f"Conv({WIDTH}, {F}, padding='{pad}', W_std=sqrt({case['weight_var']}), b_std=sqrt({case['bias_var']}))"

    layers = [stax.Conv(WIDTH, F, padding=pad, W_std=float(np.sqrt(case["input_var"])), b_std=b)]
    desc = [f"Conv({WIDTH}, {F}, padding='{pad}', W_std=sqrt({case['input_var']}), b_std=sqrt({case['bias_var']}))"]
    for _ in range(case["depth"] - 1):
        if case["skip"]:
            if case["pool_window"] is not None:
                raise ValueError("skip with pooling is not part of the convention")
            layers.append(stax.serial(
                stax.FanOut(2),
                stax.parallel(stax.Identity(),
                              stax.serial(_act(case["activation"]), stax.Conv(WIDTH, F, padding=pad, W_std=w, b_std=b))),
                stax.FanInSum()))
            desc.append(f"serial(FanOut(2), parallel(Identity(), serial({act_name}(), {conv_txt})), FanInSum())")
        else:
            layers.append(_act(case["activation"]))
            desc.append(f"{act_name}()")
            if case["pool_window"] is not None:
                pw = tuple(case["pool_window"])
                layers.append(stax.AvgPool(pw, strides=pw, padding="VALID"))
                desc.append(f"AvgPool({pw}, strides={pw}, padding='VALID')")
            layers.append(stax.Conv(WIDTH, F, padding=pad, W_std=w, b_std=b))
            desc.append(conv_txt)
    layers.append(_act(case["activation"]))
    desc.append(f"{act_name}()")
    if case["readout"] == "global_avg":
        layers.append(stax.GlobalAvgPool())
        desc.append("GlobalAvgPool()")
    elif case["readout"] == "flatten":
        layers.append(stax.Flatten())
        desc.append("Flatten()")
    else:
        raise ValueError(case["readout"])
    layers.append(stax.Dense(1, W_std=float(np.sqrt(case["readout_var"])),
                             b_std=float(np.sqrt(case["readout_bias_var"]))))
    desc.append(f"Dense(1, W_std=sqrt({case['readout_var']}), b_std=sqrt({case['readout_bias_var']}))")
    return layers, "stax.serial(" + ", ".join(desc) + ")"


def compute_case(spec):
    case = dict(BASE, **spec)
    rng = np.random.default_rng(case["seed"])
    x = rng.standard_normal((case["n_inputs"], *case["spatial"], case["channels"]))
    layers, desc = nt_network(case)
    _, _, kernel_fn = stax.serial(*layers)
    k = np.asarray(kernel_fn(x, None, "nngp"), dtype=np.float64)
    assert k.shape == (x.shape[0], x.shape[0]), k.shape
    assert np.all(np.isfinite(k))
    k = 0.5 * (k + k.T)  # exact symmetry (NT's is up to rounding)
    return {
        "name": case["name"],
        "seed": case["seed"],
        "x": x.tolist(),
        "depth": case["depth"],
        "activation": case["activation"],
        "filter_shape": list(case["filter_shape"]),
        "padding": case["padding"],
        "pool_window": None if case["pool_window"] is None else list(case["pool_window"]),
        "readout": case["readout"],
        "skip": bool(case["skip"]),
        "weight_var": float(case["weight_var"]),
        "bias_var": float(case["bias_var"]),
        "input_var": float(case["input_var"]),
        "readout_var": float(case["readout_var"]),
        "readout_bias_var": float(case["readout_bias_var"]),
        "nt_network": desc,
        "nngp": [[float(v) for v in row] for row in k],
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=DEFAULT_OUT)
    args = ap.parse_args(argv)
    cases = [compute_case(c) for c in CASES]
    data = {
        "generator": "benchmarks/nt_conv_reference.py",
        "neural_tangents": neural_tangents.__version__,
        "jax": jax.__version__,
        "convention": CONVENTION,
        "inputs": "x ~ N(0, 1) i.i.d., numpy.random.default_rng(seed).standard_normal((N, *spatial, C))",
        "cases": cases,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    text = json.dumps(data, indent=1) + "\n"
    args.out.write_text(text)
    print(f"wrote {args.out} ({len(text)} bytes, {len(cases)} cases)")
    for c in cases:
        print(f"  {c['name']}: diag {np.diag(np.array(c['nngp'])).round(6).tolist()}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
