"""Baselines on data whose right answer is known."""

import numpy as np
import pytest
import torch

from saelib.baselines.directions import LinearDictionary, fit_ica, fit_pca, mean_l0, neuron_basis, random_directions
from saelib.dictionaries.metrics import mmcs


def test_pca_finds_the_dominant_direction_with_both_signs():
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(4000, 6, generator=gen) * torch.tensor([5.0, 1, 1, 1, 1, 1]) + 3.0
    pca = fit_pca(x)
    assert pca.n_features == 12
    assert abs(pca.directions[0, 0]) > 0.99 and torch.allclose(pca.directions[6], -pca.directions[0])
    acts = pca.encode(x)
    assert (acts >= 0).all() and ((acts[:, 0] > 0) ^ (acts[:, 6] > 0)).float().mean() > 0.99


def test_ica_unmixes_independent_heavy_tailed_sources():
    rng = np.random.default_rng(0)
    sources = rng.laplace(size=(8000, 4)) ** 3  # heavy-tailed, independent
    mixing = rng.normal(size=(4, 4))
    x = torch.from_numpy(sources @ mixing.T).float()
    for orient in ("paper", "heavy_tail"):
        ica = fit_ica(x, orient=orient)
        recovered = (x - ica.center) @ ica.directions.T
        corr = np.corrcoef(recovered.T.numpy(), sources.T)[:4, 4:]
        assert np.abs(corr).max(axis=1).min() > 0.95
    oriented = fit_ica(x, orient="heavy_tail")
    s = (x - oriented.center) @ oriented.directions.T
    assert (s.quantile(0.999, dim=0) >= -s.quantile(0.001, dim=0)).all()  # heavier tail is the positive one
    assert fit_ica(x, orient="both").n_features == 8
    with pytest.raises(ValueError):
        fit_ica(x, orient="sideways")


def test_neuron_basis_random_and_top_k():
    x = torch.tensor([[1.0, -2.0, 0.5]])
    acts = neuron_basis(3).encode(x)
    assert acts.tolist() == [[1.0, 0.0, 0.5, 0.0, 2.0, 0.0]]
    assert neuron_basis(3).top_k(1).encode(x).tolist() == [[0.0, 0.0, 0.0, 0.0, 2.0, 0.0]]
    assert mean_l0(neuron_basis(3).top_k(2), x) == 2
    rand = random_directions(16, 32, seed=1)
    assert torch.allclose(rand.directions.norm(dim=-1), torch.ones(32))
    assert mmcs(rand.directions, random_directions(16, 32, seed=1).directions) == pytest.approx(1.0)
    with pytest.raises(ValueError, match="width 4"):
        neuron_basis(3).encode(torch.zeros(1, 4))
    with pytest.raises(ValueError):
        LinearDictionary("x", torch.eye(2), torch.zeros(2)).top_k(0)
