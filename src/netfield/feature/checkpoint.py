"""Checkpoints of the posterior sampler: the whole sampler state in one .npz with a manifest (the run key
and configuration, and each array's shape, dtype and checksum: :func:`netfield._runtime.checkpoint.
write_manifest_file`), written atomically (temporary file + os.replace). On resume the file is verified:
one that cannot be read, has no manifest or whose arrays differ from it (lost, reshaped, changed) is
refused naming the file, as is one of another configuration (docs/feature.md)."""

from __future__ import annotations

import json
from pathlib import Path

from .._runtime.checkpoint import check_manifest_arrays, read_manifest_file, write_manifest_file


def save_state(path: Path, arrays: dict, key: str = "", description: dict | None = None):
    path.parent.mkdir(parents=True, exist_ok=True)
    write_manifest_file(path, arrays, key=str(key), params=description)


def load_state(path: Path, key: str, description: dict) -> dict:
    arrays, manifest, reason = read_manifest_file(path)
    if reason is None and str(manifest.get("key", "")) == key:
        reason = check_manifest_arrays(arrays, manifest)
    if reason is not None:
        raise ValueError(f"checkpoint {str(path)!r} {reason}; delete it to sample again from the start, or pass "
                         f"resume=False")
    if str(manifest.get("key", "")) != key:
        saved = manifest.get("params")
        if not isinstance(saved, dict):
            try:
                saved = json.loads(str(arrays["config"]))
            except (KeyError, ValueError):
                saved = {}
        differ = sorted(k for k in set(saved) | set(description) if saved.get(k) != description.get(k))
        raise ValueError(
            f"checkpoint {str(path)!r} belongs to another configuration (key "
            f"{manifest.get('key', '?')!s}, this run {key}; differing arguments: "
            f"{', '.join(differ) or 'unknown'}); use another checkpoint path, or resume=False to overwrite it"
        )
    return arrays
