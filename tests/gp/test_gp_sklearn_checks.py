"""scikit-learn's estimator contract: parametrize_with_checks on both NNGP estimators.

No check is excluded (no expected_failed_checks). scikit-learn itself skips two kinds of check, with
its own reasons: the array-API checks ("SCIPY_ARRAY_API is not set": the estimators are NumPy-only
and do not declare array-API support) and the pandas checks ("pandas is not installed": pandas is no
dependency of netfield; with pandas installed they run).
"""

from sklearn.utils.estimator_checks import parametrize_with_checks

from netfield.gp import NNGPClassifier, NNGPRegressor


@parametrize_with_checks([
    NNGPRegressor(depth=2),
    NNGPClassifier(depth=2, method="laplace", readout_var=10.0, n_samples=200),  # softmax Laplace, predict_proba
    NNGPClassifier(depth=2),  # the default: one-hot regression, decision_function
    NNGPRegressor(depth=2, standardize=False),  # inputs used as given
])
def test_sklearn_estimator_contract(estimator, check):
    check(estimator)
