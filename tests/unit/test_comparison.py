"""The Fig. 2 comparison set at one layer: every method present with the SAE's interface, top-k matched to the
SAE's L0, ICA fitted once per key and reloaded."""

import numpy as np
import pytest
import torch

import saelib.interp.comparison as comparison
from saelib.dictionaries.train import TrainConfig, train_saes
from saelib.interp.comparison import METHODS, features_to_score, layer_dictionaries
from saelib.interp.features import dictionary_size, feature_codes

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture()
def store(tiny_store):
    return tiny_store([HOOK], n=24, length=32)


def test_every_method_encodes_like_the_sae_and_ica_is_fitted_once(store, monkeypatch):
    sae = train_saes(store, TrainConfig(HOOK, ratios=(2.0,), alphas=(1e-2,), batch_size=64), progress=False)
    sae = sae.sae(2.0, 1e-2)
    fits = []
    real_fit = comparison.fit_ica_unmixing
    monkeypatch.setattr(comparison, "fit_ica_unmixing", lambda *a: fits.append(1) or real_fit(*a))
    x = torch.from_numpy(np.asarray(store.activations(HOOK)[:256], np.float32))
    dicts = layer_dictionaries(store, HOOK, sae, {"sae": "test"}, x, fit_rows=512, ica_max_iter=50)
    assert list(dicts) == list(METHODS)
    k = dicts["PCA top-k"][1]["k"]
    assert k == dicts["ICA top-k"][1]["k"] >= 1
    for name, (dictionary, _) in dicts.items():
        codes = feature_codes(dictionary, x)
        assert codes.shape == (len(x), dictionary_size(dictionary)) and (codes >= 0).all(), name
        if "top-k" in name:
            assert (codes > 0).sum(-1).max() <= k
    layer_dictionaries(store, HOOK, sae, {"sae": "test"}, x, fit_rows=512, ica_max_iter=50)
    assert len(fits) == 1  # the second call loads the saved fit


def test_features_to_score_is_a_deterministic_sample():
    a = features_to_score(1152, 150, seed=0)
    assert a == features_to_score(1152, 150, seed=0) and len(set(a)) == 150 and a == sorted(a)
    assert features_to_score(10, 150) == list(range(10))
