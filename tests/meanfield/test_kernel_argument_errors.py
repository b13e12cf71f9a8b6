"""``kernel(net, None)`` says None is not an array (it said "got nan")."""

import numpy as np
import pytest

import netfield


@pytest.mark.parametrize("call", [
    lambda: netfield.kernel(netfield.dnn(2), None),
    lambda: netfield.kernel(netfield.dnn(2), np.ones((2, 3)), [None]),
])
def test_none_inputs_are_named(call):
    with pytest.raises(TypeError, match=r"x\d(\[0\])? must be a numeric array, got None"):
        call()
