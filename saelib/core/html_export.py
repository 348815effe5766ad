"""Notebooks as HTML pages that read offline.

:func:`export_notebooks` writes one HTML file per notebook (nbconvert's lab template): figures are embedded, the
feature views' JavaScript is inline as in the notebook, no page loads anything from the network (no require.js, no
CDN), and formulas are typeset by a copy of Debian's MathJax 2 (package ``libjs-mathjax``) placed beside the pages in
``mathjax/``, so the folder can be moved as a whole. Each figure gets alt text: the title its cell sets
(``set_title``, ``suptitle``, ``title(...)``, ``title=``), else the markdown heading above it.
"""

from __future__ import annotations

import html
import re
import shutil
from collections.abc import Iterable
from pathlib import Path

import nbformat

MATHJAX = Path("/usr/share/javascript/mathjax")
MATHJAX_CONFIG = "TeX-AMS_CHTML"
_TITLE = re.compile(r"""(?:\b(?:suptitle|set_title|title)\(\s*|\btitle\s*=\s*)[rfRF]{0,2}(["'])(.+?)(?<!\\)\1""")
_IMAGES = ("image/png", "image/jpeg")


class MathJaxMissingError(RuntimeError):
    """Debian's MathJax (libjs-mathjax) is not installed."""


def _mathjax_ignore(folder: str, names: list[str]) -> set[str]:
    """What the copy of MathJax leaves out: sources, tests, the output modes and configurations not used."""
    where = Path(folder).relative_to(MATHJAX).as_posix()
    skip = {"unpacked", "test"} if where == "." else set()
    if where == "config":
        skip |= {n for n in names if n != f"{MATHJAX_CONFIG}.js"}
    if where == "jax/output":
        skip |= {n for n in names if n != "CommonHTML"}
    if where == "fonts/HTML-CSS":
        skip |= {n for n in names if n != "TeX"}
    if where == "fonts/HTML-CSS/TeX":
        skip |= {n for n in names if n != "woff"}
    return skip


def copy_mathjax(out_dir: Path) -> str:
    """Copy the parts of Debian's MathJax that the pages use into ``out_dir / "mathjax"`` (once) and return the
    pages' relative URL for it. Raises :class:`MathJaxMissingError` without libjs-mathjax."""
    if not (MATHJAX / "MathJax.js").exists():
        raise MathJaxMissingError(
            f"{MATHJAX / 'MathJax.js'} is missing: install Debian's MathJax "
            f"(apt-get install libjs-mathjax; scripts/ensure_chromium.sh does it as root)"
        )
    target = out_dir / "mathjax"
    if not (target / "MathJax.js").exists():
        shutil.copytree(MATHJAX, target, ignore=_mathjax_ignore, dirs_exist_ok=True)
    return f"mathjax/MathJax.js?config={MATHJAX_CONFIG}"


def figure_titles(source: str) -> list[str]:
    """The literal titles a cell's source gives its figures (f-string fields shown as ``…``)."""
    return [re.sub(r"\{[^{}]*\}", "…", m.group(2)).replace("\\n", " ").strip() for m in _TITLE.finditer(source)]


def add_alt_text(nb: nbformat.NotebookNode) -> int:
    """Replace each PNG or JPEG output of ``nb`` by an HTML ``<img>`` with alt text (the titles its cell sets,
    else the nearest markdown heading above it); returns how many figures it changed."""
    heading, count = "", 0
    for cell in nb.cells:
        if cell.cell_type == "markdown":
            lines = [line.lstrip("#").strip() for line in cell.source.splitlines() if line.startswith("#")]
            heading = lines[-1] if lines else heading
            continue
        if cell.cell_type != "code":
            continue
        images = [o for o in cell.get("outputs", []) if set(_IMAGES) & set(o.get("data", {}))]
        titles = figure_titles(cell.source)
        for i, output in enumerate(images):
            described = "; ".join(titles) if titles else heading
            alt = f"Figure: {described}" if described else "Figure"
            if len(images) > 1:
                alt += f" ({i + 1} of {len(images)})"
            mime = next(m for m in _IMAGES if m in output.data)
            data = output.data.pop(mime)
            data = data if isinstance(data, str) else "".join(data)
            output.data["text/html"] = (
                f'<img alt="{html.escape(alt)}" style="max-width:100%" src="data:{mime};base64,{data.strip()}">'
            )
            count += 1
    return count


def notebook_html(nb: nbformat.NotebookNode, mathjax_url: str) -> str:
    """``nb`` as one HTML page (nbconvert's lab template) that loads MathJax from ``mathjax_url`` and nothing
    from the network."""
    from nbconvert import HTMLExporter

    add_alt_text(nb)
    exporter = HTMLExporter(template_name="lab", mathjax_url=mathjax_url, require_js_url="")
    body, _ = exporter.from_notebook_node(nb)
    return body.replace('<script src=""></script>', "")  # the require.js tag: the outputs do not use it


def export_notebooks(notebooks: Iterable[Path], out_dir: Path) -> list[Path]:
    """Write ``out_dir / <notebook>.html`` for each notebook, with MathJax copied into ``out_dir``; returns the
    pages written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    url = copy_mathjax(out_dir)
    pages = []
    for path in notebooks:
        page = out_dir / f"{Path(path).stem}.html"
        page.write_text(notebook_html(nbformat.read(path, as_version=4), url), encoding="utf-8")
        pages.append(page)
    return pages
