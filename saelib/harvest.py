"""Harvest activations: one forward pass per batch, stopped at the deepest requested layer, every hook streamed
to its own on-disk file (see ``saelib.store`` for the layout). Interrupted harvests resume where they stopped."""

from __future__ import annotations

import hashlib
import os
import shutil
from dataclasses import dataclass

import numpy as np
import torch
from saelib.progress import progress as progress_bar

from saelib.artifacts import as_json, atomic_save_npy, atomic_write_bytes, atomic_write_json, keyed_dir, read_json
from saelib.corpus import MIXTURE, Corpus, PackedContexts, build_corpus, pack_contexts
from saelib.model import model_name, stop_layer, validate_hooks
from saelib.profiles import Profile
from saelib.store import COMPLETE, ActivationStore, hook_file

DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass(frozen=True)
class HarvestConfig:
    model: str
    hooks: tuple[str, ...]
    widths: dict[str, int]
    corpus: str  # corpus folder name, which carries the hash of the corpus config
    sources: tuple[str, ...]
    mixture: dict[str, float]
    split: str
    context_length: int
    n_contexts: int
    contexts_sha256: str  # fingerprint of the exact token windows: other contexts never reuse this store
    separator_id: int  # document separator token in the contexts (-1 if none), so its rows can be excluded
    seed: int
    dtype: str


def corpus_for_model(model) -> Corpus:
    """The default corpus, tokenized with ``model``'s tokenizer (built on first use, then cached)."""
    return build_corpus(model.tokenizer, model_name(model))


def _widths(model, hooks: list[str], tokens: torch.Tensor) -> dict[str, int]:
    with torch.inference_mode():
        _, cache = model.run_with_cache(tokens[:1, :2], names_filter=list(hooks), stop_at_layer=stop_layer(hooks))
    return {h: int(cache[h].shape[-1]) for h in hooks}


def _open_outputs(directory, cfg: HarvestConfig, np_dtype) -> dict[str, tuple[int, int]]:
    """Create (or reopen) each hook file; returns hook -> (file descriptor, byte offset of row 0)."""
    n_rows = cfg.n_contexts * cfg.context_length
    out = {}
    for hook in cfg.hooks:
        path = hook_file(directory, hook)
        if not path.exists():  # sparse file with a valid .npy header; rows are filled in by pwrite
            np.lib.format.open_memmap(path, mode="w+", dtype=np_dtype, shape=(n_rows, cfg.widths[hook]))
        offset = np.load(path, mmap_mode="r").offset
        out[hook] = (os.open(path, os.O_RDWR), offset)
    return out


def harvest(model, hooks: list[str], contexts: PackedContexts, *, corpus_name: str, split: str = "train",
            seed: int = 0, dtype: str = "float16", batch_size: int = 8, name: str = "harvest",
            separator_id: int = -1, progress: bool = True) -> ActivationStore:
    """Run ``model`` over ``contexts`` and store every hook's activations; returns the finished store.

    Cached by config: a finished store is returned as is; an unfinished one resumes from its last batch."""
    validate_hooks(model, hooks)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    tokens = torch.from_numpy(contexts.tokens)
    cfg = HarvestConfig(model_name(model), tuple(hooks), _widths(model, hooks, tokens), corpus_name,
                        contexts.sources, {s: MIXTURE.get(s, 0.0) for s in contexts.sources}, split,
                        tokens.shape[1], tokens.shape[0], hashlib.sha256(contexts.tokens.tobytes()).hexdigest(),
                        separator_id, seed, dtype)
    directory = keyed_dir("activations", name, cfg)
    if (directory / COMPLETE).exists():
        return ActivationStore(directory)
    _prepare(directory, cfg, contexts)
    done = read_json(directory / "progress.json")["contexts_done"]
    outputs = _open_outputs(directory, cfg, DTYPES[dtype])
    stop = stop_layer(hooks)
    try:
        bar = progress_bar(total=cfg.n_contexts * cfg.context_length, initial=done * cfg.context_length,
                           enabled=progress, unit="tok", unit_scale=True, desc=f"harvest {','.join(hooks)}")
        with torch.inference_mode():
            for start in range(done, cfg.n_contexts, batch_size):
                batch = tokens[start : start + batch_size]
                _, cache = model.run_with_cache(batch, names_filter=list(hooks), stop_at_layer=stop)
                for hook, (fd, offset) in outputs.items():
                    _write_rows(fd, offset, start * cfg.context_length, cache[hook], DTYPES[dtype], hook)
                for fd, _ in outputs.values():
                    os.fsync(fd)
                atomic_write_json(directory / "progress.json", {"contexts_done": start + len(batch)})
                bar.update(batch.numel())
        bar.close()
    finally:
        for fd, _ in outputs.values():
            os.close(fd)
    atomic_write_bytes(directory / COMPLETE, b"")
    return ActivationStore(directory)


def _prepare(directory, cfg: HarvestConfig, contexts: PackedContexts) -> None:
    """Write config and contexts for a new store; for a partial one, check they match before resuming."""
    if (directory / "progress.json").exists():
        if (directory / "config.json").exists() and read_json(directory / "config.json") == as_json(cfg):
            return
        shutil.rmtree(directory)  # inconsistent partial store: never mix two harvests, rebuild
    directory.mkdir(parents=True, exist_ok=True)
    atomic_save_npy(directory / "tokens.npy", contexts.tokens)
    atomic_save_npy(directory / "context_source.npy", contexts.source)
    atomic_save_npy(directory / "context_offset.npy", contexts.offset)
    atomic_write_json(directory / "config.json", cfg)
    atomic_write_json(directory / "progress.json", {"contexts_done": 0})


def _write_rows(fd: int, offset: int, row: int, acts: torch.Tensor, np_dtype, hook: str) -> None:
    with np.errstate(over="ignore"):  # overflow is detected just below, with a clearer message
        arr = acts.reshape(-1, acts.shape[-1]).float().numpy().astype(np_dtype)
    if not np.isfinite(arr).all():
        raise FloatingPointError(
            f"Non-finite activations at {hook} (rows from {row}); with dtype float16 this usually means overflow: "
            "harvest again with dtype='float32'. Rows already on disk are kept; nothing is marked complete."
        )
    os.pwrite(fd, arr.tobytes(), offset + row * arr.shape[1] * arr.itemsize)


def harvest_profile(model, hooks: list[str], profile: Profile, split: str = "train", dtype: str = "float16",
                    name: str = "harvest", progress: bool = True) -> ActivationStore:
    """Harvest ``profile.harvest_tokens`` activations per hook from the default corpus mixture."""
    corpus = corpus_for_model(model)
    n_contexts = -(-profile.harvest_tokens // profile.context_length)
    contexts = pack_contexts(corpus, split, profile.context_length, n_contexts, seed=profile.seed)
    return harvest(model, hooks, contexts, corpus_name=corpus.dir.name, split=split, seed=profile.seed,
                   dtype=dtype, batch_size=profile.harvest_batch_size, name=name, separator_id=corpus.separator,
                   progress=progress)


def heldout_profile(model, hooks: list[str], profile: Profile, progress: bool = True) -> ActivationStore:
    """The held-out store of notebook 01: ``profile.sae.eval_rows`` activations per hook from held-out documents
    (seed ``profile.seed + 1``). Later notebooks reuse it for feature views."""
    corpus = corpus_for_model(model)
    n_contexts = -(-profile.sae.eval_rows // profile.context_length)
    contexts = pack_contexts(corpus, "heldout", profile.context_length, n_contexts, seed=profile.seed + 1)
    return harvest(model, hooks, contexts, corpus_name=corpus.dir.name, split="heldout", seed=profile.seed + 1,
                   batch_size=profile.harvest_batch_size, separator_id=corpus.separator, progress=progress)
