"""neural-tangents worker: one benchmark case in a fresh process of the neural-tangents virtual environment.

    benchmarks/.venv-nt/bin/python benchmarks/peer_nt.py SPEC.json RESULT.json

SPEC (written by run.py): {"activation": "erf" | "relu" | "tanh", "depth": L, "x": "inputs.npy",
"out": "kernel.npy" or null, "hyper": {"weight_var", "bias_var"}, "deg": 25 (tanh only),
"budget": seconds for warm repeats, "kernel": "nngp" (default) or "ntk"}.

The network is ``stax.serial(*[Dense(512, W_std, b_std), Act()] * L, Dense(1, W_std, b_std))`` with
W_std = sqrt(weight_var), b_std = sqrt(bias_var) in every Dense (so netfield's input_var and
readout_var equal weight_var and readout_bias_var equals bias_var); Act is Erf(), Relu() or
ElementwiseNumerical(jnp.tanh, deg) for tanh. Its kernel_fn(x, None, kernel) (NNGP, or the NTK in NT's
default NTK parameterization, which computes the NNGP alongside) is jit-compiled ahead of time
(``lower(...).compile()``: compile_s), then executed (first run, then warm repeats). Peak memory is
measured as described in common.py, from just before compilation to the end.

Imports only the standard library, numpy, JAX and neural-tangents: never netfield.
"""

from __future__ import annotations

import math
import os
import sys
import time

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp
import numpy as np
from common import PeakMemory, machine_info, package_versions, read_json, seconds, timed, write_json
from neural_tangents import stax


def activation(name: str, deg: int):
    if name == "erf":
        return stax.Erf()
    if name == "relu":
        return stax.Relu()
    if name == "tanh":
        return stax.ElementwiseNumerical(fn=jnp.tanh, deg=deg)
    raise ValueError(f"activation must be erf, relu or tanh, got {name!r}")


def main(spec_path: str, result_path: str):
    spec = read_json(spec_path)
    w_std = math.sqrt(spec["hyper"]["weight_var"])
    b_std = math.sqrt(spec["hyper"]["bias_var"])
    layers = [stax.Dense(512, W_std=w_std, b_std=b_std), activation(spec["activation"], spec.get("deg", 25))]
    _, _, kernel_fn = stax.serial(*(layers * spec["depth"]), stax.Dense(1, W_std=w_std, b_std=b_std))
    x = jnp.asarray(np.load(spec["x"]), dtype=jnp.float64)
    kernel = spec.get("kernel", "nngp")
    if kernel not in ("nngp", "ntk"):
        raise ValueError(f"kernel must be 'nngp' or 'ntk', got {kernel!r}")
    fn = jax.jit(lambda inputs: kernel_fn(inputs, None, kernel))

    mem = PeakMemory().start()
    t0 = time.perf_counter()
    compiled = fn.lower(x).compile()
    compile_s = time.perf_counter() - t0

    def call():
        return compiled(x).block_until_ready()

    k, first_run_s = timed(call)
    warm = []
    budget = spec.get("budget", 30.0)
    while spec.get("warm", True) and len(warm) < 3 and first_run_s + sum(warm) < budget:
        k = None  # release the previous result first (same as ours.py)
        k, dt = timed(call)
        warm.append(dt)
    memory = mem.stop()

    if spec.get("out"):
        np.save(spec["out"], np.asarray(k, dtype=np.float64))
    dtype, k = str(k.dtype), None
    new_size = None
    if spec.get("warm", True):  # the user's sequence of ours.py's _new_size_calls: a call at 100 inputs, then
        # the first call at N - 1 (jax.jit compiles per shape) and a second one there
        n = x.shape[0]
        fn(x[:min(100, n - 1)]).block_until_ready()
        # each result dropped before the next call (common.seconds)
        first_new = seconds(lambda: fn(x[:n - 1]).block_until_ready())
        warm_new = seconds(lambda: fn(x[:n - 1]).block_until_ready())
        new_size = {"rows": n - 1, "after_rows": min(100, n - 1), "first_s": first_new, "warm_s": warm_new,
                    "ratio": first_new / warm_new}
    write_json(result_path, {
        "library": "neural-tangents",
        "kernel": kernel,
        "compile_s": compile_s,
        "first_run_s": first_run_s,
        "first_call_s": compile_s + first_run_s,
        "warm_runs_s": warm,
        # the first execution after compilation counts as warm when no repeat fit in the budget
        "warm_s": min(warm) if warm else first_run_s,
        "memory": memory,
        "versions": package_versions(["neural-tangents", "jax", "jaxlib", "numpy", "scipy", "tensorflow"]),
        "machine": machine_info(),
        "dtype": dtype,
        "new_size": new_size,
    })


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: peer_nt.py SPEC.json RESULT.json")
    main(sys.argv[1], sys.argv[2])
