"""The suite compiles with XLA's legacy CPU emitters (tests/conftest.py, ``_compile_faster``: 10-40 % less
compilation time); users run JAX's defaults. This test computes the same representative numbers (kernels
of a DNN, an RNN read out at every step and a GRU, an NTK, sampled networks of a DNN and an RNN, a
mean-field two-time matrix) in a subprocess with the default emitters and in one with the suite's, and requires
agreement to 1e-14 relative (measured: identical bits except the RNN kernel, 3.4e-16): the compiler choice
changes rounding at most, so what the suite checks is what users get. It can fail: a flag that changes
results by more than rounding does (measured: --xla_cpu_enable_fast_math=true moves the sampled DNN by
5.6e-13 relative) fails it.
"""

import os
import subprocess
import sys

import numpy as np

LEGACY_EMITTERS = "--xla_cpu_use_fusion_emitters=false"  # as tests/conftest.py sets it

SCRIPT = r"""
import sys
import numpy as np
import netfield as nf

rng = np.random.default_rng(0)
x = rng.normal(size=(6, 3))
seqs = rng.normal(size=(4, 3, 2))
out = {
    "dnn": nf.kernel(nf.dnn(3, "erf", weight_var=1.5, bias_var=0.1), x),
    "rnn": nf.kernel(nf.rnn(3, "tanh", weight_var=1.2, bias_var=0.1), seqs, readout="all"),
    "gru": nf.kernel(nf.gru(3), seqs[:2]),
    "ntk": nf.kernel(nf.dnn(2, "relu"), x, kind="ntk"),
    "sample_dnn": nf.sample(nf.dnn(3, "erf"), x, width=32, networks=4, seed=1).readout,
    "sample_rnn": nf.sample(nf.rnn(3, "tanh"), seqs, width=32, networks=4, seed=2, readout="all").readout,
    "two_time": nf.mean_field(nf.rnn(3, "erf"), seqs).two_time(1),
}
np.savez(sys.argv[1], **{k: np.asarray(v) for k, v in out.items()})
"""


def _run(path, flags):
    env = {**os.environ, "XLA_FLAGS": flags}
    subprocess.run([sys.executable, "-c", SCRIPT, str(path)], check=True, env=env, timeout=600,
                   capture_output=True, text=True)
    with np.load(path) as data:
        return {k: data[k] for k in data.files}


def test_legacy_emitters_give_the_default_compilers_numbers(tmp_path):
    assert LEGACY_EMITTERS in os.environ.get("XLA_FLAGS", "")  # the suite does run with them
    default = _run(tmp_path / "default.npz", "--xla_cpu_use_fusion_emitters=true")
    legacy = _run(tmp_path / "legacy.npz", LEGACY_EMITTERS)
    assert sorted(default) == sorted(legacy)
    for name, value in default.items():
        assert np.all(np.isfinite(value)) and np.abs(value).max() > 0, name
        np.testing.assert_allclose(legacy[name], value, rtol=1e-14, atol=0, err_msg=name)
