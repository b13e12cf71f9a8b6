"""The DNN-vs-RNN fluctuation study and its figure (theory part; the sampled points are in the demo test)."""

import numpy as np

from netfield.nlo.figures import plot_fluctuations
from netfield.nlo.study import fluctuation_study


def test_dnn_saturates_rnn_grows_and_the_difference_is_the_cross_time_term():
    study = fluctuation_study("tanh", settings=(("ordered", 1.5, 0.5),), steps=7, simulate_networks=False)
    reg = study.regimes[0]
    d, r, cross = (np.asarray(v) for v in (reg.theory["dnn"], reg.theory["rnn"], reg.cross_time_term))
    assert reg.steps == list(range(2, 8)) and reg.chi1 < 1
    assert np.allclose(r, d + cross, rtol=1e-8)  # docs/nlo.md N7
    assert abs(d[-1] - d[-2]) < 1e-3 * d[-1]  # saturated
    assert np.all(np.diff(r) > 0) and r[-1] > 1.3 * d[-1]  # still growing, well above the DNN


def test_figure_draws_the_study_numbers(tmp_path):
    study = fluctuation_study("erf", settings=(("a", 1.5, 0.5), ("b", 4.0, 0.3)), steps=4, simulate_networks=False)
    fig = plot_fluctuations(study, tmp_path / "f.png")
    assert (tmp_path / "f.png").stat().st_size > 10_000
    ax = fig.axes[0]
    ys = [np.asarray(line.get_ydata()) for line in ax.get_lines()]
    assert any(np.allclose(y, study.regimes[0].theory["rnn"]) for y in ys if y.shape == (3,))
    assert any(np.allclose(y, study.regimes[0].theory["dnn"]) for y in ys if y.shape == (3,))
