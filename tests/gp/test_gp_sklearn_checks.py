"""scikit-learn's estimator contract: parametrize_with_checks on both NNGP estimators."""

from sklearn.utils.estimator_checks import parametrize_with_checks

from netfield.gp import NNGPClassifier, NNGPRegressor


@parametrize_with_checks([
    NNGPRegressor(depth=2),
    NNGPClassifier(depth=2, readout_var=10.0, n_samples=200),
    NNGPClassifier(depth=2, method="regression"),
])
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)
