"""netfield worker: one benchmark case in a fresh process of the current python.

    python benchmarks/ours.py SPEC.json RESULT.json

SPEC["kind"] selects what runs (all written by run.py):

- "dnn":       netfield.kernel of netfield.dnn(depth, activation, ...) on x (N, d); the first call
               (including compilation) and warm repeats are timed separately; SPEC["kernel"] = "ntk"
               calls netfield.kernel(net, x, kind="ntk") (default "nngp": netfield.kernel(net, x));
- "rnn":       every pre-activation block C(t, s), t >= s, of netfield.rnn(steps, "erf", ...) via
               netfield.mean_field(net, x).preactivation(t, s), assembled into a (T, T, N, N) array;
               each call builds a fresh mean_field object; SPEC["kernel"] = "ntk": instead the (N, N)
               NTK read out at the last step, netfield.kernel(net, x, kind="ntk"), timed as "dnn";
- "rnn_numpy", "rnn_sweep": the same arrays from benchmarks/gp4a_style.py (causal recursion / GP4A's
               full sweeps; "ntk": gp4a_style.ntk_kernel), numpy only, netfield not imported;
- "sample":    netfield.sample(netfield.dnn(...), x, width, networks) (SPEC["arch"] = "rnn": netfield.rnn
               with x fed at every step; SPEC["method"]: netfield.sample's method) and this machine's
               float64 matrix-multiply rate (jnp.dot of (W, W) by (W, N) in a loop);
- "floor":     cost of one closed-form 2-D Gaussian expectation (erf, relu) and of writing an
               N x N float64 array, for the floors in run.py.

Peak memory: see common.py (baseline after imports, inputs and network description exist).
"""

from __future__ import annotations

import os
import sys
import time

os.environ.setdefault("JAX_PLATFORMS", "cpu")

import numpy as np
from common import PeakMemory, machine_info, package_versions, read_json, seconds, timed, write_json

VERSIONS = ["netfield", "jax", "jaxlib", "numpy", "scipy"]


def _time_calls(call, budget: float, warm_wanted: bool = True):
    """First call, then warm repeats while first + repeats stay within ``budget`` (at most 3).

    The previous result is released before each repeat (as a user's ``k = kernel(...)`` in a loop
    would), so the peak memory is that of one call, not of two results side by side."""
    out, first = timed(call)
    warm = []
    while warm_wanted and len(warm) < 3 and first + sum(warm) < budget:
        out = None
        out, dt = timed(call)
        warm.append(dt)
    return out, first, warm


def _backend_ready():
    """Start JAX's CPU runtime before the memory baseline, as the neural-tangents worker does (its
    inputs are a JAX array made before the baseline): the runtime's ~45 MB are part of the import,
    not of the kernel."""
    import jax.numpy as jnp

    jnp.zeros(()).block_until_ready()


def _result(first, warm, memory, **extra):
    return {
        "first_call_s": first,
        "warm_runs_s": warm,
        "warm_s": min(warm) if warm else None,
        "memory": memory,
        "versions": package_versions(VERSIONS),
        "machine": machine_info(),
        **extra,
    }


def _hyper(spec):
    h = spec["hyper"]
    names = ("weight_var", "bias_var", "input_var", "readout_var", "readout_bias_var")
    return {k: h[k] for k in names}


def run_dnn(spec):
    import netfield

    return _run_kernel(netfield.dnn(spec["depth"], spec["activation"], **_hyper(spec)), spec)


def _run_kernel(net, spec):
    """netfield.kernel(net, x) (NNGP) or netfield.kernel(net, x, kind="ntk"): first call and warm repeats."""
    import inspect

    import jax

    import netfield

    x = np.load(spec["x"])
    kernel = spec.get("kernel", "nngp")
    kwargs = {} if kernel == "nngp" else {"kind": kernel}
    if kwargs and "kind" not in inspect.signature(netfield.kernel).parameters:
        raise RuntimeError(f"this netfield ({netfield.__file__}) has no netfield.kernel(..., kind={kernel!r})")
    _backend_ready()
    mem = PeakMemory().start()
    k, first, warm = _time_calls(lambda: jax.block_until_ready(netfield.kernel(net, x, **kwargs)),
                                 spec.get("budget", 30.0), spec.get("warm", True))
    memory = mem.stop()
    if spec.get("out"):
        np.save(spec["out"], np.asarray(k, dtype=np.float64))
    dtype, k = str(k.dtype), None  # released before the calls at a new size
    new_size = _new_size_calls(lambda rows: jax.block_until_ready(netfield.kernel(net, x[:rows], **kwargs)),
                               x.shape[0]) if spec.get("warm", True) else None
    return _result(first, warm, memory, dtype=dtype, kernel=kernel, new_size=new_size)


def _new_size_calls(call, n: int) -> dict:
    """A user's sequence (issue 20): after the calls above at n inputs, one call at NEW_SIZE_WARMUP
    inputs (untimed), then the first call at n - 1 inputs (a size not seen before) and a second one
    there (warm). Returns both times and their ratio."""
    call(min(NEW_SIZE_WARMUP, n - 1))
    first = seconds(lambda: call(n - 1))
    warm = seconds(lambda: call(n - 1))
    return {"rows": n - 1, "after_rows": min(NEW_SIZE_WARMUP, n - 1), "first_s": first, "warm_s": warm,
            "ratio": first / warm}


NEW_SIZE_WARMUP = 100


def run_rnn(spec):
    import netfield

    x = np.load(spec["x"])
    n, steps = x.shape[0], spec["steps"]
    net = netfield.rnn(steps, "erf", **_hyper(spec))
    if spec.get("kernel") == "ntk":
        return _run_kernel(net, spec)

    api = "preactivations" if hasattr(netfield.MeanFieldResult, "preactivations") else "preactivation"

    def call():
        mf = netfield.mean_field(net, x)
        if api == "preactivations":  # every block at once (netfield >= 2301f3b)
            return np.asarray(mf.preactivations())
        out = np.empty((steps, steps, n, n))
        for t in range(1, steps + 1):
            for s in range(1, t + 1):
                block = np.asarray(mf.preactivation(t, s))
                out[t - 1, s - 1] = block
                if s != t:
                    out[s - 1, t - 1] = block.T
        return out

    _backend_ready()
    mem = PeakMemory().start()
    c, first, warm = _time_calls(call, spec.get("budget", 30.0))
    memory = mem.stop()
    if spec.get("out"):
        np.save(spec["out"], c)
    c = None
    new_size = None
    if api == "preactivations":
        new_size = _new_size_calls(lambda rows: np.asarray(netfield.mean_field(net, x[:rows]).preactivations()), n)
    return _result(first, warm, memory, api=f"mean_field(net, x).{api}", new_size=new_size)


def run_rnn_numpy(spec, sweep: bool):
    import gp4a_style

    x = np.load(spec["x"])
    h = spec["hyper"]
    if spec.get("kernel") == "ntk":
        def call():
            return gp4a_style.ntk_kernel(x, steps=spec["steps"], **_hyper(spec))[1]
    else:
        fn = gp4a_style.two_time_kernel_sweep if sweep else gp4a_style.two_time_kernel

        def call():
            return fn(x, h["weight_var"], h["bias_var"], h["input_var"], spec["steps"])
    mem = PeakMemory().start()
    c, first, warm = _time_calls(call, spec.get("budget", 30.0))
    memory = mem.stop()
    if spec.get("out"):
        np.save(spec["out"], c)
    # numpy has nothing to compile: the first call is as warm as any
    return _result(first, warm, memory, warm_s_all=[first, *warm], best_s=min([first, *warm]))


def matmul_rate(width: int, n: int, iterations: int = 20, rounds: int = 3) -> dict:
    """float64 FLOP/s of jnp.dot((width, width), (width, n)), best of ``rounds`` loops."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    key = jax.random.PRNGKey(0)
    a = jax.random.normal(key, (width, width), jnp.float64)
    b = jax.random.normal(jax.random.fold_in(key, 1), (width, n), jnp.float64)
    dot = jax.jit(jnp.dot)
    dot(a, b).block_until_ready()
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(iterations):
            out = dot(a, b)
        out.block_until_ready()
        best = min(best, time.perf_counter() - t0)
    flops = 2.0 * width * width * n * iterations
    return {"flop_per_s": flops / best, "width": width, "n": n, "iterations": iterations, "seconds": best}


def numpy_weight_matmuls(width: int, n: int, depth: int, rounds: int = 5) -> dict:
    """Seconds numpy takes for one network's ``depth`` weight products (width, width) x (width, n) in
    float64, best of ``rounds``: issue 20's yardstick for a sampler that needs no weights."""
    rng = np.random.default_rng(0)
    w, p = rng.normal(size=(width, width)), rng.normal(size=(width, n))
    np.dot(w, p)
    best = float("inf")
    for _ in range(rounds):
        t0 = time.perf_counter()
        for _ in range(depth):
            np.dot(w, p)
        best = min(best, time.perf_counter() - t0)
    return {"seconds": best, "width": width, "n": n, "products": depth}


def random_weight_cost(net, width: int, dim: int, rounds: int = 3) -> dict:
    """Seconds to draw one network's random weights with netfield.sample's own routine
    (``finite.sampler._sample_parameters``, one jitted call), and to draw only as many raw 64-bit
    random bits (threefry): the random-number part of sampling, which no matrix-multiply rate
    covers. Best of ``rounds``."""
    import jax
    import jax.numpy as jnp

    from netfield.finite.sampler import CHAIN_HYPER, _sample_parameters
    from netfield.program.shape import chain_of

    jax.config.update("jax_enable_x64", True)
    key = jax.random.PRNGKey(0)
    chain = chain_of(net)
    hyper = tuple(float(chain.hyper(k)) for k in CHAIN_HYPER)
    normal = jax.jit(lambda key: _sample_parameters(chain.shared, chain.steps, chain.x.shape[1], key, width, dim,
                                                    jnp.float64, hyper))
    numbers = int(sum(p.size for p in jax.tree_util.tree_leaves(normal(key))))
    bits = jax.jit(lambda key: jax.random.bits(key, (numbers,), jnp.uint64))
    out = {"numbers": numbers}
    for kind, fn in (("normal", normal), ("bits", bits)):
        jax.block_until_ready(fn(key))
        out[f"{kind}_s"] = min(timed(lambda fn=fn: jax.block_until_ready(fn(key)))[1] for _ in range(rounds))
    return out


def run_sample(spec):
    from common import sample_flops

    import netfield

    x = np.load(spec["x"])
    rate = matmul_rate(spec["width"], x.shape[0])
    arch = spec.get("arch", "dnn")
    net = getattr(netfield, arch)(spec["depth"], spec["activation"], **_hyper(spec))
    weights = random_weight_cost(net, spec["width"], x.shape[1])
    if arch == "rnn":  # the same inputs fed at every step: (N, T, d)
        x = np.repeat(x[:, None, :], spec["depth"], axis=1)
    kwargs = {"width": spec["width"], "networks": spec["networks"], "seed": 0}
    if spec.get("method", "auto") != "auto":
        kwargs["method"] = spec["method"]

    def call():
        return netfield.sample(net, x, **kwargs)

    _backend_ready()
    mem = PeakMemory().start()
    ens, first, warm = _time_calls(call, spec.get("budget", 60.0))
    memory = mem.stop()
    flops = sample_flops(spec["depth"], spec["width"], x.shape[0], x.shape[1], spec["networks"],
                         preactivation_kernels=len(ens.preactivations))
    return _result(first, warm, memory, matmul=rate, flops=flops, random_weights=weights,
                   numpy_matmuls=numpy_weight_matmuls(spec["width"], x.shape[0], spec["depth"]))


def _arcsin_variants():
    """arcsin implementations for the floor: XLA's, and netfield's vectorisable polynomial if present
    (the floor takes the cheaper of the two)."""
    import jax.numpy as jnp

    variants = {"jnp.arcsin": jnp.arcsin}
    try:
        from netfield.gauss import fastmath

        variants["netfield.gauss.fastmath.arcsin"] = fastmath.arcsin
    except (ImportError, AttributeError):
        pass
    return variants


def expectation_cost(tile: int = 256, layers: int = 50, rounds: int = 5) -> dict:
    """Seconds per closed-form 2-D expectation at full speed: the map (per-row factors precomputed,
    as in a fused kernel recursion) applied ``layers`` times to a (tile, tile) block that stays in
    cache, one block per core in parallel threads (JAX releases the GIL), best of ``rounds``; for
    each arcsin implementation. Returns {"erf": s, "relu": s, "by_arcsin": {...}}."""
    import jax

    jax.config.update("jax_enable_x64", True)
    out = {"by_arcsin": {}}
    for name, arcsin in _arcsin_variants().items():
        costs = _expectation_cost(arcsin, tile, layers, rounds)
        out["by_arcsin"][name] = costs
        for act, c in costs.items():
            out[act] = min(out.get(act, float("inf")), c)
    return out


def _expectation_cost(arcsin, tile, layers, rounds):
    from concurrent.futures import ThreadPoolExecutor

    import jax
    import jax.numpy as jnp

    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    rng = np.random.default_rng(0)
    var_a, var_b = rng.uniform(0.5, 2.5, tile), rng.uniform(0.5, 2.5, tile)
    k0 = jnp.asarray(rng.uniform(-0.9, 0.9, (tile, tile)) * np.sqrt(var_a[:, None] * var_b[None, :]))

    def chain(entry):
        @jax.jit
        def run(k, fa, fb):
            return jax.lax.fori_loop(0, layers, lambda _, k: 0.01 + entry(k, fa, fb), k)
        return run

    def erf_entry(k, fa, fb):  # 2.25 (2/pi) arcsin(2 k / sqrt((1 + 2 Da)(1 + 2 Db))), fa = sqrt(2 / (1 + 2 Da))
        return 2.25 * (2.0 / np.pi) * arcsin(k * fa[0][:, None] * fb[0][None, :])

    def relu_entry(k, fa, fb):  # 2 sqrt(Da Db) / (2 pi) (sin th + (pi - th) cos th), fa = (sqrt Da, 1 / sqrt Da)
        c = jnp.clip(k * fa[1][:, None] * fb[1][None, :], -1.0, 1.0)
        s = jnp.sqrt(1.0 - c * c)
        return 2.0 * fa[0][:, None] * fb[0][None, :] * (s + c * (0.5 * np.pi + arcsin(c))) / (2.0 * np.pi)

    def erf_factors(v):  # chosen so that the argument of arcsin stays inside [-1, 1]
        return (jnp.sqrt(0.4 / (1.0 + 2.0 * v)),)

    def relu_factors(v):
        return (jnp.sqrt(v), 1.0 / jnp.sqrt(v))

    out = {}
    for name, entry, factors in (("erf", erf_entry, erf_factors), ("relu", relu_entry, relu_factors)):
        run = chain(entry)
        args = (k0, factors(var_a), factors(var_b))
        run(*args).block_until_ready()
        with ThreadPoolExecutor(cores) as pool:
            def parallel(run=run, args=args):
                list(pool.map(lambda _: run(*args).block_until_ready(), range(cores)))

            best = min(timed(parallel)[1] for _ in range(rounds))
        out[name] = best / (cores * layers * tile * tile)
    return out


def write_cost(n: int, rounds: int = 3) -> float:
    """Seconds to write a fresh N x N float64 array once (allocation and page faults included)."""
    def fill():
        a = np.empty((n, n))
        a.fill(1.0)
        return a

    return min(timed(fill)[1] for _ in range(rounds))


def gram_cost(m: int, dim: int = 64, rounds: int = 3) -> float:
    """Seconds for the Gram matrix X X^T of m tokens of dimension ``dim`` (float64 jnp.dot, output
    written once, best of ``rounds``): all token inner products x_t(a) . x_s(b) the RNN drive needs."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    x = jnp.asarray(np.random.default_rng(0).normal(size=(m, dim)))
    dot = jax.jit(lambda a: a @ a.T)
    dot(x).block_until_ready()
    best = float("inf")
    for _ in range(rounds):
        best = min(best, timed(lambda: dot(x).block_until_ready())[1])  # result freed at once
    return best


def run_floor(spec):
    costs = expectation_cost()
    return {
        "expectation_s": {k: v for k, v in costs.items() if k != "by_arcsin"},
        "expectation_s_by_arcsin": costs["by_arcsin"],
        "write_s": {str(n): write_cost(n) for n in spec["write_sizes"]},
        "gram_s": {str(m): gram_cost(m) for m in spec.get("gram_sizes", [])},
        "versions": package_versions(VERSIONS),
        "method": "closed-form map with per-row factors precomputed, applied 50 times to a 256 x 256 block "
                  "in cache (jitted fori_loop), one block per core in parallel threads, best of 5, the cheaper "
                  "of jnp.arcsin and netfield's polynomial arcsin; write: np.empty((N, N)).fill(1.0), best of 3; "
                  "gram: jnp.dot of (M, 64) by its transpose, best of 3",
    }


def main(spec_path, result_path):
    spec = read_json(spec_path)
    kind = spec["kind"]
    runners = {"dnn": run_dnn, "rnn": run_rnn, "sample": run_sample, "floor": run_floor,
               "rnn_numpy": lambda s: run_rnn_numpy(s, sweep=False),
               "rnn_sweep": lambda s: run_rnn_numpy(s, sweep=True)}
    if kind not in runners:
        raise ValueError(f"kind must be one of {sorted(runners)}, got {kind!r}")
    result = runners[kind](spec)
    result["library"] = "numpy" if kind.startswith("rnn_") else "netfield"
    write_json(result_path, result)


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit("usage: ours.py SPEC.json RESULT.json")
    main(sys.argv[1], sys.argv[2])
