"""The merged program representation reproduces the old DNN / RNN paths (IR + CovarianceEngine).

tests/data/chain_reference.npz was written by tests/data/generate_chain_reference.py with the netfield
of commit 3d64e3b, the last one with the separate DNN/RNN representation; every kernel, pre-activation
block, two-time matrix and sampled-network kernel must agree to 1e-12 (sampled networks: the same
random draws, so the same numbers up to rounding; ``method="weights"``, the sampler these were drawn with). Moments without a closed form (tanh, and
``method="panels"``) come from a Mehler series / panel quadrature whose order and panels are chosen
per block from the values it meets, with a stated accuracy of 1e-10; the merged interpreter meets
them in other blocks (all rows at once instead of groups of equal length), so there the check is
at that stated accuracy, 1e-10.

Sampled networks of a DNN with (N, d) inputs (the ``dnn-*-static`` cases) are the one deliberate
change: the compiled chain sampler now draws matrix k of the program in its first-use order (the
generic interpreter's, ``Program.matrices``) and no longer reserves keys for the input matrices
U_2..U_T that (N, d) inputs do not have, so that both paths draw the same networks. Their stored
draws are obsolete; every case's sampled kernels are instead checked against the generic interpreter
(:func:`netfield.finite.netsor.sample_program`, 1e-12), which the theory entries do not need.
"""

import importlib.util
from pathlib import Path

import numpy as np
import pytest

import netfield as nf
from netfield.finite.netsor import sample_program

DATA = Path(__file__).resolve().parents[1] / "data"
spec = importlib.util.spec_from_file_location("generate_chain_reference", DATA / "generate_chain_reference.py")
gen = importlib.util.module_from_spec(spec)
spec.loader.exec_module(gen)
REFERENCE = np.load(DATA / "chain_reference.npz")
CASES = list(gen.cases())


@pytest.mark.parametrize("name,net,x,x2", CASES, ids=[c[0] for c in CASES])
def test_same_numbers_as_the_old_representation(name, net, x, x2):
    got = {}
    got["kernel"] = nf.kernel(net, x)
    got["kernel_all"] = nf.kernel(net, x, readout="all")
    if x2 is not None:
        got["kernel_cross"] = nf.kernel(net, x, x2)
        got["kernel_panels"] = nf.kernel(net, x, method="panels")
    mf = nf.mean_field(net, x)
    for t in range(1, 5):
        for s in range(t, 5):
            got[f"pre_{t}_{s}"] = mf.preactivation(t, s)
    if not isinstance(x, list):
        got["preactivations"] = mf.preactivations()
    got["two_time"] = mf.two_time(1)
    ens = nf.sample(net, x, width=16, networks=3, seed=5, preactivations="all", method="weights")
    got["sample_readout"] = ens.readout
    for (t, s), v in ens.preactivations.items():
        got[f"sample_pre_{t}_{s}"] = v
    got["sample_readout_all"] = nf.sample(net, x, width=16, networks=2, seed=6, readout="all",
                                          preactivations="none", method="weights").readout
    expected = {k.split("/", 1)[1]: REFERENCE[k] for k in REFERENCE.files if k.startswith(name + "/")}
    assert set(got) == set(expected)
    numerical = "tanh" in name
    redrawn = name.startswith("dnn-") and name.endswith("-static")   # module docstring
    for key, value in got.items():
        if redrawn and key.startswith("sample_"):
            continue
        tol = 1e-10 if numerical or key == "kernel_panels" else 1e-12
        np.testing.assert_allclose(np.asarray(value), expected[key], rtol=tol, atol=tol, err_msg=key)
    program = net.program(x)
    generic = sample_program(program, 16, 3, 5, pairs=tuple(ens.preactivations))
    np.testing.assert_allclose(ens.readout, generic.readout, rtol=1e-12, atol=1e-12)
    for pair, value in ens.preactivations.items():
        np.testing.assert_allclose(value, generic.preactivations[pair], rtol=1e-12, atol=1e-12, err_msg=str(pair))
    generic_all = sample_program(program, 16, 2, 6, readout="all")
    np.testing.assert_allclose(got["sample_readout_all"], generic_all.readout, rtol=1e-12, atol=1e-12)
