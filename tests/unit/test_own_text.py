"""Your own text: a folder of .txt/.jsonl files -> corpus -> contexts -> activation store -> trained SAE."""

from __future__ import annotations

import json

import numpy as np
import pytest

from saelib.activations.harvest import harvest
from saelib.dictionaries.train import TrainConfig, train_saes
from saelib.model import model_name
from saelib.text.corpus import build_corpus, pack_contexts
from saelib.text.sources.local import BadTextFolderError, text_folder

HOOK = "blocks.0.hook_resid_post"


def write_folder(root, story="The cat sat on the mat. " * 60):
    root.mkdir(exist_ok=True)
    (root / "story.txt").write_text(story, encoding="utf-8")
    (root / "notes").mkdir(exist_ok=True)
    lines = [json.dumps({"id": f"n{i}", "text": f"Note {i}: the dog ran to the park and back. " * 12}) for i in
             range(30)]
    (root / "notes" / "notes.jsonl").write_text("\n".join(lines) + "\n\n", encoding="utf-8")
    return root


def test_folder_to_trained_sae(tmp_path, tiny_model):
    folder = write_folder(tmp_path / "my_texts")
    src = text_folder(folder)
    docs = list(src.documents())
    assert src.name == "my_texts" and len(docs) == 31
    assert docs[0].doc_id == "notes/notes.jsonl/n0" and docs[-1].doc_id == "story.txt"

    corpus = build_corpus(tiny_model.tokenizer, model_name(tiny_model), sources=[src], progress=False)
    assert corpus.sources == ["my_texts"] and corpus.token_counts()["my_texts"]["heldout_documents"] >= 1
    contexts = pack_contexts(corpus, "train", context_length=32, n_contexts=16)
    assert contexts.tokens.shape == (16, 32) and contexts.sources == ("my_texts",)
    store = harvest(tiny_model, [HOOK], contexts, corpus_name=corpus.dir.name, separator_id=corpus.separator,
                    batch_size=8, progress=False)
    assert store.n_rows == 16 * 32
    result = train_saes(store, TrainConfig(hook=HOOK, batch_size=32, epochs=4, lr=3e-3, checkpoint_every=1000),
                        progress=False, log_every=1)
    mse = [h["mse"] for h in result.history]
    assert result.rows_seen > 0 and np.isfinite(mse).all() and mse[-1] < mse[0]  # it learned from the text

    # the corpus is keyed by the folder's content: an edit gives a new corpus, not the stale one
    write_folder(folder, story="A different story entirely. " * 60)
    again = build_corpus(tiny_model.tokenizer, model_name(tiny_model), sources=[text_folder(folder)],
                         progress=False)
    assert again.dir != corpus.dir


def test_bad_text_folders_say_what_is_wrong(tmp_path):
    with pytest.raises(BadTextFolderError, match="does not exist"):
        text_folder(tmp_path / "nope")
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadTextFolderError, match="no .txt or .jsonl"):
        text_folder(tmp_path / "empty")
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "a.jsonl").write_text('{"text": "fine"}\n{"txt": "typo"}\n')
    with pytest.raises(BadTextFolderError, match=r"a.jsonl, line 2: needs a string field \"text\""):
        list(text_folder(bad).documents())
    (bad / "a.jsonl").write_text('{"text": "fine"\n')
    with pytest.raises(BadTextFolderError, match="line 1: not JSON"):
        list(text_folder(bad).documents())
    (bad / "a.jsonl").unlink()
    (bad / "b.txt").write_bytes(b"caf\xe9")
    with pytest.raises(BadTextFolderError, match="not UTF-8"):
        list(text_folder(bad).documents())


def test_unknown_source_name_points_to_text_folder(tiny_model):
    with pytest.raises(ValueError, match="text_folder"):
        build_corpus(tiny_model.tokenizer, "tiny", sources=["my_texts"], progress=False)
