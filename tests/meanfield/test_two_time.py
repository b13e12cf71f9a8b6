"""All two-time blocks by tiles (meanfield/two_time.py): several tiles, a partial last one, threads,
exact symmetry and one compiled program for every number of inputs."""

import numpy as np
import pytest
from test_meanfield_reference import reference_two_time  # the independent numpy recursion

import netfield as nf
from netfield.meanfield import two_time
from netfield.program.shape import chain_of

RNG = np.random.default_rng(11)
WV, BV, IV = 1.7, 0.25, 1.3


@pytest.mark.parametrize("act", ["erf", "relu"])
@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_several_tiles_match_independent_recursion(act, builder):
    # 75 inputs: three tiles of 32, the last one partial; inputs ending before the last step
    x = RNG.normal(size=(75, 4, 3))
    net = builder(6, act, weight_var=WV, bias_var=BV, input_var=IV)
    assert 75 > 2 * two_time.TILE
    got = nf.mean_field(net, x).preactivations()
    expected = reference_two_time(act, x, 6, WV, BV, IV, shared=builder is nf.rnn)
    np.testing.assert_allclose(got, expected, rtol=0, atol=1e-12)


def test_threads_do_not_change_the_result_and_blocks_are_exactly_transposed():
    net = nf.rnn(7, "erf", weight_var=WV, bias_var=BV, input_var=IV)
    x = RNG.normal(size=(70, 7, 2))
    chain = chain_of(net, x)
    one = two_time.two_time_kernels(chain, x, threads=1)
    two = two_time.two_time_kernels(chain, x, threads=2)
    np.testing.assert_array_equal(one, two)
    # C(s, t) = C(t, s)^T bit for bit, C(t, t) symmetric included, across tiles and within them
    np.testing.assert_array_equal(one, one.transpose(1, 0, 3, 2))


def test_one_compiled_program_for_every_number_of_inputs():
    net = nf.rnn(5, "erf", weight_var=WV, bias_var=BV, input_var=IV)
    x = RNG.normal(size=(90, 5, 3))
    program = two_time.lag_tile_program(chain_of(net, x).activation, 5, 5, True, two_time.TILE, 3)
    before = program._cache_size()
    for n in (90, 41, 33, 7):
        got = nf.mean_field(net, x[:n]).preactivations()
        np.testing.assert_allclose(got, reference_two_time("erf", x[:n], 5, WV, BV, IV, shared=True),
                                   rtol=0, atol=1e-12)
    assert program._cache_size() - before <= 1
