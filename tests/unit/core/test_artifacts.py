import json
from dataclasses import dataclass

import numpy as np
import pytest

from saelib.core.artifacts import atomic_save_npy, atomic_write_json, config_hash, keyed_dir


@dataclass(frozen=True)
class Cfg:
    a: int
    b: tuple[str, ...]


def test_config_hash_is_stable_and_sensitive():
    assert config_hash({"x": 1, "y": 2}) == config_hash({"y": 2, "x": 1})
    assert config_hash(Cfg(1, ("p",))) != config_hash(Cfg(2, ("p",)))
    assert keyed_dir("k", "n", Cfg(1, ("p",))) != keyed_dir("k", "n", Cfg(1, ("q",)))


def test_atomic_write_leaves_no_partial_file_on_failure(tmp_path):
    path = tmp_path / "out.json"
    atomic_write_json(path, {"ok": 1})
    with pytest.raises(TypeError):
        atomic_write_json(path, {"bad": object()})
    assert json.loads(path.read_text()) == {"ok": 1}  # the old content survives
    assert [p.name for p in tmp_path.iterdir()] == ["out.json"]  # no temporary left behind


def test_atomic_save_npy_roundtrip(tmp_path):
    atomic_save_npy(tmp_path / "a.npy", np.arange(5))
    assert np.load(tmp_path / "a.npy").tolist() == [0, 1, 2, 3, 4]
