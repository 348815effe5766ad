"""Steering by clamping a feature (Bricken et al. 2023: pinning a feature high during sampling makes the model write
that feature's kind of text), measured rather than only shown.

``clamp_hook`` sets one feature's activation to a fixed value at every position of a residual or MLP hook by adding
(value − current activation) × its decoder direction (the rest of the activation, including the SAE's error, is
kept). ``generate`` samples with a seeded generator, with or without hooks. ``SourceClassifier`` (TF-IDF on word
and character n-grams + logistic regression, scikit-learn) learns the corpus sources from training-split chunks and
says which source generated text reads like; its held-out accuracy is reported so that its verdicts can be trusted.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import FeatureUnion, Pipeline, make_pipeline

from saelib.interp.case_studies import feature_directions
from saelib.model.loader import model_device
from saelib.text.corpus import Corpus

Tensor = torch.Tensor


def clamp_hook(sae, feature: int, value: float):
    """A forward hook putting ``value`` in place of ``feature``'s activation c in the reconstruction, everywhere:
    x' = x + (value − c) d, d its decoder direction in raw space (Bricken et al.'s clamp)."""
    direction = feature_directions(sae)[feature]

    def hook(act, hook=None):  # the SAE may sit on the CPU while the model runs on a GPU
        current = sae.encode(act.float().to(direction.device), grad=True)[..., feature]
        return act + ((value - current)[..., None] * direction).to(act.device, act.dtype)

    return hook


@torch.no_grad()
def generate(
    model, prompt: Tensor, n_new: int, fwd_hooks: Sequence = (), temperature: float = 1.0, seed: int = 0
) -> Tensor:
    """Sample ``n_new`` tokens after ``prompt`` [batch, pos] (no cache: every step reruns the whole sequence, which
    is what lets the hooks act on every position). Returns the new tokens [batch, n_new]."""
    if temperature <= 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    gen = torch.Generator().manual_seed(seed)
    tokens = prompt.clone()
    for _ in range(n_new):
        logits = model.run_with_hooks(tokens, fwd_hooks=list(fwd_hooks))[:, -1].float() / temperature
        nxt = torch.multinomial(logits.softmax(-1).cpu(), 1, generator=gen)
        tokens = torch.cat([tokens, nxt.to(tokens.device)], 1)
    return tokens[:, prompt.shape[1] :]


@dataclass
class SourceClassifier:
    """Which corpus source a text reads like. Fit on chunks of each source's training split."""

    sources: list[str]
    pipeline: Pipeline  # make_pipeline(FeatureUnion of TF-IDF, LogisticRegression)
    heldout_accuracy: float = float("nan")

    @classmethod
    def fit(
        cls, corpus: Corpus, tokenizer, chunk_tokens: int = 48, per_source: int = 400, seed: int = 0
    ) -> "SourceClassifier":
        texts, labels = _chunks(corpus, tokenizer, "train", chunk_tokens, per_source, seed)
        pipeline = make_pipeline(
            FeatureUnion(
                [
                    ("words", TfidfVectorizer(ngram_range=(1, 2), min_df=2, sublinear_tf=True)),
                    ("chars", TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 4), min_df=2, sublinear_tf=True)),
                ]
            ),
            LogisticRegression(max_iter=2000, C=10.0),
        )
        pipeline.fit(texts, labels)
        out = cls(sorted(set(labels)), pipeline)
        held_texts, held_labels = _chunks(corpus, tokenizer, "heldout", chunk_tokens, per_source // 4, seed + 1)
        out.heldout_accuracy = float(np.mean(out.predict(held_texts) == np.asarray(held_labels)))
        return out

    def predict(self, texts: Sequence[str]) -> np.ndarray:
        return self.pipeline.predict(list(texts))

    def probability(self, texts: Sequence[str], source: str) -> np.ndarray:
        """P(source | text) for each text."""
        if source not in self.sources:
            raise KeyError(f"unknown source {source!r}; sources: {', '.join(self.sources)}")
        col = list(self.pipeline.classes_).index(source)
        return self.pipeline.predict_proba(list(texts))[:, col]


def source_features(codes: np.ndarray, row_sources: np.ndarray, source: str, min_density: float) -> pd.DataFrame:
    """Which features fire on ``source``'s text: per feature of ``codes`` [n, F] (0 on rows left out), its density,
    the share of its activation mass on rows from ``source`` (``row_sources`` [n]) and that share over the source's
    share of rows (lift), sorted by share; features rarer than ``min_density`` are left out (too few firings to
    say)."""
    codes = np.asarray(codes)
    if len(codes) != len(row_sources):
        raise ValueError(f"codes have {len(codes)} rows but row_sources {len(row_sources)}")
    on = np.asarray(row_sources) == source
    if not on.any():
        raise ValueError(f"no row comes from source {source!r}; sources present: {sorted(set(row_sources))}")
    mass = codes.sum(0, dtype=np.float64)
    share = np.divide(codes[on].sum(0, dtype=np.float64), mass, out=np.zeros_like(mass), where=mass > 0)
    table = pd.DataFrame(
        {
            "feature": np.arange(codes.shape[1]),
            "density": (codes > 0).mean(0),
            "share": share,
            "lift": share / on.mean(),
            "max": codes.max(0),
        }
    )
    return table[table.density >= min_density].sort_values("share", ascending=False).reset_index(drop=True)


def generate_texts(
    model, prompts: Sequence[str], samples_per_prompt: int, n_new: int, fwd_hooks: Sequence = (), seed: int = 0
) -> list[str]:
    """``samples_per_prompt`` continuations of each prompt (decoded, prompt excluded), prompts of equal token length
    sampled as one batch; the same ``seed`` gives the same draws for every set of hooks."""
    encoded = [model.tokenizer.encode(p, add_special_tokens=False) for p in prompts]
    if any(len(e) == 0 for e in encoded):
        raise ValueError("every prompt needs at least one token")
    out: dict[int, list[str]] = {}
    for length in sorted({len(e) for e in encoded}):
        idx = [i for i, e in enumerate(encoded) if len(e) == length]
        batch = torch.tensor([encoded[i] for i in idx for _ in range(samples_per_prompt)], device=model_device(model))
        new = generate(model, batch, n_new, fwd_hooks, seed=seed + length).cpu()
        for j, i in enumerate(idx):
            out[i] = [model.tokenizer.decode(t) for t in new[j * samples_per_prompt : (j + 1) * samples_per_prompt]]
    return [t for i in range(len(prompts)) for t in out[i]]


def _chunks(
    corpus: Corpus, tokenizer, split: str, chunk_tokens: int, per_source: int, seed: int
) -> tuple[list[str], list[str]]:
    """Up to ``per_source`` random non-overlapping chunks of ``chunk_tokens`` tokens (no separator inside) per source."""
    rng = np.random.default_rng(seed)
    texts, labels = [], []
    for source in corpus.sources:
        stream = np.asarray(corpus.split_stream(source, split))
        n = len(stream) // chunk_tokens
        if n == 0:
            continue
        starts = rng.choice(n, size=min(per_source, n), replace=False) * chunk_tokens
        for s in starts:
            chunk = stream[s : s + chunk_tokens]
            if (chunk == corpus.separator).any():
                continue
            texts.append(tokenizer.decode(chunk.tolist()))
            labels.append(source)
    return texts, labels


def random_token_texts(tokenizer, n_texts: int, n_tokens: int, seed: int = 0) -> list[str]:
    """``n_texts`` strings of ``n_tokens`` token ids drawn uniformly from the vocabulary (special tokens excluded):
    gibberish with no source, the negative control of a source classifier (the share it assigns to a source is what
    a steered continuation classified as that source has to beat)."""
    special = set(getattr(tokenizer, "all_special_ids", []) or [])
    vocab = np.array([i for i in range(len(tokenizer)) if i not in special])
    if vocab.size == 0 or n_tokens < 1:
        raise ValueError("random_token_texts needs a non-empty vocabulary and n_tokens >= 1")
    ids = np.random.default_rng(seed).choice(vocab, size=(n_texts, n_tokens))
    return [tokenizer.decode(row.tolist()) for row in ids]


@torch.inference_mode()
def continuation_nll(model, prompts: Sequence[str], texts: Sequence[str], samples_per_prompt: int) -> np.ndarray:
    """Per continuation (in ``generate_texts``' prompt-major order): the mean negative log-likelihood, in nats per
    token, of its tokens under the *unsteered* model given its prompt, a fluency measure (exp of it is the
    perplexity). The continuation is re-tokenized from its text, which can differ slightly from the sampled tokens."""
    if len(texts) != len(prompts) * samples_per_prompt:
        raise ValueError(f"{len(texts)} texts for {len(prompts)} prompts x {samples_per_prompt} samples")
    out = np.empty(len(texts))
    for i, text in enumerate(texts):
        prompt = model.tokenizer.encode(prompts[i // samples_per_prompt], add_special_tokens=False)
        cont = model.tokenizer.encode(text, add_special_tokens=False)
        if not cont:
            out[i] = np.nan
            continue
        tokens = torch.tensor([prompt + cont], device=model_device(model))
        logp = model(tokens)[0, len(prompt) - 1 : -1].float().log_softmax(-1)
        out[i] = -float(logp.gather(1, tokens[0, len(prompt) :, None].to(logp.device)).mean())
    return out
