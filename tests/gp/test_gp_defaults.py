"""One vocabulary and defaults that work (issue 18, item 7): the README's classifier on raw digits,
input standardisation as estimator state, and ``netfield gp --method`` with the API's names."""

import json

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.datasets import load_digits
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

import netfield
from netfield import gp
from netfield.cli import main
from netfield.gp.sklearn import METHODS, input_scaling


@pytest.fixture(scope="module")
def digits():
    """Raw digits (pixels 0-16), 500 training and 300 test images of one fixed permutation (seed 0)."""
    x, y = load_digits(return_X_y=True)
    perm = np.random.default_rng(0).permutation(len(x))
    tr, te = perm[:500], perm[500:800]
    return x[tr], y[tr], x[te], y[te]


def test_readme_classifier_on_raw_digits_is_accurate(digits):
    """README: NNGPClassifier("rnn", depth=8, time_steps=8).fit(X, labels) on the raw pixels.

    Measured on this split: 95.7 % with the defaults (standardised inputs, one-hot regression). The
    old defaults scored 49.7 % (softmax Laplace on raw pixels; 46.5 % in the issue's own split) and
    68.7 % (regression on raw pixels, checked below), so the 0.9 threshold fails on either.
    """
    x_tr, y_tr, x_te, y_te = digits
    clf = gp.NNGPClassifier("rnn", depth=8, time_steps=8).fit(x_tr, y_tr)
    assert clf.method == "regression" and clf.standardize is True
    assert clf.score(x_te, y_te) > 0.9
    with pytest.warns(UserWarning, match=r"mean \|x\|\^2 / d = 60.1, far from the unit scale.*standardize=True"):
        raw = gp.NNGPClassifier("rnn", depth=8, time_steps=8, standardize=False).fit(x_tr, y_tr)
    assert raw.score(x_te, y_te) < 0.8  # the inputs as given: the kernel saturates


def test_standardisation_is_fitted_state_applied_at_predict():
    rng = np.random.default_rng(3)
    x, x_test = 5.0 + 3.0 * rng.normal(size=(40, 4)), 5.0 + 3.0 * rng.normal(size=(7, 4))
    y = np.sin(x[:, 0])
    reg = gp.NNGPRegressor(depth=2, noise=1e-2).fit(x, y)
    mean, scale = input_scaling(x)
    np.testing.assert_allclose(reg.x_mean_, x.mean(axis=0), rtol=1e-14)
    assert reg.x_scale_ == pytest.approx(np.sqrt(np.mean((x - x.mean(axis=0)) ** 2)), rel=1e-14)
    assert np.mean(((x - mean) / scale) ** 2) == pytest.approx(1.0, rel=1e-12)  # mean |x|^2 / d = 1
    ref = gp.fit_network(netfield.dnn(2, "erf"), (x - mean) / scale, y, noise=1e-2).predict((x_test - mean) / scale)
    np.testing.assert_allclose(reg.predict(x_test), ref.mean, rtol=1e-12)  # training statistics at predict
    raw = gp.NNGPRegressor(depth=2, noise=1e-2, standardize=False)
    with pytest.warns(UserWarning, match="far from the unit scale"):
        raw.fit(x, y)
    np.testing.assert_array_equal(raw.x_mean_, np.zeros(4))
    assert raw.x_scale_ == 1.0
    np.testing.assert_allclose(raw.predict(x_test), gp.fit_network(netfield.dnn(2, "erf"), x, y, noise=1e-2)
                               .predict(x_test).mean, rtol=1e-12)
    assert input_scaling(np.ones((5, 3)))[1] == 1.0  # constant inputs: no division by zero
    with pytest.raises(TypeError, match="standardize must be True or False, got 'yes'"):
        gp.NNGPRegressor(standardize="yes").fit(x, y)


def test_clone_set_params_and_pipeline_keep_the_new_parameters(digits):
    clf = gp.NNGPClassifier("rnn", depth=8, time_steps=8, standardize=False, progress=False)
    params = clf.get_params()
    assert params["standardize"] is False and params["progress"] is False and params["method"] == "regression"
    copy = clone(clf)
    assert copy.get_params() == params and not hasattr(copy, "x_mean_")
    copy.set_params(standardize=True, method="laplace")
    assert copy.standardize is True and clf.standardize is False
    x_tr, y_tr, x_te, y_te = digits
    pipe = make_pipeline(StandardScaler(), gp.NNGPClassifier("rnn", depth=8, time_steps=8, standardize=False))
    pipe.fit(x_tr[:200], y_tr[:200])
    assert pipe.score(x_te, y_te) > 0.85  # per-pixel scaling, as standardize=True: a sensible accuracy too
    assert clone(pipe).get_params()["nngpclassifier__standardize"] is False


def test_cli_takes_the_api_method_names_and_maps_the_old_alias(tmp_path, capsys):
    assert METHODS[0] == "regression" == gp.NNGPClassifier().method  # the same default in both
    base = ["gp", "--data", "digits", "--train-size", "100", "--depth", "2"]
    assert main(base + ["--json", str(tmp_path / "default.json")]) == 0
    assert main(base + ["--method", "regression", "--json", str(tmp_path / "new.json")]) == 0
    capsys.readouterr()
    assert main(base + ["--method", "onehot", "--json", str(tmp_path / "old.json")]) == 0
    err = capsys.readouterr().err
    assert err.strip() == ("netfield: note: --method onehot is deprecated; use --method regression (the same "
                           "method, netfield.gp.NNGPClassifier's name)")
    runs = [json.loads((tmp_path / f"{k}.json").read_text()) for k in ("default", "new", "old")]
    assert all(r["method"] == "regression" for r in runs)
    assert runs[0]["accuracy"] == runs[1]["accuracy"] == runs[2]["accuracy"] > 0.7  # chance: 0.1
    assert main(base + ["--method", "laplace", "--readout-var", "10", "--json", str(tmp_path / "lap.json")]) == 0
    assert json.loads((tmp_path / "lap.json").read_text())["method"] == "laplace"


def test_cli_standardises_like_the_estimator(tmp_path):
    """netfield gp on a file (standardised by default) = NNGPRegressor with its defaults."""
    rng = np.random.default_rng(1)
    x, x_test = 4.0 + 2.0 * rng.normal(size=(50, 3)), 4.0 + 2.0 * rng.normal(size=(10, 3))
    y, y_test = np.sin(x[:, 0]), np.sin(x_test[:, 0])
    np.savez(tmp_path / "d.npz", x=x, y=y, x_test=x_test, y_test=y_test)
    assert main(["gp", "--data", str(tmp_path / "d.npz"), "--depth", "2", "--out", str(tmp_path / "p.npz")]) == 0
    reg = gp.NNGPRegressor(depth=2, bias_var=0.0, noise=1e-2).fit(x, y)
    with np.load(tmp_path / "p.npz") as pred:
        np.testing.assert_allclose(pred["mean"], reg.predict(x_test), rtol=1e-10, atol=1e-12)
