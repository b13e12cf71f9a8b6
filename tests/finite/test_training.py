"""Gradient-descent training of finite networks (netfield.finite.training): the initial networks are the
sampled ones, the loss decreases, chunking does not matter, one small step is the NTK's step, and wide
linear networks follow the closed-form linear model."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import netfield as nf
from netfield.finite.ntk import network_ntk, plan
from netfield.finite.parameters import network_outputs, sample_parameters
from netfield.finite.training import TrainingResult, train_ensemble
from netfield.meanfield.result import readout_rows

RNG = np.random.default_rng(21)
X = RNG.normal(size=(6, 3))
Y2 = RNG.normal(size=(4, 2))
NET = nf.dnn(1, "erf", bias_var=0.2, readout_bias_var=0.1)


@pytest.fixture(scope="module")
def run():
    counts = []
    result = train_ensemble(NET, X[:4], Y2, X[4:], 16, 3, steps=[0, 5, 30], learning_rate=0.5, seed=2,
                            progress=counts.append)
    return result, counts


def test_shapes_loss_and_initial_outputs(run):
    r, counts = run
    assert r.train.shape == (3, 3, 4, 2) and r.test.shape == (3, 3, 2, 2) and r.loss.shape == (3, 3)
    assert list(r.steps) == [0, 5, 30] and r.networks == 3 and sum(counts) == 3
    assert (np.diff(r.loss, axis=0) < 0).all() and (r.loss[-1] < 0.2 * r.loss[0]).all()
    np.testing.assert_allclose(r.loss, ((r.train - Y2) ** 2).sum(axis=(2, 3)) / 8, rtol=1e-12)
    # step 0: the sampled networks (hidden layers as netfield.sample's, K = 2 readouts after them)
    program = NET.program(X)
    for i in range(3):
        om = sample_parameters(program, jax.random.fold_in(jax.random.PRNGKey(2), i), 16, outputs=2)
        f0 = np.asarray(network_outputs(program, om, 16, readout_rows(program, "last")))
        np.testing.assert_allclose(r.train[0, i], f0[:4], rtol=1e-13, atol=1e-14)
        np.testing.assert_allclose(r.test[0, i], f0[4:], rtol=1e-13, atol=1e-14)


def test_chunking_does_not_change_results(run, tmp_path):
    r, _ = run
    again = train_ensemble(NET, X[:4], Y2, X[4:], 16, 3, steps=[0, 5, 30], learning_rate=0.5, seed=2, chunk_size=2,
                           progress=False)
    for name in ("train", "test", "loss"):
        np.testing.assert_allclose(getattr(again, name), getattr(r, name), rtol=1e-12, atol=1e-13)
    back = nf.load(r.save(tmp_path / "trained"))
    assert isinstance(back, TrainingResult) and back.parameterization == "ntk" and back.learning_rate == 0.5
    np.testing.assert_array_equal(back.test, r.test)


@pytest.mark.parametrize("net, parameterization", [
    (nf.dnn(2, "tanh", bias_var=0.3, readout_bias_var=0.1), "ntk"),
    (nf.batchnorm_mlp(2, "relu", bias_var=0.1), "standard"),
])
def test_one_small_step_is_the_ntk_step(net, parameterization):
    """f_1 - f_0 = -(lr / N) Theta (f_0 - y) + O(lr^2) on the training rows; for batch norm the test
    patterns do not enter the batch statistics (the training rows see the training batch only)."""
    y, lr, n = RNG.normal(size=(4, 1)), 1e-6, 8
    r = train_ensemble(net, X[:4], y, X[4:], n, 1, steps=[0, 1], learning_rate=lr, parameterization=parameterization,
                       progress=False)
    program = net.program(X[:4])
    rows = readout_rows(program, "last")
    theta, _ = network_ntk(program, jax.random.fold_in(jax.random.PRNGKey(0), 0), n, jnp.float64, rows,
                           parameterization, plan(program, n, 4))
    step = (r.train[1, 0] - r.train[0, 0]) / lr
    np.testing.assert_allclose(step, -np.asarray(theta) @ (r.train[0, 0] - y) / 4, rtol=1e-4, atol=1e-6)
    f0 = network_outputs(program, sample_parameters(program, jax.random.fold_in(jax.random.PRNGKey(0), 0), n), n,
                         rows)
    np.testing.assert_allclose(r.train[0, 0, :, 0], f0, rtol=1e-12, atol=1e-13)


def _linear_model(theta, f0, g0, y, lr, t):
    """Gradient descent of the linearised network (docs/ntk.md): training rows, test rows."""
    n_train = len(y)
    tt, st = theta[:n_train, :n_train], theta[n_train:, :n_train]
    decay = np.linalg.matrix_power(np.eye(n_train) - lr * tt / n_train, t)
    return y + decay @ (f0 - y), g0 - st @ np.linalg.solve(tt, (np.eye(n_train) - decay) @ (f0 - y))


def test_wide_linear_network_follows_the_linear_model():
    """A one-hidden-layer linear network trained by gradient descent against the closed form of its
    linearisation (the empirical NTK at initialisation); the difference shrinks with the width
    (measured: max 1e-2 at n = 256, 1e-4 at n = 4096, about 1/n)."""
    net = nf.dnn(1, "linear", bias_var=0.2, readout_bias_var=0.1)
    y, lr, steps = RNG.normal(size=(4, 1)), 0.3, [0, 10, 40]
    program = net.program(X)
    rows = readout_rows(program, "last")
    errors = {}
    for n in (256, 4096):
        r = train_ensemble(net, X[:4], y, X[4:], n, 2, steps=steps, learning_rate=lr, progress=False)
        err = 0.0
        for i in range(2):
            theta, _ = network_ntk(program, jax.random.fold_in(jax.random.PRNGKey(0), i), n, jnp.float64, rows,
                                   "ntk", plan(program, n, len(rows)))
            for j, t in enumerate(steps):
                ft, gt = _linear_model(np.asarray(theta), r.train[0, i], r.test[0, i], y, lr, t)
                err = max(err, np.abs(ft - r.train[j, i]).max(), np.abs(gt - r.test[j, i]).max())
        errors[n] = err
        assert (r.loss[-1] < 0.1 * r.loss[0]).all()
    assert errors[4096] < 1e-3 and errors[4096] < errors[256] / 10, errors


def test_bad_inputs():
    args = (NET, X[:4], Y2, X[4:], 8, 2)
    ok = {"steps": [0, 2], "learning_rate": 0.1, "progress": False}
    for steps, match in (([0, -1], "steps must be integers >= 0"), ([3, 1], "steps must be strictly increasing"),
                         ([], "steps must be a non-empty"), ([0.5], "steps must be a non-empty sequence of integers")):
        with pytest.raises(ValueError, match=match):
            train_ensemble(*args, **{**ok, "steps": steps})
    for lr in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="learning_rate must be a finite number > 0"):
            train_ensemble(*args, **{**ok, "learning_rate": lr})
    with pytest.raises(ValueError, match=r"y_train must have shape \(N_train, K\) = \(4, K\)"):
        train_ensemble(NET, X[:4], Y2[:3], X[4:], 8, 2, **ok)
    with pytest.raises(ValueError, match="parameterization must be one of 'ntk', 'standard', got 'mup'"):
        train_ensemble(*args, **ok, parameterization="mup")
    with pytest.raises(TypeError, match="progress must be True"):
        train_ensemble(*args, **{**ok, "progress": "yes"})
    with pytest.raises(TypeError, match="net must be a network"):
        train_ensemble("dnn", X[:4], Y2, X[4:], 8, 2, **ok)
