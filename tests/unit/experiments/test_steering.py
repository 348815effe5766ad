"""Steering (saelib.experiments.steering): clamping sets the feature to the value asked for (exactly, for a tied SAE),
generation is reproducible from its seed and changes under a clamp, and the source classifier tells two kinds of
text apart on held-out chunks."""

import numpy as np
import pytest
import torch

from saelib.dictionaries.sae import SAEConfig, TiedSAE
from saelib.experiments import steering as S
from saelib.interp.case_studies import feature_directions
from saelib.model.loader import model_name

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture(scope="module")
def sae(tiny_model):
    d = tiny_model.cfg.d_model
    return TiedSAE(SAEConfig("tied", d, 2 * d, (1e-3,), model_name(tiny_model), HOOK, 0.8), seed=2)


def test_clamp_replaces_the_features_term_in_the_reconstruction(sae):
    x = torch.randn(6, 5, sae.cfg.d_in)
    with torch.no_grad():
        before = sae.encode(x)[..., 7]
        out = S.clamp_hook(sae, 7, 4.0)(x)
        # x' = x - c d + v d: the reconstruction now uses v for this feature, everything else is kept
        torch.testing.assert_close(out - x, (4.0 - before)[..., None] * feature_directions(sae)[7])
        active = before > 0  # where it was active, a tied SAE reads v back exactly
        assert active.any()
        torch.testing.assert_close(
            sae.encode(out)[..., 7][active], torch.full((int(active.sum()),), 4.0), atol=1e-4, rtol=1e-4
        )


def test_generation_is_seeded_and_the_clamp_acts(tiny_model, sae):
    prompt = torch.randint(5, 1000, (2, 6), generator=torch.Generator().manual_seed(0))
    a = S.generate(tiny_model, prompt, 5, seed=3)
    assert a.shape == (2, 5) and torch.equal(a, S.generate(tiny_model, prompt, 5, seed=3))
    clamped = S.generate(tiny_model, prompt, 5, fwd_hooks=[(HOOK, S.clamp_hook(sae, 7, 50.0))], seed=3)
    assert not torch.equal(a, clamped)
    with pytest.raises(ValueError, match="temperature"):
        S.generate(tiny_model, prompt, 1, temperature=0)


class _ToyCorpus:
    separator = 0

    def __init__(self, tokenizer):
        rng = np.random.default_rng(0)
        words = {
            "code": ["def", "return", "import", "self", "lambda", "None", "print", "class"],
            "verse": ["thee", "thou", "heart", "love", "night", "soul", "doth", "fair"],
        }
        self.streams = {
            s: np.array(tokenizer.encode(" ".join(rng.choice(w, 3000)), add_special_tokens=False))
            for s, w in words.items()
        }
        self.sources = list(words)

    def split_stream(self, source, split):
        s = self.streams[source]
        return s[: len(s) // 2] if split == "train" else s[len(s) // 2 :]


def test_source_classifier_separates_sources(default_tokenizer):
    clf = S.SourceClassifier.fit(_ToyCorpus(default_tokenizer), default_tokenizer, chunk_tokens=16, per_source=40)
    assert clf.heldout_accuracy > 0.95
    p = clf.probability(["def return import self", "thou doth love thee"], "code")
    assert p[0] > 0.5 > p[1]
    with pytest.raises(KeyError, match="unknown source"):
        clf.probability(["x"], "bible")


def test_source_features_ranks_by_share_of_activation_mass():
    sources = np.array(["bible"] * 6 + ["python_docs"] * 4)
    codes = np.zeros((10, 4), np.float32)
    codes[:6, 0] = 1.0  # fires only on bible rows
    codes[:, 1] = 1.0  # everywhere: share = 6/10
    codes[9, 2] = 5.0  # only on a python row
    table = S.source_features(codes, sources, "bible", min_density=0.05)
    assert table.feature.tolist()[:2] == [0, 1] and 3 not in table.feature.tolist()  # dead feature 3 left out
    row = table.set_index("feature")
    assert row.loc[0, "share"] == pytest.approx(1.0) and row.loc[1, "share"] == pytest.approx(0.6)
    assert row.loc[0, "lift"] == pytest.approx(1 / 0.6) and row.loc[2, "share"] == 0.0 and row.loc[2, "max"] == 5.0
    assert S.source_features(codes, sources, "bible", min_density=0.5).feature.tolist() == [0, 1]
    with pytest.raises(ValueError, match="no row comes from source"):
        S.source_features(codes, sources, "sotu", 0.0)
    with pytest.raises(ValueError, match="rows"):
        S.source_features(codes[:5], sources, "bible", 0.0)


def test_generate_texts_batches_prompts_by_length_and_is_seeded(tiny_model, sae):
    prompts = ["The cat", "A", "The dog"]
    a = S.generate_texts(tiny_model, prompts, 2, 4, seed=1)
    assert len(a) == 6 and a == S.generate_texts(tiny_model, prompts, 2, 4, seed=1)
    b = S.generate_texts(tiny_model, prompts, 2, 4, fwd_hooks=[(HOOK, S.clamp_hook(sae, 7, 50.0))], seed=1)
    assert a != b
    with pytest.raises(ValueError, match="at least one token"):
        S.generate_texts(tiny_model, ["The", ""], 1, 2)


def test_random_token_texts_are_seeded_gibberish_without_special_tokens(default_tokenizer):
    texts = S.random_token_texts(default_tokenizer, 5, 12, seed=4)
    assert len(texts) == 5 and texts == S.random_token_texts(default_tokenizer, 5, 12, seed=4)
    assert texts != S.random_token_texts(default_tokenizer, 5, 12, seed=5)
    specials = [t for t in default_tokenizer.all_special_tokens if t]
    assert not any(s in t for t in texts for s in specials)
    with pytest.raises(ValueError, match="n_tokens >= 1"):
        S.random_token_texts(default_tokenizer, 2, 0)


def test_continuation_nll_matches_a_direct_computation(tiny_model):
    prompts, texts = ["The cat", "A"], [" sat on", " mat.", " dog ran", " x"]
    nll = S.continuation_nll(tiny_model, prompts, texts, samples_per_prompt=2)
    tok = tiny_model.tokenizer
    ids = tok.encode("A", add_special_tokens=False) + tok.encode(" dog ran", add_special_tokens=False)
    with torch.no_grad():
        logp = tiny_model(torch.tensor([ids]))[0].float().log_softmax(-1)
    n_prompt = len(tok.encode("A", add_special_tokens=False))
    expected = -float(np.mean([logp[j - 1, ids[j]] for j in range(n_prompt, len(ids))]))
    assert nll.shape == (4,) and nll[2] == pytest.approx(expected, rel=1e-5)
    with pytest.raises(ValueError, match="4 texts for 2 prompts x 3 samples"):
        S.continuation_nll(tiny_model, prompts, texts, samples_per_prompt=3)
