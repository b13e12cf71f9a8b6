"""The training study's DNN-vs-RNN comparison (netfield.experiments.training_study.dnn_vs_rnn) and the demo
section's figures (netfield.experiments.training_figures) on a tiny plan. The theory-vs-trained-networks
check itself is tests/training/test_trained_ensembles.py."""

from __future__ import annotations

import numpy as np
import pytest

from netfield.experiments.training_figures import plot_dynamics, plot_ntk, training_figures_data
from netfield.experiments.training_study import (
    as_sequence,
    digits_task,
    dnn_vs_rnn,
    format_dnn_vs_rnn,
    variable_lengths,
)

TASK = digits_task(12, 8)


def test_one_readout_time_gives_identical_kernels_and_trained_predictions():
    rows = {r["case"]: r for r in dnn_vs_rnn(TASK, train_steps=20)}
    for case in ("input at step 1", "inputs at every step"):
        r = rows[case]
        assert r["ntk_rel_diff"] < 1e-12 and r["nngp_rel_diff"] < 1e-12 and r["mean_rel_diff"] < 1e-12, r
        assert r["DNN_test_error"] == pytest.approx(r["RNN_test_error"], rel=1e-12)
    # readouts at different steps: the RNN's cross-time covariances enter, the kernels and predictions differ
    two = rows["inputs at every step, two lengths"]
    assert two["ntk_rel_diff"] > 0.1 and two["mean_rel_diff"] > 0.1, two
    assert rows["input at step 1, readouts at every step"]["ntk_rel_diff"] > 0.1
    assert format_dnn_vs_rnn(list(rows.values())).count("\n") == 5


def test_sequences():
    seq = as_sequence(TASK.x_train, 4)
    assert seq.shape == (8, 4, 16) and np.array_equal(seq[3, 1], TASK.x_train[3, 16:32])
    cut = variable_lengths(TASK.x_test, 4, first=8)
    assert [len(s) for s in cut] == [4, 3, 4, 3]
    with pytest.raises(ValueError, match="steps must divide the input dimension 64, got 5"):
        as_sequence(TASK.x_train, 5)


def test_demo_figures_on_a_tiny_plan():
    data = training_figures_data(widths=(8,), networks=4)
    assert set(data["ntk"]) == {"input at step 1", "inputs at every step", "inputs at every step, two lengths"}
    for arch in data["architectures"]:
        assert arch["steps"][0] == 0 and len(arch["theory_steps"]) == arch["steps"][-1] + 1
        assert arch["learning_rate"] == pytest.approx(arch["max_learning_rate"] / 2)
    assert len(plot_ntk(data).axes) == 3 and len(plot_dynamics(data).axes) == 4
