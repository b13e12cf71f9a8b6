"""Reference values of the DNN / RNN paths of netfield before the program representations were merged.

Run with the netfield of commit 3d64e3b (the last commit with the old DNN/RNN IR, ``program/ir.py``
and ``CovarianceEngine``) on the path, from the repository root of that checkout:

    PYTHONPATH=<checkout of 3d64e3b>/src python tests/data/generate_chain_reference.py tests/data/chain_reference.npz

tests/program/test_chain_reference.py checks that the merged representation gives the same numbers
(1e-12) for every entry. Only the netfield API that exists on both sides is used.
"""

import sys

import numpy as np

import netfield as nf

rng = np.random.default_rng(20261204)
X = rng.normal(size=(4, 3))
X2 = rng.normal(size=(3, 3))
SEQ = rng.normal(size=(3, 3, 2))
SEQS = [rng.normal(size=(n, 2)) for n in (2, 4, 3)]


def cases():
    for act in ("erf", "relu", "tanh", "sign", "linear"):
        for kind in ("dnn", "rnn"):
            build = nf.dnn if kind == "dnn" else nf.rnn
            net = build(4, act, weight_var=1.7, bias_var=0.3, input_var=1.2, readout_var=0.8, readout_bias_var=0.1)
            yield f"{kind}-{act}-static", net, X, X2
            yield f"{kind}-{act}-sequence", net, SEQ, None
            yield f"{kind}-{act}-lists", net, SEQS, None


def main(path):
    out = {}
    for name, net, x, x2 in cases():
        out[f"{name}/kernel"] = np.asarray(nf.kernel(net, x))
        out[f"{name}/kernel_all"] = np.asarray(nf.kernel(net, x, readout="all"))
        if x2 is not None:
            out[f"{name}/kernel_cross"] = np.asarray(nf.kernel(net, x, x2))
            out[f"{name}/kernel_panels"] = np.asarray(nf.kernel(net, x, method="panels"))
        mf = nf.mean_field(net, x)
        for t in range(1, 5):
            for s in range(t, 5):
                out[f"{name}/pre_{t}_{s}"] = np.asarray(mf.preactivation(t, s))
        if not isinstance(x, list):
            out[f"{name}/preactivations"] = np.asarray(mf.preactivations())
        out[f"{name}/two_time"] = np.asarray(mf.two_time(1))
        ens = nf.sample(net, x, width=16, networks=3, seed=5, preactivations="all")
        out[f"{name}/sample_readout"] = ens.readout
        for (t, s), v in ens.preactivations.items():
            out[f"{name}/sample_pre_{t}_{s}"] = v
        ens_all = nf.sample(net, x, width=16, networks=2, seed=6, readout="all", preactivations="none")
        out[f"{name}/sample_readout_all"] = ens_all.readout
    np.savez_compressed(path, **out)
    print(f"{len(out)} arrays written to {path}")


if __name__ == "__main__":
    main(sys.argv[1])
