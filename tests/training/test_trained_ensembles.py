"""Theory vs the truth: finite networks trained by gradient descent against ``netfield.train`` (docs/training.md,
"Checked against trained networks").

Task: 12 digit images (scikit-learn's bundled digits, standardised per pixel), 8 for training and 4 for
testing, targets +1 (even digit) / -1 (odd). Networks: a depth-2 relu DNN on the 64 pixels and a relu RNN
reading each image as 4 blocks of 2 pixel rows (input at every step, d = 16, T = 4). Both are trained by
full-batch gradient descent at eta = eta_max / 2 of the infinite-width NTK (``netfield.train``'s default,
below eta_max = 2N / lambda_max), 128 networks per width, float32; the outputs on the 4 test images after 3
step counts (the last one where the expected training residual is below 1e-3: trained to convergence) are
compared with ``netfield.train(..., dynamics="discrete")`` at the same rate:

- at the largest width the ensemble means and variances agree with the theory within 4 standard errors at every
  step and test point (24 z-scores per network), and so do the mean test loss and test error;
- the discrepancy chi2 = mean (z_mean^2 + z_var^2) / 2 (about 1 without bias) shrinks with the width: the
  O(1/width) finite-width corrections (mostly a larger variance) are resolved at the smallest width and fall
  to the noise, as does the relative error of the variance;
- the test can fail: the same statistics against the wrong theory that trains with the NNGP kernel in place of
  the NTK give max |z| > 4 at the largest width (measured: 11.9 for the DNN, 4.6 for the RNN, whose two kernels
  are closer).

Measured (seeds fixed): chi2 = 6.4, 1.3, 0.75 and relative variance error 0.58, 0.19, 0.11 (DNN, widths 16, 64,
256); chi2 = 9.7, 1.0, 1.2 and 0.30, 0.11, 0.09 (RNN, widths 8, 32, 128; the noise floor of the relative variance
error with 128 networks is ~0.1). About 26 s of CPU.
"""

from __future__ import annotations

import numpy as np
import pytest

import netfield
from netfield.experiments.training_study import (
    as_sequence,
    compare_training,
    digits_task,
    ensemble_statistics,
    study_steps,
    theory_curves,
)
from netfield.training import kernel_blocks, predict_from_kernels

TASK = digits_task(12, 8)
NETWORKS = 128
CASES = {
    "DNN": (netfield.dnn(2, "relu", weight_var=2.0, bias_var=0.1), lambda x: x, (16, 64, 256)),
    "RNN": (netfield.rnn(4, "relu", weight_var=2.0, bias_var=0.1), lambda x: as_sequence(x, 4), (8, 32, 128)),
}


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    net, shape, widths = CASES[request.param]
    xtr, xte = shape(TASK.x_train), shape(TASK.x_test)
    steps = study_steps(net, xtr, TASK.y_train, xte)
    comparison = compare_training(net, xtr, TASK.y_train, xte, TASK.y_test, widths=widths, networks=NETWORKS,
                                  steps=steps, seed=0, dtype="float32", name=request.param)
    return net, xtr, xte, comparison


def test_learning_rate_is_stable_and_the_last_step_is_trained(case):
    net, xtr, xte, c = case
    assert c.learning_rate == pytest.approx(c.max_learning_rate / 2)
    lam = np.linalg.eigvalsh(np.asarray(netfield.kernel(net, xtr, kind="ntk")))
    assert c.max_learning_rate == pytest.approx(2 * len(xtr) / lam[-1], rel=1e-9)
    pred = netfield.train(net, xtr, TASK.y_train, xte, times=[c.steps[-1]], learning_rate=c.learning_rate,
                          dynamics="discrete")
    assert np.abs(pred.train_mean[-1, :, 0] - TASK.y_train).max() < 2e-3     # trained to convergence
    assert len(c.steps) == 3 and c.steps[0] < c.steps[1] < c.steps[-1]


def test_mean_and_variance_agree_at_the_largest_width(case):
    *_, c = case
    largest = c.widths[-1]
    assert largest.stats["max_z_mean"] < 4 and largest.stats["max_z_var"] < 4, largest.per_step
    loss, loss_se = largest.test_loss
    error, error_se = largest.test_error
    assert (np.abs(loss - c.theory_loss) < 4 * loss_se).all(), (loss, c.theory_loss, loss_se)
    assert (np.abs(error - c.theory_error) < 4 * np.maximum(error_se, 1e-3)).all(), (error, c.theory_error)


def test_discrepancy_shrinks_with_width(case):
    *_, c = case
    chi2 = [w.stats["chi2"] for w in c.widths]
    assert chi2[0] > 4, chi2                          # the finite-width bias is resolved at the smallest width,
    assert max(chi2[1:]) < chi2[0] / 2, chi2          # falls with the width
    assert chi2[-1] < 4, chi2                         # to the noise: 1 on average, fluctuating by ~1 (24 z-scores,
                                                      # strongly correlated over the steps; measured 0.7..2.8 over seeds)
    rel_var = [w.stats["rel_var"] for w in c.widths]
    assert rel_var[-1] < rel_var[0] / 2, rel_var


def test_the_nngp_in_place_of_the_ntk_fails(case):
    """The check has power: the linear dynamics with Theta replaced by K (the NNGP) is rejected."""
    net, xtr, xte, c = case
    b = kernel_blocks(net, xtr, xte)
    wrong = predict_from_kernels(b["nngp_train"], b["nngp_cross"], b["nngp_test"], b["nngp_train"], b["nngp_cross"],
                                 TASK.y_train, c.steps, learning_rate=c.learning_rate, dynamics="discrete")
    mean, var, *_ = theory_curves(wrong, TASK.y_test)
    stats = ensemble_statistics(c.widths[-1].outputs, mean, var)
    assert max(stats["max_z_mean"], stats["max_z_var"]) > 4, stats

