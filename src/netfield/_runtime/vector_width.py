"""XLA compiler options for the element-wise hot loops on CPUs with 512-bit vector units.

XLA's CPU back end vectorises with 256-bit registers by default, also on processors with AVX-512.
The fused kernel tiles (meanfield/fused.py) are bound by per-entry arithmetic (arcsin polynomial,
sqrt, divide); compiled for 512-bit vectors they run ~20 % faster (erf NTK, L = 10, N = 5000 on the
2-core Xeon of benchmarks/results: 399 ms -> 316 ms; the NNGP is unchanged). The per-entry arithmetic
is the same (each element goes through the same operations), only more elements per instruction.

Only CPU programs on a processor that reports ``avx512f`` get the option; every other back end and
processor compiles as before. ``NETFIELD_VECTOR_WIDTH=256`` turns it off.
"""

from __future__ import annotations

import os
from functools import lru_cache

ENV = "NETFIELD_VECTOR_WIDTH"


def _cpu_flags() -> set[str]:
    try:
        with open("/proc/cpuinfo", encoding="ascii", errors="replace") as f:
            for line in f:
                if line.startswith("flags"):
                    return set(line.split(":", 1)[1].split())
    except OSError:
        pass
    return set()


@lru_cache(maxsize=1)
def wide_vector_options() -> dict:
    """``compiler_options`` for :func:`jax.jit` of an element-wise hot loop: 512-bit vectors where the
    back end is the CPU and the processor has AVX-512, else {} (XLA's defaults)."""
    if os.environ.get(ENV, "").strip() == "256":
        return {}
    import jax

    if jax.default_backend() != "cpu" or "avx512f" not in _cpu_flags():
        return {}
    return {"xla_cpu_prefer_vector_width": 512}


__all__ = ["wide_vector_options"]
