"""Every numbered notebook has the same skeleton: a title cell with a **Question.** and then a **Method.**
paragraph, numbered results sections ``## 1.``, ``## 2.``, ... in order, and a last section ``## N. Verdict``."""

import re

import pytest

from saelib.core.paths import REPO_ROOT

SOURCES = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.py"))
HEADING = re.compile(r"^# ## (.*)$", re.M)


def _markdown_cells(text: str) -> list[str]:
    cells = re.split(r"^# %%.*$", text, flags=re.M)
    markers = re.findall(r"^# %%.*$", text, flags=re.M)
    return [cell for marker, cell in zip(markers, cells[1:]) if "[markdown]" in marker]


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_title_cell_states_question_then_method(path):
    title = _markdown_cells(path.read_text(encoding="utf-8"))[0]
    assert title.lstrip().startswith(f"# # {path.name[:2]} · "), "the first markdown cell is the notebook's title"
    question, method = title.find("**Question.**"), title.find("**Method.**")
    assert 0 <= question < method, "the title cell needs a **Question.** paragraph, then a **Method.** paragraph"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: p.name)
def test_sections_are_numbered_and_end_in_the_verdict(path):
    headings = HEADING.findall(path.read_text(encoding="utf-8"))
    numbers = [int(m.group(1)) for h in headings if (m := re.match(r"(\d+)\. ", h))]
    assert numbers == list(range(1, len(numbers) + 1)), f"sections numbered 1..N in order: {headings}"
    assert headings and re.match(r"\d+\. Verdict", headings[-1]), f"the last section is 'N. Verdict': {headings}"
