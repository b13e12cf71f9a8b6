"""Seeds of resumable runs: validation and reproducible per-sub-run derivation."""

from __future__ import annotations

import hashlib

import numpy as np


def check_seed(seed) -> int:
    """A seed: an integer in [0, 2**63)."""
    if isinstance(seed, bool) or not isinstance(seed, (int, np.integer)):
        raise TypeError(f"seed must be an integer in [0, 2**63), got {seed!r} of type {type(seed).__name__}")
    if not 0 <= int(seed) < 2**63:
        raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
    return int(seed)


def derive_seed(seed: int, *labels) -> int:
    """Independent, reproducible seed of one sub-run (architecture, width, ...) of a study."""
    text = "|".join([str(int(seed)), *map(str, labels)])
    return int(hashlib.sha256(text.encode()).hexdigest()[:15], 16)


__all__ = ["check_seed", "derive_seed"]
