"""``NLOResult.index`` (netfield.one_loop) with an unknown kind lists the kinds (it said 'no fluctuating bogus entry')."""

import numpy as np
import pytest

import netfield


def test_unknown_kind_lists_the_kinds():
    result = netfield.one_loop(netfield.rnn(2, "tanh"), np.ones((1, 1)))
    with pytest.raises(ValueError, match=r"kind must be one of 'hidden', 'readout', got 'bogus'"):
        result.index("bogus")
    assert result.index("readout") == result.observables.index("readout", 2, 2)
