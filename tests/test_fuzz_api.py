"""Fuzz suite of bad and extreme inputs over the public API (issue 19, item 3).

What it guarantees: every case in ``CASES`` ends in exactly one of

- a clear exception -- ``ValueError``, ``TypeError``, ``IndexError``, ``KeyError``, ``FileNotFoundError`` or
  one of netfield's subclasses of these (``SizeLimitError``, ``ProgramError``, ``UnsupportedProgram``,
  ``StorageError``) -- whose message names the offending argument; or
- a finite result of the expected shape, for extreme-but-valid inputs.

Never NaN/inf for finite valid input, a silent clamp, an unrelated exception (AttributeError,
ZeroDivisionError, OverflowError, JAX internals), a hang or unbounded memory (size guards refuse
``width=10**6`` / ``dnn(10**6)`` fast). Sizes are tiny (N <= 4, width <= 16, depth <= 3). The CLI
counterpart is tests/cli/test_cli_fuzz.py; ``test_case_count`` counts the cases of both files.
"""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

import netfield
from netfield import gp

CLEAR = (ValueError, TypeError, IndexError, KeyError, FileNotFoundError)

X = np.array([[1.0, 0.5, -0.3], [0.2, -1.0, 0.7], [0.0, 0.3, 1.1]])  # (3, 3)
SEQ = np.linspace(-1, 1, 2 * 2 * 3).reshape(2, 2, 3)  # (2 patterns, 2 steps, d = 3)
Y = np.array([0.5, -0.2, 1.0])


@pytest.fixture(autouse=True)
def _memory_limit(monkeypatch):
    """A 2 GB memory limit for the size guards: a case that slipped past them could not fill the machine."""
    monkeypatch.setenv("NETFIELD_MEMORY_LIMIT", "2GB")


def dnn(**kw):
    return netfield.dnn(2, "erf", **kw)


def rnn(**kw):
    return netfield.rnn(2, "erf", **kw)


def err(name, fn, arg, exc=CLEAR):
    """A case that must raise ``exc`` with ``arg`` in its message."""
    return pytest.param(fn, ("error", exc, arg), id=name)


def ok(name, fn, shape):
    """A case that must return a finite array (``fn`` returns the array) of ``shape``."""
    return pytest.param(fn, ("finite", shape), id=name)


class _Obj:
    pass


def _mf():
    return netfield.mean_field(rnn(), X[:2])


def _train(**kw):
    opts = {"times": [0.0, 1.0]}
    opts.update(kw)
    return netfield.train(dnn(), X, Y, X[:2], **opts)


def _fit(est, x, y):
    return est(depth=2, progress=False).fit(x, y)


def _reg_predict(xtest):
    return _fit(gp.NNGPRegressor, X, Y).predict(xtest)


def _posterior(**kw):
    from netfield.feature import posterior_kernels

    opts = {"kappa": 0.1, "signal": 0.3, "points": 256}
    opts.update(kw)
    x = opts.pop("x", X[:2, :2])
    y = opts.pop("y", np.array([1.0, -1.0]))
    net = opts.pop("net", netfield.rnn(2, "erf", weight_var=1.5))
    return posterior_kernels(net, x, y, **opts)


def _transition(**kw):
    from netfield.feature import transition

    opts = {"kappa": 0.1, "signals": (0.4, 0.8), "refine": 1, "points": 256, "progress": False}
    opts.update(kw)
    return transition(netfield.rnn(2, "erf", weight_var=1.5), X[:2, :2], np.array([1.0, -1.0]), **opts)


def _predict_from_kernels(**kw):
    from netfield.training import predict_from_kernels

    k = netfield.kernel(dnn(), X)
    blocks = {"nngp_train": k, "nngp_cross": k[:2], "nngp_test": k[:2, :2], "ntk_train": k, "ntk_cross": k[:2],
              "y_train": Y, "times": [0.0, 1.0]}
    blocks.update(kw)
    return predict_from_kernels(**blocks)


def _write(tmp, name, data: bytes):
    path = tmp / name
    path.write_bytes(data)
    return path


# ------------------------------------------------------------------------------------------------ cases
# Each fn takes tmp_path (a fresh folder) and either raises or returns an array.

BUILDERS = [
    err("dnn-depth-0", lambda t: netfield.dnn(0), "depth"),
    err("dnn-depth-negative", lambda t: netfield.dnn(-3), "depth"),
    err("dnn-depth-float", lambda t: netfield.dnn(1.5), "depth"),
    err("dnn-depth-string", lambda t: netfield.dnn("3"), "depth"),
    err("dnn-depth-bool", lambda t: netfield.dnn(True), "depth"),
    err("dnn-depth-none", lambda t: netfield.dnn(None), "depth"),
    err("dnn-depth-huge-size-guard", lambda t: netfield.kernel(netfield.dnn(10**6), X), "depth"),
    err("rnn-steps-huge-size-guard", lambda t: netfield.sample(netfield.rnn(10**6), X, width=4), "steps"),
    err("rnn-steps-0", lambda t: netfield.rnn(0), "steps"),
    err("rnn-steps-negative", lambda t: netfield.rnn(-1), "steps"),
    err("rnn-steps-float", lambda t: netfield.rnn(2.0), "steps"),
    err("gru-steps-0", lambda t: netfield.gru(0), "steps"),
    err("lstm-steps-negative", lambda t: netfield.lstm(-2), "steps"),
    err("transformer-blocks-0", lambda t: netfield.transformer(0), "blocks"),
    err("conv-depth-0", lambda t: netfield.conv(0), "depth"),
    err("batchnorm-depth-0", lambda t: netfield.batchnorm_mlp(0), "depth"),
    err("dnn-weight-var-negative", lambda t: dnn(weight_var=-1.0), "weight_var"),
    err("dnn-weight-var-nan", lambda t: dnn(weight_var=float("nan")), "weight_var"),
    err("dnn-weight-var-inf", lambda t: dnn(weight_var=float("inf")), "weight_var"),
    err("dnn-weight-var-string", lambda t: dnn(weight_var="1.5"), "weight_var"),
    err("dnn-weight-var-bool", lambda t: dnn(weight_var=True), "weight_var"),
    err("dnn-weight-var-none", lambda t: dnn(weight_var=None), "weight_var"),
    err("dnn-weight-var-complex", lambda t: dnn(weight_var=1j), "weight_var"),
    err("dnn-weight-var-vector", lambda t: dnn(weight_var=np.array([1.0, 2.0])), "weight_var"),
    err("dnn-bias-var-negative", lambda t: dnn(bias_var=-0.1), "bias_var"),
    err("dnn-input-var-nan", lambda t: dnn(input_var=float("nan")), "input_var"),
    err("dnn-readout-var-negative", lambda t: dnn(readout_var=-1.0), "readout_var"),
    err("dnn-readout-bias-var-inf", lambda t: dnn(readout_bias_var=float("inf")), "readout_bias_var"),
    err("rnn-weight-var-negative", lambda t: rnn(weight_var=-2.0), "weight_var"),
    err("rnn-bias-var-string", lambda t: rnn(bias_var="a"), "bias_var"),
    err("gru-weight-var-nan", lambda t: netfield.gru(2, weight_var=float("nan")), "weight_var"),
    err("lstm-bias-var-negative", lambda t: netfield.lstm(2, bias_var=-1.0), "bias_var"),
    err("transformer-weight-var-inf", lambda t: netfield.transformer(1, weight_var=float("inf")), "weight_var"),
    err("conv-weight-var-negative", lambda t: netfield.conv(1, weight_var=-2.0), "weight_var"),
    err("batchnorm-weight-var-nan", lambda t: netfield.batchnorm_mlp(1, weight_var=float("nan")), "weight_var"),
    err("dnn-activation-unknown", lambda t: netfield.dnn(2, "nope"), "activation"),
    err("dnn-activation-int", lambda t: netfield.dnn(2, 3), "activation"),
    err("dnn-activation-none", lambda t: netfield.dnn(2, None), "activation"),
    err("rnn-activation-typo", lambda t: netfield.rnn(2, "relu2"), "activation"),
    err("gru-gate-unknown", lambda t: netfield.gru(2, gate="nope"), "gate"),
    err("lstm-cell-activation-unknown", lambda t: netfield.lstm(2, cell_activation="bad"), "activation"),
    err("leaky-relu-slope-nan", lambda t: netfield.leaky_relu(float("nan")), "slope"),
    err("leaky-relu-slope-string", lambda t: netfield.leaky_relu("a"), "slope"),
    err("conv-padding-unknown", lambda t: netfield.conv(1, padding="bogus"), "padding"),
    err("conv-filter-shape-zero", lambda t: netfield.conv(1, filter_shape=(0,)), "filter_shape"),
    err("conv-filter-shape-negative", lambda t: netfield.conv(1, filter_shape=(-1, 3)), "filter_shape"),
    err("conv-readout-unknown", lambda t: netfield.conv(1, readout="bogus"), "readout"),
    err("transformer-readout-unknown", lambda t: netfield.transformer(1, readout="bogus"), "readout"),
    err("transformer-attention-scale-nan", lambda t: netfield.transformer(1, attention_scale=float("nan")),
        "attention_scale"),
    err("batchnorm-eps-negative", lambda t: netfield.batchnorm_mlp(1, eps=-1.0), "eps"),
    err("architecture-fn-not-callable", lambda t: netfield.architecture(3), "fn"),
    err("replace-weight-var-negative", lambda t: dnn().replace(weight_var=-1.0), "weight_var"),
]

KERNEL = [
    err("kernel-net-string", lambda t: netfield.kernel("dnn", X), "net"),
    err("kernel-x1-none", lambda t: netfield.kernel(dnn(), None), "x1"),
    err("kernel-x1-string", lambda t: netfield.kernel(dnn(), "abc"), "x1"),
    err("kernel-x1-mixed-list", lambda t: netfield.kernel(dnn(), [[1.0, "a"]]), "x1"),
    err("kernel-x1-complex", lambda t: netfield.kernel(dnn(), X + 1j), "x1"),
    # a Zarr folder under a text file's name surprised a user: only '.zarr' paths are accepted
    err("kernel-out-not-zarr", lambda t: netfield.kernel(dnn(), X, out=str(t / "K.txt")), "out"),
    err("kernel-out-number", lambda t: netfield.kernel(dnn(), X, out=3), "out"),
    err("kernel-x1-object", lambda t: netfield.kernel(dnn(), np.array([_Obj(), _Obj()], dtype=object)), "x1"),
    err("kernel-x1-nan", lambda t: netfield.kernel(dnn(), np.where(X > 1, np.nan, X)), "x1"),
    err("kernel-x1-inf", lambda t: netfield.kernel(dnn(), np.where(X > 1, np.inf, X)), "x1"),
    err("kernel-x1-empty-rows", lambda t: netfield.kernel(dnn(), np.zeros((0, 3))), "x1"),
    err("kernel-x1-empty-features", lambda t: netfield.kernel(dnn(), np.zeros((3, 0))), "x1"),
    err("kernel-x1-scalar", lambda t: netfield.kernel(dnn(), 1.0), "x1"),
    err("kernel-x1-4d", lambda t: netfield.kernel(dnn(), np.ones((2, 2, 2, 2))), "x1"),
    err("kernel-x1-overflow", lambda t: netfield.kernel(dnn(), np.full((2, 2), 1e300)), "x1"),
    err("kernel-x2-dims-mismatch", lambda t: netfield.kernel(dnn(), X, X[:, :2]), "x2"),
    err("kernel-x2-nan", lambda t: netfield.kernel(dnn(), X, np.full((2, 3), np.nan)), "x2"),
    err("kernel-x2-string", lambda t: netfield.kernel(dnn(), X, "x"), "x2"),
    err("kernel-seq-longer-than-steps", lambda t: netfield.kernel(netfield.rnn(1), SEQ), "steps"),
    err("kernel-seq-list-dims-mismatch", lambda t: netfield.kernel(rnn(), [np.ones((2, 3)), np.ones((2, 4))]), "x1"),
    err("kernel-seq-list-empty", lambda t: netfield.kernel(rnn(), []), "x1"),
    err("kernel-readout-unknown", lambda t: netfield.kernel(dnn(), X, readout="bogus"), "readout"),
    err("kernel-readout-int", lambda t: netfield.kernel(dnn(), X, readout=5), "readout"),
    err("kernel-readout-step-out-of-range", lambda t: netfield.kernel(rnn(), X, readout=(1, 9)), "readout"),
    err("kernel-kind-unknown", lambda t: netfield.kernel(dnn(), X, kind="bogus"), "kind"),
    err("kernel-parameterization-unknown", lambda t: netfield.kernel(dnn(), X, kind="ntk", parameterization="x"),
        "parameterization"),
    err("kernel-standard-width-missing", lambda t: netfield.kernel(dnn(), X, kind="ntk", parameterization="standard"),
        "width"),
    err("kernel-standard-width-0", lambda t: netfield.kernel(dnn(), X, kind="ntk", parameterization="standard",
                                                             width=0), "width"),
    err("kernel-standard-width-float", lambda t: netfield.kernel(dnn(), X, kind="ntk", parameterization="standard",
                                                                 width=1.5), "width"),
    err("kernel-method-unknown", lambda t: netfield.kernel(dnn(), X, method="bogus"), "method"),
    err("kernel-batch-unknown", lambda t: netfield.kernel(netfield.batchnorm_mlp(1), X, batch="bogus"), "batch"),
    err("kernel-qmc-points-0", lambda t: netfield.kernel(netfield.gru(2), SEQ, qmc_points=0), "qmc_points"),
    err("kernel-qmc-replicates-0", lambda t: netfield.kernel(netfield.gru(2), SEQ, qmc_replicates=0),
        "qmc_replicates"),
    err("kernel-seed-negative", lambda t: netfield.kernel(netfield.gru(2), SEQ, seed=-1), "seed"),
    err("kernel-seed-too-large", lambda t: netfield.kernel(netfield.gru(2), SEQ, seed=2**70), "seed"),
    err("kernel-seed-string", lambda t: netfield.kernel(netfield.gru(2), SEQ, seed="0"), "seed"),
    err("kernel-tile-0", lambda t: netfield.kernel(dnn(), X, tile=0, progress=False), "tile"),
    err("kernel-tile-negative", lambda t: netfield.kernel(dnn(), X, tile=-4, progress=False), "tile"),
    err("kernel-workers-0", lambda t: netfield.kernel(dnn(), X, workers=0, progress=False), "workers"),
    err("kernel-huge-n-size-guard", lambda t: netfield.kernel(dnn(), np.zeros((4_000_000, 1))), "x1"),
    ok("kernel-n-1", lambda t: netfield.kernel(dnn(), X[:1]), (1, 1)),
    ok("kernel-d-1", lambda t: netfield.kernel(dnn(), X[:, :1]), (3, 3)),
    ok("kernel-int-inputs", lambda t: netfield.kernel(dnn(), np.arange(6).reshape(3, 2)), (3, 3)),
    err("kernel-list-of-rows-is-not-sequences", lambda t: netfield.kernel(dnn(), X.tolist()), "x1"),
    ok("kernel-nested-list-sequences", lambda t: netfield.kernel(rnn(), SEQ.tolist()), (2, 2)),
    ok("kernel-zero-inputs-no-bias-erf", lambda t: netfield.kernel(dnn(), np.zeros((2, 3))), (2, 2)),
    ok("kernel-zero-inputs-no-bias-relu", lambda t: netfield.kernel(netfield.dnn(2, "relu"), np.zeros((2, 3))),
       (2, 2)),
    ok("kernel-zero-inputs-ntk-relu", lambda t: netfield.kernel(netfield.dnn(2, "relu"), np.zeros((2, 3)),
                                                                kind="ntk"), (2, 2)),
    ok("kernel-duplicate-inputs-relu", lambda t: netfield.kernel(netfield.dnn(3, "relu"), np.ones((3, 2))), (3, 3)),
    ok("kernel-duplicate-inputs-ntk-relu", lambda t: netfield.kernel(netfield.dnn(3, "relu"), np.ones((3, 2)),
                                                                     kind="ntk"), (3, 3)),
    ok("kernel-antipodal-inputs-relu", lambda t: netfield.kernel(netfield.dnn(2, "relu"), np.array([[1.0], [-1.0]])),
       (2, 2)),
    ok("kernel-tiny-inputs", lambda t: netfield.kernel(dnn(), X * 1e-300), (3, 3)),
    err("kernel-x1-too-large", lambda t: netfield.kernel(dnn(), X * 1e100), "x1"),
    ok("kernel-huge-inputs-erf", lambda t: netfield.kernel(dnn(), X * 1e70), (3, 3)),
    ok("kernel-huge-inputs-tanh", lambda t: netfield.kernel(netfield.dnn(2, "tanh"), X * 1e70), (3, 3)),
    ok("kernel-huge-inputs-relu", lambda t: netfield.kernel(netfield.dnn(2, "relu"), X * 1e70), (3, 3)),
    ok("kernel-huge-weight-var-erf", lambda t: netfield.kernel(dnn(weight_var=1e12), X), (3, 3)),
    err("dnn-weight-var-zero", lambda t: dnn(weight_var=0.0), "weight_var"),
    ok("kernel-zero-input-var", lambda t: netfield.kernel(dnn(input_var=0.0, bias_var=0.0), X), (3, 3)),
    ok("kernel-tiny-bias-var", lambda t: netfield.kernel(dnn(bias_var=1e-300), X), (3, 3)),
    ok("kernel-sign-activation-zero-input", lambda t: netfield.kernel(netfield.dnn(2, "sign"), np.zeros((2, 2))),
       (2, 2)),
    ok("kernel-rnn-readout-all", lambda t: netfield.kernel(rnn(), X, readout="all"), (6, 6)),
    ok("kernel-wide-d", lambda t: netfield.kernel(dnn(), np.ones((2, 500))), (2, 2)),
    ok("kernel-seq-list-ragged", lambda t: netfield.kernel(rnn(), [np.ones((1, 3)), np.ones((2, 3))]), (2, 2)),
    ok("kernel-standard-width-1", lambda t: netfield.kernel(dnn(), X, kind="ntk", parameterization="standard",
                                                            width=1), (3, 3)),
    err("kernel-batchnorm-one-pattern", lambda t: netfield.kernel(netfield.batchnorm_mlp(2), X[:1]), "x1"),
    err("kernel-batchnorm-identical-patterns", lambda t: netfield.kernel(netfield.batchnorm_mlp(2), np.ones((2, 3))),
        "x"),
    err("kernel-batchnorm-x1-batch-identical", lambda t: netfield.kernel(netfield.batchnorm_mlp(1), np.ones((2, 3)),
                                                                         X[:2], batch="x1"), "x1"),
    ok("kernel-batchnorm-joint-batch-differs", lambda t: netfield.kernel(netfield.batchnorm_mlp(1), np.ones((2, 3)),
                                                                         X[:2]), (2, 2)),
    err("kernel-transformer-2d-x", lambda t: netfield.kernel(netfield.transformer(1), X), "x1"),
    err("kernel-transformer-all-zero-sequences", lambda t: netfield.kernel(netfield.transformer(1), np.zeros((2, 2, 3))),
        "bias_var"),
    err("kernel-conv-2d-x", lambda t: netfield.kernel(netfield.conv(1), X), "x1"),
    err("kernel-conv-filter-larger-than-input", lambda t: netfield.kernel(
        netfield.conv(1, filter_shape=(5,), padding="VALID"), np.ones((2, 3, 1))), "filter_shape"),
    err("kernel-conv-filter-rank-mismatch", lambda t: netfield.kernel(netfield.conv(1), np.ones((2, 3, 1))), "x1"),
    err("kernel-gru-seq-longer-than-steps", lambda t: netfield.kernel(netfield.gru(1), SEQ), "steps"),
    err("kernel-x2-empty", lambda t: netfield.kernel(dnn(), X, np.zeros((0, 3))), "x2"),
    err("kernel-readout-mean-not-a-kernel-readout", lambda t: netfield.kernel(rnn(), X, readout="mean"), "readout"),
    err("kernel-standard-width-bool", lambda t: netfield.kernel(dnn(), X, kind="ntk", parameterization="standard",
                                                                width=True), "width"),
    err("kernel-width-with-nngp", lambda t: netfield.kernel(dnn(), X, width=4), "width"),
    err("kernel-qmc-points-not-power-of-2", lambda t: netfield.kernel(netfield.gru(2), SEQ, qmc_points=3), "qmc_points"),
    err("kernel-tile-float", lambda t: netfield.kernel(dnn(), X, tile=1.5, progress=False), "tile"),
    err("kernel-progress-string", lambda t: netfield.kernel(dnn(), X, tile=2, progress="yes"), "progress"),
    err("kernel-client-int", lambda t: netfield.kernel(dnn(), X, client=3, progress=False), "client"),
    err("kernel-custom-activation-nan", lambda t: netfield.kernel(netfield.dnn(2, lambda u: u * np.nan), X),
        "activation"),
    err("kernel-custom-activation-not-elementwise", lambda t: netfield.kernel(netfield.dnn(2, lambda u: u.sum()), X),
        "activation"),
    err("dnn-kinks-string", lambda t: netfield.dnn(2, lambda u: u, kinks="ab"), "kinks"),
    err("dnn-kinks-nan", lambda t: netfield.dnn(2, lambda u: abs(u), kinks=(float("nan"),)), "kinks"),
    err("leaky-relu-slope-negative", lambda t: netfield.leaky_relu(-1.0), "slope"),
    err("leaky-relu-slope-huge", lambda t: netfield.leaky_relu(1e10), "slope"),
    err("architecture-hyper-negative", lambda t: netfield.architecture(lambda p, x, hp: None, weight_var=-1.0),
        "weight_var"),
    err("architecture-hyper-string", lambda t: netfield.architecture(lambda p, x, hp: None, weight_var="a"),
        "weight_var"),
    err("kernel-ntk-step-activation", lambda t: netfield.kernel(netfield.dnn(2, "step"), X, kind="ntk"), "step",
        netfield.UnsupportedProgram),
    err("kernel-relu-overflow-weight-var", lambda t: netfield.kernel(netfield.dnn(3, "relu", weight_var=1e200), X),
        "weight_var"),
    err("kernel-linear-overflow-input-var", lambda t: netfield.kernel(
        netfield.dnn(3, "linear", weight_var=1e200, input_var=1e200), X), "input_var"),
    err("mean-field-overflow-readout", lambda t: netfield.mean_field(netfield.rnn(3, "relu", weight_var=1e200), X)
        .readout, "weight_var"),
    ok("kernel-batchnorm-identical-with-eps", lambda t: netfield.kernel(netfield.batchnorm_mlp(2, eps=1e-3),
                                                                        np.ones((2, 3))), (2, 2)),
    ok("kernel-transformer-one-token", lambda t: netfield.kernel(netfield.transformer(1), X[:, None, :]), (3, 3)),
    ok("kernel-transformer-zero-input-with-bias", lambda t: netfield.kernel(netfield.transformer(1, bias_var=0.1),
                                                                            np.zeros((2, 2, 3))), (2, 2)),
    ok("kernel-conv-pool-larger-than-input", lambda t: netfield.kernel(
        netfield.conv(1, filter_shape=(1,), pool_window=(9,)), np.ones((2, 3, 1))), (2, 2)),
    ok("kernel-gru-2d-x", lambda t: netfield.kernel(netfield.gru(2), X), (3, 3)),
    ok("kernel-lstm-zero-inputs", lambda t: netfield.kernel(netfield.lstm(2), np.zeros((2, 2, 3))), (2, 2)),
    ok("kernel-x2-other-length", lambda t: netfield.kernel(netfield.rnn(3), SEQ, np.ones((2, 3, 3))), (2, 2)),
    ok("kernel-x2-flat-vs-sequences", lambda t: netfield.kernel(netfield.rnn(3), SEQ, X), (2, 3)),
    ok("kernel-standard-width-astronomical", lambda t: netfield.kernel(dnn(), X, kind="ntk",
                                                                       parameterization="standard", width=10**300),
       (3, 3)),
    ok("kernel-bool-inputs", lambda t: netfield.kernel(dnn(), X > 0), (3, 3)),
    ok("kernel-relu-weight-var-1e100", lambda t: netfield.kernel(netfield.dnn(3, "relu", weight_var=1e100), X), (3, 3)),
    ok("kernel-softplus-huge-weight-var", lambda t: netfield.kernel(netfield.dnn(2, "softplus", weight_var=1e10), X),
       (3, 3)),
    ok("kernel-gelu-huge-weight-var", lambda t: netfield.kernel(netfield.dnn(2, "gelu", weight_var=1e10), X), (3, 3)),
    ok("kernel-sigmoid-tiny-variances", lambda t: netfield.kernel(
        netfield.dnn(2, "sigmoid", weight_var=1e-300, input_var=1e-300), X), (3, 3)),
    ok("kernel-ntk-tanh-huge-weight-var", lambda t: netfield.kernel(netfield.dnn(2, "tanh", weight_var=1e12), X,
                                                                    kind="ntk"), (3, 3)),
    ok("kernel-rnn-ntk-zero-inputs-relu", lambda t: netfield.kernel(netfield.rnn(3, "relu"), np.zeros((2, 2)),
                                                                    kind="ntk"), (2, 2)),
    ok("kernel-gru-huge-weight-var", lambda t: netfield.kernel(netfield.gru(2, weight_var=1e10), SEQ), (2, 2)),
    ok("kernel-transformer-huge-attention-scale", lambda t: netfield.kernel(
        netfield.transformer(1, attention_scale=1e10), SEQ), (2, 2)),
]

MEAN_FIELD = [
    err("mean-field-x-nan", lambda t: netfield.mean_field(rnn(), np.full((2, 2), np.nan)), "x"),
    err("mean-field-method-unknown", lambda t: netfield.mean_field(rnn(), X, method="bogus"), "method"),
    err("mean-field-net-none", lambda t: netfield.mean_field(None, X), "net"),
    err("preactivation-t-0", lambda t: _mf().preactivation(0), "t"),
    err("preactivation-t-too-large", lambda t: _mf().preactivation(99), "t"),
    err("preactivation-s-too-large", lambda t: _mf().preactivation(1, 99), "s"),
    err("preactivation-t-negative", lambda t: _mf().preactivation(-1), "t"),
    err("preactivation-t-float", lambda t: _mf().preactivation(1.5), "t"),
    err("preactivation-t-string", lambda t: _mf().preactivation("1"), "t"),
    err("two-time-pattern-out-of-range", lambda t: _mf().two_time(99), "a"),
    err("two-time-second-pattern-out-of-range", lambda t: _mf().two_time(0, -99), "b"),
    err("two-time-pattern-float", lambda t: _mf().two_time(0.5), "a"),
    err("tap-family-unknown", lambda t: _mf().tap("nope", 1), "family"),
    err("mean-field-ntk-readout-unknown", lambda t: _mf().ntk(readout="bogus"), "readout"),
    err("tap-step-0", lambda t: _mf().tap("h", 0), "t"),
    err("tap-step-string", lambda t: _mf().tap("h", "a"), "t"),
    err("preactivation-t-bool", lambda t: _mf().preactivation(True), "t"),
    err("two-time-pattern-bool", lambda t: _mf().two_time(True), "a"),
    err("mean-field-seed-negative", lambda t: netfield.mean_field(rnn(), X, seed=-1), "seed"),
    ok("preactivation-numpy-int", lambda t: _mf().preactivation(np.int64(2)), (2, 2)),
    ok("mean-field-ntk", lambda t: _mf().ntk(), (2, 2)),
    ok("mean-field-error", lambda t: _mf().error, (2, 2)),
    ok("preactivation-cross-time", lambda t: _mf().preactivation(2, 1), (2, 2)),
    err("two-time-pattern-negative", lambda t: _mf().two_time(-1), "a"),
    ok("two-time-matrix", lambda t: _mf().two_time(1), (2, 2)),
]

SAMPLE = [
    err("sample-width-0", lambda t: netfield.sample(dnn(), X, width=0), "width"),
    err("sample-width-negative", lambda t: netfield.sample(dnn(), X, width=-8), "width"),
    err("sample-width-float", lambda t: netfield.sample(dnn(), X, width=8.5), "width"),
    err("sample-width-huge-size-guard", lambda t: netfield.sample(dnn(), X, width=10**6, method="weights"), "width"),
    # by conditioning a network costs O(n N) memory, so the guard stops a wider one
    err("sample-width-huge-size-guard-conditional", lambda t: netfield.sample(dnn(), X, width=10**9), "width"),
    err("sample-method-unknown", lambda t: netfield.sample(dnn(), X, width=4, method="exact"), "method"),
    err("sample-method-conditional-ntk", lambda t: netfield.sample(dnn(), X, width=4, method="conditional", ntk=True),
        "method"),
    err("sample-networks-0", lambda t: netfield.sample(dnn(), X, width=4, networks=0), "networks"),
    err("sample-networks-string", lambda t: netfield.sample(dnn(), X, width=4, networks="2"), "networks"),
    err("sample-seed-negative", lambda t: netfield.sample(dnn(), X, width=4, seed=-1), "seed"),
    err("sample-seed-too-large", lambda t: netfield.sample(dnn(), X, width=4, seed=2**64), "seed"),
    err("sample-seed-float", lambda t: netfield.sample(dnn(), X, width=4, seed=1.5), "seed"),
    err("sample-chunk-size-0", lambda t: netfield.sample(dnn(), X, width=4, chunk_size=0), "chunk_size"),
    err("sample-dtype-float16", lambda t: netfield.sample(dnn(), X, width=4, dtype="float16"), "dtype"),
    err("sample-dtype-int", lambda t: netfield.sample(dnn(), X, width=4, dtype="int32"), "dtype"),
    err("sample-readout-unknown", lambda t: netfield.sample(dnn(), X, width=4, readout="bogus"), "readout"),
    err("sample-preactivations-unknown", lambda t: netfield.sample(dnn(), X, width=4, preactivations="bogus"),
        "preactivations"),
    err("sample-first-network-negative", lambda t: netfield.sample(dnn(), X, width=4, first_network=-1),
        "first_network"),
    err("sample-parameterization-unknown", lambda t: netfield.sample(dnn(), X, width=4, ntk=True,
                                                                     parameterization="x"), "parameterization"),
    err("sample-x-nan", lambda t: netfield.sample(dnn(), np.full((2, 2), np.nan), width=4), "x"),
    err("sample-x-complex", lambda t: netfield.sample(dnn(), X + 1j, width=4), "x"),
    err("sample-x-empty", lambda t: netfield.sample(dnn(), np.zeros((0, 3)), width=4), "x"),
    err("sample-workers-0", lambda t: netfield.sample(dnn(), X, width=4, workers=0), "workers"),
    err("sample-seq-longer-than-steps", lambda t: netfield.sample(netfield.rnn(1), SEQ, width=4), "steps"),
    err("sample-networks-huge-size-guard", lambda t: netfield.sample(dnn(), X, width=4, networks=10**12), "networks"),
    err("sample-networks-float", lambda t: netfield.sample(dnn(), X, width=4, networks=2.0), "networks"),
    err("sample-first-network-beyond-int64", lambda t: netfield.sample(dnn(), X, width=4, first_network=2**70),
        "first_network"),
    err("sample-preactivations-int", lambda t: netfield.sample(dnn(), X, width=4, preactivations=3), "preactivations"),
    err("sample-ntk-string", lambda t: netfield.sample(dnn(), X, width=4, ntk="yes"), "ntk"),
    err("sample-dtype-object", lambda t: netfield.sample(dnn(), X, width=4, dtype=object), "dtype"),
    err("sample-batchnorm-identical-patterns", lambda t: netfield.sample(netfield.batchnorm_mlp(2), np.ones((2, 3)),
                                                                         width=4), "x"),
    err("sample-float32-overflow-inputs", lambda t: netfield.sample(netfield.dnn(2, "relu"), X * 1e30, width=4,
                                                                    dtype="float32"), "dtype"),
    err("sample-float32-overflow-weight-var", lambda t: netfield.sample(netfield.dnn(3, "relu", weight_var=1e30), X,
                                                                        width=4, dtype="float32"), "dtype"),
    ok("sample-chunk-larger-than-networks", lambda t: netfield.sample(dnn(), X, width=4, networks=2, chunk_size=100)
       .readout, (2, 3, 3)),
    ok("sample-dtype-numpy-float32", lambda t: netfield.sample(dnn(), X, width=4, dtype=np.float32).readout, (1, 3, 3)),
    ok("sample-relu-weight-var-1e100", lambda t: netfield.sample(netfield.dnn(3, "relu", weight_var=1e100), X,
                                                                 width=4).readout, (1, 3, 3)),
    ok("sample-width-1", lambda t: netfield.sample(dnn(), X, width=1, networks=2).readout, (2, 3, 3)),
    ok("sample-float32", lambda t: netfield.sample(dnn(), X, width=8, dtype="float32").readout, (1, 3, 3)),
    ok("sample-readout-all", lambda t: netfield.sample(rnn(), X, width=8, readout="all").readout, (1, 6, 6)),
    ok("sample-seed-max", lambda t: netfield.sample(dnn(), X, width=4, seed=2**63 - 1).readout, (1, 3, 3)),
    err("sample-x-too-large", lambda t: netfield.sample(dnn(), X * 1e100, width=4), "x"),
    ok("sample-huge-inputs-erf", lambda t: netfield.sample(dnn(), X * 1e70, width=4).readout, (1, 3, 3)),
    ok("sample-zero-inputs-relu", lambda t: netfield.sample(netfield.dnn(2, "relu"), np.zeros((2, 2)),
                                                            width=4).readout, (1, 2, 2)),
    ok("sample-ntk-width-2", lambda t: netfield.sample(dnn(), X, width=2, ntk=True).ntk, (1, 3, 3)),
]

NLO = [
    err("one-loop-x-nan", lambda t: netfield.one_loop(netfield.rnn(2, "tanh"), np.full((1, 1), np.nan)), "x"),
    err("one-loop-net-gru", lambda t: netfield.one_loop(netfield.gru(2), SEQ[:1]), "gru",
        netfield.UnsupportedProgram),
    err("one-loop-too-many-nodes", lambda t: netfield.one_loop(netfield.rnn(3, "tanh"), np.ones((9, 1))), "x"),
    err("one-loop-index-kind-unknown", lambda t: netfield.one_loop(netfield.rnn(2, "tanh"), np.ones((1, 1)))
        .index("bogus", 1, 1), "bogus"),
    err("one-loop-index-step-out-of-range", lambda t: netfield.one_loop(netfield.rnn(2, "tanh"), np.ones((1, 1)))
        .index("hidden", 1, 9), "9"),
    err("nlo-simulate-widths-empty", lambda t: netfield.nlo.simulate(rnn(), X[:1], widths=(), networks=2,
                                                                     progress=False), "widths"),
    err("nlo-simulate-width-0", lambda t: netfield.nlo.simulate(rnn(), X[:1], widths=(0, 4), networks=2,
                                                                progress=False), "width"),
    err("nlo-simulate-networks-1", lambda t: netfield.nlo.simulate(rnn(), X[:1], widths=(4, 8, 16), networks=0,
                                                                   progress=False), "networks"),
    err("nlo-simulate-order-unknown", lambda t: netfield.nlo.simulate(rnn(), X[:1], widths=(4, 8), networks=2,
                                                                      order=7, progress=False), "order"),
    ok("one-loop-tiny", lambda t: netfield.one_loop(netfield.rnn(2, "tanh"), np.ones((1, 1))).variance, None),
    ok("one-loop-zero-input-var", lambda t: netfield.one_loop(netfield.dnn(2, "tanh", bias_var=0.5, input_var=0.0),
                                                              np.ones((1, 1))).variance, None),
]

CRITICALITY = [
    err("criticality-activation-unknown", lambda t: netfield.mean_field_criticality("nope", 1.0, 0.1), "activation"),
    err("criticality-weight-var-negative", lambda t: netfield.mean_field_criticality("tanh", -1.0, 0.1),
        "weight_var"),
    err("criticality-bias-var-nan", lambda t: netfield.mean_field_criticality("tanh", 1.0, float("nan")),
        "bias_var"),
    err("criticality-weight-var-missing", lambda t: netfield.mean_field_criticality("tanh"), "weight_var"),
    err("criticality-weight-var-string", lambda t: netfield.mean_field_criticality("tanh", "1", 0.1), "weight_var"),
    err("criticality-method-unknown", lambda t: netfield.mean_field_criticality("tanh", 1.0, 0.1, method="x"),
        "method"),
    err("criticality-q0-negative", lambda t: netfield.mean_field_criticality("tanh", 1.0, 0.1, q0=-1.0), "q0"),
    err("criticality-input-power-nan", lambda t: netfield.mean_field_criticality("tanh", 1.0, 0.1,
                                                                                 input_power=float("nan")),
        "input_power"),
    err("criticality-net-gru", lambda t: netfield.mean_field_criticality(netfield.gru(2)), "gru",
        netfield.UnsupportedProgram),
    err("phase-diagram-activation-unknown", lambda t: netfield.phase_diagram("nope"), "activation"),
    err("phase-diagram-weight-range-reversed", lambda t: netfield.phase_diagram("tanh", weight_range=(4.0, 0.5),
                                                                                resolution=(3, 3)), "weight_range"),
    err("phase-diagram-bias-range-negative", lambda t: netfield.phase_diagram("tanh", bias_range=(-1.0, 0.3),
                                                                              resolution=(3, 3)), "bias_range"),
    err("phase-diagram-resolution-0", lambda t: netfield.phase_diagram("tanh", resolution=(0, 3)), "resolution"),
    err("phase-diagram-resolution-scalar", lambda t: netfield.phase_diagram("tanh", resolution=5), "resolution"),
    err("critical-weight-var-bias-negative", lambda t: netfield.criticality.critical_weight_var("tanh", -1.0),
        "bias_var"),
    err("critical-weight-var-activation-unknown", lambda t: netfield.criticality.critical_weight_var("nope", 0.1),
        "activation"),
    ok("criticality-tiny-weight-var", lambda t: np.array([netfield.mean_field_criticality("tanh", 1e-8, 0.0).chi_1]),
       (1,)),
    ok("criticality-huge-weight-var", lambda t: np.array([netfield.mean_field_criticality("erf", 1e6, 0.1).q_star]),
       (1,)),
    ok("criticality-relu-critical-point", lambda t: np.array([netfield.mean_field_criticality("relu", 2.0, 0.0).chi_1]),
       (1,)),
    err("criticality-weight-var-zero", lambda t: netfield.mean_field_criticality("tanh", 0.0, 0.0), "weight_var"),
    ok("criticality-zero-bias", lambda t: np.array([netfield.mean_field_criticality("tanh", 0.5, 0.0).q_star]), (1,)),
]

GP = [
    err("gp-regressor-x-nan", lambda t: _fit(gp.NNGPRegressor, np.where(X > 1, np.nan, X), Y), "X"),
    err("gp-regressor-y-nan", lambda t: _fit(gp.NNGPRegressor, X, np.array([1.0, np.nan, 0.0])), "y"),
    err("gp-regressor-y-wrong-length", lambda t: _fit(gp.NNGPRegressor, X, Y[:2]), "y"),
    err("gp-regressor-x-1d", lambda t: _fit(gp.NNGPRegressor, Y, Y), "X"),
    err("gp-regressor-x-empty", lambda t: _fit(gp.NNGPRegressor, np.zeros((0, 3)), np.zeros(0)), "X"),
    err("gp-regressor-y-string", lambda t: _fit(gp.NNGPRegressor, X, np.array(["a", "b", "c"])), "y"),
    err("gp-regressor-noise-negative", lambda t: gp.NNGPRegressor(depth=2, noise=-1.0, progress=False).fit(X, Y),
        "noise"),
    err("gp-regressor-depth-0", lambda t: gp.NNGPRegressor(depth=0, progress=False).fit(X, Y), "depth"),
    err("gp-regressor-architecture-unknown", lambda t: gp.NNGPRegressor("nope", progress=False).fit(X, Y),
        "architecture"),
    err("gp-regressor-readout-unknown", lambda t: gp.NNGPRegressor(depth=2, readout="bogus", progress=False)
        .fit(X, Y), "readout"),
    err("gp-regressor-predict-dims-mismatch", lambda t: _reg_predict(X[:, :2]), "X"),
    err("gp-regressor-predict-nan", lambda t: _reg_predict(np.full((1, 3), np.nan)), "X"),
    err("gp-regressor-weight-var-negative", lambda t: gp.NNGPRegressor(depth=2, weight_var=-1.0, progress=False)
        .fit(X, Y), "weight_var"),
    err("gp-classifier-one-class", lambda t: _fit(gp.NNGPClassifier, X, np.array([1, 1, 1])), "y"),
    err("gp-classifier-y-2d", lambda t: _fit(gp.NNGPClassifier, X, np.ones((3, 2))), "y"),
    err("gp-classifier-method-unknown", lambda t: gp.NNGPClassifier(depth=2, method="bogus", progress=False)
        .fit(X, np.array([0, 1, 0])), "method"),
    err("gp-classifier-y-nan", lambda t: _fit(gp.NNGPClassifier, X, np.array([0.0, np.nan, 1.0])), "y"),
    err("gp-fit-network-noise-negative", lambda t: gp.fit_network(dnn(), X, Y, noise=-1.0), "noise"),
    err("gp-fit-network-y-wrong-length", lambda t: gp.fit_network(dnn(), X, Y[:2], noise=0.1), "y"),
    err("gp-fit-network-x-nan", lambda t: gp.fit_network(dnn(), np.full((3, 3), np.nan), Y, noise=0.1), "x"),
    err("gp-fit-network-readout-unknown", lambda t: gp.fit_network(dnn(), X, Y, noise=0.1, readout="bogus"),
        "readout"),
    err("gp-fit-kernel-not-square", lambda t: gp.fit_kernel(np.ones((3, 2)), Y, noise=0.1), "k must"),
    err("gp-fit-kernel-zero-without-noise", lambda t: gp.fit_kernel(np.zeros((2, 2)), Y[:2], noise=0.0), "noise"),
    ok("gp-fit-kernel-zero-with-noise", lambda t: gp.fit_kernel(np.zeros((2, 2)), Y[:2], noise=0.1)
       .predict(np.zeros((1, 2))).mean, (1,)),
    err("gp-regressor-one-sample-standardize", lambda t: _fit(gp.NNGPRegressor, X[:1], Y[:1]), "standardize"),
    ok("gp-regressor-one-sample", lambda t: gp.NNGPRegressor(depth=2, standardize=False).fit(X[:1], Y[:1])
       .predict(X), (3,)),
    ok("gp-regressor-constant-y", lambda t: _fit(gp.NNGPRegressor, X, np.zeros(3)).predict(X), (3,)),
    ok("gp-regressor-duplicate-x", lambda t: _fit(gp.NNGPRegressor, np.ones((3, 3)), Y).predict(X), (3,)),
    ok("gp-classifier-string-labels", lambda t: _fit(gp.NNGPClassifier, X, np.array(["a", "b", "a"]))
       .decision_function(X), (3,)),
    ok("gp-fit-network-zero-noise-duplicates", lambda t: gp.fit_network(dnn(), np.ones((2, 3)), Y[:2], noise=0.0)
       .predict(X).mean, (3,)),
]

TRAIN = [
    err("train-learning-rate-above-max", lambda t: _train(dynamics="discrete", learning_rate=1e6), "learning_rate"),
    err("train-learning-rate-negative", lambda t: _train(dynamics="discrete", learning_rate=-0.1), "learning_rate"),
    err("train-learning-rate-nan", lambda t: _train(dynamics="discrete", learning_rate=float("nan")),
        "learning_rate"),
    err("train-times-negative", lambda t: _train(times=[-1.0, 1.0]), "times"),
    err("train-times-nan", lambda t: _train(times=[float("nan")]), "times"),
    err("train-times-empty", lambda t: _train(times=[]), "times"),
    err("train-times-string", lambda t: _train(times="soon"), "times"),
    err("train-dynamics-unknown", lambda t: _train(dynamics="bogus"), "dynamics"),
    err("train-parameterization-unknown", lambda t: _train(parameterization="bogus"), "parameterization"),
    err("train-standard-width-missing", lambda t: _train(parameterization="standard"), "width"),
    err("train-y-wrong-length", lambda t: netfield.train(dnn(), X, Y[:2], X, times=[1.0]), "y_train"),
    err("train-y-nan", lambda t: netfield.train(dnn(), X, np.array([1.0, np.nan, 0.0]), X, times=[1.0]), "y_train"),
    err("train-x-test-dims-mismatch", lambda t: netfield.train(dnn(), X, Y, X[:, :2], times=[1.0]), "x_test"),
    err("train-x-train-nan", lambda t: netfield.train(dnn(), np.full((3, 3), np.nan), Y, X, times=[1.0]),
        "x_train"),
    err("predict-from-kernels-not-square", lambda t: _predict_from_kernels(ntk_train=np.ones((3, 2))), "ntk_train"),
    err("predict-from-kernels-y-mismatch", lambda t: _predict_from_kernels(y_train=np.ones(5)), "y_train"),
    err("max-learning-rate-not-square", lambda t: netfield.training.max_learning_rate(np.ones((2, 3))), "ntk_train"),
    err("max-learning-rate-nan", lambda t: netfield.training.max_learning_rate(np.full((2, 2), np.nan)),
        "ntk_train"),
    ok("train-flow-inf-time", lambda t: _train(times=[0.0, math.inf]).mean, (2, 2, 1)),
    ok("train-discrete-default-rate", lambda t: _train(dynamics="discrete", times=[0, 10, 1000]).mean, (3, 2, 1)),
    ok("train-huge-time", lambda t: _train(times=[1e300]).mean, (1, 2, 1)),
    ok("train-y-2d", lambda t: netfield.train(dnn(), X, np.stack([Y, -Y], 1), X[:2], times=[1.0]).mean, (1, 2, 2)),
    ok("train-duplicate-x", lambda t: netfield.train(dnn(), np.ones((3, 3)), Y, X[:2], times=[1.0, math.inf]).cov,
       (2, 2, 2)),
]

FEATURE = [
    err("posterior-kappa-0", lambda t: _posterior(kappa=0.0), "kappa"),
    err("posterior-kappa-negative", lambda t: _posterior(kappa=-0.1), "kappa"),
    err("posterior-kappa-nan", lambda t: _posterior(kappa=float("nan")), "kappa"),
    err("posterior-signal-negative", lambda t: _posterior(signal=-1.0), "signal"),
    err("posterior-signal-inf", lambda t: _posterior(signal=float("inf")), "signal"),
    err("posterior-y-wrong-length", lambda t: _posterior(y=np.ones(3)), "y"),
    err("posterior-y-nan", lambda t: _posterior(y=np.array([np.nan, 1.0])), "y"),
    err("posterior-x-nan", lambda t: _posterior(x=np.full((2, 2), np.nan)), "x"),
    err("posterior-supervised-step-out-of-range", lambda t: _posterior(supervised_steps=(7,)), "supervised_steps"),
    err("posterior-points-0", lambda t: _posterior(points=0), "points"),
    err("posterior-net-gru", lambda t: _posterior(net=netfield.gru(2)), "gru", netfield.UnsupportedProgram),
    err("transition-signals-empty", lambda t: _transition(signals=()), "signals"),
    err("transition-signals-negative", lambda t: _transition(signals=(-1.0, 0.5)), "signal"),
    err("transition-refine-negative", lambda t: _transition(refine=-1), "refine"),
    err("transition-kappa-negative", lambda t: _transition(kappa=-1.0), "kappa"),
]


def _saved_mean_field(t):
    return _mf().save(t / "mf.npz")


STORAGE = [
    err("load-missing-file", lambda t: netfield.load(t / "missing.npz"), "missing.npz", FileNotFoundError),
    err("load-text-garbage", lambda t: netfield.load(_write(t, "junk.npz", b"not a zip file at all")), "junk.npz"),
    err("load-empty-file", lambda t: netfield.load(_write(t, "empty.npz", b"")), "empty.npz"),
    err("load-plain-npz", lambda t: (np.savez(t / "plain.npz", a=np.ones(2)), netfield.load(t / "plain.npz")),
        "plain.npz"),
    err("load-npy-file", lambda t: (np.save(t / "a.npy", np.ones(2)), netfield.load(t / "a.npy")), "a.npy"),
    err("load-folder", lambda t: netfield.load(t), "path"),
    err("load-wrong-result-type", lambda t: netfield.Ensemble.load(_saved_mean_field(t)), "mf.npz"),
    err("read-metadata-missing", lambda t: netfield.storage.read_metadata(t / "none.npz"), "none.npz",
        FileNotFoundError),
    err("save-into-regular-file-as-folder", lambda t: _mf().save(_write(t, "file", b"x") / "mf.npz"), "mf.npz",
        (ValueError, FileNotFoundError, NotADirectoryError)),
]

CASES = BUILDERS + KERNEL + MEAN_FIELD + SAMPLE + NLO + CRITICALITY + GP + TRAIN + FEATURE + STORAGE


@pytest.mark.parametrize("fn, expect", CASES)
def test_fuzz_case(fn, expect, tmp_path):
    start = time.perf_counter()
    if expect[0] == "error":
        _, exc, name = expect
        with pytest.raises(exc) as info:
            fn(tmp_path)
        assert isinstance(info.value, CLEAR), f"{type(info.value).__name__}: {info.value}"
        assert name in str(info.value), f"{name!r} not named in: {info.value}"
    else:
        _, shape = expect
        out = np.asarray(fn(tmp_path))
        assert np.issubdtype(out.dtype, np.number), out.dtype
        assert np.all(np.isfinite(out)), out
        if shape is not None:
            assert out.shape == shape
    assert time.perf_counter() - start < 30, "case took too long"


def test_case_count():
    import importlib.util
    import pathlib

    path = pathlib.Path(__file__).parent / "cli" / "test_cli_fuzz.py"
    spec = importlib.util.spec_from_file_location("_cli_fuzz_cases", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    CLI_CASES = module.CASES

    for cases in (CASES, CLI_CASES):
        ids = [c.id for c in cases]
        assert len(ids) == len(set(ids)), "case ids must be distinct"
    assert len(CASES) + len(CLI_CASES) >= 150, (len(CASES), len(CLI_CASES))


# --------------------------------------------------------------------------------------- property tests
_finite_var = st.floats(min_value=0.0, max_value=1e3, allow_nan=False, allow_infinity=False)
_positive_var = st.floats(min_value=1e-300, max_value=1e3, allow_nan=False, allow_infinity=False)  # weight_var > 0


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(weight_var=_positive_var, bias_var=_finite_var, input_var=_finite_var,
       activation=st.sampled_from(["erf", "relu", "tanh", "linear", "sin"]))
def test_random_variances_give_finite_kernels(weight_var, bias_var, input_var, activation):
    net = netfield.dnn(2, activation, weight_var=weight_var, bias_var=bias_var, input_var=input_var)
    k = np.asarray(netfield.kernel(net, X))
    assert k.shape == (3, 3) and np.all(np.isfinite(k)), k


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(x=st.lists(st.floats(min_value=-1e50, max_value=1e50, allow_nan=False), min_size=4, max_size=4),
       activation=st.sampled_from(["erf", "relu", "tanh"]))
@example(x=[0.0, 7155267673.0, 0.0, 9244715259500872.0], activation="tanh")  # found 2026-12-07: NaN (c = 1, q ~ 1e31)
def test_random_inputs_give_finite_kernels(x, activation):
    k = np.asarray(netfield.kernel(netfield.rnn(2, activation, bias_var=0.1), np.reshape(x, (2, 2))))
    assert k.shape == (2, 2) and np.all(np.isfinite(k)), k


@settings(max_examples=10, deadline=None)
@given(weight_var=st.floats(min_value=1e-6, max_value=100.0), bias_var=st.floats(min_value=0.0, max_value=5.0),
       activation=st.sampled_from(["tanh", "erf", "relu"]))
def test_random_variances_give_finite_criticality(weight_var, bias_var, activation):
    r = netfield.mean_field_criticality(activation, weight_var, bias_var)
    # relu's q* is infinite above weight_var = 2 (no fixed point: the length grows without bound), as it should
    assert np.isfinite(r.chi_1) and (activation == "relu" or np.isfinite(r.q_star)), r


@settings(max_examples=20, deadline=None)
@given(value=st.one_of(st.floats(max_value=-1e-300), st.just(float("nan")), st.just(float("inf")),
                       st.text(max_size=3), st.booleans(), st.none(), st.complex_numbers(allow_nan=False)),
       name=st.sampled_from(["weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var"]))
def test_random_bad_variances_are_refused(value, name):
    with pytest.raises((ValueError, TypeError)) as info:
        netfield.rnn(2, **{name: value})
    assert name in str(info.value)
