"""A notebook exported by saelib.core.html_export, opened in headless Chromium with networking off: MathJax (the
local copy) typesets its formula, its matplotlib figure has alt text and the feature view is drawn by its own
JavaScript. Set SAELIB_NO_BROWSER=1 to skip on a machine without Chromium."""

import html
import os
import re
import shutil
import subprocess

import nbformat
import pytest

from saelib.core.html_export import MATHJAX, export_notebooks

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")

if os.environ.get("SAELIB_NO_BROWSER") == "1":
    pytest.skip("SAELIB_NO_BROWSER=1", allow_module_level=True)

PROBE = [
    nbformat.v4.new_markdown_cell("# Probe\nThe square $x^2$ grows."),
    nbformat.v4.new_markdown_cell("## A section without a titled figure"),
    nbformat.v4.new_code_cell(
        "%matplotlib inline\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\n"
        "ax.plot([0, 1], [0, 1])\nax.set_title('A straight line')\nplt.show()"
    ),
    nbformat.v4.new_code_cell("plt.plot([0, 1], [1, 0])\nplt.show()"),
    nbformat.v4.new_code_cell(
        "from saelib.interp.features import Context, FeatureView, feature_views\n"
        "feature_views([FeatureView('feature 1', [Context(['a', ' b'], [0.0, 1.0], 1.0, "
        "'probe', 0, 1)])])"
    ),
]


def offline_dom(url: str, profile: str) -> str:
    """The DOM of ``url`` after its scripts ran, in a Chromium that can resolve and reach no host."""
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
            "--host-resolver-rules=MAP * ~NOTFOUND",
            "--proxy-server=127.0.0.1:9",
            "--virtual-time-budget=20000",
            "--user-data-dir=" + profile,
            "--dump-dom",
            url,
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 0, run.stderr[-2000:]
    return run.stdout


@pytest.fixture()
def exported(tmp_path):
    import nbclient

    assert (MATHJAX / "MathJax.js").exists(), "libjs-mathjax is missing: scripts/ensure_chromium.sh installs it"
    nb = nbformat.v4.new_notebook(cells=PROBE)
    nb.metadata["kernelspec"] = {"name": "python3", "language": "python", "display_name": "Python 3"}
    nbclient.NotebookClient(nb, kernel_name="python3", timeout=120).execute()
    path = tmp_path / "probe.ipynb"
    nbformat.write(nb, path)
    (page,) = export_notebooks([path], tmp_path / "html")
    return page


def test_an_exported_notebook_renders_offline_with_formulas_alt_text_and_views(exported, tmp_path):
    source = exported.read_text()
    assert not re.search(r"""<script[^>]+src=["']https?:""", source)  # nothing fetched from the network
    dom = offline_dom(exported.as_uri(), str(tmp_path / "chrome"))
    text = html.unescape(re.sub(r"<[^>]+>", " ", re.sub(r"(?s)<(script|style)\b.*?</\1>", " ", dom)))
    assert "mjx-chtml" in dom and "$x^2$" not in text and "$" not in text.split("Probe", 1)[1][:200]
    alts = re.findall(r"<img\b[^>]*>", dom)
    assert len(alts) == 2 and all(re.search(r'alt="Figure: [^"]+"', tag) for tag in alts), alts
    assert 'alt="Figure: A straight line"' in dom
    assert 'alt="Figure: A section without a titled figure"' in dom
    assert 'class="saelib-fallback' not in dom  # the view's script ran and removed the plain-text fallback
    assert re.search(r'id="saelib-view-[0-9a-f]+-0-0"><\w', dom)  # and drew into its element
