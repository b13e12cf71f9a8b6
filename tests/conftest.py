"""Session-wide fixtures.

``netfield_demo``: the real ``netfield demo --out DIR`` command (the fast default plans), run once per
session with its own, initially empty JAX compilation cache (``demo_cache``), and
``netfield_demo_again``: a second run with the same seed into another folder (the cache now warm).
Both run in the background, beside the other tests, from the start of the session (when a collected
test asks for them): the demo is the suite's longest single item and leaves a core idle in parts, so
overlapping it with the rest shortens the suite without changing either. Its report folder is
checked by tests/report/test_demo_report.py, and its sections by tests/gp/test_gp_study.py,
tests/experiments/test_architecture_convergence.py and tests/feature/test_feature_study.py, which
used to repeat those computations in-process.
"""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading

import pytest

DEMO_TIMEOUT = 1800  # s per run: ~5 min alone on 2 cores, longer beside the rest of the suite


class BackgroundDemo:
    """One ``netfield demo --out OUT ARGS`` process started now, in its own process group, with its output
    in files; :meth:`result` waits for it (``CompletedProcess`` and CPU seconds from ``os.wait4``)."""

    def __init__(self, out, cache, *args, after=None):
        exe = shutil.which("netfield")
        self.cmd = ([exe] if exe else [sys.executable, "-m", "netfield"]) + ["demo", "--out", str(out), *args]
        self.env = {**os.environ, "NETFIELD_CACHE_DIR": str(cache)}
        self.env.pop("NETFIELD_NO_COMPILATION_CACHE", None)
        self.logs = (out.parent / f"{out.name}.stdout", out.parent / f"{out.name}.stderr")
        self.proc = None
        self.done = threading.Event()
        self.outcome = None
        threading.Thread(target=self._run, args=(after,), daemon=True).start()

    def _run(self, after):
        try:
            if after is not None:  # start only once ``after`` has finished (it fills the cache)
                after.done.wait()
            with open(self.logs[0], "w") as out, open(self.logs[1], "w") as err:
                self.proc = subprocess.Popen(self.cmd, stdout=out, stderr=err, env=self.env, text=True,
                                             start_new_session=True)
                _, status, usage = os.wait4(self.proc.pid, 0)
                self.proc.returncode = os.waitstatus_to_exitcode(status)
            self.outcome = (subprocess.CompletedProcess(self.cmd, self.proc.returncode, self.logs[0].read_text(),
                                                        self.logs[1].read_text()), usage.ru_utime + usage.ru_stime)
        except Exception as exc:  # noqa: BLE001  (reported to the test by result())
            self.outcome = exc
        finally:
            self.done.set()

    def result(self):
        if not self.done.wait(DEMO_TIMEOUT * 2):
            self.stop()
            pytest.fail(f"netfield demo did not finish in {DEMO_TIMEOUT * 2} s: {' '.join(self.cmd)}")
        if isinstance(self.outcome, BaseException):
            raise self.outcome
        return self.outcome

    def stop(self):
        if self.proc is not None and self.proc.returncode is None:
            try:
                os.killpg(self.proc.pid, signal.SIGKILL)  # the demo and the process it starts beside it
            except ProcessLookupError:
                pass


def _wants(session, fixture):
    return any(fixture in getattr(item, "fixturenames", ()) for item in session.items)


@pytest.fixture(scope="session")
def demo_cache(tmp_path_factory):
    """The session's JAX compilation cache folder for ``netfield demo`` runs (empty before the first)."""
    return tmp_path_factory.mktemp("netfield-cache")


@pytest.fixture(scope="session", autouse=True)
def _background_demos(request, tmp_path_factory, demo_cache):
    """Start the session's demo runs now if any collected test reads them; stop them at the end."""
    runs = {}
    if _wants(request.session, "netfield_demo") or _wants(request.session, "netfield_demo_again"):
        out = tmp_path_factory.mktemp("report") / "tmp"
        runs["first"] = (out, BackgroundDemo(out, demo_cache))
        if _wants(request.session, "netfield_demo_again"):
            again = tmp_path_factory.mktemp("report-again") / "again"
            runs["again"] = (again, BackgroundDemo(again, demo_cache, "--seed", "0", "--quiet",
                                                   after=runs["first"][1]))
    yield runs
    for _, run in runs.values():
        run.stop()


def _finished(runs, key):
    out, run = runs[key]
    proc, cpu = run.result()
    assert proc.returncode == 0, proc.stderr[-3000:]
    return out, proc, cpu, json.loads((out / "summary.json").read_text())


@pytest.fixture(scope="session")
def netfield_demo(_background_demos):
    """(out folder, CompletedProcess, CPU seconds of the command, summary.json as a dict) of the first run."""
    return _finished(_background_demos, "first")


@pytest.fixture(scope="session")
def netfield_demo_again(_background_demos):
    """The same for the second run: ``--seed 0`` (the first run's default seed) into another folder, warm cache."""
    return _finished(_background_demos, "again")


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
