"""program_of (program/memo.py): an equal (network, inputs) pair gets the same Program object, so what is
compiled for it is reused; anything else gets its own program."""

import jax
import jax.monitoring
import numpy as np
import pytest

import netfield as nf
from netfield.finite.netsor import sample_program
from netfield.program import memo
from netfield.program.memo import program_of

RNG = np.random.default_rng(4)
X = RNG.normal(size=(3, 3, 2))


def test_equal_network_and_inputs_give_the_same_program():
    net = nf.gru(3)
    p = program_of(net, X)
    assert program_of(nf.gru(3), X.copy()) is p  # equal, not identical, objects
    assert program_of(net, X + 1e-12) is not p  # other input values
    assert program_of(nf.gru(3, weight_var=1.1), X) is not p  # other hyper-parameters
    assert program_of(nf.gru(3, fixed_gates={"reset": 1.0}), X) is not p  # other static options (a dict)
    assert program_of(nf.gru(4), X) is not p
    assert program_of(net, X.astype(np.float32)) is not p
    ragged = [X[0, :2], X[1]]
    assert program_of(net, [a.copy() for a in ragged]) is program_of(net, ragged)
    assert program_of(net, tuple(ragged)) is not program_of(net, ragged)


def test_bad_inputs_raise_what_net_program_raises():
    net = nf.dnn(2, "erf")
    for bad in (np.zeros((2, 0)), [[1.0, 2.0], [3.0]], "abc"):
        with pytest.raises(Exception) as direct:
            net.program(bad)
        with pytest.raises(type(direct.value)) as memoised:
            program_of(net, bad)
        assert str(memoised.value) == str(direct.value)


def test_traced_hyper_parameters_are_not_memoised():
    net = nf.dnn(2, "erf")
    x = RNG.normal(size=(3, 2))
    seen = []

    def f(w):
        program = program_of(net.replace(weight_var=w), x)
        seen.append(program)
        return nf.kernel(net.replace(weight_var=w), x)[0, 1]

    g1, g2 = jax.grad(f)(1.5), jax.grad(f)(1.5)
    assert g1 == g2 and seen[0] is not seen[1]
    assert program_of(net.replace(weight_var=1.5), x) is program_of(net.replace(weight_var=1.5), x)


def test_memo_keeps_the_last_programs_only():
    net = nf.dnn(2, "erf")
    first = program_of(net, np.zeros((2, 2)))
    for i in range(memo.SIZE):
        program_of(net, np.full((2, 2), float(i + 1)))
    assert len(memo._MEMO) <= memo.SIZE
    assert program_of(net, np.zeros((2, 2))) is not first  # evicted, built again


def test_sample_again_compiles_nothing_and_draws_the_networks_of_its_own_inputs():
    """A second netfield.sample of an equal GRU and inputs (another seed) compiles no sampler; with other
    inputs of the same shape it samples those inputs (a stale program would give the first inputs'
    numbers: compared with a freshly built program)."""
    net = nf.gru(3)
    nf.sample(net, X, width=16, networks=2, seed=1, readout="all")
    compiled = []

    def listen(event, duration, **kw):
        if event.endswith("backend_compile_duration"):
            compiled.append(kw.get("fun_name"))

    jax.monitoring.register_event_duration_secs_listener(listen)
    try:
        again = nf.sample(net, X.copy(), width=16, networks=2, seed=2, readout="all")
    finally:
        jax.monitoring.unregister_event_duration_listener(listen)
    assert "jit(one)" not in compiled, compiled
    fresh = sample_program(net.program(X), 16, 2, 2, readout="all")
    np.testing.assert_array_equal(again.readout, fresh.readout)
    other = X[::-1].copy()
    ens = nf.sample(net, other, width=16, networks=2, seed=2, readout="all")
    np.testing.assert_array_equal(ens.readout, sample_program(net.program(other), 16, 2, 2, readout="all").readout)
    assert not np.allclose(ens.readout, again.readout)
