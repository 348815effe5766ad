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


@pytest.mark.parametrize("kind", ["tied", "untied", "linear", "linear top-k"])
def test_selected_features_match_the_full_encoding(kind):
    """Scoring encodes only the sampled columns; every dictionary kind must give the full code's columns."""
    from saelib.baselines.directions import LinearDictionary
    from saelib.dictionaries.sae import SAEConfig, TiedSAE, UntiedSAE

    gen = torch.Generator().manual_seed(0)
    x = torch.randn(2, 37, 24, generator=gen) * 3
    if kind == "tied":
        d = TiedSAE(SAEConfig("tied", 24, 48, (1e-3,), input_scale=0.5), seed=1)
        torch.nn.init.normal_(d.encoder_bias, std=0.3, generator=gen)
    elif kind == "untied":
        d = UntiedSAE(SAEConfig("untied", 24, 48, (1.0,), input_scale=0.5), seed=1)
        with torch.no_grad():
            d.b_dec.normal_(generator=gen)
            d.b_enc.normal_(std=0.3, generator=gen)
    else:
        d = LinearDictionary(
            "lin",
            torch.randn(48, 24, generator=gen),
            torch.randn(24, generator=gen),
            k=5 if kind == "linear top-k" else None,
        )
    cols = torch.tensor([47, 0, 13, 13, 30])
    full = feature_codes(d, x)
    part = feature_codes(d, x, cols)
    assert part.shape == (2, 37, 5)
    torch.testing.assert_close(part, full[..., cols], rtol=1e-5, atol=1e-5)
    assert (full > 0).any() and (part == 0).any()  # ReLU both fires and clips on this input
