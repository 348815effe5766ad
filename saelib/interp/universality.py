"""Comparing dictionaries feature by feature (Bricken et al. 2023: universality across runs, feature splitting as
the dictionary grows).

- ``match_features``: for each feature of dictionary A, the feature of B whose activations correlate most with it
  on the same tokens (Bricken et al. compared runs by activation correlation, not by decoder cosine);
- ``feature_families``: for each feature of a small dictionary, the features of a larger one that split it: decoder
  cosine above a threshold, with how often each fires when the small one does and the masked cosine similarity of
  their activations over the tokens where the small one fires.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from saelib.interp.neurons import correlation_matrix


def match_features(acts_a: np.ndarray, acts_b: np.ndarray) -> pd.DataFrame:
    """Per live column of ``acts_a`` [n, A]: the column of ``acts_b`` [n, B] with the highest Pearson correlation
    on the same rows, and that correlation (dead columns are left out)."""
    if len(acts_a) != len(acts_b):
        raise ValueError(f"{len(acts_a)} rows against {len(acts_b)}: both need activations on the same tokens")
    live_a = np.flatnonzero((acts_a != 0).any(0))
    corr = correlation_matrix(acts_a[:, live_a], acts_b)
    best = corr.max(1)
    return pd.DataFrame({"feature": live_a, "match": best.indices.numpy(), "corr": best.values.numpy()})


def feature_families(
    dec_small: torch.Tensor,
    dec_large: torch.Tensor,
    acts_small: np.ndarray,
    acts_large: np.ndarray,
    min_cosine: float = 0.5,
) -> pd.DataFrame:
    """One row per (small feature, large feature) pair with decoder cosine >= ``min_cosine``: the cosine, P(large
    fires | small fires) and the masked cosine of their activations over the rows where the small one fires."""
    if len(acts_small) != len(acts_large):
        raise ValueError("both dictionaries need activations on the same tokens")
    cos = (
        torch.nn.functional.normalize(dec_small.detach().float(), dim=-1)
        @ torch.nn.functional.normalize(dec_large.detach().float(), dim=-1).T
    )
    rows = []
    for s, t in torch.nonzero(cos >= min_cosine).tolist():
        on = acts_small[:, s] > 0
        if not on.any():
            continue
        a, b = acts_small[on, s].astype(np.float64), acts_large[on, t].astype(np.float64)
        denom = np.linalg.norm(a) * np.linalg.norm(b)
        rows.append(
            {
                "small": s,
                "large": t,
                "decoder_cosine": float(cos[s, t]),
                "p_large_given_small": float((b > 0).mean()),
                "masked_cosine": float(a @ b / denom) if denom > 0 else 0.0,
            }
        )
    return pd.DataFrame(rows, columns=["small", "large", "decoder_cosine", "p_large_given_small", "masked_cosine"])
