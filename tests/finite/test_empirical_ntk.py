"""The empirical NTK of finite networks (netfield.finite.ntk) against a brute-force Jacobian J J^T of the
network's outputs over all parameters, for every builder, in both parameterizations and both strategies.

The per-network function runs eagerly here (op by op: a few seconds for all builders, where compiling
each case would take minutes); empirical_ntk, which jits and vmaps that function, is checked against it
once, and for chunking and first_network.
"""

from __future__ import annotations

import dataclasses

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netfield as nf
from netfield.finite import Ensemble
from netfield.finite.ntk import empirical_ntk, network_ntk, plan, readout_ntk
from netfield.finite.parameters import network_outputs, sample_parameters, scales
from netfield.meanfield.result import readout_rows

RNG = np.random.default_rng(12)
WIDTH, SEED, INDEX = 6, 3, 1


def _shared_mlp(p, x):
    h = p.input("U", x, var=1.0) + p.bias("b", var=0.1)
    for _ in range(2):  # one matrix W for all layers: weight sharing
        h = p.matmul("W", p.nonlin("erf", h), var=1.5) + p.bias("b", var=0.1)
    return p.readout(p.nonlin("erf", h), 1.0, 0.2)


CASES = {
    "dnn": (nf.dnn(2, "erf", bias_var=0.3, readout_bias_var=0.2), RNG.normal(size=(3, 2)), "last"),
    "rnn_all_lists": (nf.rnn(3, "tanh", bias_var=0.3, readout_bias_var=0.1),
                      [RNG.normal(size=(2, 2)), RNG.normal(size=(3, 2)), RNG.normal(size=(1, 2))], "all"),
    "gru": (nf.gru(2), RNG.normal(size=(2, 2, 2)), "last"),
    "lstm": (nf.lstm(2), RNG.normal(size=(2, 2, 2)), "last"),
    "transformer": (nf.transformer(1, bias_var=0.2, readout_bias_var=0.1), RNG.normal(size=(2, 3, 2)), "last"),
    "conv_flatten": (nf.conv(2, filter_shape=(2,), readout="flatten", bias_var=0.1), RNG.normal(size=(2, 3, 2)),
                     "last"),
    "conv_global_avg": (nf.conv(2, filter_shape=(2,), bias_var=0.1), RNG.normal(size=(2, 3, 2)), "last"),
    "batchnorm_mlp": (nf.batchnorm_mlp(2), RNG.normal(size=(3, 2)), "last"),  # bias_var 0: s = 0
    "architecture": (nf.architecture(_shared_mlp), RNG.normal(size=(3, 2)), "last"),
}


def brute_force(program, width, key, rows, parameterization):
    """sum over all parameters p of df(a)/dp df(b)/dp, from jax.jacrev of the outputs."""
    params = sample_parameters(program, key, width)
    if parameterization == "standard":
        s = scales(program, width)
        params = {k: s[k] * v for k, v in params.items()}
    jac = jax.jacrev(lambda p: network_outputs(program, p, width, rows, parameterization=parameterization))(params)
    flat = jnp.concatenate([j.reshape(len(rows), -1) for j in jac.values()], axis=1)
    return np.asarray(flat @ flat.T)


@pytest.mark.parametrize("case", list(CASES))
def test_equals_brute_force_jacobian(case):
    net, x, readout = CASES[case]
    program = net.program(x)
    rows = readout_rows(program, readout)
    key = jax.random.fold_in(jax.random.PRNGKey(SEED), INDEX)
    for par in ("ntk", "standard"):
        want = brute_force(program, WIDTH, key, rows, par)
        assert want.shape == (len(rows), len(rows)) and np.abs(want).max() > 0.1
        for strategy in ("jacobian", "structured"):
            got, _ = network_ntk(program, key, WIDTH, jnp.float64, rows, par, plan(program, WIDTH, len(rows), strategy))
            np.testing.assert_allclose(got, want, rtol=0, atol=1e-10, err_msg=f"{case} {par} {strategy}")


def _linear(p, x, hp):  # f = s_V V . (s_U U x) + s_bo b_o, s_bo = 0
    return p.readout(p.nonlin("linear", p.input("U", x, var=hp.input_var)), hp.readout_var, 0.0)


def test_standard_is_ntk_contributions_over_s_squared():
    """A linear layer: Theta_ntk = c (A + B) (A the readout's part, B the input matrix's, both carry
    readout_var c); dividing each by its s^2 (s_V^2 = c / n, s_U^2 = u / d) gives Theta_std = n A + c d B / u
    + 1 (the readout bias: s = 0, so 0 in the NTK parameterization, 1 in the standard one). The runs at
    c = 1 fix A and B; those at another c (the same omega) are predicted."""
    x = RNG.normal(size=(3, 4))
    n, d, u = 5, 4, 0.7
    runs, key = {}, jax.random.fold_in(jax.random.PRNGKey(1), 0)
    for c in (1.0, 2.5):
        program = nf.architecture(_linear, input_var=u, readout_var=c).program(x)
        for par in ("ntk", "standard"):
            runs[c, par], _ = network_ntk(program, key, n, jnp.float64, readout_rows(program, "last"), par,
                                          plan(program, n, 3))
    B = (runs[1.0, "standard"] - 1.0 - n * runs[1.0, "ntk"]) / (d / u - n)
    A = runs[1.0, "ntk"] - B
    np.testing.assert_allclose(runs[2.5, "ntk"], 2.5 * (A + B), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(runs[2.5, "standard"], n * A + 2.5 * d * B / u + 1.0, rtol=1e-11, atol=1e-11)
    assert np.abs(A).max() > 0.1 and np.abs(B).max() > 0.1


def test_empirical_ntk_jitted_chunked_and_resumed():
    net, x, readout = nf.rnn(2, "tanh", bias_var=0.3), [RNG.normal(size=(2, 2)), RNG.normal(size=(1, 2))], "all"
    program = net.program(x)
    full = empirical_ntk(program, WIDTH, networks=3, seed=SEED, readout=readout, chunk_size=2)
    assert full.shape == (3, 3, 3) and full.dtype == np.float64
    rows = readout_rows(program, readout)
    eager, _ = network_ntk(program, jax.random.fold_in(jax.random.PRNGKey(SEED), INDEX), WIDTH, jnp.float64, rows,
                           "ntk", plan(program, WIDTH, len(rows)))
    np.testing.assert_allclose(full[INDEX], eager, rtol=1e-13, atol=1e-14)
    np.testing.assert_allclose(full, np.swapaxes(full, 1, 2), rtol=0, atol=1e-14)
    assert np.linalg.eigvalsh(full).min() > -1e-12
    # networks 1 and 2 in one chunk here, in two chunks above (one compilation: the same chunk shape)
    part = empirical_ntk(program, WIDTH, networks=2, seed=SEED, readout=readout, chunk_size=2, first_network=1)
    np.testing.assert_allclose(part, full[1:], rtol=1e-13, atol=1e-14)


def test_auto_strategy_picks_the_cheaper_contraction():
    program = nf.dnn(2, "erf").program(RNG.normal(size=(2, 3)))  # 2 rows, fan-in n: structured
    assert dict(plan(program, 256, 2))["W2"] == "structured"
    wide = nf.rnn(8, "erf").program(RNG.normal(size=(40, 8, 3)))  # W sees 8 x 40 rows > n = 16: jacobian
    assert dict(plan(wide, 16, 40))["W"] == "jacobian"
    assert {how for _, how in plan(wide, 16, 40, "structured")} == {"structured"}


def test_sample_records_the_ntk():
    net, x = nf.dnn(2, "erf", bias_var=0.2), RNG.normal(size=(3, 2))
    ens = nf.sample(net, x, WIDTH, networks=3, seed=SEED, ntk=True, parameterization="standard")
    assert ens.ntk.shape == (3, 3, 3) and ens.parameterization == "standard"
    program = net.program(x)
    rows = readout_rows(program, "last")
    want, values = network_ntk(program, jax.random.fold_in(jax.random.PRNGKey(SEED), INDEX), WIDTH, jnp.float64,
                               rows, "standard", plan(program, WIDTH, len(rows)))
    np.testing.assert_allclose(ens.ntk[INDEX], want, rtol=1e-12, atol=1e-13)
    # in the NTK parameterization the readout's contribution is the conditional readout kernel, here of
    # netfield.sample's network INDEX: the hidden layers are sample's (same seed and index)
    s2 = {k: v ** 2 for k, v in scales(program, WIDTH).items()}
    np.testing.assert_allclose(readout_ntk(program, values, s2, rows, jnp.float64), ens.readout[INDEX], rtol=1e-13,
                               atol=1e-15)
    mean, sem = ens.ntk_stats()
    np.testing.assert_allclose(mean, ens.ntk.mean(axis=0)) and np.testing.assert_array_less(0, sem)
    # the readout kernels are netfield.sample's without ntk (same hidden networks; the chain fast path)
    plain = nf.sample(net, x, WIDTH, networks=3, seed=SEED, method="weights")  # the same draws as ntk=True
    np.testing.assert_allclose(ens.readout, plain.readout, rtol=1e-12, atol=1e-14)
    assert plain.ntk is None
    with pytest.raises(ValueError, match="has no NTK"):
        plain.ntk_stats()
    # ensembles of network ranges join; mixed ones (with and without ntk) do not
    parts = [dataclasses.replace(ens, readout=ens.readout[a:b], ntk=ens.ntk[a:b], first_network=a)
             for a, b in ((0, 2), (2, 3))]
    joined = Ensemble.concatenate(parts)
    np.testing.assert_array_equal(joined.ntk, ens.ntk) and np.testing.assert_array_equal(joined.readout, ens.readout)
    with pytest.raises(ValueError, match="same run"):
        Ensemble.concatenate([parts[0], dataclasses.replace(parts[1], ntk=None, parameterization=None)])


def test_ntk_is_saved_and_loaded(tmp_path):
    ens = Ensemble(readout=np.ones((2, 3, 3)), width=4, ntk=RNG.normal(size=(2, 3, 3)), parameterization="ntk")
    back = nf.load(ens.save(tmp_path / "ens"))
    np.testing.assert_array_equal(back.ntk, ens.ntk) and np.testing.assert_array_equal(back.readout, ens.readout)
    assert back.parameterization == "ntk"
    assert Ensemble.load(Ensemble(readout=np.ones((1, 2, 2))).save(tmp_path / "plain")).ntk is None


def test_bad_inputs():
    net, x = CASES["dnn"][:2]
    program = net.program(x)
    with pytest.raises(ValueError, match="parameterization must be one of 'ntk', 'standard', got 'mup'"):
        empirical_ntk(program, 4, parameterization="mup")
    with pytest.raises(ValueError, match="strategy must be one of 'auto', 'jacobian', 'structured', got 'fast'"):
        empirical_ntk(program, 4, strategy="fast")
    with pytest.raises(TypeError, match=r"program must be a netfield Program \(net.program\(x\)\), got Network"):
        empirical_ntk(net, 4)
    with pytest.raises(ValueError, match="width must be"):
        empirical_ntk(program, 0)
    with pytest.raises(TypeError, match="ntk must be True or False, got 'yes'"):
        nf.sample(net, x, 4, ntk="yes")
    with pytest.raises(ValueError, match="parameterization must be one of 'ntk', 'standard', got 'NTK'"):
        nf.sample(net, x, 4, ntk=True, parameterization="NTK")
