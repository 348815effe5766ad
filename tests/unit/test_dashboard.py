"""Feature dashboards: statistics, example selection, co-activation and the written pages, on the tiny model; bad
input is refused before anything is written. The pages are opened in a real browser in tests/browser."""

import json
import re

import numpy as np
import pytest
import torch

from saelib.dictionaries.sae import SAEConfig, TiedSAE
from saelib.interp.dashboard import (
    DashboardConfig,
    coactivations,
    example_rows,
    export_dashboard,
)
from saelib.model.lens import logit_lens

HOOK = "blocks.1.hook_resid_post"


def test_example_rows_cover_the_top_and_every_occupied_interval():
    col = np.zeros(1000, np.float32)
    col[:100] = np.linspace(0.01, 1.0, 100)
    rows = example_rows(col, DashboardConfig(top_examples=4, quantile_bins=4, examples_per_bin=2),
                        np.random.default_rng(0))
    assert rows["top"] == [99, 98, 97, 96]
    intervals = [k for k in rows if k != "top"]
    assert len(intervals) == 4 and all(len(rows[k]) == 2 for k in intervals)
    assert all(col[r] > 0.75 for r in rows[intervals[0]]) and all(col[r] <= 0.25 for r in rows[intervals[-1]])
    assert example_rows(np.zeros(10, np.float32), DashboardConfig(), np.random.default_rng(0)) == {}


def test_coactivation_is_the_conditional_firing_rate():
    acts = np.zeros((4, 3), np.float32)
    acts[:2, 0] = 1  # feature 0 fires on rows 0, 1
    acts[0, 1] = 1  # feature 1 on row 0 only: P(1 | 0) = 0.5
    acts[:2, 2] = 1  # feature 2 on both: P(2 | 0) = 1
    assert coactivations(acts, 0, 5) == [(2, 1.0), (1, 0.5)]
    assert coactivations(acts, 1, 5)[0] == (0, 1.0)


@pytest.fixture()
def exported(tiny_model, tiny_store, tmp_path):
    store = tiny_store([HOOK], n=16, length=32)
    sae = TiedSAE(SAEConfig("tied", store.width(HOOK), 32, (1e-3,), store.config["model"], HOOK, 1.0), seed=0)
    out = tmp_path / "dash"
    index = export_dashboard(sae, store, HOOK, tiny_model.tokenizer, out, "tiny tied SAE", features=[0, 1, 2],
                             lens=logit_lens(tiny_model, HOOK), cfg=DashboardConfig(max_rows=512))
    return sae, store, out, index


def test_export_writes_an_index_and_the_requested_pages(exported):
    sae, store, out, index = exported
    assert index == out / "index.html"
    assert sorted(p.name for p in (out / "features").iterdir()) == ["0.html", "1.html", "2.html"]
    stats = json.loads((out / "features.json").read_text())
    assert len(stats) == 32 and all(0 <= s["density"] <= 1 for s in stats)
    text = index.read_text()
    assert text.count('class="feature"') == 32 and not re.search(r'(src|href)="?(https?:)?//', text)  # no network
    page = (out / "features" / "0.html").read_text()
    firing = stats[0]["density"] > 0
    assert ('class="histogram"' in page) == firing and "boosts" in page and "suppresses" in page
    assert "<script" not in page and not re.search(r'(src|href)="?(https?:)?//', page)


def test_density_matches_a_direct_count(exported):
    sae, store, out, _ = exported
    from saelib.interp.features import feature_activations, ordinary_rows

    acts = feature_activations(store, HOOK, sae)[:512]
    mask = ordinary_rows(store)[:512]
    stats = json.loads((out / "features.json").read_text())
    for f in (0, 5, 31):
        assert stats[f]["density"] == pytest.approx((acts[mask, f] > 0).mean(), abs=1e-6)


def test_bad_input_is_refused_before_writing(tiny_store, tiny_model, tmp_path):
    store = tiny_store([HOOK], n=4, length=32)
    two = TiedSAE(SAEConfig("tied", store.width(HOOK), 16, (1e-3, 1e-2), "m", HOOK, 1.0), seed=0)
    with pytest.raises(ValueError, match="one member"):
        export_dashboard(two, store, HOOK, tiny_model.tokenizer, tmp_path / "a", "x")
    one = two.member(0)
    with pytest.raises(ValueError, match=r"features must lie in \[0, 16\)"):
        export_dashboard(one, store, HOOK, tiny_model.tokenizer, tmp_path / "b", "x", features=[3, 16])
    assert not (tmp_path / "a").exists() and not (tmp_path / "b").exists()


def test_a_smaller_re_export_replaces_the_folder_as_a_whole(exported, tiny_model, tmp_path):
    sae, store, out, _ = exported
    export_dashboard(sae, store, HOOK, tiny_model.tokenizer, out, "tiny tied SAE", features=[1],
                     cfg=DashboardConfig(max_rows=512))
    assert sorted(p.name for p in (out / "features").iterdir()) == ["1.html"]  # no stale pages 0 and 2
    assert sorted(p.name for p in tmp_path.iterdir() if p.name.startswith(".dash")) == []  # no temporaries left


def test_export_never_replaces_a_folder_that_is_not_a_dashboard(tiny_model, tiny_store, tmp_path):
    store = tiny_store([HOOK], n=4, length=32)
    sae = TiedSAE(SAEConfig("tied", store.width(HOOK), 16, (1e-3,), "m", HOOK, 1.0), seed=0)
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "notes.txt").write_text("keep me")
    with pytest.raises(FileExistsError, match="is not a dashboard export"):
        export_dashboard(sae, store, HOOK, tiny_model.tokenizer, mine, "x", cfg=DashboardConfig(max_rows=128))
    assert [p.name for p in mine.iterdir()] == ["notes.txt"]


def test_format_characters_in_token_text_are_shown_not_applied():
    """A right-to-left override (and the other bidirectional controls and invisible format characters) in corpus
    text is written as its code point where tokens become HTML: in dashboards, circuitsvis views and plain views."""
    from saelib.interp.dashboard import _tokens_html
    from saelib.interp.features import Context, FeatureView, feature_views
    from saelib.interp.tokens import html_text
    from saelib.interp.viz import colored_tokens

    controls = [chr(c) for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A), 0x200B, 0x200E, 0xFEFF)]
    tokens = [" safe", "\u202etxt.exe<b>", *controls]
    rendered = [_tokens_html(tokens, np.ones(len(tokens)), 1.0, 0), html_text("".join(tokens)),
                colored_tokens(tokens, [1.0] * len(tokens)).data,
                feature_views([FeatureView("f", [Context(tokens, [1.0] * len(tokens), 1.0, "src", 0, 0)])]).data]
    for text in rendered:
        assert not any(c in text for c in controls)
        assert "U+202E" in text and "U+2066" in text
    assert "&lt;b&gt;" in rendered[0] and "<b>" not in html_text("<b>")
