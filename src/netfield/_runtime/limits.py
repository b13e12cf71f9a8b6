"""Size guards: a computation that cannot fit is refused before it starts, with its estimate and the limit.

Two limits, each overridable by an environment variable (for the API and the CLI alike):

- memory: ``NETFIELD_MEMORY_LIMIT`` (bytes, or with a unit: ``64GB``, ``512MiB``; ``none`` turns the guard
  off), default 80 % of this machine's physical memory. Callers pass their estimate of the largest
  allocation they are about to make (e.g. one sampled network's weight matrices, a kernel's output).
- program size: ``NETFIELD_MAX_INSTRUCTIONS`` (default 100,000 instructions, e.g. a DNN of depth
  20,000), checked while a program is written, so ``netfield.dnn(10**6)`` is refused after ~10 s of
  building instead of filling memory for minutes.

The errors are :class:`SizeLimitError`, a ``ValueError`` naming the argument and its value (the CLI
prints it as one line and exits 2, with the option's name).
"""

from __future__ import annotations

import os
import re

MEMORY_ENV = "NETFIELD_MEMORY_LIMIT"
INSTRUCTIONS_ENV = "NETFIELD_MAX_INSTRUCTIONS"
DEFAULT_MAX_INSTRUCTIONS = 100_000
_UNITS = {"": 1, "b": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


class SizeLimitError(ValueError):
    """A computation refused because its estimated size exceeds a limit (module docstring)."""


def physical_memory() -> int | None:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _parse_bytes(text: str) -> int | None:
    m = re.fullmatch(r"\s*([0-9]*\.?[0-9]+(?:e[0-9]+)?)\s*([a-z]*)\s*", text.lower())
    if m is None or m.group(2) not in _UNITS:
        raise ValueError(f"{MEMORY_ENV} must be a size such as 64GB, 512MiB or 1e9 (bytes), or 'none'; "
                         f"got {text!r}")
    return int(float(m.group(1)) * _UNITS[m.group(2)])


def memory_limit() -> tuple[int | None, str]:
    """(limit in bytes or None for no limit, where it comes from)."""
    text = os.environ.get(MEMORY_ENV, "").strip()
    if text.lower() == "none":
        return None, f"{MEMORY_ENV}=none"
    if text:
        return _parse_bytes(text), f"{MEMORY_ENV}={text}"
    total = physical_memory()
    if total is None:
        return None, "unknown machine memory"
    return int(0.8 * total), "80 % of this machine's memory"


def format_bytes(n: float) -> str:
    for unit, size in (("TB", 1e12), ("GB", 1e9), ("MB", 1e6), ("kB", 1e3)):
        if n >= size:
            return f"{n / size:.3g} {unit}"
    return f"{int(n)} B"


def check_memory(argument: str, value, needed: float, what: str) -> None:
    """Raise :class:`SizeLimitError` if ``needed`` bytes (the estimate of ``what``) exceed the limit; the
    message starts with ``argument=value`` (``argument`` alone when ``value`` is None)."""
    limit, source = memory_limit()
    if limit is not None and needed > limit:
        named = argument if value is None else f"{argument}={value!r}"
        raise SizeLimitError(
            f"{named}: {what} needs an estimated {format_bytes(needed)}, above the memory limit "
            f"{format_bytes(limit)} ({source}; set {MEMORY_ENV}, e.g. {MEMORY_ENV}=500GB, to change it)")


def max_instructions() -> int:
    text = os.environ.get(INSTRUCTIONS_ENV, "").strip()
    if not text:
        return DEFAULT_MAX_INSTRUCTIONS
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ValueError(f"{INSTRUCTIONS_ENV} must be a positive integer, got {text!r}")
    return value


__all__ = ["SizeLimitError", "check_memory", "format_bytes", "max_instructions", "memory_limit"]
