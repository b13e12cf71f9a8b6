"""Fuzz suite of bad options and bad input files over the command line (issue 19, item 3).

What it guarantees: every case in ``CASES`` -- a bad value of one option of one subcommand (kernel,
sample, nlo, converge, phase-diagram, gp, train, feature, demo), or a bad input file (NaN entries,
wrong ndim, empty, text garbage, a pickled object array, a missing file, a regular file used as a
folder, a wrong suffix) -- makes ``netfield.cli.main(argv)`` return 2 with exactly one line on stderr,
``netfield: error: ...``, naming the option the user typed, and no traceback; nothing runs (each case
is refused in well under a second or two). The API counterpart is tests/test_fuzz_api.py, whose
``test_case_count`` counts the cases of both files.
"""

from __future__ import annotations

import pickle
import time

import numpy as np
import pytest

from netfield.cli import main


def case(name, argv, option):
    """``argv`` ({d}: the folder of the input files) must fail with a one-line error naming ``option``."""
    return pytest.param(argv, option, id=name)


@pytest.fixture
def d(tmp_path):
    rng = np.random.default_rng(0)
    np.save(tmp_path / "x3.npy", rng.normal(size=(2, 3)))
    np.save(tmp_path / "x4.npy", rng.normal(size=(2, 4)))
    np.save(tmp_path / "seq.npy", rng.normal(size=(2, 5, 3)))
    np.save(tmp_path / "many.npy", rng.normal(size=(9, 3, 1)))  # 27 nodes: above the one-loop theory's 24
    np.save(tmp_path / "nan.npy", np.array([[1.0, np.nan, 0.0], [0.0, 1.0, 2.0]]))
    np.save(tmp_path / "inf.npy", np.array([[1.0, np.inf, 0.0], [0.0, 1.0, 2.0]]))
    np.save(tmp_path / "vec.npy", np.ones(3))
    np.save(tmp_path / "scalar.npy", np.array(1.0))
    np.save(tmp_path / "4d.npy", np.ones((2, 2, 2, 2)))
    np.save(tmp_path / "empty.npy", np.zeros((0, 3)))
    np.save(tmp_path / "complex.npy", np.ones((2, 3)) + 1j)
    np.save(tmp_path / "strings.npy", np.array([["a", "b"], ["c", "d"]]))
    np.save(tmp_path / "object.npy", np.array([{"a": 1}, None], dtype=object), allow_pickle=True)
    (tmp_path / "garbage.npy").write_bytes(b"this is not a numpy file\n")
    (tmp_path / "pickle.npy").write_bytes(pickle.dumps([[1.0, 2.0]]))
    (tmp_path / "x.txt").write_text("1,2,3\n4,5,6\n")
    (tmp_path / "garbage.csv").write_text("a,b,c\nhello,world,!\n")
    (tmp_path / "nan.csv").write_text("1,2,3\n4,nan,6\n")
    (tmp_path / "ragged.csv").write_text("1,2,3\n4,5\n")
    (tmp_path / "empty.csv").write_text("")
    np.savez(tmp_path / "two.npz", a=np.ones((2, 3)), b=np.ones((2, 3)))
    np.savez(tmp_path / "emptyarchive.npz")
    (tmp_path / "file").write_text("a regular file")
    x, y = rng.normal(size=(12, 3)), rng.normal(size=12)
    np.savez(tmp_path / "task.npz", x=x, y=y, x_test=x[:3])
    np.savez(tmp_path / "task_no_y.npz", x=x, x_test=x[:3])
    np.savez(tmp_path / "task_nan_y.npz", x=x, y=np.where(np.arange(12) == 3, np.nan, y), x_test=x[:3])
    np.savez(tmp_path / "task_short_y.npz", x=x, y=y[:5], x_test=x[:3])
    np.savez(tmp_path / "task_test_d.npz", x=x, y=y, x_test=np.ones((3, 5)))
    np.savez(tmp_path / "gp.npz", x=x, y=y)
    np.savez(tmp_path / "gp_one_class.npz", x=x, y=np.zeros(12, int))
    np.savez(tmp_path / "gp_nan_x.npz", x=np.where(x > 1.5, np.nan, x), y=y)
    np.savez(tmp_path / "feature_bad_y.npz", x=x[:2, :2], y=np.ones(5))
    np.savez(tmp_path / "feature_nan_x.npz", x=np.full((2, 2), np.nan), y=np.ones(2))
    return tmp_path


@pytest.fixture(autouse=True)
def _memory_limit(monkeypatch):
    """A 2 GB memory limit for the size guards: a case that slipped past them could not fill the machine."""
    monkeypatch.setenv("NETFIELD_MEMORY_LIMIT", "2GB")


K = ["kernel", "--quiet", "--out", "{d}/k.npy"]
S = ["sample", "--quiet", "--width", "4", "--networks", "2", "--out", "{d}/s.npz"]
SX = S + ["--inputs", "{d}/x3.npy"]
N = ["nlo", "--quiet", "--depth", "2", "--activation", "tanh"]
C = ["converge", "--quiet", "--no-plots", "--depth", "2", "--widths", "4,8", "--networks", "2", "--out", "{d}/conv"]
P = ["phase-diagram", "--out", "{d}/fig.png"]
G = ["gp", "--quiet", "--data", "{d}/gp.npz", "--depth", "2"]
T = ["train", "--quiet", "--data", "{d}/task.npz", "--depth", "2", "--times", "0,1", "--out", "{d}/pred.npz"]
F = ["feature", "--quiet", "--steps", "2", "--signal", "0.3", "--points", "64", "--refine", "1"]
D = ["demo", "--quiet"]

KERNEL = [
    case("kernel-depth-0", K + ["--depth", "0"], "--depth"),
    case("kernel-depth-negative", K + ["--depth", "-1"], "--depth"),
    case("kernel-depth-text", K + ["--depth", "abc"], "--depth"),
    case("kernel-depth-float", K + ["--depth", "2.5"], "--depth"),
    case("kernel-depth-huge-size-guard", K + ["--depth", "1000000", "--inputs", "{d}/x3.npy"], "--depth"),
    case("kernel-steps-alias-0", K + ["--arch", "rnn", "--steps", "0"], "--depth"),
    case("kernel-weight-var-negative", K + ["--weight-var", "-1"], "--weight-var"),
    case("kernel-weight-var-nan", K + ["--weight-var", "nan"], "--weight-var"),
    case("kernel-weight-var-inf", K + ["--weight-var", "inf"], "--weight-var"),
    case("kernel-weight-var-text", K + ["--weight-var", "abc"], "--weight-var"),
    case("kernel-weight-var-zero", K + ["--weight-var", "0"], "--weight-var"),
    case("kernel-bias-var-negative", K + ["--bias-var", "-0.5"], "--bias-var"),
    case("kernel-input-var-nan", K + ["--input-var", "nan"], "--input-var"),
    case("kernel-readout-var-negative", K + ["--readout-var", "-1"], "--readout-var"),
    case("kernel-readout-bias-var-inf", K + ["--readout-bias-var", "inf"], "--readout-bias-var"),
    case("kernel-activation-unknown", K + ["--activation", "nope"], "--activation"),
    case("kernel-activation-empty", K + ["--activation", ""], "--activation"),
    case("kernel-arch-unknown", K + ["--arch", "mlp"], "--arch"),
    case("kernel-readout-unknown", K + ["--readout", "bogus"], "--readout"),
    case("kernel-kind-unknown", K + ["--kind", "bogus"], "--kind"),
    case("kernel-parameterization-unknown", K + ["--kind", "ntk", "--parameterization", "x"], "--parameterization"),
    case("kernel-standard-without-width", K + ["--kind", "ntk", "--parameterization", "standard"], "--width"),
    case("kernel-width-0", K + ["--kind", "ntk", "--parameterization", "standard", "--width", "0"], "--width"),
    case("kernel-width-with-nngp", K + ["--width", "8"], "--width"),
    case("kernel-tile-0", K + ["--tile", "0"], "--tile"),
    case("kernel-tile-negative", K + ["--tile", "-2"], "--tile"),
    case("kernel-workers-0", K + ["--workers", "0"], "--workers"),
    case("kernel-digits-0", K + ["--digits", "0"], "--digits"),
    case("kernel-digits-text", K + ["--digits", "many"], "--digits"),
    case("kernel-inputs-missing-file", K + ["--inputs", "{d}/missing.npy"], "--inputs"),
    case("kernel-inputs-nan", K + ["--inputs", "{d}/nan.npy"], "--inputs"),
    case("kernel-inputs-inf", K + ["--inputs", "{d}/inf.npy"], "--inputs"),
    case("kernel-inputs-1d", K + ["--inputs", "{d}/vec.npy"], "--inputs"),
    case("kernel-inputs-scalar", K + ["--inputs", "{d}/scalar.npy"], "--inputs"),
    case("kernel-inputs-4d", K + ["--inputs", "{d}/4d.npy"], "--inputs"),
    case("kernel-inputs-empty", K + ["--inputs", "{d}/empty.npy"], "--inputs"),
    case("kernel-inputs-complex", K + ["--inputs", "{d}/complex.npy"], "--inputs"),
    case("kernel-inputs-strings", K + ["--inputs", "{d}/strings.npy"], "--inputs"),
    case("kernel-inputs-object-array", K + ["--inputs", "{d}/object.npy"], "--inputs"),
    case("kernel-inputs-garbage-npy", K + ["--inputs", "{d}/garbage.npy"], "--inputs"),
    case("kernel-inputs-pickle", K + ["--inputs", "{d}/pickle.npy"], "--inputs"),
    case("kernel-inputs-wrong-suffix", K + ["--inputs", "{d}/x.txt"], "--inputs"),
    case("kernel-inputs-garbage-csv", K + ["--inputs", "{d}/garbage.csv"], "--inputs"),
    case("kernel-inputs-nan-csv", K + ["--inputs", "{d}/nan.csv"], "--inputs"),
    case("kernel-inputs-ragged-csv", K + ["--inputs", "{d}/ragged.csv"], "--inputs"),
    case("kernel-inputs-empty-csv", K + ["--inputs", "{d}/empty.csv"], "--inputs"),
    case("kernel-inputs-npz-ambiguous", K + ["--inputs", "{d}/two.npz"], "--key"),
    case("kernel-inputs-npz-empty", K + ["--inputs", "{d}/emptyarchive.npz"], "--inputs"),
    case("kernel-key-missing", K + ["--inputs", "{d}/two.npz", "--key", "zzz"], "--key"),
    case("kernel-inputs-a-folder", K + ["--inputs", "{d}"], "--inputs"),
    case("kernel-inputs2-dims-mismatch", K + ["--inputs", "{d}/x3.npy", "--inputs2", "{d}/x4.npy"], "--inputs2"),
    case("kernel-inputs2-nan", K + ["--inputs", "{d}/x3.npy", "--inputs2", "{d}/nan.npy"], "--inputs2"),
    case("kernel-sequence-longer-than-depth", K + ["--arch", "rnn", "--depth", "2", "--inputs", "{d}/seq.npy"],
         "--depth"),
    case("kernel-out-under-a-regular-file", ["kernel", "--quiet", "--inputs", "{d}/x3.npy", "--out", "{d}/file/k.npy"],
         "--out"),
    case("kernel-out-wrong-suffix", ["kernel", "--quiet", "--inputs", "{d}/x3.npy", "--out", "{d}/k.txt"], "--out"),
    case("kernel-out-is-a-folder", ["kernel", "--quiet", "--inputs", "{d}/x3.npy", "--out", "{d}"], "--out"),
    case("kernel-unknown-option", K + ["--bogus", "1"], "--bogus"),
]

SAMPLE = [
    case("sample-width-0", SX + ["--width", "0"], "--width"),
    case("sample-width-negative", SX + ["--width", "-5"], "--width"),
    case("sample-width-text", SX + ["--width", "wide"], "--width"),
    case("sample-width-huge-size-guard", SX + ["--width", "1000000", "--method", "weights"], "--width"),
    case("sample-width-huge-conditional-size-guard", SX + ["--width", "1000000000"], "--width"),
    case("sample-networks-0", SX + ["--networks", "0"], "--networks"),
    case("sample-networks-huge-size-guard", SX + ["--networks", str(10**12)], "--networks"),
    case("sample-seed-negative", SX + ["--seed", "-1"], "--seed"),
    case("sample-seed-too-large", SX + ["--seed", str(2**70)], "--seed"),
    case("sample-seed-text", SX + ["--seed", "abc"], "--seed"),
    case("sample-chunk-size-0", SX + ["--chunk-size", "0"], "--chunk-size"),
    case("sample-dtype-float16", SX + ["--dtype", "float16"], "--dtype"),
    case("sample-preactivations-unknown", SX + ["--preactivations", "bogus"], "--preactivations"),
    case("sample-readout-unknown", SX + ["--readout", "bogus"], "--readout"),
    case("sample-depth-0", SX + ["--depth", "0"], "--depth"),
    case("sample-weight-var-negative", SX + ["--weight-var", "-1"], "--weight-var"),
    case("sample-activation-unknown", SX + ["--activation", "nope"], "--activation"),
    case("sample-inputs-nan", S + ["--inputs", "{d}/nan.npy"], "--inputs"),
    case("sample-inputs-object-array", S + ["--inputs", "{d}/object.npy"], "--inputs"),
    case("sample-inputs-missing", S + ["--inputs", "{d}/missing.csv"], "--inputs"),
    case("sample-inputs-empty", S + ["--inputs", "{d}/empty.npy"], "--inputs"),
    case("sample-workers-0", SX + ["--workers", "0"], "--workers"),
    case("sample-out-under-a-regular-file", ["sample", "--quiet", "--width", "4", "--networks", "2", "--inputs",
                                             "{d}/x3.npy", "--out", "{d}/file/s.npz"], "--out"),
]

NLO = [
    case("nlo-depth-0", N + ["--depth", "0"], "--depth"),
    case("nlo-activation-unknown", N + ["--activation", "nope"], "--activation"),
    case("nlo-activation-kinked", ["nlo", "--quiet", "--depth", "2", "--activation", "relu"], "--activation"),
    case("nlo-weight-var-negative", N + ["--weight-var", "-1"], "--weight-var"),
    case("nlo-bias-var-nan", N + ["--bias-var", "nan"], "--bias-var"),
    case("nlo-inputs-nan", N + ["--inputs", "{d}/nan.npy"], "--inputs"),
    case("nlo-inputs-garbage", N + ["--inputs", "{d}/garbage.npy"], "--inputs"),
    case("nlo-inputs-too-many-nodes", N + ["--inputs", "{d}/many.npy", "--depth", "3"], "--inputs"),
    case("nlo-arch-gru", N + ["--arch", "gru"], "--arch"),
    case("nlo-widths-0", N + ["--simulate", "--widths", "0,8,16", "--out", "{d}/run"], "--widths"),
    case("nlo-widths-text", N + ["--simulate", "--widths", "a,b", "--out", "{d}/run"], "--widths"),
    case("nlo-widths-too-few", N + ["--simulate", "--widths", "8", "--out", "{d}/run"], "--widths"),
    case("nlo-networks-0", N + ["--simulate", "--widths", "4,8,16", "--networks", "0", "--out", "{d}/run"],
         "--networks"),
    case("nlo-networks-wrong-count", N + ["--simulate", "--widths", "4,8,16", "--networks", "2,2", "--out",
                                          "{d}/run"], "--networks"),
    case("nlo-seed-negative", N + ["--simulate", "--widths", "4,8,16", "--seed", "-1", "--out", "{d}/run"], "--seed"),
    case("nlo-chaotic-text", N + ["--figure", "{d}/f.png", "--chaotic", "abc"], "--chaotic"),
    case("nlo-figure-wrong-suffix", N + ["--figure", "{d}/f.txt"], "--figure"),
    case("nlo-json-under-a-regular-file", N + ["--json", "{d}/file/n.json"], "--json"),
]

CONVERGE = [
    case("converge-weight-vars-negative", C + ["--weight-vars", "-1,2"], "--weight-vars"),
    case("converge-weight-vars-text", C + ["--weight-vars", "abc"], "--weight-vars"),
    case("converge-weight-vars-empty", C + ["--weight-vars", ""], "--weight-vars"),
    case("converge-widths-0", C + ["--widths", "0,16"], "--widths"),
    case("converge-widths-text", C + ["--widths", "x,y"], "--widths"),
    case("converge-networks-0", C + ["--networks", "0"], "--networks"),
    case("converge-depth-0", C + ["--depth", "0"], "--depth"),
    case("converge-seed-negative", C + ["--seed", "-1"], "--seed"),
    case("converge-chunk-size-0", C + ["--chunk-size", "0"], "--chunk-size"),
    case("converge-digits-0", C + ["--digits", "0"], "--digits"),
    case("converge-inputs-nan", C + ["--inputs", "{d}/nan.npy"], "--inputs"),
    case("converge-activation-unknown", C + ["--activation", "nope"], "--activation"),
    case("converge-bias-var-negative", C + ["--bias-var", "-1"], "--bias-var"),
    case("converge-out-under-a-regular-file", C + ["--out", "{d}/file/conv"], "--out"),
]

PHASE = [
    case("phase-activation-unknown", P + ["--activation", "nope"], "--activation"),
    case("phase-resolution-0", P + ["--resolution", "0"], "--resolution"),
    case("phase-resolution-text", P + ["--resolution", "fine"], "--resolution"),
    case("phase-bias-max-negative", P + ["--bias-max", "-1"], "--bias-max"),
    case("phase-weight-range-reversed", P + ["--weight-min", "5", "--weight-max", "1"], "--weight-min"),
    case("phase-weight-min-negative", P + ["--weight-min", "-1"], "--weight-min"),
    case("phase-input-var-negative", P + ["--input-var", "-1"], "--input-var"),
    case("phase-input-power-nan", P + ["--input-power", "nan"], "--input-power"),
    case("phase-out-wrong-suffix", ["phase-diagram", "--out", "{d}/fig.txt"], "--out"),
    case("phase-out-under-a-regular-file", ["phase-diagram", "--out", "{d}/file/fig.png"], "--out"),
    case("phase-workers-0", P + ["--workers", "0"], "--workers"),
]

GP = [
    case("gp-data-missing", ["gp", "--quiet", "--data", "{d}/missing.npz"], "--data"),
    case("gp-data-garbage-csv", ["gp", "--quiet", "--data", "{d}/garbage.csv"], "--data"),
    case("gp-data-wrong-suffix", ["gp", "--quiet", "--data", "{d}/x.txt"], "--data"),
    case("gp-data-npz-without-y", ["gp", "--quiet", "--data", "{d}/task_no_y.npz"], "--data"),
    case("gp-data-nan-x", ["gp", "--quiet", "--data", "{d}/gp_nan_x.npz"], "--data"),
    case("gp-data-short-y", ["gp", "--quiet", "--data", "{d}/task_short_y.npz"], "--data"),
    case("gp-data-one-class", ["gp", "--quiet", "--data", "{d}/gp_one_class.npz", "--task", "classify"], "--data"),
    case("gp-noise-negative", G + ["--noise", "-1"], "--noise"),
    case("gp-noise-nan", G + ["--noise", "nan"], "--noise"),
    case("gp-test-fraction-above-1", G + ["--test-fraction", "2"], "--test-fraction"),
    case("gp-test-fraction-0", G + ["--test-fraction", "0"], "--test-fraction"),
    case("gp-train-size-0", G + ["--train-size", "0"], "--train-size"),
    case("gp-depth-0", G + ["--depth", "0"], "--depth"),
    case("gp-readout-unknown", G + ["--readout", "bogus"], "--readout"),
    case("gp-time-steps-0", G + ["--time-steps", "0"], "--time-steps"),
    case("gp-time-steps-not-dividing", G + ["--arch", "rnn", "--time-steps", "2"], "--time-steps"),
    case("gp-method-unknown", G + ["--method", "bogus"], "--method"),
    case("gp-task-unknown", G + ["--task", "bogus"], "--task"),
    case("gp-weight-var-negative", G + ["--weight-var", "-1"], "--weight-var"),
    case("gp-activation-unknown", G + ["--activation", "nope"], "--activation"),
    case("gp-optimize-unknown-name", G + ["--optimize", "bogus"], "--optimize"),
    case("gp-seed-negative", G + ["--seed", "-1"], "--seed"),
    case("gp-out-wrong-suffix", G + ["--out", "{d}/pred.txt"], "--out"),
    case("gp-json-under-a-regular-file", G + ["--json", "{d}/file/fit.json"], "--json"),
]

TRAIN = [
    case("train-data-missing", ["train", "--quiet", "--data", "{d}/missing.npz", "--times", "0,1"], "--data"),
    case("train-data-no-y", ["train", "--quiet", "--data", "{d}/task_no_y.npz", "--times", "0,1"], "--data"),
    case("train-data-nan-y", ["train", "--quiet", "--data", "{d}/task_nan_y.npz", "--times", "0,1"], "--data"),
    case("train-data-short-y", ["train", "--quiet", "--data", "{d}/task_short_y.npz", "--times", "0,1"], "--data"),
    case("train-data-test-dims", ["train", "--quiet", "--data", "{d}/task_test_d.npz", "--times", "0,1"], "--data"),
    case("train-data-garbage", ["train", "--quiet", "--data", "{d}/garbage.npy", "--times", "0,1"], "--data"),
    case("train-times-negative", T + ["--times", "-1,2"], "--times"),
    case("train-times-text", T + ["--times", "soon"], "--times"),
    case("train-times-empty", T + ["--times", ""], "--times"),
    case("train-times-nan", T + ["--times", "nan"], "--times"),
    case("train-learning-rate-negative", T + ["--learning-rate", "-1"], "--learning-rate"),
    case("train-learning-rate-above-max", T + ["--dynamics", "discrete", "--learning-rate", "1e9"], "--learning-rate"),
    case("train-learning-rate-text", T + ["--learning-rate", "fast"], "--learning-rate"),
    case("train-dynamics-unknown", T + ["--dynamics", "bogus"], "--dynamics"),
    case("train-standard-without-width", T + ["--parameterization", "standard"], "--width"),
    case("train-width-0", T + ["--parameterization", "standard", "--width", "0"], "--width"),
    case("train-depth-0", T + ["--depth", "0"], "--depth"),
    case("train-weight-var-nan", T + ["--weight-var", "nan"], "--weight-var"),
    case("train-out-under-a-regular-file", T + ["--out", "{d}/file/pred.npz"], "--out"),
]

FEATURE = [
    case("feature-kappa-0", F + ["--kappa", "0"], "--kappa"),
    case("feature-kappa-negative", F + ["--kappa", "-1"], "--kappa"),
    case("feature-kappa-text", F + ["--kappa", "small"], "--kappa"),
    case("feature-signal-negative", F + ["--signal", "-1"], "--signal"),
    case("feature-signal-0", F + ["--signal", "0"], "--signal"),
    case("feature-steps-0", F + ["--steps", "0"], "--steps"),
    case("feature-arch-gru", F + ["--arch", "gru"], "--arch"),
    case("feature-activation-unknown", F + ["--activation", "nope"], "--activation"),
    case("feature-weight-var-negative", F + ["--weight-var", "-1"], "--weight-var"),
    case("feature-data-missing", F + ["--data", "{d}/missing.npz"], "--data"),
    case("feature-data-bad-y", F + ["--data", "{d}/feature_bad_y.npz"], "--data"),
    case("feature-data-nan-x", F + ["--data", "{d}/feature_nan_x.npz"], "--data"),
    case("feature-width-0", F + ["--width", "0"], "--width"),
    case("feature-chains-0", F + ["--width", "8", "--chains", "0"], "--chains"),
    case("feature-samples-0", F + ["--width", "8", "--samples", "0"], "--samples"),
    case("feature-points-0", F + ["--points", "0"], "--points"),
    case("feature-refine-negative", F + ["--refine", "-1"], "--refine"),
    case("feature-supervised-step-out-of-range", F + ["--supervised-steps", "9"], "--supervised-steps"),
    case("feature-resume-without-checkpoint-dir", F + ["--resume"], "--resume"),
    case("feature-seed-negative", F + ["--seed", "-1"], "--seed"),
    case("feature-out-under-a-regular-file", F + ["--out", "{d}/file/f.json"], "--out"),
]

DEMO = [
    case("demo-networks-0", D + ["--networks", "0", "--out", "{d}/report"], "--networks"),
    case("demo-seed-negative", D + ["--seed", "-1", "--out", "{d}/report"], "--seed"),
    case("demo-seed-text", D + ["--seed", "x", "--out", "{d}/report"], "--seed"),
    case("demo-out-under-a-regular-file", D + ["--out", "{d}/file/report"], "--out"),
    case("demo-out-is-a-regular-file", D + ["--out", "{d}/file"], "--out"),
    case("demo-unknown-option", D + ["--fast"], "--fast"),
]

CASES = KERNEL + SAMPLE + NLO + CONVERGE + PHASE + GP + TRAIN + FEATURE + DEMO


@pytest.mark.parametrize("argv, option", CASES)
def test_cli_fuzz_case(d, capsys, argv, option):
    start = time.perf_counter()
    assert main([a.format(d=d) for a in argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("netfield: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err
    assert option in err, err
    assert time.perf_counter() - start < 20, "refused too slowly: did the command start working?"


def test_cli_case_count():
    ids = [c.id for c in CASES]
    assert len(ids) == len(set(ids)) and len(ids) >= 100, len(ids)
