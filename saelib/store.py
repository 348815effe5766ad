"""On-disk, memory-mapped activation store.

Layout of ``artifacts/activations/<name>-<hash of config>/``:

- ``config.json``: model, hooks, widths, dtype, corpus, split, context length, number of contexts, seed.
- ``tokens.npy`` int64 [n_contexts, context_length], ``context_source.npy``, ``context_offset.npy``: the contexts.
  Row ``r`` of every hook file is context ``r // context_length``, position ``r % context_length``, so any row
  traces back to its context, position, token and source document window.
- ``<hook>.npy`` [n_rows, width] in ``dtype`` (float16 by default: half the disk of float32; harvest checks
  that nothing overflowed), a standard ``.npy`` so ``np.load(mmap_mode="r")`` reads it.
- ``progress.json``: contexts written so far (updated atomically after each batch is on disk).
- ``COMPLETE``: written last. A store without it is incomplete (a killed harvest) and is never read as valid;
  ``saelib.harvest`` resumes it from ``progress.json``.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from saelib.artifacts import read_json

COMPLETE = "COMPLETE"


class IncompleteStoreError(RuntimeError):
    pass


def hook_file(directory: Path, hook: str) -> Path:
    return Path(directory) / f"{hook}.npy"


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
                "Run saelib.harvest(...) with the same arguments to resume it, or delete the folder to rebuild."
            )
        self.config = read_json(self.dir / "config.json")
        self.hooks: list[str] = list(self.config["hooks"])
        self.tokens = np.load(self.dir / "tokens.npy", mmap_mode="r")
        self.context_length = int(self.config["context_length"])
        self.n_rows = self.tokens.shape[0] * self.context_length
        for hook in self.hooks:
            arr = self.activations(hook)
            expected = (self.n_rows, self.config["widths"][hook])
            if arr.shape != expected:
                raise IncompleteStoreError(f"{hook_file(self.dir, hook)} has shape {arr.shape}, expected {expected}; "
                                           "the store is corrupt: delete the folder and harvest again")

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

    def batches(self, hook: str, batch_size: int, seed: int = 0, block_rows: int = 8192, buffer_blocks: int = 8,
                max_rows: int | None = None, row_mask: np.ndarray | None = None,
                dtype: torch.dtype = torch.float32) -> Iterator[torch.Tensor]:
        """One shuffled pass over the rows, as [batch_size, width] tensors (the last batch may be smaller).

        Never loads the store: a buffer of ``buffer_blocks`` randomly chosen contiguous blocks is read, shuffled
        and served, then the next. Contexts were already shuffled across sources when packed, so block-level plus
        in-buffer shuffling mixes sources and positions. ``row_mask`` [n_rows] (bool) keeps only some rows.
        Deterministic for a seed."""
        arr = self.activations(hook)
        n = min(self.n_rows, max_rows or self.n_rows)
        rng = np.random.default_rng(seed)
        starts = rng.permutation(np.arange(0, n, block_rows))
        for i in range(0, len(starts), buffer_blocks):
            blocks = [slice(s, min(s + block_rows, n)) for s in starts[i : i + buffer_blocks]]
            buf = np.concatenate([np.asarray(arr[b]) for b in blocks])
            if row_mask is not None:
                buf = buf[np.concatenate([row_mask[b] for b in blocks])]
            buf = torch.from_numpy(buf[rng.permutation(len(buf))]).to(dtype)
            yield from buf.split(batch_size)

    def sample(self, hook: str, n: int, seed: int = 0) -> torch.Tensor:
        """``n`` random rows (sorted reads from the memmap), as float32."""
        rng = np.random.default_rng(seed)
        rows = np.sort(rng.choice(self.n_rows, size=min(n, self.n_rows), replace=False))
        return torch.from_numpy(np.asarray(self.activations(hook)[rows], dtype=np.float32))
