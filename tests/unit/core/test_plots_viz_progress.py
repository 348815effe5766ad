import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from saelib.core.plots import savefig  # noqa: E402
from saelib.core.progress import progress  # noqa: E402
from saelib.interp.viz import colored_tokens, local_html  # noqa: E402


def _fig():
    fig, ax = plt.subplots()
    ax.plot([0, 1], [1, 0])
    return fig


def test_savefig_writes_png_and_reproducible_svg(tmp_path):
    a = savefig(_fig(), "demo")
    first = a[1].read_bytes()
    b = savefig(_fig(), "demo")
    assert [p.suffix for p in a] == [".png", ".svg"] and all(p.stat().st_size > 0 for p in a)
    assert b[1].read_bytes() == first  # no dates or random ids: regenerated figures diff cleanly
    assert savefig(_fig(), "demo", profile="dev")[0].parent.name == "dev"  # other profiles never overwrite


def test_circuitsvis_view_is_self_contained():
    html = colored_tokens(["a", "b"], [0.0, 1.0]).data
    assert "unpkg.com" not in html  # the CDN variant would be blank offline
    assert len(html) > 100_000  # the circuitsvis bundle is inlined
    try:
        local_html("not a view")
    except TypeError as err:
        assert "RenderedHTML" in str(err)


def test_progress_honours_env(monkeypatch):
    monkeypatch.setenv("TQDM_DISABLE", "1")
    assert progress(range(3)).disable
    monkeypatch.setenv("TQDM_DISABLE", "")
    assert progress(range(3), enabled=False).disable
