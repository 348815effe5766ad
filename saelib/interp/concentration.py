"""An explanation-free interpretability measure: how concentrated a feature's strongest activations are on a single
token type. It needs no explainer or simulator, so a ranking of methods that it shares with the autointerp score
does not rest on one hand-built evaluator (and a ranking it contradicts says the evaluator is measuring something
narrower)."""

from __future__ import annotations

import numpy as np


def top_token_concentration(acts: np.ndarray, tokens: np.ndarray, n_top: int = 20) -> np.ndarray:
    """[F] for feature activations ``acts`` [F, n_fragments, length] on ``tokens`` [n_fragments, length]: the share
    of each feature's ``n_top`` highest positive activations that fall on its single most common token id (1 = a
    pure single-token detector, 1/n_top = no token repeats). NaN for a feature with fewer than ``n_top`` positive
    activations (too rare to say)."""
    acts = np.asarray(acts, dtype=np.float32)
    if acts.ndim != 3 or acts.shape[1:] != tokens.shape:
        raise ValueError(f"acts must be [F, n_fragments, length] matching tokens {tokens.shape}, got {acts.shape}")
    flat, toks = acts.reshape(len(acts), -1), np.asarray(tokens).reshape(-1)
    out = np.full(len(acts), np.nan)
    for f, row in enumerate(flat):
        if (row > 0).sum() < n_top:
            continue
        top = np.argpartition(-row, n_top - 1)[:n_top]
        out[f] = np.unique(toks[top], return_counts=True)[1].max() / n_top
    return out
