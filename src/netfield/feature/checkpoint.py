"""Checkpoints of the posterior sampler: the whole sampler state in one .npz, written atomically
(temporary file + os.replace), refused for another configuration (docs/feature.md)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .._runtime.checkpoint import atomic_write


def save_state(path: Path, arrays: dict):
    path.parent.mkdir(parents=True, exist_ok=True)
    atomic_write(path, lambda fh: np.savez(fh, **{k: np.asarray(v) for k, v in arrays.items()}))


def load_state(path: Path, key: str, description: dict) -> dict:
    try:
        with np.load(path, allow_pickle=False) as data:
            arrays = {name: data[name] for name in data.files}
    except Exception as err:  # noqa: BLE001 - any unreadable file gets the same message
        raise ValueError(
            f"checkpoint {str(path)!r} could not be read ({err}); delete it or pass resume=False"
        ) from None
    if str(arrays.get("config_key", "")) != key:
        try:
            saved = json.loads(str(arrays["config"]))
        except (KeyError, ValueError):
            saved = {}
        differ = sorted(k for k in set(saved) | set(description) if saved.get(k) != description.get(k))
        raise ValueError(
            f"checkpoint {str(path)!r} belongs to another configuration (key "
            f"{arrays.get('config_key', '?')!s}, this run {key}; differing arguments: "
            f"{', '.join(differ) or 'unknown'}); use another checkpoint path, or resume=False to overwrite it"
        )
    return arrays
