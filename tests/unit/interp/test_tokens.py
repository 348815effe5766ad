"""Tokens are shown decoded, with whitespace visible and split characters whole; views say why they are blank."""

from __future__ import annotations

import itertools

from saelib.interp import features
from saelib.interp.features import Context, FeatureView, feature_views
from saelib.interp.tokens import CONTINUATION, readable_tokens, visible_whitespace


class ByteTokenizer:
    """A byte-level tokenizer's decode: token ids are byte strings, undecodable bytes become U+FFFD."""

    VOCAB = {
        0: b" Cri",
        1: b"\xc8",
        2: b"\x99",
        3: b"ana",
        4: b"\n",
        5: b"  ",
        6: b"\t x",
        7: b"\xff",
        8: b"\xe2\x80",
        9: b"\x94",
    }

    def decode(self, ids):
        return b"".join(self.VOCAB[i] for i in ids).decode("utf-8", errors="replace")


def test_readable_tokens_merge_split_characters_and_show_whitespace():
    tok = ByteTokenizer()
    assert readable_tokens(tok, [0, 1, 2, 3, 4, 5, 6]) == [" Cri", "ș", CONTINUATION, "ana", "↵", "␣␣", "⇥ x"]
    assert readable_tokens(tok, [8, 9, 3]) == ["—", CONTINUATION, "ana"]  # a 3-byte character over two tokens
    assert readable_tokens(tok, [7, 3]) == ["\ufffd", "ana"]  # a byte that never forms a character stays marked
    assert readable_tokens(tok, [1]) == ["\ufffd"]  # cut off at the end of the window
    assert len(readable_tokens(tok, [1, 2, 1, 2])) == 4
    assert visible_whitespace(" Mary") == " Mary"


def test_feature_view_has_a_text_fallback_that_its_script_removes():
    ctx = Context(["a", " <b>", "c"], [0.0, 2.0, 1.0], 2.0, "wordnet", 0, 1)
    page = feature_views([FeatureView("feature 1", [ctx])]).data
    assert "not trusted" in page and "jupyter trust" in page
    assert "a<b>[ &lt;b&gt;]</b>c" in page  # escaped, peak token marked, readable without JavaScript
    uid = page.split('class="saelib-fallback-')[1][:8]
    assert f"querySelectorAll('.saelib-fallback-{uid}')" in page.split("<script")[-1]


def test_feature_view_ids_are_unique_per_output_and_the_same_on_a_rerun(monkeypatch):
    ctx = Context(["a", "b"], [1.0, 0.0], 1.0, "wordnet", 0, 0)
    views = [FeatureView("feature 1", [ctx, ctx])]
    monkeypatch.setattr(features, "_view_calls", itertools.count())
    first, second = feature_views(views).data, feature_views(views).data
    ids = {i.split('"')[0] for i in first.split('id="')[1:] if i.startswith("saelib-view-")}
    assert len(ids) == 2  # one per context
    assert first != second  # the same views shown twice in one kernel must not share element ids
    monkeypatch.setattr(features, "_view_calls", itertools.count())  # a fresh kernel running the same cells
    assert feature_views(views).data == first
