"""Text cleaning shared by the readers: newline and whitespace normalisation, paragraphs, Project Gutenberg boilerplate, TeX quotes."""

from __future__ import annotations

import re


def normalise(text: str) -> str:
    """Unix newlines, no BOM / NBSP / trailing blanks, at most one blank line in a row: the same surface everywhere."""
    text = text.replace("\r\n", "\n").replace("\r", "\n").replace("\ufeff", "").replace("\u00a0", " ")
    text = re.sub(r"[ \t]+\n", "\n", text)
    return re.sub(r"\n{3,}", "\n\n", text).strip()


def paragraphs(text: str) -> list[str]:
    """Blank-line separated blocks of ``text``."""
    return [p for p in re.split(r"\n\s*\n", text) if p.strip()]


def unwrap(text: str) -> str:
    """Join hard-wrapped lines within each paragraph: the ~70-column breaks of Gutenberg texts carry no meaning."""
    return "\n\n".join(re.sub(r"\s+", " ", p).strip() for p in paragraphs(text))


_GUTENBERG_START = re.compile(r"^\*\*\* ?START OF (?:THE|THIS) PROJECT GUTENBERG.*$", re.MULTILINE | re.IGNORECASE)
_GUTENBERG_END = re.compile(
    r"^(?:\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg).*$",
    re.MULTILINE | re.IGNORECASE,
)
_BOILERPLATE = re.compile(r"Project Gutenberg|Gutenberg Project|\be-?text(?:s)?\b|\beBook\b", re.IGNORECASE)


def strip_gutenberg(text: str) -> str:
    """Drop Project Gutenberg header/licence (outside the START/END markers) and credit paragraphs mentioning it."""
    if m := _GUTENBERG_START.search(text):
        text = text[m.end() :]
    if m := _GUTENBERG_END.search(text):
        text = text[: m.start()]
    return "\n\n".join(p for p in paragraphs(text) if not _BOILERPLATE.search(p))


def tex_quotes(text: str) -> str:
    """Some Gutenberg texts open quotes with a backtick (`rams'); a backtick is never meant literally in them."""
    return text.replace("`", "'")


def strip_italic_underscores(text: str) -> str:
    """Gutenberg marks italics as ``_word_``; remove underscores at word edges (none of these texts has a_b)."""
    return re.sub(r"(?<!\w)_+|_+(?!\w)", "", text)
