"""JAX's persistent compilation cache for long commands (``netfield demo``): compiled programs are kept in
a user cache folder, so that a second run skips most of XLA's compilation (docs/design.md, "Run time").

Folder: ``$NETFIELD_CACHE_DIR/jax`` if set, else ``$XDG_CACHE_HOME/netfield/jax``, else
``~/.cache/netfield/jax``. Opt out with ``NETFIELD_NO_COMPILATION_CACHE=1`` (or ``netfield demo
--no-cache``). The cache holds compiled executables only: a program loaded from it is the one XLA
would compile again, so results do not change (checked by tests/report/test_demo_report.py: two runs
with the same seed, cold and warm cache, give identical numbers).
"""

from __future__ import annotations

import os
from pathlib import Path

ENV_DIR = "NETFIELD_CACHE_DIR"
ENV_OFF = "NETFIELD_NO_COMPILATION_CACHE"


def cache_dir() -> Path:
    """The folder of JAX's compilation cache (module docstring); not created here."""
    root = os.environ.get(ENV_DIR)
    if root:
        return Path(root).expanduser() / "jax"
    xdg = os.environ.get("XDG_CACHE_HOME")
    base = Path(xdg).expanduser() if xdg else Path.home() / ".cache"
    return base / "netfield" / "jax"


def disabled_by_env() -> bool:
    return os.environ.get(ENV_OFF, "").strip().lower() not in ("", "0", "false", "no")


def enable_compilation_cache(enabled: bool = True) -> str | None:
    """Turn on JAX's persistent compilation cache in :func:`cache_dir`; returns the folder used, or None
    (``enabled`` False, ``NETFIELD_NO_COMPILATION_CACHE`` set, or the folder cannot be created: the run
    then compiles as usual). Every compiled program is cached, however short its compilation (the demo
    compiles hundreds of small programs of 0.1-1 s each)."""
    if not enabled or disabled_by_env():
        return None
    path = cache_dir()
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError:
        return None
    import jax

    jax.config.update("jax_compilation_cache_dir", str(path))
    jax.config.update("jax_persistent_cache_min_compile_time_secs", 0.0)
    jax.config.update("jax_persistent_cache_min_entry_size_bytes", 0)
    return str(path)


__all__ = ["cache_dir", "disabled_by_env", "enable_compilation_cache"]
