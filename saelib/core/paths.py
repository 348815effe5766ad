"""Where the project keeps things. Every path is derived from the package location or an env var,
so notebooks, papermill, nbval and the tests agree whatever their working directory."""

from __future__ import annotations

import os
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]


def artifacts_dir() -> Path:
    """Git-ignored folder for corpus shards, activation stores, SAEs and results.

    Override with ``SAELIB_ARTIFACTS`` (e.g. a larger disk)."""
    return Path(os.environ.get("SAELIB_ARTIFACTS", REPO_ROOT / "artifacts"))


def sources_dir() -> Path:
    """Downloaded registry archives (Debian .deb, npm .tgz) that corpus readers open in place."""
    return artifacts_dir() / "sources"


def figures_dir() -> Path:
    """Committed figures of the default profile (other profiles write into a sub-folder)."""
    return Path(os.environ.get("SAELIB_FIGURES", REPO_ROOT / "figures"))
