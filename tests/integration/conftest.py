"""Integration tests use the real corpus and model caches (built once, then shared with the notebooks) but write
everything else into a temporary artifacts folder."""

from __future__ import annotations

import pytest

from saelib.core.paths import REPO_ROOT


@pytest.fixture(autouse=True)
def isolated_artifacts(tmp_path, monkeypatch):
    real = REPO_ROOT / "artifacts"
    tmp = tmp_path / "artifacts"
    tmp.mkdir()
    for shared in ("corpus", "sources", "models"):  # built once, shared with the notebooks
        (real / shared).mkdir(parents=True, exist_ok=True)
        (tmp / shared).symlink_to(real / shared, target_is_directory=True)
    monkeypatch.setenv("SAELIB_ARTIFACTS", str(tmp))
    monkeypatch.setenv("SAELIB_FIGURES", str(tmp_path / "figures"))
    return tmp


@pytest.fixture(scope="session")
def default_model():
    from saelib.model.loader import load_model

    return load_model()
