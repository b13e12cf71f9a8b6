"""The demo's section runner (netfield.report.demo._section): wall time, plan and full-size command recorded,
finished sections reused by --resume, a failing section reported instead of aborting the report; the
compilation cache's folder and opt-out (netfield._runtime.jaxcache)."""

import io

import pytest

import netfield.criticality.demo as crit_demo
from netfield._runtime import jaxcache
from netfield.report.demo import _section


def test_section_records_time_plan_command_and_resumes(tmp_path, monkeypatch):
    first = _section("criticality", "criticality.demo", "6. phase diagram", tmp_path, io.StringIO(), True, False,
                     False)
    assert first["seconds"] > 0 and "71 x 31 grid" in first["plan"]
    assert first["reproduce"].startswith("netfield phase-diagram ")
    assert (tmp_path / ".checkpoints" / "section-criticality-fast.json").is_file()

    def fail(out_dir, *, full=False):
        raise RuntimeError("must not run again")

    monkeypatch.setattr(crit_demo, "demo_section", fail)
    again = _section("criticality", "criticality.demo", "6. phase diagram", tmp_path, io.StringIO(), True, False,
                     True)
    assert again == first  # resumed from the checkpoint, identical
    err = io.StringIO()
    failed = _section("criticality", "criticality.demo", "6. phase diagram", tmp_path, err, False, False, False)
    assert failed == {"error": "RuntimeError: must not run again"}
    assert "section skipped: RuntimeError" in err.getvalue()
    full = _section("criticality", "criticality.demo", "6. phase diagram", tmp_path, io.StringIO(), True, True,
                    True)
    assert "error" in full  # the full-size section has no checkpoint of its own yet: it ran (and failed)


@pytest.mark.parametrize("variable, below", [("NETFIELD_CACHE_DIR", ("jax",)), ("XDG_CACHE_HOME", ("netfield", "jax"))])
def test_cache_folder(monkeypatch, tmp_path, variable, below):
    for key in ("NETFIELD_CACHE_DIR", "XDG_CACHE_HOME"):
        monkeypatch.delenv(key, raising=False)
    monkeypatch.setenv(variable, str(tmp_path))
    assert jaxcache.cache_dir() == tmp_path.joinpath(*below)


def test_cache_opt_out(monkeypatch, tmp_path):
    monkeypatch.setenv("NETFIELD_CACHE_DIR", str(tmp_path))
    monkeypatch.setenv("NETFIELD_NO_COMPILATION_CACHE", "1")
    assert jaxcache.enable_compilation_cache() is None and not (tmp_path / "jax").exists()
    monkeypatch.setenv("NETFIELD_NO_COMPILATION_CACHE", "0")
    assert jaxcache.enable_compilation_cache(enabled=False) is None
