"""NNGP and NTK of DNNs and 1-D conv nets against neural-tangents 0.6.5 reference values.

tests/data/neural_tangents_ntk.json, written by benchmarks/nt_ntk_reference.py (in the separate
neural-tangents environment; see tests/data/README.md): ``kernel_fn(x, None, ("nngp", "ntk"))`` of
``stax.serial(*[Dense(512, W_std, b_std), Act()] * L, Dense(1, W_std, b_std))`` (W_std = 1.5,
b_std = 0.1, Act in {Erf, Relu}, L in {1, 3, 10}) and of small 1-D conv nets, in NTK
parameterization and in NT's standard parameterization (widths 512), which is netfield's
``parameterization="standard", width=512`` (the JSON's ``conventions``). Agreement: max |diff| /
max |ref| <= 1e-10.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

import netfield as nf

REFERENCE = json.loads((Path(__file__).parent.parent / "data" / "neural_tangents_ntk.json").read_text())
TOL = 1e-10
DNN, CONV = REFERENCE["dnn"], REFERENCE["conv"]
W_VAR, B_VAR = DNN["W_std"] ** 2, DNN["b_std"] ** 2
HYPER = {"weight_var": W_VAR, "bias_var": B_VAR, "input_var": W_VAR, "readout_var": W_VAR, "readout_bias_var": B_VAR}
DNN_CASES = sorted(DNN["cases"])
CONV_CASES = sorted(CONV["cases"])


def _dnn(name):
    case = DNN["cases"][name]
    return nf.dnn(case["depth"], case["activation"], **HYPER), np.array(DNN["inputs_x"]), case


def _conv(name):
    case = CONV["cases"][name]
    pool = None if case["pool_window"] is None else tuple(case["pool_window"])
    net = nf.conv(case["depth"], case["activation"], **HYPER, filter_shape=tuple(case["filter_shape"]),
                  padding=case["padding"], pool_window=pool, readout=case["readout"], skip=case["skip"])
    return net, np.array(CONV["inputs_x"]), case


BUILD = {"dnn": _dnn, "conv": _conv}
ALL = [("dnn", n) for n in DNN_CASES] + [("conv", n) for n in CONV_CASES]
IDS = [f"{family}-{name}" for family, name in ALL]


def _assert_close(got, ref, what):
    got, ref = np.asarray(got), np.asarray(ref)
    assert got.shape == ref.shape, what
    assert got.dtype == np.float64, what
    err = np.abs(got - ref).max() / np.abs(ref).max()
    assert err <= TOL, f"{what}: max |diff| / max |ref| = {err:.2e} > {TOL:g}"


def test_reference_file_is_what_the_tests_assume():
    assert set(DNN_CASES) == {f"{a}_L{d}" for a in ("erf", "relu") for d in (1, 3, 10)}
    assert np.array(DNN["inputs_x"]).shape == (6, 5)
    assert np.array(CONV["inputs_x"]).shape == (4, 6, 2)
    assert {"relu_same_gap", "erf_same_gap"} <= set(CONV_CASES)
    assert REFERENCE["versions"]["neural-tangents"] == "0.6.5"
    assert REFERENCE["standard_matches_netfield"] is True
    for family, name in ALL:
        case = (DNN if family == "dnn" else CONV)["cases"][name]
        n = len(case["nngp"])
        for k in (case["nngp"], case["ntk"], case["standard"]["nngp"], case["standard"]["ntk"]):
            k = np.array(k)
            assert k.shape == (n, n) and np.all(np.isfinite(k)) and np.array_equal(k, k.T)
        assert case["standard"]["width"] == 512
        # the NTK is not the NNGP, and the standard parameterization's NTK is not the NTK one's
        assert np.abs(np.array(case["ntk"]) - np.array(case["nngp"])).max() > 1e-2
        assert np.abs(np.array(case["standard"]["ntk"]) - np.array(case["ntk"])).max() > 1.0
    # the generator's own independent numpy checks (benchmarks/nt_ntk_reference.py) passed
    for check in ("numpy_rnn_ntk_recursion_vs_nt", "numpy_standard_rule_vs_nt", "relu_extended_precision_vs_nt"):
        assert max(v for d in REFERENCE["checks"][check].values() for v in d.values()) < 1e-12


@pytest.mark.parametrize("family, name", ALL, ids=IDS)
def test_nngp_matches_neural_tangents(family, name):
    net, x, case = BUILD[family](name)
    _assert_close(nf.kernel(net, x), case["nngp"], f"{family} {name} nngp")


@pytest.mark.parametrize("family, name", ALL, ids=IDS)
def test_ntk_matches_neural_tangents(family, name):
    net, x, case = BUILD[family](name)
    _assert_close(nf.kernel(net, x, kind="ntk"), case["ntk"], f"{family} {name} ntk")


@pytest.mark.parametrize("family, name", ALL, ids=IDS)
def test_standard_parameterization_ntk_matches_neural_tangents(family, name):
    """NT's parameterization='standard' is netfield's: each parameter group's NTK contribution divided
    by s^2 (s^2 = var / fan_in for weights, var for biases), fan-ins from width = 512."""
    net, x, case = BUILD[family](name)
    std = case["standard"]
    got = nf.kernel(net, x, kind="ntk", parameterization="standard", width=std["width"])
    _assert_close(got, std["ntk"], f"{family} {name} standard ntk")
