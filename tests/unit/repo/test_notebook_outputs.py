"""Committed notebooks let nbval compare only what is stable across machines.

nbval compares each cell's saved text with a fresh run's. A float measured through forward passes or training moves
in its last printed digit from one CPU to another (a CI instance once printed -0.124 where the committed notebook had
-0.125, and 0.32 for 0.31), so a cell whose saved output shows a measured decimal is marked
``# NBVAL_IGNORE_OUTPUT`` and its numbers that matter go through ``saelib.core.check`` with a tolerance (a check
still raises inside an ignored cell). A cell whose decimals are fixed inputs says why in a ``# stable output:``
comment. This test reads the committed notebooks; it runs no kernel."""

from __future__ import annotations

import re

import nbformat
import pytest
from nbval.plugin import get_sanitize_patterns

from saelib.core.paths import REPO_ROOT

NOTEBOOKS = sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb"))
MEASURED = re.compile(r"\d\.\d")
# Lines whose decimals are written in the code: check()'s and check_between()'s lines (their names, tolerances and
# bounds; a bound computed from a measurement is the caller's to avoid) and a profile's sizes dataclass.
CONSTANT_LINE = re.compile(
    r"(~= \S+ \((rtol|atol)=\S+\)|in \[\S+, \S+\]): OK$"
    r"|: measured=<MEASURED>$"
    r"|^[A-Z]\w*\(\w+=.*\)$"
)


def sanitizers() -> list[tuple[re.Pattern, str]]:
    """The replacements nbval applies before comparing, parsed by nbval itself."""
    text = (REPO_ROOT / "tests" / "nbval_sanitize.cfg").read_text()
    return [(re.compile(regex), replace) for regex, replace in get_sanitize_patterns(text)]


def compared_text(cell) -> str:
    """The text nbval compares for this cell (stdout and text/plain; conftest skips stderr, HTML and widgets)."""
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream" and out.get("name") == "stdout":
            parts.append(out["text"])
        elif "text/plain" in out.get("data", {}):
            parts.append(out["data"]["text/plain"])
    return "".join(parts)


def unstable_lines(cell, subs) -> list[str]:
    if "NBVAL_IGNORE_OUTPUT" in cell.source or "# stable output:" in cell.source:
        return []
    text = compared_text(cell)
    for pattern, replacement in subs:
        text = pattern.sub(replacement, text)
    return [line for line in text.splitlines() if MEASURED.search(line) and not CONSTANT_LINE.search(line)]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_compared_outputs_hold_no_raw_measurement(path):
    nb = nbformat.read(path, as_version=4)
    subs = sanitizers()
    offenders = {}
    for i, cell in enumerate(c for c in nb.cells if c.cell_type == "code"):
        lines = unstable_lines(cell, subs)
        if lines:
            offenders[f"code cell {i} ({cell.source.splitlines()[0][:50]!r})"] = lines[:3]
    assert not offenders, (
        f"{path.name}: these cells show measured numbers that nbval would compare digit for digit; mark them "
        f"'# NBVAL_IGNORE_OUTPUT' and check what matters with saelib.core.check, or say why they are fixed with a "
        f"'# stable output:' comment: {offenders}"
    )


def test_the_rule_catches_a_raw_measurement():
    subs = sanitizers()
    raw = nbformat.v4.new_code_cell("print(x)", outputs=[nbformat.v4.new_output("stream", text="delta -0.125\n")])
    checked = nbformat.v4.new_code_cell(
        "check('x', x, 0.1, atol=0.01)",
        outputs=[nbformat.v4.new_output("stream", text="x: measured=0.1023\nx ~= 0.1 (atol=0.01): OK\n")],
    )
    ignored = nbformat.v4.new_code_cell("# NBVAL_IGNORE_OUTPUT\nprint(x)", outputs=raw.outputs)
    assert unstable_lines(raw, subs) == ["delta -0.125"]
    assert unstable_lines(checked, subs) == []
    assert unstable_lines(ignored, subs) == []
