"""Are dictionary features visible in the neuron basis? (Bricken et al. 2023, "features invisible to neurons").

For every feature, how well the single best neuron predicts where it fires: the ROC AUC of each neuron's activation
as a score for "the feature is active", computed for all feature x neuron pairs at once from ranks (the
Mann-Whitney form of the AUC, no loop over pairs), and the Pearson correlation of activations. A feature whose best
AUC is low is one no neuron captures on its own.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch
from scipy.stats import rankdata


def neuron_ranks(neurons: np.ndarray) -> torch.Tensor:
    """[n, N] average ranks (1..n, ties averaged) of each neuron's activations over the rows."""
    return torch.from_numpy(rankdata(neurons, axis=0).astype(np.float32))


def auc_matrix(fires: np.ndarray, ranks: torch.Tensor) -> torch.Tensor:
    """[F, N] ROC AUC of neuron j's activation for "feature i fires", from ``fires`` [n, F] (bool) and the neurons'
    ``ranks`` [n, N]: AUC = (sum of ranks of positives − n₊(n₊+1)/2) / (n₊ n₋). NaN for a feature that fires on
    every row or none."""
    pos = torch.from_numpy(fires.astype(np.float32))
    n_pos = pos.sum(0)
    n_neg = len(pos) - n_pos
    rank_sum = pos.T.double() @ ranks.double()  # [F, N]; float64: sums of ranks reach n² ~ 1e10
    auc = (rank_sum - (n_pos * (n_pos + 1) / 2)[:, None].double()) / (n_pos * n_neg)[:, None].double()
    auc[(n_pos == 0) | (n_neg == 0)] = float("nan")
    return auc.float()


def correlation_matrix(a: np.ndarray, b: np.ndarray) -> torch.Tensor:
    """[A, B] Pearson correlation between the columns of ``a`` [n, A] and ``b`` [n, B] (0 for a constant column)."""
    x = torch.from_numpy(np.asarray(a, np.float32))
    y = torch.from_numpy(np.asarray(b, np.float32))
    x = x - x.mean(0)
    y = y - y.mean(0)
    x = x / x.norm(dim=0).clamp(min=1e-12)
    y = y / y.norm(dim=0).clamp(min=1e-12)
    return x.T @ y


def best_neuron(codes: np.ndarray, neurons: np.ndarray) -> pd.DataFrame:
    """Per feature of ``codes`` [n, F] (its activations on the same rows as ``neurons`` [n, N]): its density, the
    neuron with the highest AUC (either sign: max(AUC, 1 − AUC)) and that AUC, and the highest |correlation| with any neuron. Features that never fire
    (or always do) get NaN."""
    if len(codes) != len(neurons):
        raise ValueError(f"codes have {len(codes)} rows but neurons {len(neurons)}: use the same tokens for both")
    fires = codes > 0
    auc = auc_matrix(fires, neuron_ranks(neurons))
    auc = torch.maximum(auc, 1 - auc)  # a neuron that is low where the feature fires predicts it as well
    corr = correlation_matrix(codes, neurons).abs()
    best = torch.nan_to_num(auc, nan=-1.0).argmax(1)
    best_auc = auc.gather(1, best[:, None])[:, 0]
    return pd.DataFrame(
        {
            "feature": np.arange(codes.shape[1]),
            "density": fires.mean(0),
            "best_neuron": best.numpy(),
            "best_auc": best_auc.numpy(),
            "best_abs_corr": corr.max(1).values.numpy(),
        }
    )


def invisible_fraction(table: pd.DataFrame, threshold: float) -> float:
    """Share of live features whose best single-neuron AUC is below ``threshold``."""
    live = table.dropna(subset=["best_auc"])
    if live.empty:
        raise ValueError("no live feature to measure")
    return float((live.best_auc < threshold).mean())
