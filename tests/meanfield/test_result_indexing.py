"""``MeanFieldResult.two_time`` rejects rows outside the kernel instead of clamping them to the last one."""

import numpy as np
import pytest

import netfield


@pytest.fixture(scope="module")
def result():
    x = np.random.default_rng(0).normal(size=(3, 2))
    return netfield.mean_field(netfield.dnn(3, "erf", weight_var=1.5, bias_var=0.1), x)


@pytest.mark.parametrize("a, b, name", [(99, None, "a"), (-1, None, "a"), (3, None, "a"), (0, 3, "b"),
                                        (1, -2, "b")])
def test_two_time_out_of_range_rows_raise(result, a, b, name):
    with pytest.raises(IndexError, match=rf"two_time: {name} must be a row in 0\.\.2 .*got {b if name == 'b' else a}"):
        result.two_time(a, b)


@pytest.mark.parametrize("a", [1.0, True, "0"])
def test_two_time_non_integer_rows_raise(result, a):
    with pytest.raises(TypeError, match=r"two_time: a must be an integer row in 0\.\.2"):
        result.two_time(a)


def test_two_time_valid_rows_read_the_kernels(result):
    m = np.asarray(result.two_time(2, 1))
    assert m.shape == (3, 3)
    for t in range(1, 4):
        for s in range(1, 4):
            assert m[t - 1, s - 1] == pytest.approx(float(np.asarray(result.preactivation(t, s))[2, 1]), abs=0)
