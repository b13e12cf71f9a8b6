"""The gated-recurrence back-ends for GRU states (docs/tensor_programs.md): the trajectory integral
(meanfield/gated.py, B5) and, for erf gates and up to 8 steps, separation of variables (gated_sov.py, B6).

- recognition by the program's shape: GRU chains with and without a reset gate are found; LSTM,
  the masked steps of unequal-length batches, fixed or logistic-reset gates and programs whose gate
  and candidate share a matrix take the generic path;
- against the independent GP4A-style orthant computation (tests/program/gru_gp4a_reference.py): the
  committed high-precision reference (tests/data/gru_orthant_reference.npz, 8 sequences x 5 steps,
  Genz abseps 2e-8, tests/data/generate_gru_reference.py) within 4 reported errors and, at 2^14
  points per pass, to 1e-6 in every two-time state moment; the reported error honest and falling
  with points; B5 and B6 agree, B6 chosen as documented;
- LSTM (gated_lstm.py): recognised, equal to the generic path within the combined errors (cell and
  output taps), smaller error at the same points;
- the generic per-entry quasi-Monte-Carlo path agrees within the combined errors;
- repeated sequences (a singular gate covariance) give the diagonal entry.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import netfield as nf
from netfield.meanfield import gated
from netfield.meanfield.gated import find_chain

HERE = Path(__file__).parent
DATA = HERE.parent / "data" / "gru_orthant_reference.npz"
_spec = importlib.util.spec_from_file_location("gru_gp4a_reference",
                                               HERE.parent / "program" / "gru_gp4a_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)


def _program(net, x):
    return nf.mean_field(net, x, qmc_points=2**8, qmc_replicates=2).program


def _states(program):
    from netfield.program.netsor import GatedBlend, Nonlin

    return [i.name for i in program.instructions if isinstance(i, Nonlin) and isinstance(i.fn, GatedBlend)]


# -- recognition -------------------------------------------------------------------------------------
def test_gru_chain_is_recognised_with_and_without_reset_gate():
    x = np.random.default_rng(0).normal(size=(2, 4, 3))
    prog = _program(nf.gru(4), x)
    states = _states(prog)
    chain = find_chain(prog, states[1])
    assert chain is not None and chain.states == tuple(states) and len(states) == 4
    assert chain.r is not None
    prog = _program(nf.gru(4, fixed_gates={"reset": 1}), x)
    chain = find_chain(prog, _states(prog)[-1])
    assert chain is not None and chain.r is None
    mf = nf.mean_field(nf.gru(4), x, qmc_points=2**8)
    assert mf.readout.shape == (2, 2)
    assert mf.backends.get("gated") == 1 and mf.backends["qmc"] == 0


@pytest.mark.parametrize("case", ["masked", "fixed-update", "logistic", "lstm-fixed-forget"])
def test_other_programs_take_the_generic_path(case):
    rng = np.random.default_rng(1)
    x = rng.normal(size=(2, 3, 2))
    if case == "masked":  # sequences of different lengths: the states are masked, coupled Nonlins
        net, x = nf.gru(3), [rng.normal(size=(3, 2)), rng.normal(size=(2, 2))]
    else:
        net = {"fixed-update": nf.gru(3, fixed_gates={"update": 0.5}), "logistic": nf.gru(3, gate="logistic"),
               "lstm-fixed-forget": nf.lstm(3, fixed_gates={"forget": 1})}[case]
    mf = nf.mean_field(net, x, qmc_points=2**8, qmc_replicates=2)
    assert np.all(np.isfinite(mf.readout)) and mf.backends["qmc"] > 0
    if case == "masked":  # steps 1-2 (both sequences running) are a chain; step 3 masks: generic
        last = mf.program.readout.arg
        assert find_chain(mf.program, last) is None
        assert find_chain(mf.program, _states(mf.program)[-1]).states == tuple(_states(mf.program))
    else:
        assert "gated" not in mf.backends
        assert all(find_chain(mf.program, h) is None for h in _states(mf.program))


def test_shared_matrix_between_gate_and_candidate_is_not_a_chain():
    """z and c both use W: not independent families, so (G1) does not factorise."""
    from netfield.program.architectures import erf_sigmoid
    from netfield.program.netsor import GatedBlend

    blend = GatedBlend(erf_sigmoid, nf.gauss.get_activation("erf"))

    def shared(p, x):
        h = None
        for t in range(3):
            u = p.input(f"U{t}", x[:, t], 1.0)
            z = u if h is None else p.matmul("W", h, 1.0) + u
            c = u if h is None else p.matmul("W", h, 1.0) + p.bias("b", 1.0)
            h = p.nonlin(blend, z, c) if h is None else p.nonlin(blend, z, c, h)
        return p.readout(h)

    x = np.random.default_rng(2).normal(size=(2, 3, 2))
    prog = _program(nf.architecture(shared), x)
    assert all(find_chain(prog, h) is None for h in _states(prog))


# -- accuracy -----------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def reference():
    data = np.load(DATA)
    return data["x"], data["state"], float(data["abseps"])


def test_matches_high_precision_orthant_reference(reference):
    x, state, abseps = reference
    mf = nf.mean_field(nf.gru(5), x)  # default points: the orthant back-end (B6) at 256 points per pass
    assert abseps <= 2e-8
    readout_dev = np.abs(mf.readout - state[-1, -1])
    assert np.all(readout_dev <= 4 * mf.error + 1e-7), (readout_dev / mf.error).max()
    assert mf.max_error < 1e-4, mf.max_error


@pytest.mark.slow
def test_reaches_1e_6_against_the_reference(reference):
    """Issue 19's target: GP4A's GRU to <= 1e-6 (three of the eight sequences: the kernel of a subset is
    the sub-block, the GRU couples no patterns), every two-time state moment."""
    x, state, _ = reference
    mf = nf.mean_field(nf.gru(5), x[:3], qmc_points=2**18)  # 2^14 points per pass
    T = state.shape[0]
    worst = 0.0
    for t in range(1, T + 1):
        for s in range(1, T + 1):
            dev = np.abs(np.asarray(mf.tap("h", t, s)) - state[t - 1, s - 1, :3, :3])
            worst = max(worst, dev.max())
    readout_dev = np.abs(mf.readout - state[-1, -1, :3, :3])
    assert np.all(readout_dev <= 4 * mf.error + 1e-8), (readout_dev / mf.error).max()
    assert mf.max_error < 1e-6, mf.max_error
    assert worst < 1e-6, worst
    print(f"\n3 x 5 GRU at 2^14 points per pass: max |dev| readout {readout_dev.max():.2e}, all states "
          f"{worst:.2e}, reported max error {mf.max_error:.2e}")


def test_orthant_and_trajectory_back_ends_agree(monkeypatch):
    """B6 (orthant: erf gates, T <= 8) and B5 (trajectory integral: longer chains) agree within their
    combined errors; the selection follows ORTHANT_MAX_STEPS."""
    from netfield.meanfield import gated_sov

    x = np.random.default_rng(8).normal(size=(3, 4, 2))
    orthant = nf.mean_field(nf.gru(4), x, qmc_points=2**12)
    program = orthant.program
    chain = find_chain(program, _states(program)[0])
    assert chain.orthant(4) and not chain.orthant(gated_sov.ORTHANT_MAX_STEPS + 1)
    monkeypatch.setattr(gated_sov, "ORTHANT_MAX_STEPS", 0)
    trajectory = nf.mean_field(nf.gru(4), x, qmc_points=2**12, seed=1)  # a new seed: no memoised moments
    assert trajectory.backends.get("gated") == 1
    dev = np.abs(orthant.readout - trajectory.readout)
    assert np.all(dev <= 4 * np.hypot(orthant.error, trajectory.error) + 1e-9), dev.max()
    assert orthant.max_error < trajectory.max_error, (orthant.max_error, trajectory.max_error)  # at 1/16 of the points


def test_error_falls_with_points_and_is_honest():
    rng = np.random.default_rng(3)
    x = rng.normal(size=(3, 3, 2))
    expected = ref.gru_readout_kernel(x, abseps=1e-7)
    errs = []
    for points in (2**10, 2**14):
        mf = nf.mean_field(nf.gru(3), x, qmc_points=points)
        dev = np.abs(mf.readout - expected)
        assert np.all(dev <= 4 * mf.error + 5e-7), (dev / mf.error).max()
        errs.append(mf.max_error)
    assert errs[1] < errs[0] / 4, errs


def test_generic_path_agrees(monkeypatch):
    x = np.random.default_rng(4).normal(size=(2, 3, 2))
    fast = nf.mean_field(nf.gru(3), x, qmc_points=2**12)
    assert fast.readout.shape == (2, 2)
    assert fast.backends.get("gated") == 1
    monkeypatch.setattr(gated, "find_chain", lambda program, h: None)
    slow = nf.mean_field(nf.gru(3), x, qmc_points=2**12)
    assert slow.readout.shape == (2, 2)
    assert "gated" not in slow.backends
    dev = np.abs(fast.readout - slow.readout)
    assert np.all(dev <= 4 * np.hypot(fast.error, slow.error) + 1e-9), dev.max()


def test_repeated_sequence_equals_the_diagonal():
    rng = np.random.default_rng(5)
    x = rng.normal(size=(2, 4, 3))
    x = np.concatenate([x, x[:1]])  # row 2 repeats row 0: a singular pair covariance
    mf = nf.mean_field(nf.gru(4), x, qmc_points=2**12)
    k = mf.readout
    assert np.all(np.isfinite(k))
    assert abs(k[0, 2] - k[0, 0]) <= 4 * np.hypot(mf.error[0, 2], mf.error[0, 0]) + 1e-12


# -- LSTM ----------------------------------------------------------------------------------------------
def test_lstm_chain_recognised_and_equal_to_the_generic_path(monkeypatch):
    x = np.random.default_rng(6).normal(size=(3, 3, 2))
    net = nf.lstm(3, weight_var=1.2, bias_var=0.4)
    fast = nf.mean_field(net, x, qmc_points=2**12)
    assert fast.readout.shape == (3, 3)
    assert fast.backends.get("gated") == 1 and fast.backends["qmc"] == 0
    monkeypatch.setattr(gated, "find_chain", lambda program, h: None)
    slow = nf.mean_field(net, x, qmc_points=2**12)
    assert slow.readout.shape == (3, 3) and "gated" not in slow.backends
    dev = np.abs(fast.readout - slow.readout)
    assert np.all(dev <= 4 * np.hypot(fast.error, slow.error) + 1e-9), dev.max()
    assert fast.max_error < slow.max_error / 2, (fast.max_error, slow.max_error)
    for t, s in ((1, 1), (2, 3), (3, 3)):  # cell taps E[c_t c_s] come from the same integral
        a, b = np.asarray(fast.tap("c", t, s)), np.asarray(slow.tap("c", t, s))
        assert np.abs(a - b).max() < 5e-3, (t, s, np.abs(a - b).max())
