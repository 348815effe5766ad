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
    lines = [
        json.dumps({"id": f"n{i}", "text": f"Note {i}: the dog ran to the park and back. " * 12}) for i in range(30)
    ]
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
    store = harvest(
        tiny_model,
        [HOOK],
        contexts,
        corpus_name=corpus.dir.name,
        separator_id=corpus.separator,
        batch_size=8,
        progress=False,
    )
    assert store.n_rows == 16 * 32
    result = train_saes(
        store,
        TrainConfig(hook=HOOK, batch_size=32, epochs=4, lr=3e-3, checkpoint_every=1000),
        progress=False,
        log_every=1,
    )
    mse = [h["mse"] for h in result.history]
    assert result.rows_seen > 0 and np.isfinite(mse).all() and mse[-1] < mse[0]  # it learned from the text

    # the corpus is keyed by the folder's content: an edit gives a new corpus, not the stale one
    write_folder(folder, story="A different story entirely. " * 60)
    again = build_corpus(tiny_model.tokenizer, model_name(tiny_model), sources=[text_folder(folder)], progress=False)
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


def folder_of(tmp_path, files: dict[str, bytes], name="texts"):
    root = tmp_path / name
    root.mkdir()
    for rel, data in files.items():
        (root / rel).write_bytes(data)
    return root


def test_the_key_separates_names_from_contents(tmp_path):
    """Names and contents are length-prefixed in the key; a content that spells out another file is refused."""
    a = text_folder(folder_of(tmp_path, {"a.txt": b"x", "b.txt": b"y"}, "one"), name="t")
    b = text_folder(folder_of(tmp_path, {"a.txt": b"x", "b.txt": b"y\n"}, "two"), name="t")
    c = text_folder(folder_of(tmp_path, {"a.txt": b"xb.txt", "b.txt": b"y"}, "three"), name="t")
    assert len({s.package.split("@")[1] for s in (a, b, c)}) == 3
    with pytest.raises(BadTextFolderError, match="NUL bytes"):
        text_folder(folder_of(tmp_path, {"a.txt": b"x\0b.txt\0y"}, "four"))


def test_a_file_edited_before_the_corpus_is_built_is_not_stored_under_the_old_key(tmp_path, tiny_model):
    folder = folder_of(tmp_path, {"a.txt": b"The first version of the text. " * 20})
    src = text_folder(folder)
    (folder / "a.txt").write_bytes(b"An edited version of the text. " * 20)
    with pytest.raises(BadTextFolderError, match="changed after text_folder"):
        build_corpus(tiny_model.tokenizer, model_name(tiny_model), sources=[src], progress=False)


@pytest.mark.parametrize(
    "files, match",
    [
        ({"a.txt": b"", "b.txt": b"  \n"}, r"a\.txt is empty"),
        ({"a.txt": b"\0\0\0\0"}, r"a\.txt, line 1: holds NUL bytes"),
        ({"a.txt": "hi".encode("utf-16")}, r"a\.txt is UTF-16 .*iconv -f UTF-16 -t UTF-8"),
        ({"a.jsonl": b"\n\n"}, r"a\.jsonl holds no documents"),
        (
            {"a.jsonl": b'{"id": 1, "text": "x"}\n{"id": "1", "text": "y"}\n'},
            r"line 2: id '1' is already used on line 1",
        ),
        ({"a.jsonl": b"[" * 100_000 + b"\n"}, r"a\.jsonl, line 1: not JSON"),
    ],
)
def test_empty_binary_and_ambiguous_files_are_named(tmp_path, files, match):
    with pytest.raises(BadTextFolderError, match=match):
        text_folder(folder_of(tmp_path, files))


def test_a_non_utf8_file_name_is_named(tmp_path):
    import os

    root = tmp_path / "texts"
    root.mkdir()
    try:
        (root / os.fsdecode(b"caf\xe9.txt")).write_text("text")
    except (OSError, UnicodeEncodeError):
        pytest.skip("this file system refuses non-UTF-8 names")
    with pytest.raises(BadTextFolderError, match=r"caf.*\.txt.* is not UTF-8; rename"):
        text_folder(root)


def test_bom_and_jsonl_line_separators(tmp_path):
    text = "a\u2028b\u0085c"
    row = json.dumps({"text": text}, ensure_ascii=False).encode()
    src = text_folder(folder_of(tmp_path, {"a.txt": b"\xef\xbb\xbfHello\r\nthere", "b.jsonl": row + b"\n"}))
    docs = {d.doc_id: d.text for d in src.documents()}
    assert docs == {"a.txt": "Hello\nthere", "b.jsonl/1": text}


def test_corpus_names_are_plain(tmp_path):
    folder = folder_of(tmp_path, {"a.txt": b"text"})
    for bad in ("../../escape", "a/b", ".hidden", ""):
        with pytest.raises(ValueError, match="not a plain name"):
            text_folder(folder, name=bad) if bad else text_folder(folder, name="..")
    assert text_folder(folder, name="my texts-2.0").name == "my texts-2.0"


def test_long_lines_and_files_hit_stated_caps(tmp_path, monkeypatch):
    from saelib.text.sources import local

    with pytest.raises(BadTextFolderError, match=r"a\.txt, line 2: longer than MAX_LINE_BYTES=1048576"):
        text_folder(folder_of(tmp_path, {"a.txt": b"short\n" + b"x" * (local.MAX_LINE_BYTES + 1)}, "line"))
    monkeypatch.setattr(local, "MAX_FILE_BYTES", 100)
    with pytest.raises(BadTextFolderError, match=r"a\.txt is larger than MAX_FILE_BYTES=100"):
        text_folder(folder_of(tmp_path, {"a.txt": b"word " * 10 + b"\n" + b"more " * 30}, "file"))
    monkeypatch.setattr(local, "MAX_DOCUMENT_BYTES", 40)
    src = text_folder(folder_of(tmp_path, {"a.txt": b"".join(b"line %d of a long text\n" % i for i in range(4))}))
    docs = list(src.documents())
    assert [d.doc_id for d in docs] == ["a.txt", "a.txt#2", "a.txt#3", "a.txt#4"]
    assert "".join(d.text for d in docs).count("\n") == 4
