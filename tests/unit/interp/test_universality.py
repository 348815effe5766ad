"""Dictionary comparison (saelib.interp.universality): a permuted, rescaled copy of a dictionary matches itself
feature for feature, and a feature split into two halves of its support is found as a family of two."""

import numpy as np
import pytest
import torch

from saelib.interp import universality as U


def test_match_features_recovers_a_permutation():
    rng = np.random.default_rng(0)
    a = np.maximum(rng.normal(size=(500, 6)) - 1, 0).astype(np.float32)
    a[:, 5] = 0  # dead: left out
    perm = rng.permutation(6)
    b = a[:, perm] * 3.0
    m = U.match_features(a, b)
    assert m.feature.tolist() == [0, 1, 2, 3, 4]
    assert [perm[j] for j in m.match] == [0, 1, 2, 3, 4] and np.allclose(m["corr"], 1.0, atol=1e-5)
    with pytest.raises(ValueError, match="same tokens"):
        U.match_features(a[:10], b)


def test_feature_families_find_a_split_feature():
    rng = np.random.default_rng(1)
    d = torch.nn.functional.normalize(torch.randn(3, 16), dim=-1)
    parent = np.maximum(rng.normal(size=400), 0).astype(np.float32)
    half = rng.random(400) < 0.5
    small = np.stack([parent, np.zeros(400, np.float32)], 1)
    large = np.stack([parent * half, parent * ~half, np.maximum(rng.normal(size=400), 0)], 1).astype(np.float32)
    dec_small = torch.stack([d[0], d[2]])
    dec_large = torch.stack([d[0] + 0.3 * d[1], d[0] - 0.3 * d[1], d[2]])
    fam = U.feature_families(dec_small, dec_large, small, large, min_cosine=0.8)
    assert fam[fam.small == 0].large.tolist() == [0, 1]
    p = fam[fam.small == 0].p_large_given_small.to_numpy()
    assert p.sum() == pytest.approx(1.0, abs=1e-6)  # the two halves partition the parent's support
    assert (fam[fam.small == 0].masked_cosine < 1).all()
    assert 1 not in set(fam.small)  # a small feature that never fires has no family
