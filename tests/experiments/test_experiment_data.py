"""Real inputs (scikit-learn digits) and input files for the CLI."""

import numpy as np
import pytest

from netfield.experiments.data import digits_inputs, load_inputs


def test_digits_are_standardised_real_images():
    d = digits_inputs(12)
    assert d.x.shape == (12, 64)
    assert d.labels.tolist() == [0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 0, 1]
    assert np.all(np.isfinite(d.x))
    assert 0.3 < float(np.mean(d.x**2)) < 1.5  # per-pixel standardised over the dataset
    from sklearn.datasets import load_digits
    raw = load_digits().data
    mean, std = raw.mean(axis=0), raw.std(axis=0)
    np.testing.assert_allclose(d.x * np.where(std > 0, std, 1.0) + mean, raw[d.indices], atol=1e-12)
    assert d.labels.tolist() == load_digits().target[d.indices].tolist()


def test_load_inputs_formats(tmp_path):
    x = np.arange(6.0).reshape(3, 2)
    np.save(tmp_path / "x.npy", x)
    np.savez(tmp_path / "x.npz", inputs=x)
    np.savetxt(tmp_path / "x.csv", x, delimiter=",")
    np.savez(tmp_path / "two.npz", a=x, b=x[:, None, :])
    for name in ("x.npy", "x.npz", "x.csv"):
        np.testing.assert_array_equal(load_inputs(tmp_path / name), x)
    assert load_inputs(tmp_path / "two.npz", key="b").shape == (3, 1, 2)


@pytest.mark.parametrize("content, name, error, match", [
    (None, "missing.npy", FileNotFoundError, "does not exist"),
    (np.ones(4), "flat.npy", ValueError, r"must have shape \(N, d\) or \(N, T, d\)"),
    (np.array([[1.0, np.nan]]), "nan.npy", ValueError, "finite numbers, got nan at index"),
    ("1,2\n3,x\n", "bad.csv", ValueError, r"could not read input file .*data row 2 must hold 2 numbers"),
    ("1,2\n3\n", "ragged.csv", ValueError, r"data row 2 must hold 2 numbers, got \['3'\]"),
    ("a,b\n", "header_only.csv", ValueError, "no data rows"),
    ("a b", "x.txt", ValueError, "must end in .npy, .npz, .csv"),
])
def test_load_inputs_errors_name_the_problem(tmp_path, content, name, error, match):
    path = tmp_path / name
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, str):
        path.write_text(content)
    with pytest.raises(error, match=match):
        load_inputs(path)


def test_csv_inputs_may_have_a_header_line_as_gp_data_may(tmp_path):
    """Issue 19: the kernel / sample CSV loader rejected header lines that `netfield gp --data` accepts."""
    x = np.random.default_rng(2).normal(size=(4, 3))
    plain, headed = tmp_path / "x.csv", tmp_path / "headed.csv"
    np.savetxt(plain, x, delimiter=",")
    np.savetxt(headed, x, delimiter=",", header="f1,f2,f3", comments="")
    assert headed.read_text().startswith("f1,f2,f3\n")
    np.testing.assert_array_equal(load_inputs(headed), load_inputs(plain))
    np.testing.assert_allclose(load_inputs(headed), x, rtol=1e-15)
