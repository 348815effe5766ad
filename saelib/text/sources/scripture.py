"""The World English Bible (SWORD zText module via pysword); one document per chapter."""

from __future__ import annotations

import functools
import html
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from saelib.text.sources.archives import deb_files, find_archive
from saelib.text.sources.base import Document
from saelib.text.sources.cleaning import normalise

_NOTE = re.compile(r"<note\b.*?</note>", re.DOTALL)
_NOTE_MARK = "\x00"  # where a note was, until the tags around it are gone
_OSIS_PARA = re.compile(
    r'<div\b(?=[^>]*\btype="x-p")(?=[^>]*\bsID=)[^>]*>|<lg\b[^>]*\bsID=[^>]*>|<lb\b[^>]*>'
    r"|<(?:title|speaker|list)\b[^>]*>|</(?:title|speaker|list)>"
)
_OSIS_LINE = re.compile(r"<l\b[^>]*\bsID=[^>]*>|<item\b[^>]*>")
_OSIS_GLOSSARY = re.compile(r'<div\b[^>]*\btype="glossary"', re.DOTALL)


def remove_notes(osis: str) -> str:
    """Replace footnotes by a space (pysword's ``clean=True`` deletes them and glues words: "Godcreated"), or by
    nothing where punctuation or a space follows once the other tags are gone. Tags must still be present here, so
    the note's place is kept as a marker that :func:`clean_osis` resolves."""
    return _NOTE.sub(_NOTE_MARK, osis)


def _resolve_note_marks(text: str) -> str:
    text = re.sub(f"{_NOTE_MARK}+(?=[\\s,.;:!?’”)\\]]|$)", "", text)
    return text.replace(_NOTE_MARK, " ")


def clean_osis(osis: str) -> str:
    """OSIS XML of a chapter -> text: notes out, paragraph/poetry-line markers -> newlines, other tags dropped."""
    text = _OSIS_GLOSSARY.split(osis, maxsplit=1)[0]  # WEB appends its glossary to Revelation 22
    text = _OSIS_LINE.sub("\n", _OSIS_PARA.sub("\n\n", remove_notes(text)))
    text = _resolve_note_marks(html.unescape(re.sub(r"<[^>]*>", "", text)))
    text = re.sub(r"[ \t]+", " ", text)
    # "coins ?" where a note sat between two spaces in the source
    text = re.sub(r"(?<=[\w’”]) ([,.;:!?])(?=[\s’”]|$)", r"\1", text)
    text = re.sub(r" ?\n ?", "\n", text)
    return normalise(re.sub(r"\n\n+", "\n\n", text))


def _fast_ztext(bible: Any) -> Any:
    """pysword decompresses a whole zText block for every verse (~50 s for the Bible); caching blocks makes it 0.2 s."""
    if hasattr(bible, "_decompressed_text"):
        bible._decompressed_text = functools.lru_cache(maxsize=16)(bible._decompressed_text)
    return bible


def read_bible() -> Iterator[Document]:
    """WEB chapters ``<OSIS book>/NNN`` (deuterocanon included; empty chapters of the versification skipped).

    pysword needs a directory, so the module's few files go to a temporary folder that is removed afterwards."""
    from pysword.modules import SwordModules

    deb = find_archive("debian", "sword-text-web_*.deb")
    with tempfile.TemporaryDirectory(prefix="saelib-sword-") as tmp:
        for name, blob in deb_files(deb, r"usr/share/sword/.*"):
            (Path(tmp) / name).parent.mkdir(parents=True, exist_ok=True)
            (Path(tmp) / name).write_bytes(blob)
        modules = SwordModules(str(Path(tmp) / "usr/share/sword"))
        modules.parse_modules()
        bible = _fast_ztext(modules.get_bible_from_module("engWEB2015eb"))
        for testament in bible.get_structure().get_books().values():
            for book in testament:
                for ch in range(1, book.num_chapters + 1):
                    raw = " ".join(bible.get_iter(books=[book.osis_name], chapters=[ch], clean=False))
                    if text := clean_osis(raw):
                        yield Document(f"{book.osis_name}/{ch:03d}", text)
