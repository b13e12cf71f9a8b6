"""scikit-learn integration: NetworkKernel in sklearn's GPs and SVC, and the NNGP estimators."""

import numpy as np
import pytest
from scipy.optimize import minimize
from sklearn.base import clone
from sklearn.gaussian_process import GaussianProcessClassifier, GaussianProcessRegressor
from sklearn.gaussian_process.kernels import WhiteKernel
from sklearn.svm import SVC

import netfield as nf
from netfield import gp

RNG = np.random.default_rng(4)
X = RNG.normal(size=(30, 4))
XT = RNG.normal(size=(10, 4))
Y = np.sin(X[:, 0]) + 0.5 * X[:, 1]
LABELS = (X[:, 0] + X[:, 1] > 0).astype(int)
KERNEL = gp.NetworkKernel("rnn", depth=3, weight_var=1.8, bias_var=0.1, readout_var=0.9)
NET = nf.rnn(3, "erf", weight_var=1.8, bias_var=0.1, readout_var=0.9)


def test_kernel_values_diag_and_hyperparameters():
    np.testing.assert_allclose(KERNEL(X), nf.kernel(NET, X), rtol=1e-14)
    np.testing.assert_allclose(KERNEL(XT, X), nf.kernel(NET, XT, X), rtol=1e-14)
    np.testing.assert_allclose(KERNEL.diag(X), np.diag(KERNEL(X)), rtol=1e-12)
    assert not KERNEL.is_stationary()
    names = [h.name for h in KERNEL.hyperparameters]
    assert names == sorted(["weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var"])
    free = [h.name for h in KERNEL.hyperparameters if not h.fixed]
    assert free == ["bias_var", "input_var", "readout_var", "weight_var"]  # readout_bias_var = 0 is fixed
    assert KERNEL.theta.shape == (4,) and KERNEL.bounds.shape == (4, 2)
    np.testing.assert_allclose(np.exp(KERNEL.theta), [0.1, 1.0, 0.9, 1.8])
    other = KERNEL.clone_with_theta(np.log([0.2, 1.0, 0.9, 2.5]))
    assert other.weight_var == pytest.approx(2.5) and other.bias_var == pytest.approx(0.2)
    assert KERNEL.weight_var == 1.8  # unchanged


def test_kernel_gradient_matches_finite_differences_in_log_parameters():
    k, grad = KERNEL(X, eval_gradient=True)
    np.testing.assert_allclose(k, KERNEL(X), rtol=1e-13, atol=1e-15)
    assert grad.shape == (30, 30, 4)
    h = 1e-6
    for i in range(4):
        up, down = KERNEL.theta.copy(), KERNEL.theta.copy()
        up[i] += h
        down[i] -= h
        fd = (KERNEL.clone_with_theta(up)(X) - KERNEL.clone_with_theta(down)(X)) / (2 * h)
        np.testing.assert_allclose(grad[:, :, i], fd, rtol=1e-5, atol=1e-8)
    with pytest.raises(ValueError, match="only be evaluated when Y is None"):
        KERNEL(X, XT, eval_gradient=True)


def test_time_steps_read_rows_as_sequences():
    x = RNG.normal(size=(6, 8))
    kern = gp.NetworkKernel("rnn", depth=4, time_steps=4, readout="mean")
    np.testing.assert_allclose(kern(x), gp.network_kernel(nf.rnn(4, "erf"), x.reshape(6, 4, 2), None, "mean"),
                               rtol=1e-14)
    with pytest.raises(ValueError, match="time_steps = 3 must divide the number of features"):
        gp.NetworkKernel(time_steps=3)(x)


def test_inside_sklearn_gaussian_process_regressor():
    gpr = GaussianProcessRegressor(clone(KERNEL), alpha=1e-2, optimizer=None).fit(X, Y)
    ours = gp.fit_network(NET, X, Y, noise=1e-2)
    np.testing.assert_allclose(gpr.predict(XT), ours.predict(XT).mean, rtol=1e-8, atol=1e-10)
    assert gpr.log_marginal_likelihood_value_ == pytest.approx(ours.log_marginal_likelihood, rel=1e-8)
    # an L-BFGS-B optimiser fed by our gradients (eval_gradient=True) raises the evidence; a few
    # iterations keep the test short (each gradient runs the interpreter op by op)
    def few_steps(objective, theta, bounds):
        res = minimize(objective, theta, jac=True, method="L-BFGS-B", bounds=bounds, options={"maxiter": 4})
        return res.x, res.fun

    start = GaussianProcessRegressor(clone(KERNEL) + WhiteKernel(1e-2), optimizer=None).fit(X[:15], Y[:15])
    fitted = GaussianProcessRegressor(clone(KERNEL) + WhiteKernel(1e-2), optimizer=few_steps).fit(X[:15], Y[:15])
    assert fitted.log_marginal_likelihood_value_ > start.log_marginal_likelihood_value_ + 1.0


def test_inside_sklearn_gaussian_process_classifier():
    gpc = GaussianProcessClassifier(gp.NetworkKernel(depth=2, readout_var=5.0), optimizer=None).fit(X, LABELS)
    assert gpc.predict_proba(XT).shape == (10, 2)
    assert gpc.score(X, LABELS) > 0.9


def test_with_svc_precomputed_and_callable():
    kern = gp.NetworkKernel(depth=2, weight_var=2.0)
    pre = SVC(kernel="precomputed").fit(kern(X), LABELS)
    call = SVC(kernel=kern).fit(X, LABELS)
    np.testing.assert_array_equal(pre.predict(kern(XT, X)), call.predict(XT))
    assert call.score(X, LABELS) > 0.9


def test_regressor_matches_the_pure_functions():
    reg = gp.NNGPRegressor("rnn", depth=3, weight_var=1.8, bias_var=0.1, readout_var=0.9, noise=1e-2,
                           standardize=False).fit(X, Y)
    ours = gp.fit_network(NET, X, Y, noise=1e-2).predict(XT, return_var=True)
    mean, std = reg.predict(XT, return_std=True)
    np.testing.assert_allclose(mean, ours.mean, rtol=1e-12)
    np.testing.assert_allclose(std, np.sqrt(ours.var), rtol=1e-10)
    _, cov = reg.predict(XT, return_cov=True)
    np.testing.assert_allclose(np.diag(cov), ours.var, rtol=1e-8, atol=1e-12)
    two = gp.NNGPRegressor(depth=2).fit(X, np.stack([Y, -Y], axis=1))
    m2, s2 = two.predict(XT, return_std=True)
    assert m2.shape == (10, 2) and s2.shape == (10, 2)
    with pytest.raises(ValueError, match="cannot both be True"):
        reg.predict(XT, return_std=True, return_cov=True)


def test_regressor_optimize_raises_the_evidence():
    base = gp.NNGPRegressor(depth=2, bias_var=0.1).fit(X, Y)
    tuned = gp.NNGPRegressor(depth=2, bias_var=0.1, optimize=("weight_var", "noise")).fit(X, Y)
    assert tuned.log_marginal_likelihood_value_ > base.log_marginal_likelihood_value_
    assert tuned.evidence_fit_.params == ("weight_var", "noise")
    assert tuned.network_.weight_var == pytest.approx(tuned.evidence_fit_.network.weight_var)
    assert tuned.weight_var is None  # parameters are not overwritten (None: the network's own value)


def test_classifier_laplace_and_regression():
    # X is standard normal already: used as given (the 0.9 training score was calibrated on it)
    clf = gp.NNGPClassifier(depth=2, method="laplace", readout_var=10.0, n_samples=500,
                            standardize=False).fit(X, LABELS)
    proba = clf.predict_proba(XT)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    np.testing.assert_array_equal(clf.predict(XT), clf.classes_[proba.argmax(axis=1)])
    assert clf.score(X, LABELS) > 0.9 and clf.f_mode_.shape == (30, 2)
    assert not hasattr(clf, "decision_function")
    reg = gp.NNGPClassifier(depth=2, method="regression").fit(X, LABELS)
    assert reg.decision_function(XT).shape == (10,)
    assert not hasattr(reg, "predict_proba")
    assert reg.score(X, LABELS) > 0.9
    three = np.digitize(X[:, 0], [-0.5, 0.5])
    multi = gp.NNGPClassifier(depth=2, method="laplace", readout_var=10.0, n_samples=200).fit(X, three)
    assert multi.predict_proba(XT).shape == (10, 3)
    tuned = gp.NNGPClassifier(depth=2, method="laplace", readout_var=1.0, optimize=("readout_var",)).fit(X, LABELS)
    base = gp.NNGPClassifier(depth=2, method="laplace").fit(X, LABELS)
    assert tuned.log_marginal_likelihood_value_ >= base.log_marginal_likelihood_value_


@pytest.mark.parametrize("estimator, match", [
    (gp.NNGPRegressor(architecture="cnn"), "architecture must be one of 'dnn', 'rnn', 'gru', .*got 'cnn'"),
    (gp.NNGPRegressor(noise=-1.0), "noise must be a finite number >= 0, got -1.0"),
    (gp.NNGPRegressor(depth=0), "depth must be an integer >= 1, got 0"),
    (gp.NNGPRegressor(weight_var=-2.0), "weight_var must be a finite number > 0"),
    (gp.NNGPRegressor(time_steps=3), "time_steps = 3 must divide the number of features"),
    (gp.NNGPRegressor(optimize=("depth",)), "optimize must be False, True or a tuple"),
    (gp.NNGPRegressor(readout="first"), "readout must be 'last', 'mean'"),
    (gp.NNGPClassifier(method="ep"), "method must be one of 'regression', 'laplace', got 'ep'"),
    (gp.NNGPClassifier(random_state=None), "random_state must be an int seed"),
    (gp.NNGPClassifier(method="laplace", optimize=("noise",)), "optimize must be False, True or a tuple"),
    (gp.NNGPClassifier(tol=0.0), "tol must be a finite number > 0"),
])
def test_bad_parameters_raise_at_fit_naming_them(estimator, match):
    with pytest.raises((ValueError, TypeError), match=match):
        estimator.fit(X, LABELS)
