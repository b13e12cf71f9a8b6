"""Session-wide fixtures.

``netfield_demo``: the real ``netfield demo --out DIR`` command, run once per session (2-3 minutes on
2 cores). Its report folder is checked by tests/report/test_demo_report.py, and its digits section
(``netfield.gp.figures.demo_section(DIR)``, called by the demo) by tests/gp/test_gp_study.py, which
used to repeat that 30-60 s computation in-process.
"""

import json
import resource
import shutil
import subprocess
import sys

import pytest


@pytest.fixture(scope="session")
def netfield_demo(tmp_path_factory):
    """(out folder, CompletedProcess, CPU seconds of the command, summary.json as a dict)."""
    out = tmp_path_factory.mktemp("report") / "tmp"
    exe = shutil.which("netfield")
    cmd = ([exe] if exe else [sys.executable, "-m", "netfield"]) + ["demo", "--out", str(out)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=900, check=False)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
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
