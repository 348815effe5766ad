"""Harvest activations: one forward pass per batch, stopped at the deepest requested layer, every hook streamed
to its own on-disk file (see ``saelib.activations.store`` for the layout). Interrupted harvests resume where they stopped."""

from __future__ import annotations

import hashlib
import os
import shutil
import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

from saelib.activations.store import (
    COMPLETE,
    CONTEXT_FILES,
    ActivationStore,
    IncompleteStoreError,
    hook_file,
    npy_problem,
    write_checksums,
)
from saelib.core.artifacts import (
    as_json,
    atomic_save_npy,
    atomic_write_bytes,
    atomic_write_json,
    file_sha256,
    keyed_dir,
    read_json,
)
from saelib.core.precision import check_precision, matmul_precision
from saelib.core.profiles import Profile
from saelib.core.progress import progress as progress_bar
from saelib.model.hooks import stop_layer
from saelib.model.loader import model_device, model_name, model_weights_sha256, validate_hooks
from saelib.text.corpus import MIXTURE, Corpus, PackedContexts, build_corpus, pack_contexts

DTYPES = {"float16": np.float16, "float32": np.float32}


@dataclass(frozen=True)
class HarvestConfig:
    model: str
    model_sha256: str  # the weight files: replacing the weights under the same name never reuses this store
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
    precision: str = "float32"  # matmuls of the forward pass (saelib.core.precision); rows are stored as ``dtype``


def corpus_for_model(model) -> Corpus:
    """The default corpus, tokenized with ``model``'s tokenizer (built on first use, then cached)."""
    return build_corpus(model.tokenizer, model_name(model))


def _widths(model, hooks: list[str], tokens: torch.Tensor) -> dict[str, int]:
    with torch.inference_mode():
        _, cache = model.run_with_cache(
            tokens[:1, :2].to(model_device(model)), names_filter=list(hooks), stop_at_layer=stop_layer(hooks)
        )
    return {h: int(cache[h].shape[-1]) for h in hooks}


def max_context_length(model) -> int | None:
    """Positions the model has: the bridge's ``cfg.n_ctx``, read from the HF config's ``max_position_embeddings``
    (or ``n_positions``, ...); None when unknown."""
    n_ctx = getattr(getattr(model, "cfg", None), "n_ctx", None)
    return n_ctx if isinstance(n_ctx, int) and n_ctx > 0 else None


@dataclass
class _Output:
    fd: int
    offset: int  # byte offset of row 0
    sha: Any  # sha256 of the file so far: rows are written in order, so this ends as the whole file's


def _open_outputs(directory, cfg: HarvestConfig, np_dtype, done: int) -> dict[str, _Output]:
    """Create (or reopen after ``done`` contexts) each hook file."""
    n_rows = cfg.n_contexts * cfg.context_length
    out = {}
    for hook in cfg.hooks:
        path = hook_file(directory, hook)
        if not path.exists():  # sparse file with a valid .npy header; rows are filled in by pwrite
            np.lib.format.open_memmap(path, mode="w+", dtype=np_dtype, shape=(n_rows, cfg.widths[hook]))
        offset = np.load(path, mmap_mode="r").offset
        fd = os.open(path, os.O_RDWR)
        written = offset + done * cfg.context_length * cfg.widths[hook] * np.dtype(np_dtype).itemsize
        out[hook] = _Output(fd, offset, _prefix_sha256(fd, written))
    return out


def _prefix_sha256(fd: int, size: int):
    """sha256 of a file's first ``size`` bytes (on resume: the header and the rows already on disk), as a hashlib
    object that the rows written next continue (a finished file's hash is ``core.artifacts.file_sha256``)."""
    sha, pos = hashlib.sha256(), 0
    while pos < size:
        chunk = os.pread(fd, min(1 << 24, size - pos), pos)
        if not chunk:
            raise IncompleteStoreError(
                f"a hook file ends at byte {pos}, before the {size} bytes already harvested; "
                "delete the partial store folder and harvest again"
            )
        sha.update(chunk)
        pos += len(chunk)
    return sha


def _hook_problems(directory, cfg: HarvestConfig) -> list[str]:
    """What is wrong with the hook files of a partial store: each must exist with its full (sparse) size."""
    shapes = {hook: (cfg.n_contexts * cfg.context_length, cfg.widths[hook]) for hook in cfg.hooks}
    return [
        f"{hook_file(directory, h).name} {p}"
        for h, shape in shapes.items()
        if (p := npy_problem(hook_file(directory, h), shape, cfg.dtype))
    ]


def harvest(
    model,
    hooks: list[str],
    contexts: PackedContexts,
    *,
    corpus_name: str,
    split: str = "train",
    seed: int = 0,
    dtype: str = "float16",
    batch_size: int = 8,
    name: str = "harvest",
    separator_id: int = -1,
    progress: bool = True,
    precision: str = "float32",
) -> ActivationStore:
    """Run ``model`` over ``contexts`` and store every hook's activations; returns the finished store.
    ``precision="bfloat16"`` runs the forward matmuls in bfloat16 (see ``saelib.core.precision``).

    Cached by config: a finished store is returned as is; an unfinished one resumes from its last batch."""
    validate_hooks(model, hooks)
    if dtype not in DTYPES:
        raise ValueError(f"dtype must be one of {sorted(DTYPES)}, got {dtype!r}")
    check_precision(precision)
    n_ctx, length = max_context_length(model), contexts.tokens.shape[1]
    if n_ctx is not None and length > n_ctx:  # later positions have no trained embedding: activations mean nothing
        raise ValueError(
            f"contexts of {length} tokens are longer than the model's maximum of {n_ctx} positions "
            f"(max_position_embeddings); use a context length of at most {n_ctx}"
        )
    tokens = torch.from_numpy(contexts.tokens)
    cfg = HarvestConfig(
        model_name(model),
        model_weights_sha256(model),
        tuple(hooks),
        _widths(model, hooks, tokens),
        corpus_name,
        contexts.sources,
        {s: MIXTURE.get(s, 0.0) for s in contexts.sources},
        split,
        tokens.shape[1],
        tokens.shape[0],
        hashlib.sha256(contexts.tokens.tobytes()).hexdigest(),
        separator_id,
        seed,
        dtype,
        precision,
    )
    directory = keyed_dir("activations", name, cfg)
    if (directory / COMPLETE).exists():
        return ActivationStore(directory)
    _prepare(directory, cfg, contexts)
    done = read_json(directory / "progress.json")["contexts_done"]
    started = done > 0 or any(hook_file(directory, h).exists() for h in hooks)
    if started and (problems := _hook_problems(directory, cfg)):  # resuming would leave zero rows where they were
        warnings.warn(f"restarting the harvest in {directory} from context 0: {'; '.join(problems)}", stacklevel=2)
        shutil.rmtree(directory)
        _prepare(directory, cfg, contexts)
        done = 0
    outputs = _open_outputs(directory, cfg, DTYPES[dtype], done)
    stop = stop_layer(hooks)
    try:
        bar = progress_bar(
            total=cfg.n_contexts * cfg.context_length,
            initial=done * cfg.context_length,
            enabled=progress,
            unit="tok",
            unit_scale=True,
            desc=f"harvest {','.join(hooks)}",
        )
        device = model_device(model)
        with torch.inference_mode(), matmul_precision(precision, device):
            for start in range(done, cfg.n_contexts, batch_size):
                batch = tokens[start : start + batch_size]
                _, cache = model.run_with_cache(batch.to(device), names_filter=list(hooks), stop_at_layer=stop)
                for hook, out in outputs.items():
                    out.sha.update(
                        _write_rows(out.fd, out.offset, start * cfg.context_length, cache[hook], DTYPES[dtype], hook)
                    )
                for out in outputs.values():
                    os.fsync(out.fd)
                atomic_write_json(directory / "progress.json", {"contexts_done": start + len(batch)})
                bar.update(batch.numel())
        bar.close()
    finally:
        for out in outputs.values():
            os.close(out.fd)
    if problems := _hook_problems(directory, cfg):  # a file deleted or cut while the harvest ran
        raise IncompleteStoreError(f"{directory}: {'; '.join(problems)}. Run the harvest again: it starts over.")
    write_checksums(
        directory,
        {hook_file(directory, h).name: out.sha.hexdigest() for h, out in outputs.items()}
        | {name: file_sha256(directory / name) for name in CONTEXT_FILES},
    )
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


def _first_bad(mask: np.ndarray, row: int, acts: torch.Tensor) -> str:
    bad = row + int(mask.any(1).argmax())
    return f"first at row {bad} (context {bad // acts.shape[-2]}, position {bad % acts.shape[-2]})"


def _write_rows(fd: int, offset: int, row: int, acts: torch.Tensor, np_dtype, hook: str) -> bytes:
    """Write ``acts`` [batch, positions, width] as rows ``row``...; returns the bytes written (for the checksum)."""
    src = acts.reshape(-1, acts.shape[-1]).float().cpu().numpy()  # a model on a GPU: rows come back to the host
    kept = "Rows already on disk are kept; nothing is marked complete."
    if (nan := np.isnan(src)).any():  # never an overflow of the stored dtype: the model computed NaN
        raise FloatingPointError(
            f"NaN activations at {hook}, {_first_bad(nan, row, acts)}: the model itself "
            "produced NaN, a model or input problem (check the weights and the token ids), "
            f"which another dtype will not fix. {kept}"
        )
    if (inf := np.isinf(src)).any():
        raise FloatingPointError(
            f"Infinite activations at {hook}, {_first_bad(inf, row, acts)}: the model itself "
            f"produced inf, a model or input problem. {kept}"
        )
    with np.errstate(over="ignore"):  # overflow is detected just below, with a clearer message
        arr = src.astype(np_dtype)
    if (inf := np.isinf(arr)).any():
        raise FloatingPointError(
            f"Activations at {hook} overflow {np.dtype(np_dtype).name}, "
            f"{_first_bad(inf, row, acts)}: harvest again with dtype='float32'. {kept}"
        )
    data = arr.tobytes()
    if os.pwrite(fd, data, offset + row * arr.shape[1] * arr.itemsize) != len(data):  # a short write leaves zeros
        raise OSError(f"short write to the {hook} file (disk full?). {kept}")
    return data


def harvest_profile(
    model,
    hooks: list[str],
    profile: Profile,
    split: str = "train",
    dtype: str = "float16",
    name: str = "harvest",
    progress: bool = True,
    precision: str = "float32",
) -> ActivationStore:
    """Harvest ``profile.harvest_tokens`` activations per hook from the default corpus mixture."""
    corpus = corpus_for_model(model)
    n_contexts = -(-profile.harvest_tokens // profile.context_length)
    contexts = pack_contexts(corpus, split, profile.context_length, n_contexts, seed=profile.seed)
    return harvest(
        model,
        hooks,
        contexts,
        corpus_name=corpus.dir.name,
        split=split,
        seed=profile.seed,
        dtype=dtype,
        batch_size=profile.harvest_batch_size,
        name=name,
        separator_id=corpus.separator,
        progress=progress,
        precision=precision,
    )


def heldout_profile(model, hooks: list[str], profile: Profile, progress: bool = True) -> ActivationStore:
    """The held-out store of notebook 01: ``profile.sae.eval_rows`` activations per hook from held-out documents
    (seed ``profile.seed + 1``). Later notebooks reuse it for feature views."""
    if profile.sae is None:
        raise ValueError(f"profile {profile.name!r} has no SAE sweep (sae=None): its eval_rows size the held-out store")
    corpus = corpus_for_model(model)
    n_contexts = -(-profile.sae.eval_rows // profile.context_length)
    contexts = pack_contexts(corpus, "heldout", profile.context_length, n_contexts, seed=profile.seed + 1)
    return harvest(
        model,
        hooks,
        contexts,
        corpus_name=corpus.dir.name,
        split="heldout",
        seed=profile.seed + 1,
        batch_size=profile.harvest_batch_size,
        separator_id=corpus.separator,
        progress=progress,
    )


def fragments_profile(
    model, hooks: list[str], profile: Profile, length: int = 64, progress: bool = True
) -> ActivationStore:
    """Notebook 02's fragment pool: ``profile.interp.fragments`` windows of ``length`` tokens drawn at random without
    overlap from held-out text (seed ``profile.seed + 2``), each run through the model on its own (the paper's
    protocol). Notebook 05 reads its case studies from the same pool."""
    if profile.interp is None:
        raise ValueError(f"profile {profile.name!r} has no interp sizes (interp=None): they give the fragment count")
    corpus = corpus_for_model(model)
    contexts = pack_contexts(corpus, "heldout", length, profile.interp.fragments, seed=profile.seed + 2)
    return harvest(
        model,
        hooks,
        contexts,
        corpus_name=corpus.dir.name,
        split="heldout",
        seed=profile.seed + 2,
        batch_size=4 * profile.harvest_batch_size,
        name="fragments",
        separator_id=corpus.separator,
        progress=progress,
    )
