"""Session-wide fixtures.

``netfield_demo``: the real ``netfield demo --out DIR`` command (the fast default plans), run once per
session with its own, initially empty JAX compilation cache (``demo_cache``; a second run in the same
session finds it warm). Its report folder is checked by tests/report/test_demo_report.py, and its
sections by tests/gp/test_gp_study.py, tests/experiments/test_architecture_convergence.py and
tests/feature/test_feature_study.py, which used to repeat those computations in-process.
"""

import json
import os
import resource
import shutil
import subprocess
import sys

import pytest


def run_netfield_demo(out, cache, *args, timeout=900):
    """Run ``netfield demo --out OUT ARGS`` with JAX's compilation cache in ``cache``: (process, CPU s)."""
    exe = shutil.which("netfield")
    cmd = ([exe] if exe else [sys.executable, "-m", "netfield"]) + ["demo", "--out", str(out), *args]
    env = {**os.environ, "NETFIELD_CACHE_DIR": str(cache)}
    env.pop("NETFIELD_NO_COMPILATION_CACHE", None)
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, check=False, env=env)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    return proc, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


@pytest.fixture(scope="session")
def demo_runner():
    """:func:`run_netfield_demo`, for tests that run the command again."""
    return run_netfield_demo


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """The session's JAX compilation cache folder for ``netfield demo`` runs (empty before the first)."""
    return tmp_path_factory.mktemp("netfield-cache")


@pytest.fixture(scope="session")
def netfield_demo(tmp_path_factory, demo_cache):
    """(out folder, CompletedProcess, CPU seconds of the command, summary.json as a dict)."""
    out = tmp_path_factory.mktemp("report") / "tmp"
    proc, cpu = run_netfield_demo(out, demo_cache)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, cpu, json.loads((out / "summary.json").read_text())


@pytest.fixture(autouse=True, scope="module")
def _release_compiled_programs():
    """Drop JAX's compiled executables after each test module. One process runs the whole suite and
    compiles many thousands of small programs; their code pages would otherwise accumulate until the
    kernel's per-process memory-map limit (vm.max_map_count = 65530 here) makes XLA's compiler
    fail (observed: a segfault in backend_compile near the end of the suite). Results do not depend
    on it; later modules recompile what they use."""
    yield
    import jax

    jax.clear_caches()
