"""Corpus building, splitting and packing on two small fake sources (the real ones are integration-tested)."""

import numpy as np
import pytest

import saelib.text.corpus as corpus_mod
from saelib.text.corpus import allocate, build_corpus, is_heldout, pack_contexts, separator_id


class FakeSource:
    def __init__(self, name, n_docs, words):
        self.name, self.package, self.n_docs, self.words = name, f"{name}==1", n_docs, words

    def documents(self):
        from types import SimpleNamespace

        for i in range(self.n_docs):
            yield SimpleNamespace(doc_id=f"d{i}", text=" ".join(f"{self.words}{i} word{j}" for j in range(40)))


@pytest.fixture
def fake_corpus(monkeypatch, default_tokenizer):
    monkeypatch.setattr(
        corpus_mod, "SOURCES", {"alpha": FakeSource("alpha", 60, "apple"), "beta": FakeSource("beta", 30, "banana")}
    )
    monkeypatch.setattr(corpus_mod, "MIXTURE", {"alpha": 0.75, "beta": 0.25})
    return build_corpus(default_tokenizer, "test-model", heldout_fraction=0.2, progress=False)


def test_split_is_by_document_and_deterministic():
    flags = [is_heldout("s", f"d{i}", 0.2) for i in range(1000)]
    assert 0.15 < np.mean(flags) < 0.25
    assert flags == [is_heldout("s", f"d{i}", 0.2) for i in range(1000)]


def test_build_counts_and_separators(fake_corpus, default_tokenizer):
    counts = fake_corpus.token_counts()
    assert counts["alpha"]["documents"] == 60 and counts["beta"]["documents"] == 30
    assert counts["alpha"]["heldout_documents"] >= 1 and counts["beta"]["heldout_documents"] >= 1
    sep = separator_id(default_tokenizer)
    assert default_tokenizer.convert_ids_to_tokens(sep) == "<|endoftext|>"
    docs = fake_corpus.docs("alpha")
    toks = fake_corpus.tokens("alpha")
    assert all(toks[s + n - 1] == sep for s, n, _ in docs)  # every document ends with the separator
    train, held = fake_corpus.split_stream("alpha", "train"), fake_corpus.split_stream("alpha", "heldout")
    assert len(train) + len(held) == len(toks)


def test_rebuild_is_cached(fake_corpus, default_tokenizer):
    assert build_corpus(default_tokenizer, "test-model", heldout_fraction=0.2, progress=False).dir == fake_corpus.dir
    assert build_corpus(default_tokenizer, "test-model", heldout_fraction=0.3, progress=False).dir != fake_corpus.dir


def test_pack_follows_mixture_and_split(fake_corpus, default_tokenizer):
    ctx = pack_contexts(fake_corpus, "train", 32, 40, seed=0)
    assert ctx.tokens.shape == (40, 32)
    assert (ctx.source == ctx.sources.index("alpha")).sum() == 30
    text = default_tokenizer.decode(ctx.tokens[ctx.source == ctx.sources.index("beta")].ravel())
    assert "banana" in text and "apple" not in text
    held_ids = {f"d{i}" for i, (_, _, h) in enumerate(fake_corpus.docs("alpha")) if h}
    held_text = default_tokenizer.decode(
        pack_contexts(fake_corpus, "heldout", 16, 4, mixture={"alpha": 1}).tokens.ravel()
    )
    assert any(f"apple{d[1:]} " in held_text for d in held_ids)
    again = pack_contexts(fake_corpus, "train", 32, 40, seed=0)
    assert np.array_equal(ctx.tokens, again.tokens)


def test_allocate_sums_exactly():
    assert allocate(10, {"a": 0.5, "b": 0.3, "c": 0.2}) == {"a": 5, "b": 3, "c": 2}
    assert sum(allocate(7, {"a": 1, "b": 1, "c": 1}).values()) == 7
    with pytest.raises(ValueError):
        allocate(3, {"a": -1.0, "b": 2.0})
