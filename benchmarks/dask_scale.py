"""Distributed paths on this machine (issue 22, part 7): Dask overhead per task, the 1 -> 2 worker
speed-up of a tiled kernel (and the serial fraction it implies), an N = 60,000 float64 kernel (28.8 GB,
above this machine's 24 GB of memory) written to Zarr with each worker's peak memory, and the time per
conjugate-gradient iteration of GP regression at N = 20,000 over row blocks held on the workers.

Not a test: nothing is asserted. Prints a markdown table; ``--out FILE.json`` keeps the numbers. The
Zarr store needs ~29 GB of free disk at ``--zarr-dir`` (deleted afterwards unless ``--keep``).

    PYTHONPATH=src python benchmarks/dask_scale.py [--big 60000] [--cg 20000] [--out results/x.json]
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import platform
import shutil
import tempfile
import time

import numpy as np

import netfield as nf

NET = nf.dnn(10, "erf", weight_var=1.5, bias_var=0.1)


def _noop(i):
    return i


def _peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def overhead_per_task(client, tasks: int = 400) -> float:
    from netfield.distributed import DaskExecutor

    ex = DaskExecutor(client)
    ex.run(_noop, [(i,) for i in range(20)])  # warm-up
    start = time.perf_counter()
    ex.run(_noop, [(i,) for i in range(tasks)])
    return (time.perf_counter() - start) / tasks


def tiled_seconds(x, tile, client=None) -> float:
    nf.kernel(NET, x[: 2 * tile], tile=tile, client=client, progress=False)  # compile on every worker
    start = time.perf_counter()
    nf.kernel(NET, x, tile=tile, client=client, progress=False)
    return time.perf_counter() - start


def main():
    from distributed import Client, LocalCluster

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--speedup-n", type=int, default=8192)
    parser.add_argument("--big", type=int, default=60_000)
    parser.add_argument("--tile", type=int, default=4096)
    parser.add_argument("--cg", type=int, default=20_000)
    parser.add_argument("--zarr-dir", default=None)
    parser.add_argument("--keep", action="store_true")
    parser.add_argument("--out", default=None)
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    result = {"machine": f"{platform.node()} {os.cpu_count()} cpus", "load_before": os.getloadavg()[0],
              "network": repr(NET)}
    x = rng.normal(size=(args.speedup_n, 16))
    result["in_process_s"] = tiled_seconds(x, 1024)
    for workers in (1, 2):
        with LocalCluster(n_workers=workers, threads_per_worker=1, dashboard_address=None,
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            if workers == 2:
                result["overhead_per_task_ms"] = 1e3 * overhead_per_task(client)
            result[f"workers_{workers}_s"] = tiled_seconds(x, 1024, client)
    speedup = result["workers_1_s"] / result["workers_2_s"]
    result["speedup_1_to_2"] = speedup
    result["serial_fraction"] = 2.0 / speedup - 1.0  # Amdahl: S = 1 / (f + (1 - f) / 2)

    if args.big <= 0:  # the speed-up part only
        print(json.dumps(result, indent=1))
        return
    folder = tempfile.mkdtemp(dir=args.zarr_dir)
    path = os.path.join(folder, "K.zarr")
    try:
        with LocalCluster(n_workers=2, threads_per_worker=1, dashboard_address=None, memory_limit="10GiB",
                          silence_logs=logging.CRITICAL) as cluster, Client(cluster) as client:
            big = rng.normal(size=(args.big, 16))
            nf.kernel(NET, big[: 2 * args.tile], tile=args.tile, client=client, progress=False)  # compile
            before = client.run(_peak_rss_mb)
            start = time.perf_counter()
            nf.kernel(NET, big, tile=args.tile, out=path, client=client, progress=True)
            result["big_n"] = args.big
            result["big_gb"] = args.big ** 2 * 8 / 1e9
            result["big_s"] = time.perf_counter() - start
            result["big_worker_peak_mb"] = sorted(client.run(_peak_rss_mb).values())
            result["big_worker_rss_before_mb"] = sorted(before.values())
            result["big_disk_gb"] = sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path)
                                        for f in fs) / 1e9
            result["caller_peak_mb"] = _peak_rss_mb()

            from netfield.gp import WorkerRowBlocks, fit_iterative

            xc = rng.normal(size=(args.cg, 16))
            y = np.sin(xc[:, 0]) + 0.1 * rng.normal(size=args.cg)
            start = time.perf_counter()
            with WorkerRowBlocks.from_network(NET, xc, client=client, block_rows=2500) as op:
                op.diagonal()
                result["cg_blocks_s"] = time.perf_counter() - start
                v = rng.normal(size=args.cg)
                start = time.perf_counter()
                for _ in range(5):
                    op.matvec(v)
                result["cg_matvec_s"] = (time.perf_counter() - start) / 5
                start = time.perf_counter()
                fit = fit_iterative(op, y, noise=1e-2, rank=200, evidence=False)
                result["cg_n"] = args.cg
                result["cg_iterations"] = fit.iterations
                result["cg_fit_s"] = time.perf_counter() - start
                result["cg_s_per_iteration"] = result["cg_fit_s"] / max(fit.iterations, 1)
    finally:
        if not args.keep:
            shutil.rmtree(folder, ignore_errors=True)
    result["load_after"] = os.getloadavg()[0]
    rows = [("Dask overhead per task (2 workers, no-op tasks)", f"{result['overhead_per_task_ms']:.2f} ms"),
            (f"tiled kernel N = {args.speedup_n}, L = 10, tile 1024: in process", f"{result['in_process_s']:.2f} s"),
            ("  on 1 worker / 2 workers", f"{result['workers_1_s']:.2f} s / {result['workers_2_s']:.2f} s"),
            ("  speed-up 1 -> 2 workers (serial fraction)", f"{speedup:.2f}x ({result['serial_fraction']:.2f})"),
            (f"N = {args.big} kernel ({result['big_gb']:.1f} GB) to Zarr, 2 workers, tile {args.tile}",
             f"{result['big_s']:.0f} s, {result['big_disk_gb']:.1f} GB on disk"),
            ("  peak memory per worker / caller", f"{result['big_worker_peak_mb']} MB / {result['caller_peak_mb']:.0f} MB"),
            (f"CG at N = {args.cg} (rank 200 preconditioner): iterations, s per iteration",
             f"{result['cg_iterations']}, {result['cg_s_per_iteration']:.2f} s (matvec {result['cg_matvec_s']:.2f} s)")]
    print("| measurement | value |\n|---|---|")
    for name, value in rows:
        print(f"| {name} | {value} |")
    print(f"\nload average before / after: {result['load_before']:.2f} / {result['load_after']:.2f}")
    if args.out:
        with open(args.out, "w") as fh:
            json.dump(result, fh, indent=2)


if __name__ == "__main__":
    main()
