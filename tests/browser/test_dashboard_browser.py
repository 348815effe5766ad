"""The exported dashboard in a real browser (Debian's headless Chromium, installed by ./run_tests.sh): the list, its
search box and a feature page render with their data, offline. Set SAELIB_NO_BROWSER=1 to skip on a machine without
Chromium."""

import os
import re
import shutil
import subprocess

import numpy as np
import pytest

from saelib.dictionaries.sae import SAEConfig, TiedSAE
from saelib.interp.dashboard import DashboardConfig, export_dashboard
from saelib.model.lens import logit_lens

HOOK = "blocks.1.hook_resid_post"
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if os.environ.get("SAELIB_NO_BROWSER") == "1":
    pytest.skip("SAELIB_NO_BROWSER=1", allow_module_level=True)


def chromium(*args: str) -> str:
    assert CHROMIUM, (
        "Chromium is missing: ./run_tests.sh installs it (apt-get install chromium), or set SAELIB_NO_BROWSER=1"
    )
    run = subprocess.run(
        [
            CHROMIUM,
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-background-networking",
            "--user-data-dir=" + os.environ["CHROME_PROFILE"],
            *args,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.fixture()
def dashboard(tiny_model, tiny_store, tmp_path, monkeypatch):
    monkeypatch.setenv("CHROME_PROFILE", str(tmp_path / "chrome"))
    store = tiny_store([HOOK], n=16, length=32)
    sae = TiedSAE(SAEConfig("tied", store.width(HOOK), 24, (1e-3,), store.config["model"], HOOK, 1.0), seed=0)
    index = export_dashboard(
        sae,
        store,
        HOOK,
        tiny_model.tokenizer,
        tmp_path / "dash",
        "tiny tied SAE",
        lens=logit_lens(tiny_model, HOOK),
        cfg=DashboardConfig(max_rows=512),
    )
    return index


def test_the_feature_list_renders_every_feature(dashboard):
    dom = chromium("--dump-dom", dashboard.as_uri())
    assert "<h1>tiny tied SAE</h1>" in dom
    assert len(re.findall(r'<tr class="feature">', dom)) == 24
    assert len(re.findall(r'href="features/\d+\.html"', dom)) == 24


def test_a_feature_page_renders_its_histogram_examples_and_logits(dashboard, tmp_path):
    import json

    stats = json.loads((dashboard.parent / "features.json").read_text())
    f = max(range(len(stats)), key=lambda i: stats[i]["density"])  # a feature that fires
    page = dashboard.parent / "features" / f"{f}.html"
    dom = chromium("--dump-dom", page.as_uri())
    assert f"<h1>Feature {f}</h1>" in dom and "<rect" in dom and 'class="ex"' in dom and "boosts" in dom
    assert 'class="logit-histogram"' in dom and "quantile group 1 of" in dom and 'class="related"' in dom
    assert "Best-aligned residual-stream dimension" in dom and re.search(r"Statistics over <b[^>]*>[\d,]+</b>", dom)
    shot = tmp_path / "page.png"
    chromium(f"--screenshot={shot}", "--window-size=1000,900", page.as_uri())
    import matplotlib.image

    pixels = matplotlib.image.imread(shot)[..., :3]
    orange = (np.abs(pixels - np.array([0xE6, 0x5A, 0x14]) / 255).max(-1) < 0.05).sum()
    assert orange > 200  # the histogram's bars were drawn, not only the text


def test_the_search_box_filters_the_rows_in_the_page(dashboard):
    import json

    stats = json.loads((dashboard.parent / "features.json").read_text())
    words = {w for s in stats for w in re.findall(r"[a-z]{4,}", s["summary"].lower())}
    count = {w: sum(w in s["summary"].lower() for s in stats) for w in words}
    word = min(sorted(words), key=count.get)  # the rarest word of the summaries
    expected = count[word]
    dom = chromium("--dump-dom", dashboard.as_uri() + "#q=" + word)
    visible = re.findall(r'<tr class="feature">', dom)
    assert 0 < len(visible) == expected < len(stats)  # hidden rows carry the hidden attribute
    assert f'<span id="shown">{expected}</span>' in dom
