"""Your own text: a folder of ``.txt`` and ``.jsonl`` files as a :class:`Source`, so it goes through the same corpus,
harvest and training steps as the packaged corpora (see the README, "Your own text").

- ``.txt``: one document per file (its path relative to the folder is the document id);
- ``.jsonl``: one document per line, ``{"text": ...}`` with an optional ``"id"``; empty lines are skipped.
Files are read in sorted order as UTF-8. The source's ``package`` field carries a sha256 of every file name and
content, so editing, adding or removing a file rebuilds the corpus instead of reusing a stale one.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from saelib.text.sources.base import Document, Source

SUFFIXES = (".txt", ".jsonl")


class BadTextFolderError(ValueError):
    """A text folder that cannot be read as a corpus; the message names the file and the fix."""


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BadTextFolderError(f"text folder {folder} does not exist or is not a folder; pass a folder of .txt "
                                 f"and/or .jsonl files")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise BadTextFolderError(f"text folder {folder} holds no .txt or .jsonl files (searched recursively)")
    return files


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        raise BadTextFolderError(f"{path} is not UTF-8 ({err}); convert it, e.g. iconv -f latin1 -t utf-8") from err


def _jsonl_documents(path: Path, folder: Path) -> Iterator[Document]:
    rel = path.relative_to(folder).as_posix()
    for n, line in enumerate(_read(path).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as err:
            raise BadTextFolderError(f"{path}, line {n}: not JSON ({err.msg}); each line must be an object like "
                                     f'{{"text": "..."}}') from err
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise BadTextFolderError(f'{path}, line {n}: needs a string field "text", got {line[:80]!r}')
        yield Document(f"{rel}/{row.get('id', n)}", row["text"])


def text_folder(folder: str | Path, name: str | None = None) -> Source:
    """A source reading every ``.txt``/``.jsonl`` file under ``folder``; ``name`` defaults to the folder's name."""
    folder = Path(folder).expanduser().resolve()
    h = hashlib.sha256()
    for p in _files(folder):
        h.update(p.relative_to(folder).as_posix().encode() + b"\0" + p.read_bytes() + b"\0")
    name = name or folder.name

    def documents() -> Iterator[Document]:
        for p in _files(folder):
            if p.suffix == ".txt":
                yield Document(p.relative_to(folder).as_posix(), _read(p))
            else:
                yield from _jsonl_documents(p, folder)

    return Source(name, "user text", "local", f"{folder}@sha256:{h.hexdigest()[:16]}",
                  f"a folder of .txt/.jsonl files at {folder}", f"user text from {folder}", documents)
