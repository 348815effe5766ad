"""Calibrating an autointerp evaluator on features of known kind, before trusting its ranking of methods.

Synthetic features on the same fragments, scored by exactly the protocol the dictionaries get
(``autointerp.score_feature``). What any sound evaluator must reproduce:

- **token detector**: fires (1.0) wherever one given token occurs; an explanation naming the token predicts it
  perfectly, so it must score near the top;
- **position**: rises linearly with the position in the fragment, whatever the token; nothing about token identity
  explains it, so an evaluator that reads only tokens must score it near 0;
- **random direction**: ReLU of the activations' projection on a random unit direction (the paper's lowest
  baseline); it should score well below the token detector;
- **noise**: independent random activations; the floor, near 0.

A token-identity evaluator should give token > random direction and token > position ≈ noise ≈ 0; an evaluator that
gives a random direction the token detector's score, or noise a clearly positive one, cannot rank methods.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from saelib.core.stats import mean_se
from saelib.interp.autointerp import ProtocolConfig, score_feature
from saelib.interp.explanations import Explainer, Simulator
from saelib.interp.features import ordinary_rows
from saelib.interp.fragments import Fragments

KINDS = ("token detector", "position", "random direction", "noise")


def _token_detectors(
    fragments: Fragments, mask: np.ndarray, n: int, rng: np.random.Generator, min_fragments: int = 20
) -> list[np.ndarray]:
    """Detectors of ``n`` tokens drawn among those occurring in at least ``min_fragments`` fragments (so that the
    protocol's 20 top and 20 random fragments exist) whose text no other token of the fragments shares (byte
    tokens all print as "�": a detector of one of them cannot be put into words). ``mask``: the ordinary rows."""
    per_fragment = [np.unique(row[m]) for row, m in zip(fragments.tokens, mask)]
    ids, counts = np.unique(np.concatenate(per_fragment), return_counts=True)
    text = [fragments.token_string(int(t)) for t in ids]
    unique_text = np.array([text.count(s) == 1 and s.strip() != "" for s in text], dtype=bool)
    common = ids[(counts >= min_fragments) & unique_text]
    if len(common) < n:
        raise ValueError(f"only {len(common)} token types occur in >= {min_fragments} fragments; use more fragments")
    return [((fragments.tokens == t) & mask).astype(np.float32) for t in rng.choice(common, size=n, replace=False)]


def known_kind_features(
    fragments: Fragments, hook: str, n_per_kind: int = 10, seed: int = 0
) -> dict[str, list[np.ndarray]]:
    """kind -> ``n_per_kind`` activation arrays [n_fragments, length] on ``fragments`` (position 0 and separators 0,
    as for every dictionary)."""
    rng = np.random.default_rng(seed)
    mask = ordinary_rows(fragments.store).reshape(fragments.tokens.shape)
    shape = fragments.tokens.shape
    position = np.broadcast_to(np.arange(shape[1], dtype=np.float32) / shape[1], shape)
    x = torch.from_numpy(np.array(fragments.store.activations(hook), np.float32))  # [n_rows, d]
    directions = torch.nn.functional.normalize(
        torch.from_numpy(rng.standard_normal((x.shape[1], n_per_kind))).float(), dim=0
    )
    projections = torch.relu(x @ directions).numpy().T.reshape(n_per_kind, *shape)
    return {
        "token detector": _token_detectors(fragments, mask, n_per_kind, rng),
        # a little jitter so top fragments are not an arbitrary tie-break among identical ramps
        "position": [(position + 0.01 * rng.random(shape, dtype=np.float32)) * mask for _ in range(n_per_kind)],
        "random direction": [p * mask for p in projections],
        "noise": [rng.random(shape, dtype=np.float32) * mask for _ in range(n_per_kind)],
    }


def calibrate(
    fragments: Fragments,
    hook: str,
    explainer: Explainer,
    simulator: Simulator,
    n_per_kind: int = 10,
    seed: int = 0,
    cfg: ProtocolConfig = ProtocolConfig(),
) -> pd.DataFrame:
    """One row per synthetic feature: kind, explanation and the protocol's three scores."""
    rows = []
    for kind, features in known_kind_features(fragments, hook, n_per_kind, seed).items():
        for i, acts in enumerate(features):
            score = score_feature(i, np.ascontiguousarray(acts), fragments, explainer, simulator, cfg)
            rows.append(
                {
                    "kind": kind,
                    "feature": i,
                    "explanation": score.explanation,
                    "top_and_random": score.top_and_random,
                    "top": score.top,
                    "random": score.random,
                }
            )
    return pd.DataFrame(rows)


def calibration_summary(scores: pd.DataFrame, column: str = "top_and_random") -> pd.DataFrame:
    """Mean and Student-t 95% interval of ``column`` per kind, in ``KINDS`` order."""
    out = []
    for kind in [k for k in KINDS if k in set(scores["kind"])]:
        est = mean_se(scores.loc[scores["kind"] == kind, column].to_numpy(dtype=float))
        out.append(
            {
                "kind": kind,
                "n": int((scores["kind"] == kind).sum()),
                "mean": est.mean,
                "ci95_low": est.ci95[0],
                "ci95_high": est.ci95[1],
            }
        )
    return pd.DataFrame(out).set_index("kind")
