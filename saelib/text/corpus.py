"""A Pile-spirited text corpus assembled offline from registry packages, tokenized once and packed into contexts.

Cunningham et al. trained on the Pile (web, books, encyclopedic text, code). Offline, the closest mixture that
registries ship is: prose fiction, verse, drama, scripture, encyclopedic text, formal speech and technical
documentation (see ``saelib.text.sources`` for each package). ``MIXTURE`` states the weight of each source in the
packed contexts. Splits are by document (a stable hash of ``source/doc_id``), so held-out text never shares a
document with training text. Contexts are packed as the paper did: documents joined with an end-of-text
separator and cut into fixed-length windows.

On disk (``artifacts/corpus/<name>-<hash of config>/``): per source ``<source>.tokens.npy`` (all documents,
each followed by the separator), ``<source>.docs.npy`` (start, length, held-out flag per document) and
``manifest.json`` with counts. Each source file is written atomically, so an interrupted build resumes.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from saelib.core.artifacts import atomic_save_npy, atomic_write_json, keyed_dir, read_json
from saelib.core.progress import progress as progress_bar
from saelib.text.sources import READER_REVISION, SOURCES, Source
from saelib.text.sources.base import check_source_name

# Share of packed contexts drawn from each source. Kinds: prose fiction 0.13, verse 0.20, drama 0.10,
# scripture 0.10, encyclopedic 0.22, formal speech 0.10, technical documentation 0.15.
MIXTURE: dict[str, float] = {
    "austen": 0.06,
    "novels": 0.04,
    "moby_dick": 0.03,
    "poetry": 0.20,
    "shakespeare": 0.10,
    "bible": 0.10,
    "wikipedia": 0.17,
    "wordnet": 0.05,
    "sotu": 0.10,
    "python_docs": 0.15,
}

SPLITS = ("train", "heldout")


@dataclass(frozen=True)
class CorpusConfig:
    tokenizer: str  # model name whose tokenizer is used (artifacts are per tokenizer)
    vocab_size: int
    sources: tuple[str, ...] = tuple(MIXTURE)
    heldout_fraction: float = 0.05
    packages: tuple[str, ...] = field(default=())  # filled in from SOURCES so new package versions rebuild
    reader_revision: int = READER_REVISION  # bumped when text cleaning changes, so the corpus is rebuilt


def is_heldout(source: str, doc_id: str, fraction: float) -> bool:
    """Deterministic document-level split: a stable hash of the document's identity, not a random draw."""
    h = int.from_bytes(hashlib.sha256(f"{source}/{doc_id}".encode()).digest()[:8], "big")
    return h / 2**64 < fraction


def separator_id(tokenizer) -> int:
    """End-of-text token that separates packed documents (SmolLM2 pretrained with <|endoftext|>; the instruct
    tokenizer's eos is <|im_end|>, a chat token, so the document separator is preferred when it exists)."""
    tid = tokenizer.convert_tokens_to_ids("<|endoftext|>")
    if isinstance(tid, int) and tokenizer.convert_ids_to_tokens(tid) == "<|endoftext|>":  # not an unk fallback
        return tid
    if tokenizer.eos_token_id is None:
        raise ValueError("tokenizer has neither <|endoftext|> nor an eos token to separate documents")
    return int(tokenizer.eos_token_id)


class Corpus:
    """Tokenized sources on disk (memory-mapped) plus the manifest of counts."""

    def __init__(self, directory: Path):
        self.dir = Path(directory)
        self.manifest = read_json(self.dir / "manifest.json")
        self.separator = int(self.manifest["separator_id"])

    @property
    def sources(self) -> list[str]:
        return list(self.manifest["sources"])

    def tokens(self, source: str) -> np.ndarray:
        return np.load(self.dir / f"{source}.tokens.npy", mmap_mode="r")

    def docs(self, source: str) -> np.ndarray:
        """int64 [n_docs, 3]: start offset, length (incl. separator), held-out flag."""
        return np.load(self.dir / f"{source}.docs.npy")

    def doc_ids(self, source: str) -> list[str]:
        return read_json(self.dir / f"{source}.doc_ids.json")

    def split_stream(self, source: str, split: str) -> np.ndarray:
        """All tokens of one split of one source, documents in order, separators kept."""
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        docs = self.docs(source)
        keep = docs[:, 2] == (1 if split == "heldout" else 0)
        toks = self.tokens(source)
        return np.concatenate([toks[s : s + n] for s, n, _ in docs[keep]]) if keep.any() else toks[:0]

    def token_counts(self) -> dict[str, dict[str, int]]:
        return {s: dict(self.manifest["sources"][s]) for s in self.sources}


def _tokenize_source(
    source: Source, tokenizer, sep: int, fraction: float, dtype
) -> tuple[np.ndarray, np.ndarray, list[str]]:
    name = source.name
    ids, docs, doc_ids, offset = [], [], [], 0
    batch: list = []

    def flush() -> None:
        nonlocal offset
        enc = tokenizer([d.text for d in batch], add_special_tokens=False)["input_ids"]
        for doc, toks in zip(batch, enc):
            toks = list(toks) + [sep]
            ids.append(np.asarray(toks, dtype=dtype))
            docs.append((offset, len(toks), int(is_heldout(name, doc.doc_id, fraction))))
            doc_ids.append(doc.doc_id)
            offset += len(toks)
        batch.clear()

    for doc in source.documents():
        if doc.text.strip():
            batch.append(doc)
        if len(batch) == 256:
            flush()
    if batch:
        flush()
    if not ids:
        raise ValueError(f"corpus source {name!r} holds no text (every document is empty); add text or leave it out")
    docs_arr = np.asarray(docs, dtype=np.int64).reshape(-1, 3)
    if len(docs_arr) > 1 and not docs_arr[:, 2].any():  # a tiny source still gets one held-out document
        docs_arr[np.argmin([int(hashlib.sha256(f"{name}/{d}".encode()).hexdigest(), 16) for d in doc_ids]), 2] = 1
    return np.concatenate(ids), docs_arr, doc_ids


def build_corpus(
    tokenizer,
    model: str,
    heldout_fraction: float = 0.05,
    sources: Sequence[str | Source] | None = None,
    progress: bool = True,
) -> Corpus:
    """Tokenize every source once (resuming per source) and return the corpus; cached by config.

    ``sources``: names from the catalogue (default: the standard mixture) and/or :class:`Source` objects, e.g.
    ``sources.local.text_folder("my_texts")`` for your own text."""
    resolved = _resolve_sources(sources or tuple(MIXTURE))
    sources = tuple(resolved)
    config = CorpusConfig(model, len(tokenizer), sources, heldout_fraction, tuple(s.package for s in resolved.values()))
    directory = keyed_dir("corpus", "corpus", config)
    if (directory / "manifest.json").exists():
        return Corpus(directory)
    sep = separator_id(tokenizer)
    dtype = np.uint16 if len(tokenizer) <= np.iinfo(np.uint16).max + 1 else np.uint32
    counts = {}
    for name in progress_bar(sources, enabled=progress, desc="tokenizing corpus"):
        tok_path, doc_path, ids_path = (directory / f"{name}.{x}" for x in ("tokens.npy", "docs.npy", "doc_ids.json"))
        if not (tok_path.exists() and doc_path.exists() and ids_path.exists()):
            toks, docs, doc_ids = _tokenize_source(resolved[name], tokenizer, sep, heldout_fraction, dtype)
            atomic_write_json(ids_path, doc_ids)
            atomic_save_npy(tok_path, toks)
            atomic_save_npy(doc_path, docs)  # written last: its presence marks the source complete
        docs = np.load(doc_path)
        held = docs[:, 2] == 1
        counts[name] = {
            "documents": int(len(docs)),
            "heldout_documents": int(held.sum()),
            "train_tokens": int(docs[~held, 1].sum()),
            "heldout_tokens": int(docs[held, 1].sum()),
        }
    atomic_write_json(directory / "config.json", config)
    atomic_write_json(
        directory / "manifest.json",
        {"config": config, "separator_id": sep, "sources": counts, "token_dtype": np.dtype(dtype).name},
    )
    return Corpus(directory)


def _resolve_sources(sources: Sequence[str | Source]) -> dict[str, Source]:
    out: dict[str, Source] = {}
    for s in sources:
        if isinstance(s, str) and s not in SOURCES:
            raise ValueError(
                f"Unknown corpus source {s!r}; available: {sorted(SOURCES)}, or pass a Source such as "
                f"saelib.text.sources.local.text_folder('path/to/folder')"
            )
        src = SOURCES[s] if isinstance(s, str) else s
        check_source_name(src.name)  # it names files inside the corpus folder
        if src.name in out:
            raise ValueError(f"two corpus sources are named {src.name!r}; give one another name")
        out[src.name] = src
    return out


def allocate(n: int, weights: dict[str, float]) -> dict[str, int]:
    """Split ``n`` items across sources in proportion to ``weights`` (largest remainder, sums exactly to n)."""
    total = sum(weights.values())
    if total <= 0 or any(w < 0 for w in weights.values()):
        raise ValueError(f"mixture weights must be non-negative with a positive sum, got {weights}")
    raw = {k: n * w / total for k, w in weights.items()}
    out = {k: int(np.floor(v)) for k, v in raw.items()}
    for k in sorted(raw, key=lambda k: (out[k] - raw[k], k))[: n - sum(out.values())]:
        out[k] += 1
    return out


@dataclass(frozen=True)
class PackedContexts:
    tokens: np.ndarray  # [n_contexts, context_length] token ids
    source: np.ndarray  # [n_contexts] index into ``sources``
    offset: np.ndarray  # [n_contexts] start of the window in that source's split stream
    sources: tuple[str, ...]
    repeats: dict[str, float]  # contexts asked / windows available, > 1 means text was reused

    def __len__(self) -> int:
        return len(self.tokens)


def pack_contexts(
    corpus: Corpus,
    split: str,
    context_length: int,
    n_contexts: int,
    seed: int = 0,
    mixture: dict[str, float] | None = None,
) -> PackedContexts:
    """``n_contexts`` windows of ``context_length`` tokens, sources in proportion to ``mixture``.

    Each source's split stream is cut into non-overlapping windows, shuffled with ``seed``; windows are reused
    (``repeats`` > 1) only if a source has fewer windows than its share asks for. Deterministic."""
    if context_length < 2 or n_contexts < 1:
        raise ValueError(f"need context_length >= 2 and n_contexts >= 1, got {context_length}, {n_contexts}")
    if mixture is None:  # the standard mixture; sources outside it (your own text) weighted by their tokens
        mixture = {s: MIXTURE[s] for s in corpus.sources if s in MIXTURE} or {
            s: corpus.token_counts()[s][f"{'heldout' if split == 'heldout' else 'train'}_tokens"]
            for s in corpus.sources
        }
    counts = allocate(n_contexts, mixture)
    rng = np.random.default_rng(seed)
    toks, src, offs, repeats = [], [], [], {}
    names = tuple(mixture)
    for i, name in enumerate(names):
        stream = corpus.split_stream(name, split)
        n_windows = len(stream) // context_length
        if n_windows == 0:
            raise ValueError(f"source {name!r} has fewer than {context_length} {split} tokens")
        k = counts[name]
        order = np.concatenate([rng.permutation(n_windows) for _ in range(-(-k // n_windows) or 1)])[:k]
        repeats[name] = k / n_windows
        starts = order * context_length
        toks.append(
            np.stack([stream[s : s + context_length] for s in starts])
            if k
            else np.zeros((0, context_length), stream.dtype)
        )
        src.append(np.full(k, i))
        offs.append(starts)
    perm = rng.permutation(n_contexts)  # interleave sources
    return PackedContexts(
        tokens=np.concatenate(toks)[perm].astype(np.int64),
        source=np.concatenate(src)[perm],
        offset=np.concatenate(offs)[perm],
        sources=names,
        repeats=repeats,
    )
