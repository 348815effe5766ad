"""Relative links in README.md and docs/*.md point at files that exist, and their #anchors at headings there."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from saelib.core.paths import REPO_ROOT

LINK = re.compile(r"(?<!!)\[(?:[^\]\\]|\\.)*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
FENCE = re.compile(r"^[ \t]*(```|~~~).*?^[ \t]*\1", re.M | re.S)  # fenced blocks, also indented in a list
INLINE_CODE = re.compile(r"`[^`\n]*`")
HEADING = re.compile(r"^#{1,6}\s+(.+?)\s*#*\s*$", re.M)
SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*:", re.I)


def markdown_files() -> list[Path]:
    return [REPO_ROOT / "README.md", *sorted((REPO_ROOT / "docs").glob("*.md"))]


def prose(text: str) -> str:
    """``text`` without fenced code blocks and inline code, where brackets are not links."""
    return INLINE_CODE.sub("", FENCE.sub("", text))


def links(text: str) -> list[str]:
    """Targets of the inline links ``[text](target)`` in the prose of ``text`` (images left out)."""
    return LINK.findall(prose(text))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: markup dropped, lowercase, punctuation except '-' and '_' dropped, spaces to
    '-'."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link in a heading keeps its text
    text = re.sub(r"<[^>]+>", "", text).replace("`", "").lower()
    text = "".join(ch for ch in text if ch.isalnum() or ch in " -_")
    return text.replace(" ", "-")


def anchors(path: Path) -> set[str]:
    """Every heading anchor of a markdown file, repeats numbered as GitHub numbers them (``name``, ``name-1``...)."""
    seen: dict[str, int] = {}
    out = set()
    for heading in HEADING.findall(FENCE.sub("", path.read_text(encoding="utf-8"))):
        base = slug(heading)
        n = seen.get(base, 0)
        seen[base] = n + 1
        out.add(base if n == 0 else f"{base}-{n}")
    return out


def broken_links(path: Path, root: Path = REPO_ROOT) -> list[str]:
    """What is wrong with each relative link of ``path``, one line per broken link (paths shown from ``root``)."""
    problems = []
    for target in links(path.read_text(encoding="utf-8")):
        if SCHEME.match(target) or target.startswith("//"):
            continue  # http:, https:, mailto: ... are not checked offline
        file_part, _, anchor = target.partition("#")
        dest = (path.parent / file_part).resolve() if file_part else path
        if not dest.exists():
            shown = dest.relative_to(root) if dest.is_relative_to(root) else dest
            problems.append(f"{target}: no file {shown}")
            continue
        if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
            problems.append(f"{target}: no heading with anchor #{anchor} in {dest.name}")
    return problems


@pytest.mark.parametrize("path", markdown_files(), ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_relative_links_resolve(path):
    problems = broken_links(path)
    assert not problems, f"{path.relative_to(REPO_ROOT)} has broken links:\n" + "\n".join(problems)


def test_readme_links_to_docs():
    targets = links((REPO_ROOT / "README.md").read_text(encoding="utf-8"))
    assert any(t.startswith("docs/metrics.md") for t in targets)
    assert any("#" in t and t.startswith("docs/") for t in targets)


def test_slug_follows_githubs_rule():
    assert slug("Options of `./run_all.sh`") == "options-of-run_allsh"
    assert slug("Synthetic benchmark: MCC, F1, shrinkage") == "synthetic-benchmark-mcc-f1-shrinkage"
    assert slug("Architectures beside the papers'") == "architectures-beside-the-papers"
    assert slug("bench/") == "bench"
    assert slug("FVU (fraction of variance unexplained)") == "fvu-fraction-of-variance-unexplained"


def test_a_missing_file_and_a_missing_anchor_are_caught(tmp_path):
    tmp_path = tmp_path.resolve()
    docs = tmp_path / "docs"
    docs.mkdir()
    (docs / "a.md").write_text("# A\n\n## Two words\n\n## Two words\n")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#two-words) [ok](docs/a.md#two-words-1) [ok](#top) [web](https://example.com/x#y)\n"
        "[gone](docs/missing.md) [bad anchor](docs/a.md#three-words) `[code](docs/missing.md)` [x](#not-a-heading)\n"
        "```\n[fenced](docs/missing.md)\n# not a heading\n```\n1. item\n   ```\n   [indented](docs/missing.md)\n   ```\n# Top\n"
    )
    assert broken_links(page, root=tmp_path) == [
        f"docs/missing.md: no file {Path('docs/missing.md')}",
        "docs/a.md#three-words: no heading with anchor #three-words in a.md",
        "#not-a-heading: no heading with anchor #not-a-heading in README.md",
    ]
