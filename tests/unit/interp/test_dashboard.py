"""Feature dashboards: statistics, example selection, co-activation, related features and the written pages, on the
tiny model; massive-activation rows are left out and flagged; bad input is refused before anything is written. The
pages are opened in a real browser in tests/browser."""

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
    related_features,
)
from saelib.model.lens import logit_lens

HOOK = "blocks.1.hook_resid_post"


def test_example_rows_cover_the_top_and_quantile_groups_of_equal_count():
    col = np.zeros(1000, np.float32)
    col[:100] = np.linspace(0.01, 1.0, 100) ** 4  # a long tail: equal-width intervals would leave most groups empty
    rows = example_rows(
        col, DashboardConfig(top_examples=4, quantile_bins=4, examples_per_bin=2), np.random.default_rng(0)
    )
    assert rows["top"] == [99, 98, 97, 96]
    groups = [k for k in rows if k != "top"]
    assert len(groups) == 4 and all(len(rows[k]) == 2 and "(25 tokens)" in k for k in groups)
    assert all(r >= 75 for r in rows[groups[0]]) and all(r < 25 for r in rows[groups[-1]])
    assert example_rows(np.zeros(10, np.float32), DashboardConfig(), np.random.default_rng(0)) == {}


def test_coactivation_is_ranked_by_lift_not_by_the_conditional_rate():
    acts = np.zeros((8, 3), np.float32)
    acts[:4, 0] = 1  # feature 0 fires on rows 0-3
    acts[:, 1] = 1  # feature 1 everywhere: P(1 | 0) = 1 but lift 1
    acts[:3, 2] = 1  # feature 2 on rows 0-2 only: P(2 | 0) = 0.75, lift 0.75 / (3 / 8) = 2
    counts = (acts > 0).sum(0)
    assert coactivations(acts, counts, 8, 0, 5, min_count=3) == [(2, 2.0, 0.75, 3), (1, 1.0, 1.0, 4)]
    assert [i for i, *_ in coactivations(acts, counts, 8, 0, 5, min_count=4)] == [1]  # too few shared tokens


def test_related_features_are_the_nearest_decoder_directions():
    decoder = torch.nn.functional.normalize(torch.tensor([[1.0, 0], [0.9, 0.1], [0, 1], [-1, 0]]), dim=-1)
    related = related_features(decoder, 0, 2)
    assert [i for i, _ in related] == [1, 2] and related[0][1] == pytest.approx(0.9 / np.hypot(0.9, 0.1))


@pytest.fixture()
def exported(tiny_model, tiny_store, tmp_path):
    store = tiny_store([HOOK], n=16, length=32)
    sae = TiedSAE(SAEConfig("tied", store.width(HOOK), 32, (1e-3,), store.config["model"], HOOK, 1.0), seed=0)
    out = tmp_path / "dash"
    index = export_dashboard(
        sae,
        store,
        HOOK,
        tiny_model.tokenizer,
        out,
        "tiny tied SAE",
        features=[0, 1, 2],
        lens=logit_lens(tiny_model, HOOK),
        cfg=DashboardConfig(max_rows=512),
    )
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
    assert 'class="logit-histogram"' in page and "final RMSNorm" in page and 'class="related"' in page
    assert "<script" not in page and not re.search(r'(src|href)="?(https?:)?//', page)
    assert re.search(r'Statistics over <b class="tokens">[\d,]+</b> tokens', page)
    assert ("Best-aligned residual-stream dimension" in page) == firing
    assert 'id="search"' in text and "massive-activation rows left out" in text


def test_density_matches_a_direct_count(exported):
    sae, store, out, _ = exported
    from saelib.interp.features import feature_activations, ordinary_rows

    acts = feature_activations(store, HOOK, sae)[:512]
    mask = ordinary_rows(store)[:512]  # the tiny store has no massive-activation rows
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
    export_dashboard(
        sae, store, HOOK, tiny_model.tokenizer, out, "tiny tied SAE", features=[1], cfg=DashboardConfig(max_rows=512)
    )
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
    rendered = [
        _tokens_html(tokens, np.ones(len(tokens)), 1.0, 0),
        html_text("".join(tokens)),
        colored_tokens(tokens, [1.0] * len(tokens)).data,
        feature_views([FeatureView("f", [Context(tokens, [1.0] * len(tokens), 1.0, "src", 0, 0)])]).data,
    ]
    for text in rendered:
        assert not any(c in text for c in controls)
        assert "U+202E" in text and "U+2066" in text
    assert "&lt;b&gt;" in rendered[0] and "<b>" not in html_text("<b>")


def test_a_planted_massive_activation_row_is_left_out_and_flagged(tiny_model, tiny_store, tmp_path):
    """One row scaled far beyond training's outlier rule: it is not a feature's top example in the views nor on the
    dashboard, the number of rows left out is stated, and the feature driven by it is flagged and listed last."""
    from saelib.activations.store import hook_file
    from saelib.interp.features import MASSIVE_FLAG, feature_activations, feature_views, top_contexts

    store = tiny_store([HOOK], n=16, length=32)
    planted = 5 * 32 + 7
    sae = TiedSAE(SAEConfig("tied", store.width(HOOK), 32, (1e-3,), store.config["model"], HOOK, 1.0), seed=0)
    arr = np.load(hook_file(store.dir, HOOK), mmap_mode="r+")
    direction = torch.nn.functional.normalize(sae.dictionary()[0, 3].detach().float(), dim=0).numpy()
    arr[planted] = 200 * np.median(np.linalg.norm(arr, axis=1)) * direction  # along feature 3, norm 200x the median
    arr.flush()
    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(np.asarray(store.activations(HOOK), np.float32))).numpy()
    codes[np.arange(store.n_rows) % 32 == 0] = 0
    share = codes[planted] / np.maximum(codes.sum(0), 1e-9)
    f = int(np.argmax(share))
    assert share[f] > 0.5 and codes[:, f].argmax() == planted  # the planted row drives this feature

    acts = feature_activations(store, HOOK, sae, [f])[:, 0]
    contexts = top_contexts(store, acts, tiny_model.tokenizer, k=3)
    assert all(c.context * 32 + c.position != planted for c in contexts)
    assert contexts.excluded == 1 and contexts.note.startswith(MASSIVE_FLAG)
    view = feature_views([_view(contexts)]).data
    assert MASSIVE_FLAG in view and "1 massive-activation row left out" in view

    out = tmp_path / "dash"
    export_dashboard(
        sae, store, HOOK, tiny_model.tokenizer, out, "planted", features=[f], cfg=DashboardConfig(max_rows=512)
    )
    stats = json.loads((out / "features.json").read_text())
    assert stats[f]["flagged"] and stats[f]["max_activation"] < float(codes[planted, f])
    index = (out / "index.html").read_text()
    order = [int(i) for i in re.findall(r'<tr class="feature"><td>(?:<a href="features/\d+\.html">)?(\d+)', index)]
    assert order.index(f) >= len(order) - sum(s["flagged"] for s in stats)  # after every feature not flagged
    assert MASSIVE_FLAG in index and "1 massive-activation row left out" in index
    page = (out / "features" / f"{f}.html").read_text()
    assert MASSIVE_FLAG in page and f"{float(codes[planted, f]):7.3f}" not in page


def _view(contexts):
    from saelib.interp.features import FeatureView

    return FeatureView("planted", contexts)


def _script():
    import importlib.util

    from saelib.core.paths import REPO_ROOT

    spec = importlib.util.spec_from_file_location("export_dashboard", REPO_ROOT / "scripts" / "export_dashboard.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_script_lists_the_shipped_dictionaries_in_its_help(capsys, monkeypatch):
    from saelib.dictionaries.shipped import release_names

    monkeypatch.setattr("sys.argv", ["export_dashboard.py", "--help"])
    with pytest.raises(SystemExit):
        _script().main()
    out = capsys.readouterr().out
    assert release_names() and all(name in out for name in release_names())


@pytest.mark.parametrize("folder", ["missing", "gated"])
def test_the_script_refuses_a_bad_dictionary_in_one_line_before_the_model_loads(folder, tmp_path, monkeypatch):
    import saelib.model

    if folder == "gated":
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "cfg.json").write_text(json.dumps({"architecture": "gated", "d_in": 4, "d_sae": 8}))
        (tmp_path / folder / "sae_weights.safetensors").write_bytes(b"")
    monkeypatch.setattr(saelib.model, "load_model", lambda *a, **k: pytest.fail("the model was loaded"))
    monkeypatch.setattr("sys.argv", ["export_dashboard.py", str(tmp_path / folder)])
    with pytest.raises(SystemExit) as stop:
        _script().main()
    message = str(stop.value.code)
    assert message.startswith("export_dashboard: ") and "\n" not in message
    assert ("architecture 'gated' is not supported" in message) if folder == "gated" else "neither" in message
