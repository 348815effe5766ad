"""A ground-truth benchmark in the style of Sharkey et al. (2022, "Taking features out of superposition with sparse
autoencoders", the interim report Cunningham et al. build on): data are sparse non-negative combinations of known
unit directions, with more directions than dimensions. A working SAE recovers the directions: MMCS between its
dictionary and the truth approaches 1 at a good sparsity penalty."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class SyntheticData:
    x: torch.Tensor  # [n_samples, d]
    features: torch.Tensor  # [n_features, d], unit norm: the ground truth
    codes: torch.Tensor  # [n_samples, n_features], the true sparse coefficients


def sparse_superposition(d: int = 32, n_features: int = 64, n_samples: int = 20_000, mean_active: float = 3.0,
                         seed: int = 0) -> SyntheticData:
    """Each feature fires independently with probability mean_active / n_features, with a Uniform(0, 1) magnitude;
    features are random unit directions in R^d (n_features > d: superposition)."""
    if n_features <= 0 or d <= 0 or not (0 < mean_active <= n_features):
        raise ValueError("need d, n_features > 0 and 0 < mean_active <= n_features")
    gen = torch.Generator().manual_seed(seed)
    features = torch.randn(n_features, d, generator=gen)
    features = features / features.norm(dim=-1, keepdim=True)
    on = torch.rand(n_samples, n_features, generator=gen) < mean_active / n_features
    codes = on * torch.rand(n_samples, n_features, generator=gen)
    return SyntheticData(codes @ features, features, codes)
