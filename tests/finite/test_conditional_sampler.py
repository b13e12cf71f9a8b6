"""Sampling DNN / RNN kernels by exact Gaussian conditioning (netfield.finite.conditional) against the
weight sampler: the same law of the empirical kernels (means and variances of every entry, z-tests
with Bonferroni-corrected thresholds), reproducible and chunk-independent draws, singular Gram
matrices, and the ``method`` argument of the API and the CLI.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import norm

import netfield as nf
from netfield.cli import main
from netfield.finite import conditional
from netfield.finite.sampler import sampling_method

RNG = np.random.default_rng(20)
X = RNG.normal(size=(3, 2))
X_SEQ = RNG.normal(size=(3, 3, 2))
NETWORKS = 2000
ALPHA = 1e-3  # family-wise false-alarm rate of each comparison


def _features(ens) -> np.ndarray:
    """(networks, F): the distinct entries of every recorded kernel (upper triangles of symmetric ones)."""
    cols = [ens.readout[:, i, j] for i, j in zip(*np.triu_indices(ens.readout.shape[1]))]
    for (t, s), k in sorted(ens.preactivations.items()):
        idx = zip(*np.triu_indices(k.shape[1])) if t == s else np.ndindex(k.shape[1:])
        cols += [k[:, i, j] for i, j in idx]
    return np.stack(cols, axis=1)


def _z(a, b) -> np.ndarray:
    """z-scores of the differences of the means of the columns of two independent samples. The
    conditional sampler is exact up to its jitter (~1e-12 of the kernel's scale, module docstring of
    netfield.finite.conditional), added to the standard error: an entry that is exactly 0 with weights
    (an all-zero input row) is ~1e-15 by conditioning."""
    diff = a.mean(0) - b.mean(0)
    floor = 1e-12 * max(np.abs(a).max(), np.abs(b).max())
    se = np.sqrt(a.var(0, ddof=1) / len(a) + b.var(0, ddof=1) / len(b) + floor ** 2)
    return np.where(se > 0, diff / np.where(se > 0, se, 1.0), 0.0)


def compare(a_ens, b_ens) -> tuple:
    """(largest |z| of the means, largest |z| of the variances, threshold): the variance of a column is
    the mean of its squared deviations from its own ensemble's mean, compared the same way."""
    a, b = _features(a_ens), _features(b_ens)
    z_mean = _z(a, b)
    z_var = _z((a - a.mean(0)) ** 2, (b - b.mean(0)) ** 2)
    tests = 2 * a.shape[1]
    return float(np.abs(z_mean).max()), float(np.abs(z_var).max()), float(norm.isf(ALPHA / (2 * tests)))


def _pair(net, x, width, seed, **kw):
    kw = {"preactivations": "all", **kw}
    w = nf.sample(net, x, width, NETWORKS, seed, method="weights", **kw)
    c = nf.sample(net, x, width, NETWORKS, seed + 1, method="conditional", **kw)
    assert (w.method, c.method) == ("weights", "conditional")
    return w, c


CASES = {
    # name: (network, inputs, width, sample options); cases of one shape share their compiled samplers
    "dnn": (nf.dnn(3, "erf", weight_var=1.6, bias_var=0.2, readout_var=0.9, readout_bias_var=0.1), X, 8, {}),
    "dnn-bias0": (nf.dnn(3, "erf", weight_var=2.5, bias_var=0.0), X, 8, {}),
    "rnn": (nf.rnn(3, "erf", weight_var=1.6, bias_var=0.2, readout_var=0.9, readout_bias_var=0.1), X_SEQ, 12,
            {"readout": "all"}),
    "rnn-bias0": (nf.rnn(3, "erf", weight_var=2.5, bias_var=0.0), X_SEQ, 12, {"readout": "all"}),
}


@pytest.mark.parametrize("name", list(CASES))
def test_same_law_as_the_weight_sampler(name):
    """Means and variances of every kernel entry agree (|z| below the Bonferroni threshold, 4.4-4.7).

    Can fail (measured, 2000 networks each): with the RNN's conditioning dropped (each step's W drawn
    afresh: ``past`` multiplied by 0 in run_conditional) the largest |z| of (means, variances) was
    (91, 12) on "rnn", (78, 11) on "rnn-bias0", (99, 13) on "rnn-duplicates" and (50, 12) on "rnn-NT>n";
    with the W term scaled by weight_var / n^0.9 instead of / n it was (12, 8) on "dnn", (15, 7) on
    "dnn-bias0", (14, 7) on "rnn" and (19, 9) on "rnn-bias0". The correct sampler: (2.4, 2.0),
    (2.4, 2.3), (2.4, 3.1), (2.2, 2.8) on these four cases."""
    net, x, width, kw = CASES[name]
    w, c = _pair(net, x, width, 3, **kw)
    z_mean, z_var, limit = compare(w, c)
    assert z_mean < limit and z_var < limit, (z_mean, z_var, limit)


SINGULAR = {
    # duplicate inputs (a rank-2 Gram of 4 rows), N T > n with no bias, one-step chains and zero inputs
    "dnn-duplicates": (nf.dnn(2, "erf", bias_var=0.0), np.concatenate([X, X[:1]]), 8, {}),
    "rnn-duplicates": (nf.rnn(3, "erf", bias_var=0.1), np.concatenate([X_SEQ, X_SEQ[:1]]), 12, {"readout": "all"}),
    "rnn-NT>n": (nf.rnn(3, "erf", weight_var=1.5, bias_var=0.0), X_SEQ, 4, {"readout": "all"}),
    "dnn-zero-input": (nf.dnn(2, "erf", bias_var=0.0), np.concatenate([X, np.zeros((1, 2))]), 8, {}),
}


@pytest.mark.parametrize("name", list(SINGULAR))
def test_singular_grams_are_finite_and_exact(name):
    """As above for singular Gram matrices; measured |z| (means, variances): (2.2, 2.5) "dnn-duplicates"
    and "dnn-zero-input", (2.4, 4.3) "rnn-duplicates" (threshold 4.7), (3.2, 2.6) "rnn-NT>n"."""
    net, x, width, kw = SINGULAR[name]
    w, c = _pair(net, x, width, 11, **kw)
    assert np.isfinite(_features(c)).all()
    z_mean, z_var, limit = compare(w, c)
    assert z_mean < limit and z_var < limit, (z_mean, z_var, limit)


def test_zero_kernel_gives_zeros_not_nan():
    """All-zero inputs and no bias: every Gram matrix is zero; the jitter's floor (the smallest normal
    number) keeps the factors finite, so the kernels are 0 up to ~1e-307."""
    ens = nf.sample(nf.rnn(3, "erf", bias_var=0.0), np.zeros_like(X_SEQ), 12, 7, method="conditional",
                    preactivations="all", readout="all", chunk_size=7)
    assert np.isfinite(_features(ens)).all() and np.abs(_features(ens)).max() < 1e-300


@pytest.mark.parametrize("net,x", [(CASES["dnn"][0], X), (CASES["rnn"][0], X_SEQ)], ids=["dnn", "rnn"])
def test_reproducible_and_chunk_independent(net, x):
    kw = {"preactivations": "all", "readout": "all", "method": "conditional"}
    width = 8 if x.ndim == 2 else 12
    one = nf.sample(net, x, width, 14, seed=5, chunk_size=1, **kw)
    seven = nf.sample(net, x, width, 14, seed=5, chunk_size=7, **kw)
    tail = nf.sample(net, x, width, 4, seed=5, first_network=10, chunk_size=7, **kw)
    other = nf.sample(net, x, width, 14, seed=6, chunk_size=7, **kw)
    for a, b in ((one, seven), (seven, nf.sample(net, x, width, 14, seed=5, chunk_size=7, **kw))):
        np.testing.assert_allclose(_features(a), _features(b), rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(_features(tail), _features(one)[10:], rtol=1e-12, atol=1e-12)
    assert not np.allclose(_features(other), _features(one))


def test_auto_picks_the_cheaper_sampler():
    dnn, rnn = CASES["dnn"][0].program(X), CASES["rnn"][0].program(X_SEQ)
    assert sampling_method(dnn, 4) == "conditional"                     # N = 3 < n = 4
    assert sampling_method(dnn, 3) == "weights"                         # N = n
    assert sampling_method(rnn, 10) == "conditional"                    # N T = 9 < 10
    assert sampling_method(rnn, 9) == "weights"
    assert sampling_method(rnn, 64, ntk=True) == "weights"
    assert sampling_method(nf.gru(3).program(X_SEQ), 64) == "weights"   # not a chain
    assert sampling_method(rnn, 9, "conditional") == "conditional"
    ens = nf.sample(CASES["rnn"][0], X_SEQ, 12, 7, seed=2, method="auto", chunk_size=7, readout="all",
                    preactivations="all")
    assert ens.method == "conditional"
    np.testing.assert_array_equal(ens.readout, nf.sample(CASES["rnn"][0], X_SEQ, 12, 7, seed=2, chunk_size=7,
                                                         readout="all", method="conditional").readout)


def test_save_load_and_concatenate_keep_the_method(tmp_path):
    ens = nf.sample(CASES["dnn"][0], X, 8, 7, seed=2, method="conditional", chunk_size=7, preactivations="all")
    back = nf.Ensemble.load(ens.save(tmp_path / "e.npz"))
    assert back.method == "conditional"
    np.testing.assert_array_equal(back.readout, ens.readout)
    other = nf.sample(CASES["dnn"][0], X, 8, 3, seed=2, first_network=7, method="weights")
    with pytest.raises(ValueError, match="method"):
        nf.Ensemble.concatenate([ens, other])


@pytest.mark.parametrize("bad", ["exact", "", None, 3, "Weights"])
def test_method_argument_errors(bad):
    with pytest.raises(ValueError, match=r"method must be one of 'auto', 'conditional', 'weights', got"):
        nf.sample(CASES["dnn"][0], X, 8, 2, method=bad)


def test_conditional_where_it_cannot_apply():
    with pytest.raises(ValueError, match="method='conditional'.*ntk=True"):
        nf.sample(CASES["dnn"][0], X, 8, 2, method="conditional", ntk=True)
    with pytest.raises(ValueError, match="method='conditional'.*not a DNN / RNN chain"):
        nf.sample(nf.gru(3), X_SEQ, 8, 2, method="conditional")
    assert conditional.resolve_method("weights", chain=False, ntk=True) == "weights"


def test_cli_method(tmp_path, capsys):
    out = tmp_path / "s.npz"
    base = ["sample", "--arch", "rnn", "--depth", "3", "--width", "16", "--networks", "3", "--quiet", "--out", str(out)]
    for bad in (["--method", "exact"], ["--method", "conditional", "--arch", "gru"]):
        rc = main(base + bad)
        err = capsys.readouterr().err
        assert rc == 2 and err.startswith("netfield: error: ") and "--method" in err and err.count("\n") == 1, err
    assert main(base + ["--method", "weights", "--keep-checkpoints"]) == 0
    meta = json.loads(str(np.load(out)["meta"]))
    weights = np.load(out)["readout"]
    assert meta["method"] == "weights"
    # the resolved method is part of the run key: --resume never takes the other sampler's chunks
    assert main(base + ["--method", "conditional", "--resume"]) == 0
    meta = json.loads(str(np.load(out)["meta"]))
    assert meta["method"] == "conditional" and not np.allclose(np.load(out)["readout"], weights)


def test_large_vmapped_chunk_of_rnns_does_not_deadlock():
    """An RNN sampled by conditioning with thousands of small networks in one vmapped chunk ran two
    independent batched Cholesky factorisations at once (the first factor and its retry), which
    deadlocked XLA:CPU's thread pool: the process hung with idle cores. Run in a child process with a
    time limit (the call takes ~3 s), so a hang fails this test instead of stalling the suite."""
    import subprocess
    import sys

    code = ("import numpy as np, netfield as nf\n"
            "x = np.random.default_rng(0).normal(size=(6, 6, 8))\n"
            "e = nf.sample(nf.rnn(6, 'erf', weight_var=1.5, bias_var=0.5), x, 64, 4000, seed=5,"
            " method='conditional')\n"
            "assert e.readout.shape == (4000, 6, 6) and np.isfinite(e.readout).all()\n")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, check=False)
    assert proc.returncode == 0, proc.stderr[-2000:]
