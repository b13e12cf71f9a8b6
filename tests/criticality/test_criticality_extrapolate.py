"""The a + b/n extrapolation helper (C15)."""

import numpy as np
import pytest

from netfield.criticality import fit_inverse_width


def test_exact_data_recovered():
    n = np.array([16, 32, 64, 128])
    fit = fit_inverse_width(n, 0.3 - 1.5 / n, np.full(4, 1e-3))
    assert fit.a == pytest.approx(0.3, abs=1e-12) and fit.b == pytest.approx(-1.5, abs=1e-10)
    assert fit.chi2 == pytest.approx(0.0, abs=1e-18) and fit.dof == 2 and fit.p_value == pytest.approx(1.0)
    fit2 = fit_inverse_width(n, 0.3 - 1.5 / n + 4.0 / n**2, np.full(4, 1e-3), order=2)
    assert fit2.params == pytest.approx([0.3, -1.5, 4.0], abs=1e-8)
    assert fit.predict(np.inf) == pytest.approx(0.3)


def test_error_bars_have_the_stated_coverage():
    rng = np.random.default_rng(0)
    n = np.array([32, 64, 128, 256])
    sig = np.array([4e-3, 3e-3, 2e-3, 1e-3])
    hits_a, hits_b, pvals = 0, 0, []
    trials = 2000
    for _ in range(trials):
        y = 0.1 + 0.7 / n + sig * rng.normal(size=4)
        f = fit_inverse_width(n, y, sig)
        hits_a += abs(f.a - 0.1) < f.a_err
        hits_b += abs(f.b - 0.7) < f.b_err
        pvals.append(f.p_value)
    # one standard error covers 68.3%: binomial error of the fraction is ~1%
    assert abs(hits_a / trials - 0.683) < 0.035 and abs(hits_b / trials - 0.683) < 0.035
    assert abs(np.mean(np.array(pvals) < 0.05) - 0.05) < 0.015   # p-values uniform under the model


@pytest.mark.parametrize("args, kwargs, words", [
    (([32, 64], [1.0, 1.0, 1.0], [1, 1]), {}, "same length"),
    (([32], [1.0], [1.0]), {}, "at least 2 widths"),
    (([32, 64], [1.0, 1.0], [1.0, 0.0]), {}, "sigmas must be > 0"),
    (([32, 0], [1.0, 1.0], [1.0, 1.0]), {}, "widths must be > 0"),
    (([32, 64, 128], [1.0, 1.0, 1.0], [1.0, 1, 1]), {"order": 3}, "order must be 1"),
    (([32, 64], [1.0, float("nan")], [1.0, 1.0]), {}, "values must contain only finite numbers"),
])
def test_errors(args, kwargs, words):
    with pytest.raises(ValueError, match=words):
        fit_inverse_width(*args, **kwargs)
