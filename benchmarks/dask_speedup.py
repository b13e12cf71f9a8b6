"""The 1 -> 2 worker speed-up on this machine, and the serial fraction it implies (issue 22, part 7).

Two workloads: a compute-bound ensemble (``netfield.sample`` of a 6-step RNN, width 1024, 128 networks
drawn weight by weight in chunks of 4: small results, so little traffic) and a traffic-bound tiled kernel (N = 8192, L = 10:
64 MB of results per 1024 x 1024 tile block row gathered by the caller). Each is timed in this
process, on a ``LocalCluster`` of 1 and of 2 worker processes as netfield starts them (``workers=K``:
every worker sees all cores, so XLA runs its own threads in each), and on 1 and 2 workers pinned to
one core each (``os.sched_setaffinity`` in a worker preload, before JAX starts: what a cluster with
one core per worker gives). Compiled once on every worker before timing.

The bits: default workers give the in-process bits (the same cores); pinned workers agree with each
other, and with the in-process run only where no XLA operation splits its sums by the thread count
(these two workloads; the conditional sampler's does not: docs/distributed.md section 1). Both are
checked and printed.

Not a test: nothing is asserted. ``--out FILE.json`` keeps the numbers.

    PYTHONPATH=src python benchmarks/dask_speedup.py [--out benchmarks/results/x.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import tempfile
import time

import numpy as np

import netfield as nf

RNN = nf.rnn(6, "erf", weight_var=1.5, bias_var=0.1)
DNN = nf.dnn(10, "erf", weight_var=1.5, bias_var=0.1)
PIN = '''import os


def dask_setup(worker):
    cores = sorted(os.sched_getaffinity(0))
    os.sched_setaffinity(0, {cores[int(worker.name) % len(cores)]})
'''


def ensemble(client=None):
    x = np.random.default_rng(0).normal(size=(16, 6, 8))
    kw = {"width": 1024, "chunk_size": 4, "seed": 1, "method": "weights", "client": client}
    nf.sample(RNN, x, networks=8, **kw)  # compiled on every worker
    start = time.perf_counter()
    ens = nf.sample(RNN, x, networks=128, **kw)
    return time.perf_counter() - start, ens.readout


def tiled(client=None):
    x = np.random.default_rng(0).normal(size=(8192, 16))
    nf.kernel(DNN, x[:2048], tile=1024, client=client, progress=False)
    start = time.perf_counter()
    k = nf.kernel(DNN, x, tile=1024, client=client, progress=False)
    return time.perf_counter() - start, np.asarray(k)


def main():
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    result = {"machine": f"{platform.node()} {os.cpu_count()} cpus", "load_before": os.getloadavg()[0]}
    with tempfile.TemporaryDirectory() as folder:
        pin = os.path.join(folder, "netfield_pin_worker.py")
        with open(pin, "w") as fh:
            fh.write(PIN)
        for name, work in (("ensemble", ensemble), ("tiled_kernel", tiled)):
            here_s, here = work()
            row = {"in_process_s": here_s}
            bits = {}
            for mode, extra in (("default", {}), ("pinned", {"preload": [pin]})):
                for workers in (1, 2):
                    with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                                      silence_logs=logging.CRITICAL, **extra) as cluster, Client(cluster) as client:
                        seconds, value = work(client)
                    row[f"{mode}_{workers}_s"] = seconds
                    bits[(mode, workers)] = value
                speedup = row[f"{mode}_1_s"] / row[f"{mode}_2_s"]
                row[f"{mode}_speedup"] = speedup
                # Amdahl: S = 1 / (f + (1 - f) / 2), so f = 2 / S - 1 (undefined for S < 1)
                row[f"{mode}_serial_fraction"] = 2.0 / speedup - 1.0 if speedup >= 1.0 else None
            row["default_bits_equal_in_process"] = all(np.array_equal(bits[("default", w)], here) for w in (1, 2))
            row["pinned_bits_equal_each_other"] = bool(np.array_equal(bits[("pinned", 1)], bits[("pinned", 2)]))
            row["pinned_bits_equal_in_process"] = bool(np.array_equal(bits[("pinned", 1)], here))
            result[name] = row
    result["load_after"] = os.getloadavg()[0]
    print("| workload | in process | 1 / 2 workers (default) | speed-up | 1 / 2 workers (pinned) | speed-up "
          "(serial fraction) |\n|---|---|---|---|---|---|")
    for name in ("ensemble", "tiled_kernel"):
        r = result[name]
        serial = "n/a" if r["pinned_serial_fraction"] is None else f"{r['pinned_serial_fraction']:.2f}"
        print(f"| {name} | {r['in_process_s']:.2f} s | {r['default_1_s']:.2f} / {r['default_2_s']:.2f} s | "
              f"{r['default_speedup']:.2f}x | {r['pinned_1_s']:.2f} / {r['pinned_2_s']:.2f} s | "
              f"{r['pinned_speedup']:.2f}x ({serial}) |")
    for name in ("ensemble", "tiled_kernel"):
        r = result[name]
        print(f"{name}: default workers' bits = in-process bits: {r['default_bits_equal_in_process']}; pinned 1 = "
              f"pinned 2: {r['pinned_bits_equal_each_other']}; pinned = in-process: {r['pinned_bits_equal_in_process']}")
    print(f"\nload average before / after: {result['load_before']:.2f} / {result['load_after']:.2f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
