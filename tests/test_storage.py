"""Results that can be kept (issue 18, item 9): every result type saves to a portable .npz file and
loads back exactly (same arrays, dtypes, shapes, floats, metadata), with the network and the netfield
version; bad files give errors that name the path and what is wrong."""

import dataclasses
import json
import math
import zipfile

import numpy as np
import pytest

import netfield
from netfield import storage
from netfield.finite import Ensemble
from netfield.meanfield import MeanFieldResult
from netfield.nlo.oneloop import NLOResult
from netfield.nlo.simulate import SimulatedNLO

X = np.random.default_rng(0).normal(size=(3, 2))


def assert_identical(a, b, where="result"):
    """Exact equality, recursively: arrays (values incl. nan, dtype, shape), scalars (type and value),
    tuples / lists / dicts, dataclasses field by field, networks by repr."""
    if isinstance(a, netfield.Network):
        assert isinstance(b, netfield.Network) and repr(a) == repr(b), where
    elif dataclasses.is_dataclass(a):
        assert type(a) is type(b), where
        for f in dataclasses.fields(a):
            assert_identical(getattr(a, f.name), getattr(b, f.name), f"{where}.{f.name}")
    elif isinstance(a, (np.ndarray, np.generic)) or hasattr(a, "__array__") and not isinstance(a, (int, float)):
        a_, b_ = np.asarray(a), np.asarray(b)
        assert a_.dtype == b_.dtype and a_.shape == b_.shape, (where, a_.dtype, b_.dtype, a_.shape, b_.shape)
        assert np.array_equal(a_, b_, equal_nan=a_.dtype.kind in "fc"), where
        assert type(a) is type(b) or not isinstance(a, np.generic), (where, type(a), type(b))
    elif isinstance(a, float):
        assert type(b) is float and (a == b or math.isnan(a) and math.isnan(b)), (where, a, b)
    elif isinstance(a, (tuple, list)):
        assert type(a) is type(b) and len(a) == len(b), where
        for i, (u, v) in enumerate(zip(a, b)):
            assert_identical(u, v, f"{where}[{i}]")
    elif isinstance(a, dict):
        assert a.keys() == b.keys(), (where, a.keys(), b.keys())
        for k in a:
            assert_identical(a[k], b[k], f"{where}[{k!r}]")
    else:
        assert type(a) is type(b) and a == b, (where, a, b)


def round_trip(result, tmp_path, **kw):
    path = result.save(tmp_path / "result", **kw)
    assert path == tmp_path / "result.npz" and path.is_file()
    with zipfile.ZipFile(path) as z:  # arrays and one JSON entry, nothing pickled
        assert all(name.endswith(".npy") for name in z.namelist())
    with np.load(path, allow_pickle=False) as data:
        assert all(data[k].dtype != object for k in data.files)
    loaded = type(result).load(path)
    assert type(loaded) is type(result)
    assert_identical(result, loaded)
    assert_identical(result, netfield.load(path))  # the generic loader finds the type in the file
    return path, loaded


def test_ensemble_round_trip_with_network(tmp_path):
    net = netfield.rnn(3, "tanh", weight_var=1.5, bias_var=0.1)
    ens = netfield.sample(net, X, width=16, networks=4, seed=3, preactivations="all")
    path, loaded = round_trip(ens, tmp_path, network=net)
    assert set(loaded.preactivations) == {(1, 1), (1, 2), (1, 3), (2, 2), (2, 3), (3, 3)}
    meta = storage.read_metadata(path)
    assert meta["type"] == "Ensemble" and meta["netfield_version"] == netfield.__version__
    assert meta["network"]["repr"] == repr(net) and meta["network"]["name"] == "rnn"
    assert meta["network"]["options"] == {"steps": 3, "activation": "tanh"}
    assert meta["network"]["hyper"]["weight_var"] == 1.5 and meta["network"]["rebuildable"]
    assert repr(storage.rebuild_network(meta["network"])) == repr(net)
    # the rebuilt network is the same network: same kernel
    np.testing.assert_array_equal(netfield.kernel(storage.rebuild_network(meta["network"]), X),
                                  netfield.kernel(net, X))


def test_mean_field_round_trip(tmp_path):
    net = netfield.rnn(3, "erf", weight_var=1.5, bias_var=0.5)
    mf = netfield.mean_field(net, X)
    path = mf.save(tmp_path / "mf.npz")
    back = MeanFieldResult.load(path)
    assert isinstance(back, MeanFieldResult) and repr(back.net) == repr(net)
    for name in ("readout", "error"):
        assert_identical(np.asarray(getattr(mf, name)), np.asarray(getattr(back, name)), name)
    assert_identical(np.asarray(mf.readout_kernel("all")), np.asarray(back.readout_kernel("all")))
    assert back.backends == mf.backends and back.replicates == mf.replicates and back.steps == mf.steps == 3
    assert back.taps == mf.taps and back.max_error == mf.max_error
    for t in range(1, 4):
        for s in range(1, 4):
            assert_identical(np.asarray(mf.preactivation(t, s)), np.asarray(back.preactivation(t, s)), (t, s))
    assert_identical(mf.preactivations(), back.preactivations())
    assert_identical(np.asarray(mf.two_time(1, 2)), np.asarray(back.two_time(1, 2)))
    with pytest.raises(ValueError, match=r"t and s must be steps in 1\.\.3 of the 'h' taps, got \(4, 1\)"):
        back.preactivation(4, 1)
    with pytest.raises(ValueError, match="interpreter, which is not saved"):
        back.covariance("g1", "g2")
    assert_identical(np.asarray(back.readout), np.asarray(MeanFieldResult.load(back.save(tmp_path / "again")).readout))


def test_mean_field_of_a_gated_network_keeps_every_tap_family(tmp_path):
    net = netfield.gru(2)
    mf = netfield.mean_field(net, np.ones((2, 2, 1)))
    back = netfield.load(mf.save(tmp_path / "gru"))
    assert repr(back.net) == repr(net) and back.taps == mf.taps and len(back.taps) > 1
    for family, idx in mf.taps.items():
        assert_identical(np.asarray(mf.tap(family, idx[0], idx[-1])), np.asarray(back.tap(family, idx[0], idx[-1])))
    assert_identical(np.asarray(mf.error), np.asarray(back.error))


def test_nlo_results_round_trip(tmp_path):
    net = netfield.dnn(2, "tanh", weight_var=1.5, bias_var=0.5)
    r = netfield.one_loop(net, np.ones((1, 1)))
    path, back = round_trip(r, tmp_path, network=net)
    assert back.index("hidden", 2, 2) == r.index("hidden", 2, 2)
    assert storage.read_metadata(path)["network"]["repr"] == repr(net)
    # the simulation's result type, fitted from given moments (no sampling needed for the round trip)
    o, M = r.observables, len(r.kernel)
    rng = np.random.default_rng(1)
    widths = (16, 32, 64)
    mean = r.kernel + rng.normal(size=(3, M)) * 1e-2
    cov = np.stack([np.eye(M) * (1.0 + k) for k in range(3)])
    sim = SimulatedNLO.from_moments(o, widths, 100, r.kernel, mean, np.full((3, M), 1e-2), cov,
                                    np.full((3, M, M), 1e-2), seeds=(5, 6, 7))
    round_trip(sim, tmp_path / "sim", network=net)


@dataclasses.dataclass(frozen=True)
class Kept(storage.Storable):
    """Every kind of value the format stores, in one result."""

    f32: np.float32
    i64: np.int64
    special: tuple
    mapping: dict
    empty: np.ndarray
    ints: np.ndarray
    cplx: np.ndarray
    nothing: None = None
    flag: bool = True


def test_every_value_kind_round_trips_exactly(tmp_path):
    kept = Kept(np.float32(0.1), np.int64(2**40 + 1),
                (0.1, 1 / 3, float("nan"), float("inf"), -float("inf"), 1e-310, 5, "text", 2 + 3j, [1, (2, 3)]),
                {(1, 2): np.arange(3.0), "s": {"nested": (1,)}, 3: None},
                np.zeros((0, 4), np.float32), np.arange(6, dtype=np.int16).reshape(2, 3),
                np.array([1 + 2j, np.nan], np.complex128))
    path = kept.save(tmp_path / "kept")
    back = Kept.load(path)
    assert_identical(kept, back)
    assert type(back.f32) is np.float32 and type(back.i64) is np.int64 and back.i64 == 2**40 + 1
    json.loads(str(np.load(path, allow_pickle=False)[storage.META]))  # strict JSON (no NaN literals)


def test_feature_results_round_trip(tmp_path):
    from netfield.feature import FeatureResult, PosteriorSamples, posterior_kernels, posterior_samples

    net = netfield.dnn(2, "erf", weight_var=1.5)
    x, y = np.random.default_rng(0).normal(size=(2, 3)), np.array([1.0, -1.0])
    r = posterior_kernels(net, x, y, kappa=0.5, signal=0.3)
    path, back = round_trip(r, tmp_path / "theory")
    assert repr(back.problem.net) == repr(net) and storage.read_metadata(path)["network"]["repr"] == repr(net)
    assert back.cross_time_overlap(1, 2) == r.cross_time_overlap(1, 2)
    assert isinstance(back, FeatureResult)
    s = posterior_samples(net, x, y, width=8, kappa=0.5, chains=2, samples=4, thin=2, burn_in=10, seed=1)
    _, back = round_trip(s, tmp_path / "hmc", network=net)
    assert isinstance(back, PosteriorSamples) and back.tau == s.tau


def test_network_that_cannot_be_rebuilt_keeps_its_description(tmp_path):
    net = netfield.dnn(2, netfield.leaky_relu(0.2))  # leaky_relu by name alone would be another slope
    ens = netfield.sample(net, X, width=8, networks=3, seed=0)
    path = ens.save(tmp_path / "e", network=net)
    meta = storage.read_metadata(path)
    assert meta["network"]["repr"] == repr(net) and not meta["network"]["rebuildable"]
    assert storage.rebuild_network(meta["network"]) is None
    assert_identical(ens, Ensemble.load(path))


def test_bad_files_name_the_path_and_the_problem(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"path '.*missing\.npz': no such result file"):
        Ensemble.load(tmp_path / "missing.npz")
    (tmp_path / "text.npz").write_text("not a zip")
    with pytest.raises(ValueError, match=r"path '.*text\.npz' is not a netfield result file"):
        netfield.load(tmp_path / "text.npz")
    np.savez(tmp_path / "plain.npz", a=np.zeros(2))
    with pytest.raises(ValueError, match=r"path '.*plain\.npz' is a \.npz file but not a netfield result"):
        Ensemble.load(tmp_path / "plain.npz")
    ens = netfield.sample(netfield.dnn(1), X, width=4, networks=2, seed=0)
    path = ens.save(tmp_path / "ens")
    with pytest.raises(ValueError, match=r"path '.*ens\.npz' holds a Ensemble, not a MeanFieldResult"):
        MeanFieldResult.load(path)
    with pytest.raises(ValueError, match=r"holds a Ensemble, not a NLOResult"):
        NLOResult.load(path)
    # a file from a newer netfield: the format version is checked before anything else is read
    with np.load(path, allow_pickle=False) as data:
        entries = {k: data[k] for k in data.files}
    meta = json.loads(str(entries[storage.META]))
    meta["format_version"], meta["netfield_version"] = storage.FORMAT_VERSION + 1, "9.0"
    entries[storage.META] = np.array(json.dumps(meta))
    np.savez(tmp_path / "newer.npz", **entries)
    with pytest.raises(ValueError, match=r"path '.*newer\.npz' has format version 2 \(written by netfield 9\.0\); "
                                         r"this netfield .* reads format versions <= 1: upgrade netfield"):
        Ensemble.load(tmp_path / "newer.npz")
    with pytest.raises(TypeError, match="network must be a netfield Network or None, got str"):
        ens.save(tmp_path / "x", network="dnn")
    with pytest.raises(TypeError, match="result must be one of Ensemble, .*got int"):
        netfield.save(3, tmp_path / "y")
