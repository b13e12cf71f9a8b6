"""High-precision reference for the GRU kernel with GP4A's conventions (8 sequences x 5 steps).

Independent of netfield: the state kernel E[h_t(a) h_s(b)] is summed term by term from Gaussian
orthant probabilities (tests/program/gru_gp4a_reference.py, numpy / scipy only): Sheppard's closed
forms for up to 3 gates, scipy's Genz integration (``multivariate_normal.cdf``) with an absolute
tolerance ``ABSEPS`` beyond. Run from the repository root (about an hour on one core):

    python tests/data/generate_gru_reference.py tests/data/gru_orthant_reference.npz

tests/meanfield/test_gated.py compares netfield's gated-recurrence back-end with these numbers.
"""

import importlib.util
import sys
import time
from pathlib import Path

import numpy as np

ABSEPS = 2e-8
HERE = Path(__file__).resolve().parent
_spec = importlib.util.spec_from_file_location("gru_gp4a_reference",
                                               HERE.parent / "program" / "gru_gp4a_reference.py")
ref = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(ref)

rng = np.random.default_rng(20261205)
X = rng.normal(size=(8, 5, 4))  # N = 8 sequences, T = 5 steps, d = 4
HYPER = {"weight_var": 1.0, "input_var": 1.0, "bias_var": 1.0}  # GP4A's GRU defaults

if __name__ == "__main__":
    out = sys.argv[1] if len(sys.argv) > 1 else str(HERE / "gru_orthant_reference.npz")
    start = time.time()
    state = ref.gru_state_kernel(X, **HYPER, abseps=ABSEPS, seed=0)
    np.savez(out, x=X, state=state, abseps=ABSEPS, seconds=time.time() - start,
             **{k: np.float64(v) for k, v in HYPER.items()})
    print(f"wrote {out} in {time.time() - start:.0f} s")
