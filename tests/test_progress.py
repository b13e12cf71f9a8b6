"""Progress and cost of long calls (issue 18, item 8): the bar, its time-left estimate, the stage
counter, and the ``progress`` keyword of the long API calls (stderr only, nothing when quiet).

The library writes progress to ``sys.stderr`` (resolved when a bar is created), so the calls run
under ``contextlib.redirect_stderr`` / ``redirect_stdout`` with io.StringIO streams. No timing is
asserted: the time-left tests use a fake clock.
"""

import contextlib
import io
import re
import warnings

import numpy as np
import pytest

import netfield as nf
from netfield._runtime.progress import ProgressBar, Stages, progress_bar, silenced


class FakeClock:
    def __init__(self):
        self.t = 0.0

    def __call__(self):
        return self.t


def run_captured(fn, *args, **kwargs):
    """(result, stdout text, stderr text) of fn(*args, **kwargs)."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        result = fn(*args, **kwargs)
    return result, out.getvalue(), err.getvalue()


# ---- the bar and the stages -------------------------------------------------------------------------

def test_time_left_ignores_the_first_update_which_includes_compilation():
    """The demo printed '3:14 left' for a 53 s step: the first chunk (compilation) set the rate."""
    clock, buf = FakeClock(), io.StringIO()
    bar = ProgressBar(10, "work", stream=buf, clock=clock)
    clock.t = 50.0
    bar(1)  # first item: 50 s of compilation
    assert bar.eta() is None and "? left" in buf.getvalue().splitlines()[-1]
    for _ in range(3):
        clock.t += 1.0
        bar(1)  # then 1 s per item
    assert bar.eta() == pytest.approx(6.0)  # 6 items at 1 s each; from the start it would be 6 * 53 / 4 s
    assert buf.getvalue().splitlines()[-1].endswith("[53s elapsed, 6s left]")
    clock.t += 6.0
    bar(6)
    assert bar.eta() == 0.0


def test_bar_without_total_counts_at_1_2_5_10_and_prints_its_final_count():
    clock, buf = FakeClock(), io.StringIO()
    with ProgressBar(None, "evidence", unit="evaluations", stream=buf, clock=clock) as bar:
        for _ in range(23):
            clock.t += 1.0
            bar(1)
    lines = buf.getvalue().splitlines()
    assert [int(re.search(r"evidence (\d+) evaluations", ln).group(1)) for ln in lines] == [1, 2, 5, 10, 20, 23]
    assert lines[-1] == "  evidence 23 evaluations [23s elapsed]"


def test_stages_never_print_a_count_above_the_total():
    buf = io.StringIO()
    stages = Stages(2, stream=buf)
    stages("one")
    stages("two")
    with pytest.warns(RuntimeWarning, match=r"Stages\(2\) was called for stage 3"):
        stages("three")
    counts = [tuple(map(int, m)) for m in re.findall(r"\[(\d+)/(\d+)\]", buf.getvalue())]
    assert counts == [(1, 2), (2, 2), (3, 3)] and all(i <= n for i, n in counts)
    with pytest.raises(ValueError, match="total must be an integer >= 1 .* got 0"):
        Stages(0)


def test_progress_argument_forms_and_silenced():
    seen = []
    with progress_bar(seen.append, 3, "x") as bar:
        bar(2)
    assert seen == [2]
    buf = io.StringIO()
    with contextlib.redirect_stderr(buf):
        with progress_bar(True, 2, "shown") as bar:
            bar(2)
        with progress_bar(False, 2, "hidden") as bar:
            bar(2)
        with silenced(), progress_bar(True, 2, "silenced") as bar:
            bar(2)
    assert "shown" in buf.getvalue() and "hidden" not in buf.getvalue() and "silenced" not in buf.getvalue()
    with pytest.raises(TypeError, match="progress must be True .* got 'yes'"):
        progress_bar("yes", 1, "x")


# ---- the long calls ---------------------------------------------------------------------------------

def test_evidence_optimisers_count_evaluations_on_stderr_and_are_quiet_on_request():
    from netfield.gp import class_indicators, maximize_evidence, maximize_laplace_evidence, select_depth

    x = np.random.default_rng(0).normal(size=(20, 2))
    y = np.sin(x[:, 0])
    net = nf.dnn(2, "erf")
    fit, out, err = run_captured(maximize_evidence, net, x, y, noise=0.1, params=("weight_var", "noise"))
    assert out == "" and f"GP evidence (dnn) {fit.evaluations} evaluations" in err
    quiet, out, err = run_captured(maximize_evidence, net, x, y, noise=0.1, params=("weight_var", "noise"),
                                   progress=False)
    assert out == err == "" and quiet.log_evidence == fit.log_evidence
    counted = []
    maximize_evidence(net, x, y, noise=0.1, params=("weight_var",), progress=counted.append)
    assert len(counted) > 1 and set(counted) == {1}
    labels, _ = class_indicators(x[:, 0] > 0)
    _, out, err = run_captured(maximize_laplace_evidence, net, x, labels, params=("readout_var",))
    assert out == "" and "Laplace evidence (dnn)" in err and "evaluations" in err
    _, out, err = run_captured(select_depth, net, x, y, noise=0.1, depths=[1, 2])
    assert out == "" and "depths |" in err and "2/2" in err
    _, out, err = run_captured(select_depth, net, x, y, noise=0.1, depths=[1, 2], progress=False)
    assert out == err == ""


def test_sklearn_fit_with_optimize_shows_progress_unless_quiet():
    x = np.random.default_rng(1).normal(size=(20, 3))
    y = np.sin(x[:, 0])
    _, out, err = run_captured(nf.gp.NNGPRegressor(depth=2, optimize=("weight_var",)).fit, x, y)
    assert out == "" and "evaluations" in err
    _, out, err = run_captured(nf.gp.NNGPRegressor(depth=2, optimize=("weight_var",), progress=False).fit, x, y)
    assert out == err == ""


def test_transition_shows_its_solutions_and_is_quiet_on_request():
    from netfield.feature.transition import transition

    x, y = np.random.default_rng(0).normal(size=(2, 3)), np.array([1.0, -1.0])
    kw = {"kappa": 0.1, "signals": (0.2, 1.0), "refine": 1, "points": 2**11, "rule": "qmc", "replicates": 2,
          "rtol": None}
    scan, out, err = run_captured(transition, nf.rnn(3, "erf", weight_var=1.5), x, y, **kw)
    assert out == "" and "transition: solutions" in err and "6/6" in err  # 2 replicates x (2 signals + 1 refinement)
    assert scan.critical_signal is not None
    # quiet, with the scan's eigenvalues given: only the refinement is computed again
    again, out, err = run_captured(transition, nf.rnn(3, "erf", weight_var=1.5), x, y, progress=False,
                                   eigenvalues=scan.replicate_eigenvalues, **kw)
    assert out == err == "" and again.critical_signal == scan.critical_signal


def test_width_study_shows_widths_and_is_quiet_on_request():
    from netfield.criticality import width_study

    net = nf.dnn(4, "tanh", weight_var=1.2, bias_var=0.05)
    x = np.random.default_rng(0).normal(size=(2, 3))  # given inputs: the measurement only (no theory to compile)
    study, out, err = run_captured(width_study, net, widths=(8, 16), networks=4, x=x)
    assert out == "" and "widths (4 networks each)" in err and "2/2" in err
    quiet, out, err = run_captured(width_study, net, widths=(8, 16), networks=4, x=x, progress=False)
    assert out == err == ""
    np.testing.assert_array_equal(quiet.lyapunov, study.lyapunov)


def test_simulate_and_architecture_study_show_networks_and_are_quiet_on_request():
    from netfield.experiments.architectures import architecture_study, default_cases
    from netfield.nlo.simulate import simulate

    _, out, err = run_captured(simulate, nf.dnn(2, "linear"), np.ones((1, 2)), widths=(8, 16, 32), networks=5)
    assert out == "" and "networks |" in err and "15/15" in err
    _, out, err = run_captured(simulate, nf.dnn(2, "linear"), np.ones((1, 2)), widths=(8, 16, 32), networks=5,
                               progress=False)
    assert out == err == ""
    cases = [c for c in default_cases() if c.name == "rnn"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, out, err = run_captured(architecture_study, cases, widths=(8, 16), networks=3)
    assert out == "" and "1 architectures: networks" in err and "6/6" in err
