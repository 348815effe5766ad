"""Your own text: a folder of ``.txt`` and ``.jsonl`` files as a :class:`Source`, so it goes through the same corpus,
harvest and training steps as the packaged corpora (see docs/data.md, "Your own text").

- ``.txt``: one document per file (its path relative to the folder is the document id); a file of more than
  ``MAX_DOCUMENT_BYTES`` is cut at line ends into documents of at most that size (ids ``a.txt``, ``a.txt#2``, ...);
- ``.jsonl``: one document per line, ``{"text": ...}`` with an optional ``"id"``, unique within the file; empty lines
  are skipped. Lines end at ``\\n`` only, as JSON Lines defines (U+2028 or U+0085 inside a string is text).

Files are read in sorted order as UTF-8 (a leading byte order mark is dropped), streamed line by line, so memory stays
bounded: a line of more than ``MAX_LINE_BYTES`` (1 MiB) or a file of more than ``MAX_FILE_BYTES`` (256 MiB) is a
:class:`BadTextFolderError` naming the file and the cap. So are an empty file, a file with NUL bytes (binary, or
UTF-16), a file that is not UTF-8, a file name that is not UTF-8 and a repeated JSONL id.

The source's ``package`` field carries a sha256 of every file name and content (each name and content length-prefixed,
the content by its own sha256), so editing, adding or removing a file rebuilds the corpus instead of reusing a stale
one. The documents are hashed again as they are read for the corpus, and a folder that changed in between is an error,
so a corpus never holds text other than the text its key names.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

from saelib.text.sources.base import Document, Source, check_source_name

SUFFIXES = (".txt", ".jsonl")
MAX_LINE_BYTES = 1 << 20  # longer lines would need gigabytes inside the tokenizer
MAX_FILE_BYTES = 256 << 20
MAX_DOCUMENT_BYTES = 1 << 20  # .txt files are cut at line ends into documents of at most this size
_UTF16_BOMS = (b"\xff\xfe", b"\xfe\xff")
_UTF16_HINT = "if it is UTF-16, convert it with: iconv -f UTF-16 -t UTF-8 FILE > FILE.utf8"


class BadTextFolderError(ValueError):
    """A text folder that cannot be read as a corpus; the message names the file and the fix."""


def _files(folder: Path) -> list[Path]:
    if not folder.is_dir():
        raise BadTextFolderError(
            f"text folder {folder} does not exist or is not a folder; pass a folder of .txt and/or .jsonl files"
        )
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix in SUFFIXES)
    if not files:
        raise BadTextFolderError(f"text folder {folder} holds no .txt or .jsonl files (searched recursively)")
    for p in files:
        try:
            p.relative_to(folder).as_posix().encode("utf-8")
        except UnicodeEncodeError:
            raise BadTextFolderError(
                f"the file name {str(p)!r} is not UTF-8; rename the file (e.g. with convmv -f latin1 -t utf-8 --notest)"
            ) from None
    return files


def _lines(path: Path, rel: str, h) -> Iterator[tuple[int, str]]:
    """(line number, text) of each line of ``path``, split at ``\\n`` only and decoded; the file is checked against
    the caps and its name and bytes, as read, go into the folder hash ``h``."""
    # the bytes parsed, hashed in the same pass (not file_sha256 afterwards: the file could change in between)
    content, size, n = hashlib.sha256(), 0, 0
    with open(path, "rb") as f:
        while line := f.readline(MAX_LINE_BYTES + 1):
            n, size = n + 1, size + len(line)
            content.update(line)
            if len(line) > MAX_LINE_BYTES:
                raise BadTextFolderError(
                    f"{path}, line {n}: longer than MAX_LINE_BYTES={MAX_LINE_BYTES} bytes; "
                    "split it into shorter lines (or documents)"
                )
            if size > MAX_FILE_BYTES:
                raise BadTextFolderError(
                    f"{path} is larger than MAX_FILE_BYTES={MAX_FILE_BYTES} bytes; split it into several files"
                )
            yield n, _decode(path, n, line)
    name = rel.encode("utf-8")
    h.update(len(name).to_bytes(8, "big") + name + size.to_bytes(8, "big") + content.digest())


def _decode(path: Path, n: int, line: bytes) -> str:
    if n == 1 and line.startswith(_UTF16_BOMS):
        raise BadTextFolderError(
            f"{path} is UTF-16 (it starts with a UTF-16 byte order mark), not UTF-8; {_UTF16_HINT}"
        )
    if b"\0" in line:
        raise BadTextFolderError(
            f"{path}, line {n}: holds NUL bytes, so it is binary or UTF-16, not UTF-8 text; "
            f"remove it from the folder, or {_UTF16_HINT}"
        )
    try:
        return line.decode("utf-8-sig" if n == 1 else "utf-8")
    except UnicodeDecodeError as err:
        raise BadTextFolderError(
            f"{path}, line {n}: not UTF-8 ({err}); convert the file, e.g. if it is Latin-1: "
            "iconv -f latin1 -t utf-8 FILE > FILE.utf8"
        ) from err


def _txt_documents(path: Path, rel: str, h) -> Iterator[Document]:
    parts: list[str] = []
    size, k, text_seen = 0, 1, False
    for _, line in _lines(path, rel, h):
        line = line.replace("\r\n", "\n").replace("\r", "\n")  # universal newlines, as text mode reads them
        length = len(line.encode("utf-8"))
        if parts and size + length > MAX_DOCUMENT_BYTES:
            yield Document(rel if k == 1 else f"{rel}#{k}", "".join(parts))
            parts, size, k = [], 0, k + 1
        parts.append(line)
        size += length
        text_seen = text_seen or bool(line.strip())
    if not text_seen:
        raise BadTextFolderError(f"{path} is empty (no text); remove it or fill it")
    yield Document(rel if k == 1 else f"{rel}#{k}", "".join(parts))


def _jsonl_documents(path: Path, rel: str, h) -> Iterator[Document]:
    seen: dict[str, int] = {}
    for n, line in _lines(path, rel, h):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except (json.JSONDecodeError, RecursionError) as err:
            detail = err.msg if isinstance(err, json.JSONDecodeError) else "nested too deeply"
            raise BadTextFolderError(
                f'{path}, line {n}: not JSON ({detail}); each line must be an object like {{"text": "..."}}'
            ) from None
        if not isinstance(row, dict) or not isinstance(row.get("text"), str):
            raise BadTextFolderError(f'{path}, line {n}: needs a string field "text", got {line[:80]!r}')
        doc_id = str(row.get("id", n))
        if doc_id in seen:
            raise BadTextFolderError(
                f"{path}, line {n}: id {doc_id!r} is already used on line {seen[doc_id]}; ids "
                "must be unique within a file"
            )
        seen[doc_id] = n
        yield Document(f"{rel}/{doc_id}", row["text"])
    if not seen:
        raise BadTextFolderError(f"{path} holds no documents (no non-empty lines); remove it or fill it")


def _documents(folder: Path, h) -> Iterator[Document]:
    """Every document under ``folder``, in order; every file's name and bytes, as read, go into ``h``."""
    for p in _files(folder):
        rel = p.relative_to(folder).as_posix()
        yield from (_txt_documents if p.suffix == ".txt" else _jsonl_documents)(p, rel, h)


def text_folder(folder: str | Path, name: str | None = None) -> Source:
    """A source reading every ``.txt``/``.jsonl`` file under ``folder``; ``name`` (a plain name: letters, digits,
    ``_ . + -`` and spaces, no path) defaults to the folder's name. The folder is read once here, so a bad file is
    reported at once; see the module docstring for the caps (``MAX_LINE_BYTES``, ``MAX_FILE_BYTES``)."""
    folder = Path(folder).expanduser().resolve()
    name = check_source_name(name or folder.name)
    h = hashlib.sha256()
    for _ in _documents(folder, h):
        pass
    digest = h.hexdigest()

    def documents() -> Iterator[Document]:
        again = hashlib.sha256()
        yield from _documents(folder, again)
        if again.hexdigest() != digest:
            raise BadTextFolderError(
                f"the files under {folder} changed after text_folder() read them; call "
                "text_folder() again once they are final"
            )

    return Source(
        name,
        "user text",
        "local",
        f"{folder}@sha256:{digest[:16]}",
        f"a folder of .txt/.jsonl files at {folder}",
        f"user text from {folder}",
        documents,
    )
