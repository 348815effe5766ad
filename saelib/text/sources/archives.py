"""Opening registry archives in pure Python, in memory: Debian ``.deb`` (``ar`` + tar), npm ``.tgz``, installed wheels, R lazy-load data and pinned pickles; nothing is unpacked to disk or installed."""

from __future__ import annotations

import gzip
import importlib.util
import io
import re
import tarfile
import warnings
import zlib
from pathlib import Path
from typing import Any

from saelib.core.paths import sources_dir
from saelib.text.sources.base import ArchiveNotFound


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
        import zstandard
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

    index = _read_r(gzip.decompress(rdx))["variables"]
    return {str(k): _read_r(zlib.decompress(rdb[int(o) + 4 : int(o) + int(n)])) for k, (o, n) in index.items()}
