"""Kernels of any architecture vs sampled finite networks (docs/theory.md 7; experiments/architectures.py).

Issue requirement: for each architecture the squared relative distance between the empirical and the
theory kernel falls like 1/width (fitted slope within error of -1), and the mean empirical kernel
agrees with the theory within 4 standard errors at the largest width. Fixed seeds, different from
the demo's (docs/design.md section 5) for the unit tests; the two slow requirements are checked on the
numbers of the real ``netfield demo`` run (session fixture ``netfield_demo``, tests/conftest.py), whose
section 9 is exactly this study (fast plan: widths 32..512, 48 networks per width to 256 and 32 at 512;
the fitted slope's standard error is ~0.05-0.1, so |slope + 1| < 3 s.e. rejects a slope off by ~0.3, and
slope_se < 0.2 is checked) - computed once for the whole test session.
"""

import json

import numpy as np
import pytest

import netfield
from netfield.experiments import ChunkStore
from netfield.experiments.architecture_figures import DEMO_SEED, DEMO_WIDTHS, plot_architecture_convergence
from netfield.experiments.architectures import (
    CASE_NAMES,
    ArchitectureConvergence,
    architecture_convergence,
    architecture_study,
    default_cases,
    relative_squared_distance,
)

SEED = 20240611
assert SEED != DEMO_SEED


@pytest.fixture(scope="module")
def study(netfield_demo):
    """The demo's architecture study (section 9 of the report), as stored in summary.json."""
    _, _, _, summary = netfield_demo
    numbers = summary["sections"]["architectures"]["numbers"]
    assert tuple(numbers["widths"]) == DEMO_WIDTHS and numbers["seed"] == DEMO_SEED
    return {a["name"]: a for a in numbers["architectures"]}


@pytest.mark.slow
@pytest.mark.parametrize("name", CASE_NAMES)
def test_distance_falls_like_one_over_width(study, name):
    r = study[name]
    assert r["slope_se"] < 0.2, (name, r["slope"], r["slope_se"])  # the test has power
    assert abs(r["slope"] + 1.0) < 3 * r["slope_se"], (name, r["slope"], r["slope_se"])
    assert r["theory_floor"] < 0.05 * r["d2_mean"][-1]  # the theory's numerical error does not fake the distance


@pytest.mark.slow
@pytest.mark.parametrize("name", CASE_NAMES)
def test_mean_empirical_kernel_matches_theory_at_largest_width(study, name):
    r = study[name]
    # the fast demo's largest width is 512 (netfield demo --full: 1024); the mean kernel's O(1/n) bias is
    # then twice as large while its standard error (32 networks) grows by sqrt(2): the test can fail on a
    # wrong theory sooner, not later
    assert r["largest_width"] == DEMO_WIDTHS[-1] == 512
    z = np.asarray(r["z"], dtype=float)
    assert np.all(np.isfinite(z)) and r["max_abs_z"] < 4.0, (name, r["max_abs_z"], z)


# -- fast unit tests -------------------------------------------------------------------------------
def _tiny_case(name="rnn"):
    return next(c for c in default_cases() if c.name == name)


def test_to_dict_determinism_and_chunking(tmp_path):
    case = _tiny_case("conv")
    a = architecture_convergence(case.net, case.x, (8, 16), (4, 3), seed=5, name="conv", chunk_size=4)
    b = architecture_convergence(case.net, case.x, (8, 16), (4, 3), seed=5, name="conv", chunk_size=1,
                                 store=ChunkStore(tmp_path), resume=False)
    c = architecture_convergence(case.net, case.x, (8, 16), (4, 3), seed=6, name="conv")
    assert isinstance(a, ArchitectureConvergence) and a.networks == (4, 3) and a.widths == (8, 16)
    for x, y in zip(a.d2, b.d2):  # same seed: the same networks whatever the chunking
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(a.d2[0], c.d2[0])  # another seed: other networks
    resumed = architecture_convergence(case.net, case.x, (8, 16), (4, 3), seed=5, name="conv", chunk_size=1,
                                       store=ChunkStore(tmp_path), resume=True)
    np.testing.assert_array_equal(resumed.mean_kernel, a.mean_kernel)
    d = json.loads(json.dumps(a.to_dict()))  # JSON-ready
    assert {"name", "widths", "networks", "seeds", "theory", "theory_error", "d2", "d2_mean", "d2_sem", "fit",
            "inverse_fit", "slope", "slope_se", "largest_width", "mean_kernel", "kernel_sem", "z", "max_abs_z",
            "theory_floor", "timing"} <= set(d)
    assert d["fit"]["exponent"] == a.slope and len(d["d2"][1]) == 3
    np.testing.assert_allclose(d["d2_mean"], [np.mean(v) for v in a.d2], rtol=1e-14)
    z = (a.mean_kernel - a.theory) / np.sqrt(a.kernel_sem**2 + a.theory_error**2)
    assert a.max_abs_z == pytest.approx(np.max(np.abs(z)))


def test_distances_are_those_of_the_sampled_kernels():
    """The study's networks are netfield.sample(method="weights")'s (same run seed), in any chunking."""
    case = _tiny_case("rnn")
    r = architecture_convergence(case.net, case.x, (8, 16), 3, seed=1, chunk_size=2)
    k = netfield.sample(case.net, case.x, 16, 3, seed=r.seeds[1], preactivations="none", method="weights").readout
    np.testing.assert_allclose(r.d2[1], relative_squared_distance(k, r.theory), rtol=1e-12)
    np.testing.assert_allclose(r.mean_kernel, k.mean(axis=0), rtol=1e-12)


def test_study_theory_kernel_is_netfield_kernel():
    """The study's theory (mean_field's generic interpreter) equals netfield.kernel (fused chain path)."""
    case = _tiny_case("rnn")
    k = np.asarray(netfield.kernel(case.net, case.x))
    np.testing.assert_allclose(netfield.mean_field(case.net, case.x).readout, k, rtol=0, atol=1e-12)
    dnn = netfield.dnn(3, "tanh", weight_var=1.2, bias_var=0.3)
    x = case.x[:, :3]
    np.testing.assert_allclose(netfield.mean_field(dnn, x).readout, np.asarray(netfield.kernel(dnn, x)),
                               rtol=0, atol=1e-9)


def test_plot_shows_the_numbers(tmp_path):
    cases = [_tiny_case("rnn"), _tiny_case("conv")]
    data = json.loads(json.dumps(architecture_study(cases, widths=(8, 16, 32), networks=3, seed=2).to_dict()))
    fig = plot_architecture_convergence(data, tmp_path / "a.png")
    assert (tmp_path / "a.png").stat().st_size > 10_000
    bars = [c for ax in fig.axes for c in ax.containers]
    assert len(bars) == 2
    for arch, bar in zip(data["architectures"], bars):
        x, y = bar.lines[0].get_data()
        np.testing.assert_array_equal(x, arch["widths"])
        np.testing.assert_array_equal(y, arch["d2_mean"])


def test_ntk_study_samples_netfield_sample_ntk_on_ragged_sequences():
    """kind="ntk", readout="all": the study's networks are netfield.sample(ntk=True)'s, its theory is
    netfield.kernel(kind="ntk"); ragged inputs (a list of (T_i, d) arrays) are accepted."""
    net = netfield.rnn(2, "erf", bias_var=0.3)
    rng = np.random.default_rng(3)
    x = [rng.normal(size=(1, 2)), rng.normal(size=(2, 2))]
    r = architecture_convergence(net, x, (8, 16), 3, seed=1, kind="ntk", readout="all", progress=False)
    assert r.kind == "ntk" and r.readout == "all" and r.theory.shape == (3, 3)
    np.testing.assert_allclose(r.theory, netfield.kernel(net, x, readout="all", kind="ntk"), rtol=0, atol=1e-12)
    ens = netfield.sample(net, x, 16, 3, seed=r.seeds[1], readout="all", ntk=True, preactivations="none")
    np.testing.assert_allclose(r.d2[1], relative_squared_distance(ens.ntk, r.theory), rtol=1e-12)
    np.testing.assert_allclose(r.mean_kernel, ens.ntk.mean(axis=0), rtol=1e-12)
    nngp = architecture_convergence(net, x, (8, 16), 3, seed=1, readout="all", progress=False)
    assert nngp.seeds != r.seeds  # the NTK study's networks are drawn apart from the NNGP study's
