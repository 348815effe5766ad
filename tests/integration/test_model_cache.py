"""The de-quantized model cache: written on the first load, read on later ones, identical to de-quantizing again."""

from __future__ import annotations

import pytest
import torch

from saelib.model import cache as model_cache
from saelib.model import loader

pytestmark = pytest.mark.integration


def test_cached_model_equals_the_dequantized_gguf(tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_ARTIFACTS", str(tmp_path))
    fresh, fresh_tok, path = loader._load_hf(loader.DEFAULT_MODEL, "cpu")  # de-quantizes, then writes the cache
    (folder,) = (tmp_path / "models").iterdir()
    assert (folder / model_cache.MARKER).is_file() and any(folder.glob("*.safetensors"))
    assert not list((tmp_path / "models").glob(".*tmp-*"))  # no temporary folder left behind

    def no_gguf():
        raise AssertionError("the GGUF file was de-quantized again although a cache exists")

    monkeypatch.setattr(loader, "_silent_gguf_bar", no_gguf)
    cached, cached_tok, cached_path = loader._load_hf(loader.DEFAULT_MODEL, "cpu")
    assert cached_path == path
    a, b = fresh.state_dict(), cached.state_dict()
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    text = "Mary gave John a book.\n  Crişana's naïve café—ok?"
    assert fresh_tok(text)["input_ids"] == cached_tok(text)["input_ids"]
    ids = torch.tensor([fresh_tok(text)["input_ids"]])
    assert torch.equal(fresh(ids).logits, cached(ids).logits)


def test_a_cache_for_another_gguf_file_is_not_used(tmp_path, monkeypatch):
    monkeypatch.setenv("SAELIB_ARTIFACTS", str(tmp_path))
    folder = model_cache.cache_dir(loader.DEFAULT_MODEL, "0" * 64)
    folder.mkdir(parents=True)
    (folder / model_cache.MARKER).write_text('{"gguf_sha256": "' + "1" * 64 + '"}')  # planted or stale
    with pytest.warns(UserWarning, match="marker for another GGUF file"):
        assert model_cache.load_cached(loader.DEFAULT_MODEL, "0" * 64, "cpu") is None
    assert not folder.exists()  # removed, so the next load writes a correct one


def test_the_bridge_tokenizes_and_predicts_the_same_from_the_cache(tmp_path, monkeypatch):
    """Through TransformerBridge, not only the HF model: the bridge re-creates tokenizers it can re-load (with a
    BOS token), so a cached tokenizer must not be re-loadable where the GGUF one is not."""
    from saelib.model.behaviour import last_token_logits

    monkeypatch.setenv("SAELIB_ARTIFACTS", str(tmp_path))
    models = {}
    for label, cache in (("gguf", "0"), ("writes the cache", "1"), ("cached", "1")):
        monkeypatch.setenv("SAELIB_MODEL_CACHE", cache)
        loader.load_model.cache_clear()
        models[label] = loader.load_model()
    loader.load_model.cache_clear()
    plain, cached = models["gguf"], models["cached"]
    prompt = "When Mary and John went to the store, John gave a drink to"
    assert plain.tokenizer(prompt)["input_ids"] == cached.tokenizer(prompt)["input_ids"]
    assert plain.tokenizer.encode(" Mary") == cached.tokenizer.encode(" Mary")
    assert torch.equal(last_token_logits(plain, [prompt]), last_token_logits(cached, [prompt]))
