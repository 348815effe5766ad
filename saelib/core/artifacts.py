"""Artifacts keyed by their config and code revision, written atomically.

A result lives in ``artifacts/<kind>/<name>-<hash of config and code revision>/`` with ``config.json`` beside it,
so a changed parameter, a changed model file (its sha256 is part of every activation config) or a change to the
code that computes the result (``saelib.core.revision``) never silently reuses a stale result. Files are written to a
temporary name and renamed, so a crash never leaves a half-written file under the final name.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

from saelib.core.paths import artifacts_dir
from saelib.core.revision import code_revision


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


def update_with_file(h, path: Path) -> None:
    """Feed the bytes of the file at ``path`` to the hashlib object ``h``, 4 MiB at a time."""
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 22), b""):
            h.update(chunk)


def file_sha256(path: Path) -> str:
    """Hex sha256 of the bytes of the file at ``path``."""
    h = hashlib.sha256()
    update_with_file(h, path)
    return h.hexdigest()


def keyed_dir(kind: str, name: str, config: Any) -> Path:
    """``artifacts/<kind>/<name>-<hash>``: the folder that belongs to exactly this config and code revision."""
    return artifacts_dir() / kind / f"{name}-{config_hash({'code_revision': code_revision(kind), 'config': config})}"


def atomic_write(path: Path, write: Callable[[BinaryIO], object]) -> None:
    """Call ``write(file)`` on a unique temporary file in ``path``'s folder, fsync, then rename it to ``path``:
    a crash never leaves a half-written file under the final name, and two processes writing the same path never
    share a temporary file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_bytes(path: Path, data: bytes) -> None:
    atomic_write(path, lambda f: f.write(data))


def atomic_write_json(path: Path, obj: Any) -> None:
    atomic_write_bytes(path, json.dumps(to_jsonable(obj), indent=2, sort_keys=True).encode() + b"\n")


def atomic_save_npy(path: Path, array: np.ndarray) -> None:
    atomic_write(path, lambda f: np.save(f, array))


def atomic_torch_save(obj: Any, path: Path) -> None:
    import torch

    atomic_write(path, lambda f: torch.save(obj, f))


@contextlib.contextmanager
def folder_lock(directory: Path) -> Iterator[None]:
    """Hold an exclusive lock on ``directory`` (``.lock`` inside it) while computing its artifact: a second process
    with the same config blocks until the first is done, then finds the finished result. The OS drops the lock
    when a process dies, so a killed run never leaves the folder locked."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def read_json(path: Path) -> Any:
    return json.loads(Path(path).read_text())
