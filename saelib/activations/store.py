"""On-disk, memory-mapped activation store.

Layout of ``artifacts/activations/<name>-<hash of config>/``:

- ``config.json``: model, hooks, widths, dtype, corpus, split, context length, number of contexts, seed.
- ``tokens.npy`` int64 [n_contexts, context_length], ``context_source.npy``, ``context_offset.npy``: the contexts.
  Row ``r`` of every hook file is context ``r // context_length``, position ``r % context_length``, so any row
  traces back to its context, position, token and source document window.
- ``<hook>.npy`` [n_rows, width] in ``dtype`` (float16 by default: half the disk of float32; harvest checks
  that nothing overflowed), a standard ``.npy`` so ``np.load(mmap_mode="r")`` reads it.
- ``progress.json``: contexts written so far (updated atomically after each batch is on disk).
- ``checksums.json``: sha256 of every file above (hooks hashed as their rows were written), written just before
  ``COMPLETE``. Opening a store checks only file sizes (cheap); :meth:`ActivationStore.verify` rereads everything.
- ``COMPLETE``: written last. A store without it is incomplete (a killed harvest) and is never read as valid;
  ``saelib.activations.harvest`` resumes it from ``progress.json``.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from saelib.core.artifacts import atomic_write_json, file_sha256, read_json

COMPLETE = "COMPLETE"
CHECKSUMS = "checksums.json"
CONTEXT_FILES = ("tokens.npy", "context_source.npy", "context_offset.npy")


class IncompleteStoreError(RuntimeError):
    pass


class CorruptStoreError(IncompleteStoreError):
    """A file of a finished store no longer has the contents recorded at the end of its harvest."""


def hook_file(directory: Path, hook: str) -> Path:
    return Path(directory) / f"{hook}.npy"


def npy_problem(path: Path, shape: tuple[int, int], dtype: str) -> str | None:
    """What makes ``path`` not a complete ``.npy`` array of ``shape`` and ``dtype``, or None. Reads the header and
    the file size only, so it is cheap on any store (a memory map of a short file fails with a raw mmap error)."""
    try:
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            header_shape, fortran, header_dtype = read(f)
            offset = f.tell()
    except FileNotFoundError:
        return "is missing"
    except (OSError, ValueError, EOFError) as err:
        return f"has no valid .npy header ({err})"
    if header_shape != tuple(shape) or header_dtype != np.dtype(dtype) or fortran:
        return f"holds {header_dtype} {header_shape}, expected {dtype} {tuple(shape)}"
    expected = offset + math.prod(shape) * np.dtype(dtype).itemsize
    if (size := Path(path).stat().st_size) != expected:
        return (
            f"is {size} bytes, expected {expected} ({offset} bytes of header + {shape[0]} rows x {shape[1]} "
            f"x {np.dtype(dtype).itemsize} bytes)"
        )
    return None


@dataclass(frozen=True)
class Provenance:
    context: np.ndarray  # [n] index of the context
    position: np.ndarray  # [n] position inside the context
    token: np.ndarray  # [n] token id at that position
    source: list[str]  # [n] corpus source of the context


class ActivationStore:
    """Read side of a finished harvest: memory-mapped arrays, shuffled batches, provenance."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        if not (self.dir / COMPLETE).exists():
            raise IncompleteStoreError(
                f"Activation store {self.dir} is incomplete (no {COMPLETE} marker: the harvest was interrupted). "
                "Run saelib.activations.harvest(...) with the same arguments to resume it, or delete the folder to rebuild."
            )
        for name in ("config.json", *CONTEXT_FILES):
            if not (self.dir / name).exists():
                raise self._damaged(f"{name} is missing")
        self.config = read_json(self.dir / "config.json")
        self.hooks: list[str] = list(self.config["hooks"])
        self.tokens = np.load(self.dir / "tokens.npy", mmap_mode="r")
        self.context_length = int(self.config["context_length"])
        self.n_rows = self.tokens.shape[0] * self.context_length
        for hook in self.hooks:
            if problem := npy_problem(hook_file(self.dir, hook), (self.n_rows, self.width(hook)), self.config["dtype"]):
                raise self._damaged(f"{hook_file(self.dir, hook).name} {problem}")

    def _damaged(self, problem: str, error: type[IncompleteStoreError] = IncompleteStoreError) -> Exception:
        return error(
            f"Activation store {self.dir} is damaged: {problem} (a file was deleted, truncated or changed "
            "after the harvest). Delete the folder and run the harvest again."
        )

    def files(self) -> list[Path]:
        """Every data file: the hook arrays and the context arrays."""
        return [hook_file(self.dir, hook) for hook in self.hooks] + [self.dir / name for name in CONTEXT_FILES]

    def verify(self) -> None:
        """Reread every data file and check it against ``checksums.json`` (slow: reads the whole store); raises
        :class:`CorruptStoreError` naming the first file whose contents changed since the harvest."""
        if not (self.dir / CHECKSUMS).exists():
            raise IncompleteStoreError(
                f"Activation store {self.dir} has no {CHECKSUMS} (it was harvested before "
                "checksums were recorded), so it cannot be verified. Call record_checksums() "
                "once to record its current contents, or delete the folder and harvest again."
            )
        recorded = read_json(self.dir / CHECKSUMS)["sha256"]
        for path in self.files():
            if file_sha256(path) != recorded.get(path.name):
                raise self._damaged(f"{path.name} does not match its sha256 in {CHECKSUMS}", CorruptStoreError)

    def record_checksums(self) -> None:
        """Record the current contents of a store harvested before checksums existed (trusting them as they are)."""
        write_checksums(self.dir, {path.name: file_sha256(path) for path in self.files()})

    def __repr__(self) -> str:
        return f"ActivationStore({self.dir.name}, hooks={self.hooks}, rows={self.n_rows}, dtype={self.config['dtype']})"

    def activations(self, hook: str) -> np.ndarray:
        """Memory-mapped [n_rows, width] array (nothing is read until indexed)."""
        if hook not in self.config["hooks"]:
            raise KeyError(f"hook {hook!r} is not in this store; it has {self.config['hooks']}")
        return np.load(hook_file(self.dir, hook), mmap_mode="r")

    def width(self, hook: str) -> int:
        return int(self.config["widths"][hook])

    def provenance(self, rows: np.ndarray) -> Provenance:
        rows = np.asarray(rows)
        ctx, pos = np.divmod(rows, self.context_length)
        src_idx = np.load(self.dir / "context_source.npy")[ctx]
        names = self.config["sources"]
        return Provenance(ctx, pos, np.asarray(self.tokens[ctx, pos]), [names[i] for i in src_idx])

    def batches(
        self,
        hook: str,
        batch_size: int,
        seed: int = 0,
        block_rows: int = 8192,
        buffer_blocks: int = 8,
        max_rows: int | None = None,
        row_mask: np.ndarray | None = None,
        dtype: torch.dtype = torch.float32,
    ) -> Iterator[torch.Tensor]:
        """One shuffled pass over the rows, as [batch_size, width] tensors (the last batch may be smaller).

        Never loads the store: a buffer of ``buffer_blocks`` randomly chosen contiguous blocks is read, shuffled
        and served, then the next. Contexts were already shuffled across sources when packed, so block-level plus
        in-buffer shuffling mixes sources and positions. ``row_mask`` [n_rows] (bool) keeps only some rows.
        Deterministic for a seed; ``batch_rows`` gives the same batches as row indices."""
        arr = self.activations(hook)
        for blocks, order in self._buffers(seed, block_rows, buffer_blocks, max_rows, row_mask):
            buf = np.concatenate([np.asarray(arr[b]) for b in blocks])[order]
            yield from torch.from_numpy(buf).to(dtype).split(batch_size)

    def batch_rows(
        self,
        batch_size: int,
        seed: int = 0,
        block_rows: int = 8192,
        buffer_blocks: int = 8,
        max_rows: int | None = None,
        row_mask: np.ndarray | None = None,
    ) -> Iterator[np.ndarray]:
        """The row indices [batch] of each batch ``batches`` yields with these arguments, without reading any
        activation (training from rows held on a GPU gathers them: the same batches as reading the disk)."""
        for blocks, order in self._buffers(seed, block_rows, buffer_blocks, max_rows, row_mask):
            rows = np.concatenate([np.arange(b.start, b.stop) for b in blocks])[order]
            yield from (rows[i : i + batch_size] for i in range(0, len(rows), batch_size))

    def _buffers(
        self, seed: int, block_rows: int, buffer_blocks: int, max_rows: int | None, row_mask: np.ndarray | None
    ) -> Iterator[tuple[list[slice], np.ndarray]]:
        """Per buffer: its blocks, and the shuffled order of its kept rows as positions in the blocks' concatenation
        (buffers with no kept rows are skipped, as ``saelib.dictionaries.train.count_batches`` counts them)."""
        n = min(self.n_rows, max_rows or self.n_rows)
        rng = np.random.default_rng(seed)
        starts = rng.permutation(np.arange(0, n, block_rows))
        for i in range(0, len(starts), buffer_blocks):
            blocks = [slice(s, min(s + block_rows, n)) for s in starts[i : i + buffer_blocks]]
            kept = np.arange(sum(b.stop - b.start for b in blocks))
            if row_mask is not None:
                kept = kept[np.concatenate([row_mask[b] for b in blocks])]
            order = kept[rng.permutation(len(kept))]
            if len(order):
                yield blocks, order

    def rows_on(
        self, hook: str, device: str | torch.device, max_rows: int | None = None, block_rows: int = 65_536
    ) -> torch.Tensor:
        """The first ``max_rows`` (default all) rows of ``hook`` copied to ``device`` [n, width] in the store's dtype
        (float16: half the memory of float32), block by block so host memory holds one block at a time."""
        arr = self.activations(hook)
        n = min(self.n_rows, max_rows or self.n_rows)
        out = torch.empty((n, arr.shape[1]), dtype=getattr(torch, arr.dtype.name), device=device)
        for i in range(0, n, block_rows):
            out[i : i + block_rows] = torch.from_numpy(np.array(arr[i : min(i + block_rows, n)])).to(device)
        return out

    def sample(self, hook: str, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` random rows (sorted reads from the memmap), as float32."""
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(self.n_rows, size=min(n, self.n_rows), replace=False))
        return torch.from_numpy(np.asarray(self.activations(hook)[rows], dtype=np.float32))


def write_checksums(directory: Path, sha256: dict[str, str]) -> None:
    atomic_write_json(Path(directory) / CHECKSUMS, {"sha256": sha256})
