"""Size guards (_runtime/limits.py): refused before the work starts, with the estimate and the limit, overridable."""

import subprocess
import sys
import time

import numpy as np
import pytest

import netfield as nf
from netfield._runtime import limits
from netfield._runtime.limits import SizeLimitError

X = np.random.default_rng(0).normal(size=(4, 3))


@pytest.mark.parametrize("text, expected", [("64GB", 64 * 10**9), ("512MiB", 512 * 2**20), ("1e9", 10**9),
                                            ("2.5 gb", 25 * 10**8), ("none", None)])
def test_memory_limit_from_the_environment(monkeypatch, text, expected):
    monkeypatch.setenv(limits.MEMORY_ENV, text)
    assert limits.memory_limit()[0] == expected


def test_default_memory_limit_is_most_of_this_machine(monkeypatch):
    monkeypatch.delenv(limits.MEMORY_ENV, raising=False)
    limit, source = limits.memory_limit()
    assert limit == int(0.8 * limits.physical_memory()) and "80 %" in source


@pytest.mark.parametrize("bad", ["lots", "12 parsecs", "-3GB"])
def test_bad_memory_limit_names_the_variable(monkeypatch, bad):
    monkeypatch.setenv(limits.MEMORY_ENV, bad)
    with pytest.raises(ValueError, match=limits.MEMORY_ENV):
        limits.check_memory("width", 3, 10.0, "x")


def test_sample_refuses_a_network_that_cannot_fit_and_runs_below_the_limit(monkeypatch):
    t = time.perf_counter()
    with pytest.raises(SizeLimitError, match=r"width=1000000: one sampled network .* needs an estimated 16 TB") as err:
        nf.sample(nf.dnn(3, "erf"), X, width=10**6, networks=2, method="weights")
    assert "NETFIELD_MEMORY_LIMIT" in str(err.value) and time.perf_counter() - t < 30
    with pytest.raises(SizeLimitError, match=r"width=1000000000: one network sampled by conditioning .* 352 GB"):
        nf.sample(nf.dnn(3, "erf"), X, width=10**9, networks=2)
    with pytest.raises(SizeLimitError, match="width=1000000"):  # the generic interpreter (a GRU) too
        nf.sample(nf.gru(2), X[:, None, :], width=10**6, networks=2)
    with pytest.raises(SizeLimitError, match="chunk_size=4000: a chunk of 4000 networks"):
        nf.sample(nf.dnn(3, "erf"), X, width=4096, networks=4000, chunk_size=4000, method="weights")
    monkeypatch.setenv(limits.MEMORY_ENV, "10kB")  # the guard is the limit's: a small one refuses width 64
    with pytest.raises(SizeLimitError, match=r"above the memory limit 10 kB \(NETFIELD_MEMORY_LIMIT=10kB"):
        nf.sample(nf.dnn(3, "erf"), X, width=64, networks=2, method="weights")
    monkeypatch.setenv(limits.MEMORY_ENV, "1GB")
    assert nf.sample(nf.dnn(3, "erf"), X, width=64, networks=2).readout.shape == (2, 4, 4)


def test_huge_programs_are_refused_while_they_are_written(monkeypatch):
    t = time.perf_counter()
    for net in (nf.dnn(10**6, "erf"), nf.rnn(10**6, "erf")):
        with pytest.raises(SizeLimitError, match=r"\(depth|steps=1000000.*more than 100000 instructions"):
            nf.kernel(net, X)
    assert time.perf_counter() - t < 60
    monkeypatch.setenv(limits.INSTRUCTIONS_ENV, "10")
    with pytest.raises(SizeLimitError, match="NETFIELD_MAX_INSTRUCTIONS"):
        nf.dnn(3, "erf").program(X)
    monkeypatch.setenv(limits.INSTRUCTIONS_ENV, "many")
    with pytest.raises(ValueError, match="NETFIELD_MAX_INSTRUCTIONS must be a positive integer, got 'many'"):
        nf.dnn(3, "erf").program(X)


def test_kernel_refuses_an_output_that_cannot_fit():
    x = np.random.default_rng(1).normal(size=(60, 3))
    with pytest.raises(SizeLimitError, match=r"readout='all': the 1200000 x 1200000 kernel matrix .* out='K.zarr'"):
        nf.kernel(nf.rnn(20000, "erf"), x, readout="all")


def test_cli_names_the_option_in_one_line(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "netfield", "sample", "--width", "1000000", "--networks", "2",
                           "--method", "weights",
                           "--out", str(tmp_path / "s.npz")], capture_output=True, text=True, timeout=120,
                          check=False)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("netfield: error: --width=1000000: one sampled network")
