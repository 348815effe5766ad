"""Artifacts keyed by their config, written atomically.

A result lives in ``artifacts/<kind>/<name>-<hash of config>/`` with ``config.json`` beside it, so a changed
parameter never silently reuses a stale result. Files are written to a temporary name and renamed, so a crash
never leaves a half-written file under the final name.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from saelib.paths import artifacts_dir


def to_jsonable(obj: Any) -> Any:
    """Dataclasses, paths, numpy scalars and tuples -> plain JSON types."""
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return {k: to_jsonable(v) for k, v in dataclasses.asdict(obj).items()}
    if isinstance(obj, dict):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [to_jsonable(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if isinstance(obj, np.generic):
        return obj.item()
    return obj


def as_json(obj: Any) -> Any:
    """``obj`` as it reads back from JSON (tuples become lists), for comparing with a saved config."""
    return json.loads(json.dumps(to_jsonable(obj)))


def config_hash(config: Any, length: int = 12) -> str:
    """Stable short hash of a config (key order does not matter)."""
    blob = json.dumps(to_jsonable(config), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:length]


def keyed_dir(kind: str, name: str, config: Any) -> Path:
    """``artifacts/<kind>/<name>-<hash>``: the folder that belongs to exactly this config."""
    return artifacts_dir() / kind / f"{name}-{config_hash(config)}"


def atomic_write_bytes(path: Path, data: bytes) -> None:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True).encode() + b"\n")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    """np.save to a temporary file in the same folder, then rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            np.save(f, array)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
