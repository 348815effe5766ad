"""The real default model and corpus: loading, behaviour, and a harvest checked against a direct forward pass."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from saelib.activations.harvest import corpus_for_model, harvest
from saelib.activations.store import ActivationStore
from saelib.model.behaviour import last_token_logits
from saelib.model.loader import model_info, stop_layer
from saelib.text.corpus import pack_contexts

pytestmark = pytest.mark.integration


def test_default_model_is_smollm2_with_hooks(default_model):
    info = model_info(default_model)
    assert (info.n_layers, info.d_model, info.d_mlp) == (30, 576, 1536)
    assert info.architecture == "LlamaForCausalLM"
    assert "blocks.29.hook_resid_post" in default_model.hook_dict
    assert next(default_model.parameters()).dtype == torch.float32


def test_default_model_does_ioi(default_model):
    logits = last_token_logits(default_model, ["When Mary and John went to the store, John gave a drink to"])
    p_mary = logits.softmax(-1)[0, default_model.tokenizer.encode(" Mary")[0]].item()
    assert p_mary == pytest.approx(0.92, abs=0.03)


def test_real_corpus_has_ten_million_tokens(default_model):
    corpus = corpus_for_model(default_model)
    counts = corpus.token_counts()
    assert sum(c["train_tokens"] + c["heldout_tokens"] for c in counts.values()) > 10_000_000
    assert all(c["heldout_documents"] >= 1 and c["train_tokens"] > 0 for c in counts.values())


def test_harvest_of_real_text_matches_forward(default_model):
    corpus = corpus_for_model(default_model)
    ctx = pack_contexts(corpus, "train", 32, 6, seed=5)
    hooks = ["blocks.2.hook_resid_post", "blocks.2.mlp.hook_post", "blocks.5.hook_resid_post"]
    store = harvest(
        default_model, hooks, ctx, corpus_name=corpus.dir.name, batch_size=4, dtype="float32", progress=False
    )
    assert stop_layer(hooks) == 6
    assert store.width("blocks.2.mlp.hook_post") == 1536
    _, cache = default_model.run_with_cache(torch.from_numpy(ctx.tokens), names_filter=hooks)
    for h in hooks:
        np.testing.assert_allclose(
            store.activations(h), cache[h].reshape(len(ctx.tokens) * 32, -1).numpy(), rtol=1e-4, atol=1e-4
        )
    assert ActivationStore(store.dir).provenance(np.array([33])).token[0] == ctx.tokens[1, 1]
