"""Notebook 03's greedy elimination (Cunningham et al.'s procedure (a)), searched once and shipped, replayed live.

The search visits every active feature at every threshold, one forward pass each: about 2,900 passes, 225 s on 2 CPU
cores for the default case (16 IOI prompts, layer 26, the sparsest release R = 4 SAE), the largest single cost of the
default notebooks. ``scripts/release_greedy.py`` runs it once and writes ``dictionaries/baselines/greedy-ioi.json``:
the case's key (model, hook, a hash of the dictionary's decoder and of the prompt tokens, thresholds, seed) and, per
threshold, the features still patched with the KL and edit size measured then. ``load_greedy`` returns it only for
the same key; ``replay_greedy`` re-measures every shipped feature set on the live model (one pass per threshold), so
the default run checks the search's result instead of trusting it. ``GREEDY = "run"`` in notebook 03 searches
live instead.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import pandas as pd
import torch

from saelib.core.artifacts import atomic_write_json, read_json
from saelib.experiments.patching import FeatureDeltas, PatchCase, evaluate

GREEDY_FILE = "greedy-ioi.json"


class GreedyRecordError(ValueError):
    """The shipped greedy search is missing or was made for another case (model, layer, dictionary, prompts, grid)."""


def greedy_path() -> Path:
    from saelib.baselines.shipped import baselines_dir

    return baselines_dir() / GREEDY_FILE


def _sha256(t: torch.Tensor) -> str:
    return hashlib.sha256(t.detach().contiguous().cpu().float().numpy().tobytes()).hexdigest()


def greedy_key(case: PatchCase, deltas: FeatureDeltas, model_sha256: str, thresholds, seed: int) -> dict:
    """What the search depends on; a shipped record is used only when every field matches."""
    return {
        "model_sha256": model_sha256,
        "hook": case.hook,
        "method": deltas.name,
        "decoder_sha256": _sha256(deltas.decoder),
        "prompts": len(case.pairs),
        "prompt_tokens_sha256": _sha256(torch.cat([case.pairs.clean, case.pairs.counterfactual]).float()),
        "thresholds": [float(t) for t in sorted(thresholds)],
        "seed": int(seed),
    }


def write_greedy(path: Path, key: dict, table: pd.DataFrame, seconds: float) -> None:
    """``table``: ``patching.greedy_elimination``'s output (its ``attrs["patched"]`` are the feature sets)."""
    rows = [
        {
            "threshold": float(r.threshold),
            "n_features": int(r.n_features),
            "kl": float(r.kl),
            "edit": float(r.edit),
            "patched": list(map(int, p)),
        }
        for r, p in zip(table.itertuples(), table.attrs["patched"], strict=True)
    ]
    atomic_write_json(path, {"key": key, "search_seconds": round(seconds, 1), "rows": rows})


def load_greedy(key: dict, path: Path | None = None) -> dict:
    """The shipped record for ``key``; ``GreedyRecordError`` naming each field that differs and the two fixes."""
    path = greedy_path() if path is None else path
    fix = (
        "set GREEDY = 'run' in notebook 03 to search live, or regenerate the file with "
        "`.venv/bin/python scripts/release_greedy.py`"
    )
    if not path.exists():
        raise GreedyRecordError(f"no shipped greedy search at {path}: {fix}")
    record = read_json(path)
    diff = [f"{k}: shipped {record['key'].get(k)!r}, here {v!r}" for k, v in key.items() if record["key"].get(k) != v]
    if diff:
        raise GreedyRecordError(f"{path} was searched for another case ({'; '.join(diff)}): {fix}")
    return record


def replay_greedy(case: PatchCase, deltas: FeatureDeltas, record: dict) -> pd.DataFrame:
    """The shipped rows re-measured on ``case``: one row per threshold with the live KL and edit, and the shipped KL
    beside them (``kl_shipped``); ``attrs["mask"]`` is the last feature set, as ``greedy_elimination`` leaves it."""
    rows, mask = [], None
    for row in record["rows"]:
        mask = torch.zeros(deltas.n_features)
        mask[row["patched"]] = 1.0
        rows.append(
            {
                "method": deltas.name,
                "threshold": row["threshold"],
                **evaluate(case, deltas, mask),
                "kl_shipped": row["kl"],
            }
        )
    out = pd.DataFrame(rows)
    out.attrs["mask"] = mask
    out.attrs["patched"] = [row["patched"] for row in record["rows"]]
    return out
