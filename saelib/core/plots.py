"""Figures: one style, saved as PNG (for the README and notebooks) and SVG (for papers), reproducibly."""

from __future__ import annotations

from pathlib import Path

import matplotlib as mpl
import matplotlib.pyplot as plt

from saelib.core.paths import figures_dir

# Deterministic SVGs: fixed element ids, no creation date, so regenerated figures diff cleanly.
mpl.rcParams["svg.hashsalt"] = "saelib"
mpl.rcParams["figure.dpi"] = 100
mpl.rcParams["savefig.dpi"] = 150
mpl.rcParams["axes.spines.top"] = False
mpl.rcParams["axes.spines.right"] = False


def figure_path(name: str, profile: str = "default") -> Path:
    """``figures/<name>`` for the default profile, ``figures/<profile>/<name>`` for others (never overwrites)."""
    base = figures_dir() if profile == "default" else figures_dir() / profile
    base.mkdir(parents=True, exist_ok=True)
    return base / name


def savefig(fig: plt.Figure, name: str, profile: str = "default") -> list[Path]:
    """Save ``fig`` as ``<name>.png`` and ``<name>.svg``; returns the paths written."""
    stem = figure_path(name, profile)
    paths = [stem.with_suffix(".png"), stem.with_suffix(".svg")]
    fig.savefig(paths[0], bbox_inches="tight", metadata={"Software": None})
    fig.savefig(paths[1], bbox_inches="tight", metadata={"Date": None, "Creator": None})
    return paths
