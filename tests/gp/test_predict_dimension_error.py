"""A predict-time dimension error names the test inputs and the training dimension (it swapped them:
'x2 must have the same input dimension d as x1 (5), got d = 3')."""

import numpy as np
import pytest

import netfield
from netfield.gp import fit_network


def test_predict_with_wrong_dimension_names_train_and_test_dims():
    rng = np.random.default_rng(0)
    fit = fit_network(netfield.dnn(2), rng.normal(size=(10, 3)), rng.normal(size=10), noise=1e-2)
    for kwargs in ({}, {"return_cov": True}):
        with pytest.raises(ValueError, match=r"x must have the input dimension of the training inputs, d = 3, "
                                             r"got d = 5 \(shape \(4, 5\)\)"):
            fit.predict(rng.normal(size=(4, 5)), **kwargs)
    assert fit.predict(rng.normal(size=(4, 3))).mean.shape == (4,)
