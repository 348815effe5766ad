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


def matched_density_codes(scores: np.ndarray, densities: np.ndarray) -> np.ndarray:
    """Sparse codes [n, F] from dense ``scores`` [n, F] (one column per direction): column i keeps its excess over
    its own (1 − densities[i]) quantile, ReLU'd, so it fires on about that share of rows. Turns projections on
    random directions (or single neurons) into controls with the density of the features they stand beside."""
    scores = np.asarray(scores, dtype=np.float32)
    densities = np.asarray(densities, dtype=np.float64)
    if scores.ndim != 2 or densities.shape != (scores.shape[1],):
        raise ValueError(f"need scores [n, F] and one density per column; got {scores.shape} and {densities.shape}")
    if not ((densities > 0) & (densities < 1)).all():
        raise ValueError("every density must lie in (0, 1): a control that never or always fires has no best neuron")
    cut = np.array([np.quantile(scores[:, i], 1 - d) for i, d in enumerate(densities)], dtype=np.float32)
    return np.maximum(scores - cut, 0.0)


def direction_controls(neurons: np.ndarray, densities: np.ndarray, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Two controls for "features are invisible to neurons", one per measured feature, at its density:
    (random unit directions of neuron space, projected and thresholded; should come out invisible) and (single
    neurons drawn at random, thresholded the same way; visible by construction, so the measure can say "visible").
    Both [n, F] codes for ``best_neuron``."""
    rng = np.random.default_rng(seed)
    n_features, width = len(densities), neurons.shape[1]
    directions = rng.standard_normal((width, n_features)).astype(np.float32)
    directions /= np.linalg.norm(directions, axis=0, keepdims=True)
    centred = neurons - neurons.mean(0, keepdims=True)
    random_codes = matched_density_codes(centred @ directions, densities)
    neuron_codes = matched_density_codes(neurons[:, rng.integers(0, width, n_features)], densities)
    return random_codes, neuron_codes
