"""README's verdict table is the one the committed notebooks show, and the parser reads pandas' rendering of it."""

from __future__ import annotations

import importlib.util
import json
import re

import nbformat
import pandas as pd
import pytest

from saelib.core.paths import REPO_ROOT
from saelib.core.readme_verdicts import (
    BEGIN,
    END,
    MarkersError,
    MissingVerdictsError,
    NotebookVerdict,
    block_diff,
    collect,
    markdown_table,
    notebook_verdicts,
    readme_block,
    with_block,
)
from saelib.core.verdicts import Verdict, verdict_table

RULES = {
    "rule": "reproduced if the interval lies above 0",
    "precondition": "none: nothing checks that the test can decide",
    "negative_control": "none that can fail: a random direction | cannot",
    "positive_control": "a known <feature> passes (checked)",
    "unit": "prompts, not clustered by name",
}
ROWS = [
    Verdict(
        "claim with | a pipe", "Fig. 1 <b>", "0.5 [0.4, 0.6] (n=10) & more", "partly", "why " * 30 + "END", **RULES
    ),
    Verdict("second claim", "", "not measured", "not testable here", "no model", **RULES),
]
LEGACY = ("claim", "paper", "ours", "verdict", "why")  # a verdict table shown before the rule fields existed
VERDICT_LINE = re.compile(r"^verdict · (.*): (reproduced|partly|not reproduced|not testable here)$", re.M)


def _html(rows: list[Verdict]) -> str:
    """The text/html output ``show_verdicts`` leaves in a notebook."""
    with pd.option_context("display.max_colwidth", None):
        return verdict_table(rows)._repr_html_()


def _notebook(tmp_path, name: str, outputs: list, source: str = "show_verdicts(verdicts)"):
    nb = nbformat.v4.new_notebook()
    nb.cells += [nbformat.v4.new_markdown_cell("## Verdict"), nbformat.v4.new_code_cell(source, outputs=outputs)]
    path = tmp_path / name
    nbformat.write(nb, path)
    return path


def _display(html: str, plain: str = "table"):
    return nbformat.v4.new_output("display_data", data={"text/html": html, "text/plain": plain})


def test_readme_table_is_the_notebooks():
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    diff = block_diff(readme, markdown_table(collect()))
    assert not diff, f"README's verdict table differs from the notebooks' (scripts/readme_verdicts.py --write)\n{diff}"


@pytest.mark.parametrize("path", sorted((REPO_ROOT / "notebooks").glob("[0-9][0-9]_*.ipynb")), ids=lambda p: p.name)
def test_every_checked_verdict_line_has_its_row(path):
    cells = json.loads(path.read_text(encoding="utf-8"))["cells"]
    stdout = "".join(
        "".join(o.get("text", "")) for c in cells for o in c.get("outputs", []) if o.get("name") == "stdout"
    )
    lines = VERDICT_LINE.findall(stdout) if "print_verdicts(" in json.dumps(cells) else []
    assert [(v.claim, v.verdict) for v in notebook_verdicts(path)] == lines


def test_parser_reads_the_rows_of_a_synthetic_notebook(tmp_path):
    other = pd.DataFrame({"SAE": [0.5]}, index=pd.Index([2], name="layer"))._repr_html_()
    outputs = [
        nbformat.v4.new_output("stream", text="verdict · second claim: not testable here\n"),
        _display(other),
        _display(_html(ROWS)),
    ]
    path = _notebook(tmp_path, "07_synthetic.ipynb", outputs)
    assert notebook_verdicts(path) == ROWS
    _notebook(tmp_path, "00_no_verdicts.ipynb", [_display(other)], source="display(df)")
    assert collect(tmp_path) == [NotebookVerdict("07_synthetic.ipynb", r) for r in ROWS]


def test_parser_reads_tables_from_before_the_rule_fields(tmp_path):
    """Notebooks executed before the rule fields existed show five-field tables: read, with the rule fields empty."""
    old = pd.DataFrame([{f: getattr(r, f) for f in LEGACY} for r in ROWS]).set_index("claim")
    with pd.option_context("display.max_colwidth", None):
        html = old._repr_html_()
    path = _notebook(tmp_path, "07_old.ipynb", [_display(html), _display(_html(ROWS[:1]))])
    empty = dict.fromkeys(RULES, "")
    expected = [Verdict(*(getattr(r, f) for f in LEGACY), **empty) for r in ROWS] + ROWS[:1]
    assert notebook_verdicts(path) == expected
    assert markdown_table([NotebookVerdict("07_old.ipynb", v) for v in expected[:2]]) == markdown_table(
        [NotebookVerdict("07_old.ipynb", r) for r in ROWS]
    )


def test_a_table_with_other_columns_is_not_a_verdict_table(tmp_path):
    other = pd.DataFrame([{f: getattr(r, f) for f in LEGACY[:4]} for r in ROWS]).set_index("claim")
    path = _notebook(tmp_path, "07_other.ipynb", [_display(other._repr_html_())], source="display(df)")
    assert notebook_verdicts(path) == []


def test_unexecuted_notebook_is_an_error(tmp_path):
    path = _notebook(tmp_path, "02_unrun.ipynb", [])
    with pytest.raises(MissingVerdictsError, match="02_unrun.ipynb"):
        notebook_verdicts(path)


def test_markdown_table_escapes_cells_and_links_the_notebook():
    table = markdown_table([NotebookVerdict("07_synthetic.ipynb", r) for r in ROWS])
    lines = table.splitlines()
    assert lines[0] == "| claim | paper | ours (95% intervals) | verdict | why | notebook |"  # no rule columns
    assert all(line.count(" | ") == 5 for line in lines[2:]) and "reproduced if" not in table
    assert lines[2].startswith(r"| claim with \| a pipe | Fig. 1 &lt;b> | 0.5 [0.4, 0.6] (n=10) & more | partly | why ")
    assert lines[2].endswith("END | [07](notebooks/07_synthetic.ipynb) |")
    link = "[07](notebooks/07_synthetic.ipynb)"
    assert lines[3] == f"| second claim |  | not measured | not testable here | no model | {link} |"


def test_block_is_replaced_between_markers_only():
    readme = f"# T\n\nprose\n\n{BEGIN}\n| old |\n{END}\n\n## Next\n"
    new = with_block(readme, "| new |")
    assert new == f"# T\n\nprose\n\n{BEGIN}\n| new |\n{END}\n\n## Next\n"
    assert readme_block(new) == "| new |" and not block_diff(new, "| new |")
    assert "-| old |" in block_diff(readme, "| new |")
    with pytest.raises(MarkersError):
        readme_block(f"{END}\n{BEGIN}\n")


def test_script_checks_and_writes(tmp_path, capsys):
    spec = importlib.util.spec_from_file_location("readme_verdicts", REPO_ROOT / "scripts" / "readme_verdicts.py")
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    _notebook(tmp_path, "07_synthetic.ipynb", [_display(_html(ROWS))])
    readme = tmp_path / "README.md"
    readme.write_text(f"prose\n{BEGIN}\n| old |\n{END}\ntail\n")
    args = ["--readme", str(readme), "--notebooks", str(tmp_path)]
    assert script.main(["--check", *args]) == 1
    assert "-| old |" in capsys.readouterr().err
    assert script.main(["--write", *args]) == 0
    assert script.main(["--check", *args]) == 0
    text = readme.read_text()
    assert text.startswith(f"prose\n{BEGIN}\n| claim |") and text.endswith(f"|\n{END}\ntail\n")
