"""Explainers and simulators for automated interpretability, and the offline default.

The protocol (Bills et al. 2023; Cunningham et al. 2023, Fig. 2) needs two roles:
- an **explainer** reads a few records (tokens with the feature's activation) and writes an explanation;
- a **simulator** reads only that explanation and predicts the activation at every token of unseen records.

The paper used GPT-4 and text-davinci-003. The offline default here is lexical and deterministic:
``TokenExplainer`` writes which tokens (or which preceding tokens) drive the feature, with a 0-10 level each,
learned from the explanation records only; ``TokenSimulator`` parses that sentence back and predicts each token's
level by lookup. It captures features keyed to token identity; it cannot express meaning, syntax, topic or
anything that needs context beyond one token, and it cannot generalise to tokens absent from its five examples.
LLM backends with the paper's prompt structure live in ``saelib.interp.llm_explainer``.
"""

from __future__ import annotations

import json
import re
from collections import defaultdict
from collections.abc import Sequence
from typing import Protocol

import numpy as np

from saelib.interp.fragments import Record

MAX_LEVEL = 10  # activations are shown to explainers and predicted by simulators on Bills et al.'s 0-10 scale


class Explainer(Protocol):
    name: str

    def explain(self, records: Sequence[Record]) -> str: ...


class Simulator(Protocol):
    name: str

    def simulate(self, explanation: str, records: Sequence[list[str]]) -> list[np.ndarray]:
        """Predicted activation per token of each token list (any scale: the score is a correlation)."""
        ...


def cache_key(method: object) -> dict | str:
    """What determines the results of an explainer, simulator or LLM backend, for keying saved scores: its ``key``
    when it has one (an LLM backend's URL and model, or model and weights, with the method's settings), else its
    ``name``."""
    return getattr(method, "key", None) or method.name  # type: ignore[attr-defined]


def discretize(records: Sequence[Record]) -> list[np.ndarray]:
    """Activations as integers 0..10 relative to the largest activation in ``records`` (Bills et al.)."""
    top = max((float(r.activations.max()) for r in records), default=0.0)
    if top <= 0:
        return [np.zeros(len(r.tokens), dtype=np.int64) for r in records]
    return [np.clip(np.rint(MAX_LEVEL * r.activations / top), 0, MAX_LEVEL).astype(np.int64) for r in records]


# Modes of the lexical explanation: which token's identity predicts the activation.
_PHRASES = {"token": "Fires on the tokens", "previous": "Fires on the token right after"}
_TERM = re.compile(r'("(?:[^"\\]|\\.)*") \((\d+)\)')


def _levels_by_key(records: Sequence[Record], levels: Sequence[np.ndarray], mode: str) -> dict[str, float]:
    """Mean level of the records' tokens grouped by the token (mode 'token') or the previous token ('previous')."""
    sums: dict[str, list[float]] = defaultdict(list)
    for rec, lev in zip(records, levels):
        keys = rec.tokens if mode == "token" else [None] + rec.tokens[:-1]
        for key, value in zip(keys, lev):
            if key is not None:
                sums[key].append(float(value))
    return {k: float(np.mean(v)) for k, v in sums.items()}


def format_explanation(mode: str, terms: Sequence[tuple[str, int]]) -> str:
    """The sentence a person reads and the simulator parses, e.g. 'Fires on the tokens " the" (10), " a" (4).'"""
    if not terms:
        return "Fires on nothing recognisable in its examples."
    return _PHRASES[mode] + " " + ", ".join(f"{json.dumps(t, ensure_ascii=False)} ({lvl})" for t, lvl in terms) + "."


def parse_explanation(text: str) -> tuple[str, dict[str, int]]:
    """(mode, {token: level}) from ``format_explanation``'s sentence; ValueError if it is not one."""
    for mode, phrase in sorted(_PHRASES.items(), key=lambda kv: -len(kv[1])):
        if text.startswith(phrase + " "):
            body = text[len(phrase) + 1 :]
            terms = {json.loads(tok): int(lvl) for tok, lvl in _TERM.findall(body)}
            if not terms:
                break
            return mode, terms
    if text.startswith("Fires on nothing"):
        return "token", {}
    raise ValueError(f"not a token explanation (expected e.g. '{_PHRASES['token']} \" the\" (10).'): {text[:120]!r}")


def predict_levels(mode: str, terms: dict[str, int], tokens: Sequence[str]) -> np.ndarray:
    keys = tokens if mode == "token" else [None] + list(tokens[:-1])
    return np.array([terms.get(k, 0) if k is not None else 0 for k in keys], dtype=np.float64)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson correlation; 0.0 when either side is constant (no linear information), never NaN."""
    a, b = np.asarray(a, np.float64), np.asarray(b, np.float64)
    if len(a) < 2 or a.std() == 0 or b.std() == 0:
        return 0.0
    return float(np.corrcoef(a, b)[0, 1])


class TokenExplainer:
    """Offline explainer: for the tokens themselves and for the preceding tokens, the mean 0-10 activation level
    per distinct token over the explanation records; keeps the ``max_terms`` strongest with mean level >=
    ``min_level``, and reports whichever of the two lists predicts its own records better (ties: the tokens)."""

    name = "token lookup (offline)"

    def __init__(self, max_terms: int = 10, min_level: float = 1.0):
        self.max_terms, self.min_level = max_terms, min_level

    def _terms(self, records: Sequence[Record], levels: Sequence[np.ndarray], mode: str) -> list[tuple[str, int]]:
        means = _levels_by_key(records, levels, mode)
        ranked = sorted(((k, v) for k, v in means.items() if v >= self.min_level), key=lambda kv: (-kv[1], kv[0]))
        return [(k, int(round(v))) for k, v in ranked[: self.max_terms] if round(v) > 0]

    def explain(self, records: Sequence[Record]) -> str:
        levels = discretize(records)
        truth = np.concatenate(levels) if levels else np.zeros(0)
        best, best_fit = format_explanation("token", []), -np.inf
        for mode in ("token", "previous"):
            terms = self._terms(records, levels, mode)
            if not terms:
                continue
            pred = np.concatenate([predict_levels(mode, dict(terms), r.tokens) for r in records])
            fit = pearson(pred, truth)
            if fit > best_fit:
                best, best_fit = format_explanation(mode, terms), fit
        return best


class TokenSimulator:
    """Offline simulator: parses a ``TokenExplainer`` sentence and predicts each token's level by lookup."""

    name = "token lookup (offline)"

    def simulate(self, explanation: str, records: Sequence[list[str]]) -> list[np.ndarray]:
        mode, terms = parse_explanation(explanation)
        return [predict_levels(mode, terms, tokens) for tokens in records]
