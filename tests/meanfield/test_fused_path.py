"""The fused chain path (meanfield/fused.py) must agree with the generic interpreter."""

import numpy as np
import pytest

import netfield as nf
from netfield.meanfield import fused
from netfield.meanfield.kernels import _fused_kernel, joined_inputs
from netfield.meanfield.netsor import ProgramEngine
from netfield.meanfield.ntk import TangentEngine
from netfield.meanfield.result import assemble, assemble_readouts, readout_rows
from netfield.program.shape import chain_of


def generic_kernel(net, x1, x2=None, method="auto"):
    """The generic master-theorem interpreter on the joint program (no fast path)."""
    joined, n1 = joined_inputs(net, x1, x2)
    program = net.program(joined)
    rows = readout_rows(program, "last")
    k = np.asarray(assemble_readouts(ProgramEngine(program, method=method), rows, rows)[0])
    return k if n1 is None else k[:n1, n1:]


def _fused_applies(net, x1, x2, readout, method):
    joined, n1 = joined_inputs(net, x1, x2)
    return _fused_kernel(net.program(joined), n1, readout, method) is not None


RNG = np.random.default_rng(7)
INPUTS = {
    "static-symmetric": (RNG.normal(size=(300, 7)), None),  # 300 > one tile, not a multiple of it
    "static-cross": (RNG.normal(size=(130, 7)), RNG.normal(size=(270, 7))),
    "sequence-shorter-than-steps": (RNG.normal(size=(40, 4, 3)), None),
    "sequence-cross": (RNG.normal(size=(40, 5, 3)), RNG.normal(size=(20, 5, 3))),
}


ACTIVATIONS = ["erf", "relu", "leaky_relu", "linear", "sign", "step", "sin", "cos"]
# Every activation on every input case, the builder alternating (DNN, RNN) so that every activation and
# every input case also meets both builders: all pairs of the three factors, in 32 runs instead of the
# 64 of the full product. Each run still compares the fused kernel with the generic interpreter to
# 1e-13, so a wrong closed form (any activation), tiling or cross block (any case) or chain shape (either
# builder) fails at least one run; only a defect confined to one (activation, case, builder) triple and
# absent from the pairs could pass, and meanfield/fused.py branches on the activation (closed form,
# jumps), on the input layout (steps of input, symmetric or cross) and on the chain, never on a triple.
PAIRWISE = [(activation, [nf.dnn, nf.rnn][(i + j) % 2], case)
            for i, activation in enumerate(ACTIVATIONS) for j, case in enumerate(sorted(INPUTS))]


@pytest.mark.parametrize(("activation", "builder", "case"), PAIRWISE,
                         ids=[f"{c}-{b.__name__}-{a}" for a, b, c in PAIRWISE])
def test_fused_equals_generic(activation, builder, case):
    net = builder(5, activation, weight_var=1.7, bias_var=0.3, input_var=1.2, readout_var=0.9,
                  readout_bias_var=0.1)
    x1, x2 = INPUTS[case]
    assert _fused_applies(net, x1, x2, "last", "auto")
    fast = np.asarray(nf.kernel(net, x1, x2))
    slow = generic_kernel(net, x1, x2)
    assert np.abs(fast - slow).max() <= 1e-13 * np.abs(slow).max()


def test_fused_not_used_where_it_does_not_apply():
    net = nf.rnn(4, "erf", bias_var=0.2)
    seqs = [RNG.normal(size=(3, 2)), RNG.normal(size=(4, 2))]
    assert not _fused_applies(net, seqs, None, "last", "auto")  # different readout steps
    x = RNG.normal(size=(3, 2))
    assert not _fused_applies(net, x, None, "all", "auto")
    assert not _fused_applies(nf.dnn(3, "elu"), x, None, "last", "auto")  # no closed form, kinked
    assert not _fused_applies(nf.dnn(3, "tanh"), x, None, "last", "panels")  # a rule was asked for
    assert _fused_applies(nf.dnn(3, "tanh"), x, None, "last", "auto")  # Mehler series
    assert not _fused_applies(nf.gru(3), x, None, "last", "auto")  # not a chain program


def panels_kernel(net, x1, x2=None):
    return generic_kernel(net, x1, x2, method="panels")


@pytest.mark.parametrize("activation", ["tanh", "gelu", "swish"])
@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_series_fused_equals_panel_rule(activation, builder):
    """Smooth activations without a closed form: the fused Mehler series against the independent
    panel quadrature of the generic interpreter, symmetric and cross kernels."""
    net = builder(4, activation, weight_var=2.25, bias_var=0.05, input_var=1.5, readout_var=0.9,
                  readout_bias_var=0.1)
    x1, x2 = RNG.normal(size=(9, 3)), RNG.normal(size=(5, 3))
    for a, b in ((x1, None), (x1, x2)):
        fast, slow = np.asarray(nf.kernel(net, a, b)), panels_kernel(net, a, b)
        assert np.abs(fast - slow).max() <= 1e-9 * np.abs(slow).max()


def test_series_order_rises_where_correlations_reach_one():
    """Duplicate inputs put c = 1 off the diagonal: the a-posteriori bound rejects the low order
    that suffices for distinct inputs, and the result still matches the panel rule."""
    net = nf.dnn(3, "tanh", weight_var=2.25, bias_var=0.05)
    x = RNG.normal(size=(6, 3))
    x = np.concatenate([x, x[:3]])
    orders = []
    run = fused._Tiles.run

    def spy(self, entry, *args, **kw):
        orders.append(entry.__closure__[0].cell_contents if entry.__closure__ else None)
        return run(self, entry, *args, **kw)

    fused._Tiles.run = spy
    try:
        fast = np.asarray(nf.kernel(net, x))
    finally:
        fused._Tiles.run = run
    assert len(orders) >= 2 and orders[0] < orders[-1]
    slow = panels_kernel(net, x)
    assert np.abs(fast - slow).max() <= 1e-9 * np.abs(slow).max()


def test_series_out_of_reach_falls_back_to_generic():
    """Variances so large that no order of the series meets its tolerance at c = 1 (a duplicate
    input): readout_kernel says so (None) and kernel() takes the generic interpreter."""
    net = nf.dnn(2, "tanh", weight_var=2.0, input_var=4000.0, bias_var=0.0)
    x = RNG.normal(size=(4, 3))
    x = np.concatenate([x, x[:1]])
    assert fused.readout_kernel(chain_of(net), x[:, None, :], None) is None
    fast, slow = np.asarray(nf.kernel(net, x)), panels_kernel(net, x)
    assert np.abs(fast - slow).max() <= 1e-9 * np.abs(slow).max()


def test_thread_count_does_not_change_result():
    net = nf.dnn(6, "erf", weight_var=2.25, bias_var=0.01)
    x = RNG.normal(size=(520, 16))[:, None, :]
    one = fused.readout_kernel(chain_of(net), x, None, threads=1)
    two = fused.readout_kernel(chain_of(net), x, None, threads=2)
    np.testing.assert_array_equal(one, two)


def test_result_is_not_copied_into_jax():
    """kernel() wraps the filled numpy buffer (64-byte aligned) instead of copying N x N floats."""
    a = fused.aligned_empty((300, 200))
    assert a.ctypes.data % 64 == 0
    a.fill(1.5)
    assert fused.as_jax(a).unsafe_buffer_pointer() == a.ctypes.data


def test_tile_program_compiles_once_for_every_number_of_inputs():
    net = nf.dnn(4, "erf", weight_var=1.3, bias_var=0.1)
    x = RNG.normal(size=(700, 5))
    run = fused._tile_program(net.activation, 4, 1, fused.TILE, 5)
    before = run._cache_size()
    for n in (300, 520, 700):
        k = np.asarray(nf.kernel(net, x[:n]))
        np.testing.assert_allclose(k, generic_kernel(net, x[:n]), rtol=1e-13, atol=1e-13)
    assert run._cache_size() - before <= 1


@pytest.mark.parametrize("activation", ["erf", "relu", "sign", "tanh"])
@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_all_two_time_blocks_equal_generic(activation, builder):
    """mean_field(...).preactivations() (fused offset chains for closed forms) == block by block
    (tanh: both Mehler series, whose order is chosen per block; stated accuracy 1e-10)."""
    net = builder(5, activation, weight_var=1.5, bias_var=0.5, input_var=1.2)
    tol = 1e-10 if activation == "tanh" else 1e-13
    for x in (RNG.normal(size=(6, 3)), RNG.normal(size=(6, 4, 3))):
        mf = nf.mean_field(net, x)
        allblocks = mf.preactivations()
        assert allblocks.shape == (5, 5, 6, 6)
        fresh = nf.mean_field(net, x)
        for t in range(1, 6):
            for s in range(1, 6):
                expected = np.asarray(fresh.preactivation(t, s))
                assert np.abs(allblocks[t - 1, s - 1] - expected).max() < tol
                if builder is nf.dnn and t != s:
                    assert not allblocks[t - 1, s - 1].any()


def test_zero_variance_rows_in_the_series_path_are_exact_and_quiet():
    """A zero input without bias has zero variance at every layer: the Mehler-series tables give it
    c = 0 (E[phi(0) phi(v)] = phi(0) E phi(v)), with no division by zero."""
    import warnings

    x = np.zeros((3, 4))
    x[1], x[2, 0] = 1.0, 2.0
    net = nf.dnn(3, "tanh")
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        fast = np.asarray(nf.kernel(net, x))
    generic = np.asarray(nf.mean_field(net, x).readout)
    np.testing.assert_allclose(fast, generic, rtol=0, atol=1e-10)
    assert np.all(fast[0] == 0)


# ---- the NTK on the fused path ---------------------------------------------------------------------

def generic_ntk(net, x1, x2=None, parameterization="ntk", width=None):
    """The generic tangent interpreter (meanfield/ntk.py) on the joint program (no fast path)."""
    joined, n1 = joined_inputs(net, x1, x2)
    program = net.program(joined)
    engine = ProgramEngine(program)
    rows = readout_rows(program, "last")
    tangents = TangentEngine(engine, parameterization, width)
    full = np.asarray(assemble(tangents.readout_ntk, rows, rows, engine.replicates).mean(axis=0))
    return full if n1 is None else full[:n1, n1:]


NTK_INPUTS = {  # small inputs; a tile of 16 rows puts tile boundaries inside them
    "static-symmetric": (RNG.normal(size=(37, 5)), None),
    "sequence-shorter-than-steps": (RNG.normal(size=(20, 4, 3)), None),
    "sequence-cross": (RNG.normal(size=(13, 5, 3)), RNG.normal(size=(21, 5, 3))),
}


def _check_fused_ntk(net, inputs, tol):
    for case, (x1, x2) in inputs.items():
        joined, n1 = joined_inputs(net, x1, x2)
        assert _fused_kernel(net.program(joined), n1, "last", "auto", "ntk") is not None, case
        for parameterization, width in (("ntk", None), ("standard", 64)):
            fast = np.asarray(nf.kernel(net, x1, x2, kind="ntk", parameterization=parameterization, width=width))
            slow = generic_ntk(net, x1, x2, parameterization, width)
            assert fast.shape == slow.shape
            err = np.abs(fast - slow).max() / np.abs(slow).max()
            assert err <= tol, (case, parameterization, err)


@pytest.mark.parametrize("activation", ["erf", "relu", "leaky_relu", "linear", "sin"])
@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_fused_ntk_equals_tangent_engine(activation, builder, monkeypatch):
    """kernel(kind="ntk") of a chain (the fused tiles carrying Theta along with K) == the generic
    TangentEngine to 1e-12, DNN and RNN (inputs at every step, one readout), symmetric and cross,
    both parameterizations, several tiles."""
    monkeypatch.setattr(fused, "TILE", 16)
    net = builder(5, activation, weight_var=1.7, bias_var=0.3, input_var=1.2, readout_var=0.9,
                  readout_bias_var=0.1)
    inputs = {k: v for k, v in NTK_INPUTS.items() if builder is nf.rnn or v[0].ndim == 2}
    _check_fused_ntk(net, inputs, 1e-12)


@pytest.mark.parametrize("builder", [nf.dnn, nf.rnn])
def test_fused_ntk_series_equals_tangent_engine(builder, monkeypatch):
    """tanh: Mehler series of phi and phi' against the generic rules to 1e-9 (the generic
    E[phi'^2], a 2-D panel rule at c = 1, is itself off by ~1e-10; the series' Gauss-Hermite value
    agrees with adaptive quadrature to ~1e-15). Small inputs: the generic rules are slow."""
    monkeypatch.setattr(fused, "TILE", 8)
    net = builder(3, "tanh", weight_var=1.7, bias_var=0.3, input_var=1.2, readout_var=0.9,
                  readout_bias_var=0.1)
    x = RNG.normal(size=(11, 3, 2))
    inputs = {"symmetric": (x[:, 0], None)} if builder is nf.dnn else {"cross": (x[:7], x[7:])}
    _check_fused_ntk(net, inputs, 1e-9)


def test_fused_ntk_not_used_where_it_does_not_apply():
    """sign / step (phi' a delta: E[phi' phi'] infinite at c = 1) and kinked activations without a
    closed form take the generic interpreter."""
    x = RNG.normal(size=(5, 3))
    for act in ("sign", "step", "elu"):
        program = nf.dnn(3, act).program(x)
        assert _fused_kernel(program, None, "last", "auto", "ntk") is None
        assert not fused.supports_ntk(nf.gauss.get_activation(act))
    assert _fused_kernel(nf.dnn(3, "sign").program(x), None, "last", "auto") is not None  # NNGP: fused


def test_fused_ntk_relu_diagonal_is_exact():
    """On the diagonal E[relu' relu'] is evaluated at c = 1 exactly (arcsin has infinite slope
    there: c = 1 - 1e-16 would move it by ~1e-8): the diagonal equals the recursion of the
    one-variable closed forms (E[relu'^2] = 1/2, E[relu^2] = D / 2)."""
    x = RNG.normal(size=(40, 6))
    hyper = {"weight_var": 2.25, "bias_var": 0.01, "input_var": 2.25, "readout_var": 2.25, "readout_bias_var": 0.01}
    theta = np.diag(np.asarray(nf.kernel(nf.dnn(10, "relu", **hyper), x, kind="ntk")))
    d = hyper["bias_var"] + hyper["input_var"] * np.sum(x * x, axis=1) / x.shape[1]
    t = d.copy()
    for _ in range(9):
        d = hyper["bias_var"] + hyper["weight_var"] * d / 2
        t = d + hyper["weight_var"] * t / 2
    k_out = hyper["readout_bias_var"] + hyper["readout_var"] * d / 2
    expected = k_out + hyper["readout_var"] * t / 2
    assert np.abs(theta - expected).max() <= 1e-14 * expected.max()


def test_fused_ntk_thread_count_does_not_change_result():
    net = nf.rnn(4, "erf", weight_var=2.25, bias_var=0.01)
    x = RNG.normal(size=(300, 3, 8))
    runs = [fused.readout_kernel(chain_of(net), x, None, threads=t, kind="ntk") for t in (1, 2)]
    np.testing.assert_array_equal(*runs)
