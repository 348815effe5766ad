"""The evaluator's calibration on features of known kind: a token detector scores near 1, noise and a position ramp
near 0, whatever the dictionary; bad sizes are a clear error."""

import numpy as np
import pytest

from saelib.activations.harvest import harvest
from saelib.interp.calibration import KINDS, calibrate, calibration_summary, known_kind_features
from saelib.interp.explanations import TokenExplainer, TokenSimulator
from saelib.interp.fragments import Fragments
from saelib.text.corpus import PackedContexts

HOOK = "blocks.0.hook_resid_post"


@pytest.fixture()
def fragments(tiny_model, default_tokenizer):
    n, length = 48, 64  # 96 fragments of 32 tokens over a 16-token vocabulary: every token is in >= 20 fragments
    tokens = np.random.default_rng(3).integers(100, 116, size=(n, length))
    ctx = PackedContexts(tokens, np.zeros(n, int), np.arange(n) * length, ("toy",), {"toy": 1.0})
    store = harvest(tiny_model, [HOOK], ctx, corpus_name="toy", batch_size=8, dtype="float32", progress=False)
    return Fragments(store, default_tokenizer, length=32)


def test_known_kinds_have_the_fragments_shape_and_respect_the_mask(fragments):
    kinds = known_kind_features(fragments, HOOK, n_per_kind=2)
    assert tuple(kinds) == KINDS
    for arrays in kinds.values():
        assert len(arrays) == 2 and all(a.shape == fragments.tokens.shape for a in arrays)
        assert all((a[::2, 0] == 0).all() for a in arrays)  # position 0 of every context is zeroed
    token = kinds["token detector"][0]
    assert set(np.unique(token)) == {0.0, 1.0} and len(np.unique(fragments.tokens[token > 0])) == 1


def test_the_token_evaluator_ranks_known_kinds_as_it_must(fragments):
    scores = calibrate(fragments, HOOK, TokenExplainer(), TokenSimulator(), n_per_kind=4)
    summary = calibration_summary(scores)
    assert summary.loc["token detector", "mean"] > 0.9
    assert abs(summary.loc["noise", "mean"]) < 0.2 and abs(summary.loc["position", "mean"]) < 0.3
    assert summary.loc["token detector", "ci95_low"] > summary.loc["noise", "ci95_high"]
    assert np.isfinite(summary.loc["random direction", "mean"])


def test_too_few_fragments_for_a_token_detector_is_a_clear_error(tiny_model, default_tokenizer):
    tokens = np.random.default_rng(0).integers(100, 900, size=(4, 64))
    ctx = PackedContexts(tokens, np.zeros(4, int), np.arange(4) * 64, ("toy",), {"toy": 1.0})
    store = harvest(tiny_model, [HOOK], ctx, corpus_name="toy", batch_size=4, dtype="float32", progress=False)
    with pytest.raises(ValueError, match="use more fragments"):
        known_kind_features(Fragments(store, default_tokenizer, length=32), HOOK)
