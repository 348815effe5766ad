"""README's verdict table, generated from the verdict tables in the executed notebooks' outputs.

``show_verdicts`` displays a pandas table indexed by ``claim`` whose columns are the other fields of ``Verdict``; its
``text/html`` output keeps every cell in full. This module reads those tables back from the committed notebooks,
renders them as one markdown table with the notebook each row comes from, and puts it between README's markers.

README's table keeps six columns: the first five fields of ``Verdict`` (``README_FIELDS``) and the notebook. The
parser reads both the current tables (every field) and the five-field tables of notebooks executed before the rule
fields existed, whose rule, precondition, controls and unit it leaves empty."""

from __future__ import annotations

import difflib
import json
from collections.abc import Sequence
from dataclasses import dataclass, fields
from html.parser import HTMLParser
from pathlib import Path

from saelib.core.paths import REPO_ROOT
from saelib.core.verdicts import Verdict

BEGIN = "<!-- verdicts:begin -->"
END = "<!-- verdicts:end -->"
FIELDS = tuple(f.name for f in fields(Verdict))
README_FIELDS = ("claim", "paper", "ours", "verdict", "why")  # the fields README's table shows, in its order
LEGACY_FIELDS = README_FIELDS  # the fields of a verdict table shown before the rule fields existed
HEADER = ("claim", "paper", "ours (95% intervals)", "verdict", "why", "notebook")


class MissingVerdictsError(ValueError):
    """A notebook calls ``show_verdicts`` but its saved outputs hold no verdict table (it has not been executed)."""


class MarkersError(ValueError):
    """README lacks the begin/end markers around the verdict table, or has them out of order."""


@dataclass(frozen=True)
class NotebookVerdict:
    notebook: str  # the notebook's file name, e.g. 02_interpretability_comparison.ipynb
    verdict: Verdict


class _Tables(HTMLParser):
    """Every ``<table>`` in an HTML text as rows of cell texts, header rows included, whitespace collapsed."""

    def __init__(self) -> None:
        super().__init__(convert_charrefs=True)
        self.tables: list[list[list[str]]] = []
        self._cell: list[str] | None = None

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag == "table":
            self.tables.append([])
        elif tag == "tr" and self.tables:
            self.tables[-1].append([])
        elif tag in ("th", "td") and self.tables and self.tables[-1]:
            self._cell = []

    def handle_endtag(self, tag: str) -> None:
        if tag in ("th", "td") and self._cell is not None:
            self.tables[-1][-1].append(" ".join("".join(self._cell).split()))
            self._cell = None

    def handle_data(self, data: str) -> None:
        if self._cell is not None:
            self._cell.append(data)


def html_tables(html: str) -> list[list[list[str]]]:
    """The tables of an HTML text, each a list of rows of cell texts."""
    parser = _Tables()
    parser.feed(html)
    parser.close()
    return parser.tables


def _table_fields(rows: Sequence[Sequence[str]]) -> tuple[str, ...] | None:
    """The fields of a pandas rendering of ``verdict_table`` (every field of ``Verdict``, or the five of a table shown
    before the rule fields existed): the fields but ``claim`` as columns, then a row naming the ``claim`` index.
    None for any other table."""
    if len(rows) < 2 or list(rows[1][:1]) != ["claim"] or any(rows[1][1:]):
        return None
    return next((f for f in (FIELDS, LEGACY_FIELDS) if list(rows[0]) == ["", *f[1:]]), None)


def is_verdict_table(rows: Sequence[Sequence[str]]) -> bool:
    """True for pandas' rendering of ``verdict_table``, current (every field) or from before the rule fields."""
    return _table_fields(rows) is not None


def _verdict(names: Sequence[str], row: Sequence[str]) -> Verdict:
    """A ``Verdict`` from a table row whose cells are the fields ``names``; fields the table lacks are left empty."""
    cells = dict(zip(names, row, strict=True))
    return Verdict(**{name: cells.get(name, "") for name in FIELDS})


def verdicts_in_html(html: str) -> list[Verdict]:
    """The rows of every verdict table in an HTML text, in order."""
    found = []
    for rows in html_tables(html):
        names = _table_fields(rows)
        if names is not None:
            found += [_verdict(names, row) for row in rows[2:]]
    return found


def _html_outputs(cell: dict) -> list[str]:
    """The ``text/html`` outputs of a notebook cell as strings."""
    htmls = [out.get("data", {}).get("text/html") for out in cell.get("outputs", [])]
    return ["".join(h) if isinstance(h, list) else h for h in htmls if h]


def notebook_verdicts(path: Path) -> list[Verdict]:
    """The verdicts a notebook's saved outputs show; raises when its code calls ``show_verdicts`` and they show none."""
    cells = [c for c in json.loads(path.read_text(encoding="utf-8"))["cells"] if c["cell_type"] == "code"]
    found = [v for cell in cells for html in _html_outputs(cell) for v in verdicts_in_html(html)]
    if not found and any("show_verdicts(" in "".join(c["source"]) for c in cells):
        raise MissingVerdictsError(
            f"{path.name} calls show_verdicts but its saved outputs hold no verdict table; "
            f"execute it (./run_all.sh {path.name[:2]}) first"
        )
    return found


def collect(notebooks: Path = REPO_ROOT / "notebooks") -> list[NotebookVerdict]:
    """Every verdict of the numbered notebooks in a folder, in notebook order."""
    paths = sorted(notebooks.glob("[0-9][0-9]_*.ipynb"))
    return [NotebookVerdict(p.name, v) for p in paths for v in notebook_verdicts(p)]


def markdown_cell(text: str) -> str:
    """A text made safe for one cell of a markdown table (no newline, no bare ``|`` or ``<``)."""
    return " ".join(text.split()).replace("|", r"\|").replace("<", "&lt;")


def markdown_table(rows: Sequence[NotebookVerdict], notebooks_link: str = "notebooks") -> str:
    """The verdicts as one markdown table; the last column links each row's notebook."""
    lines = ["| " + " | ".join(HEADER) + " |", "|" + "---|" * len(HEADER)]
    for row in rows:
        link = f"[{row.notebook[:2]}]({notebooks_link}/{row.notebook})"
        cells = [markdown_cell(getattr(row.verdict, name)) for name in README_FIELDS]
        lines.append("| " + " | ".join([*cells, link]) + " |")
    return "\n".join(lines)


def _marker_span(readme: str) -> tuple[int, int]:
    """Where the generated block starts (after the begin marker) and ends (at the end marker)."""
    begin, end = readme.find(BEGIN), readme.find(END)
    if begin < 0 or end < begin or readme.count(BEGIN) != 1 or readme.count(END) != 1:
        raise MarkersError(f"README needs one {BEGIN} line and, after it, one {END} line around the verdict table")
    return begin + len(BEGIN), end


def readme_block(readme: str) -> str:
    """The table between README's markers, without surrounding blank lines."""
    start, stop = _marker_span(readme)
    return readme[start:stop].strip("\n")


def with_block(readme: str, table: str) -> str:
    """README with the text between its markers replaced by ``table``."""
    start, stop = _marker_span(readme)
    return f"{readme[:start]}\n{table}\n{readme[stop:]}"


def block_diff(readme: str, table: str) -> str:
    """A unified diff from README's table to ``table``; empty when they agree."""
    return "".join(
        difflib.unified_diff(
            (readme_block(readme) + "\n").splitlines(keepends=True),
            (table + "\n").splitlines(keepends=True),
            "README.md (verdicts)",
            "notebooks (verdicts)",
        )
    )


def update_readme(readme: Path, notebooks: Path = REPO_ROOT / "notebooks") -> bool:
    """Write the notebooks' table between README's markers; returns whether README changed."""
    text = readme.read_text(encoding="utf-8")
    table = markdown_table(collect(notebooks))
    if not block_diff(text, table):
        return False
    readme.write_text(with_block(text, table), encoding="utf-8")
    return True
