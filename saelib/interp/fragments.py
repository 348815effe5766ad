"""Text fragments for automated interpretability (Bills et al. 2023, as used by Cunningham et al. 2023).

The paper took one 64-token fragment per OpenWebText document, ran the model on it and kept the activations.
Notebook 02 does the same with windows: each fragment is a held-out 64-token context of its own (a store of
context length 64), drawn at random without overlap. ``Fragments`` also cuts longer contexts into consecutive
windows (then a fragment's activations saw the preceding text of its context, and neighbouring fragments share a
document). Position 0 and ``<|endoftext|>`` rows are zeroed for every dictionary (``features.ordinary_rows``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from saelib.activations.store import ActivationStore
from saelib.interp.features import dictionary_width, feature_activations, ordinary_rows


@dataclass(frozen=True)
class Record:
    """One fragment as the explainer and simulator see it (Bills et al.'s ActivationRecord)."""

    tokens: list[str]
    activations: np.ndarray  # [length] float


@dataclass(frozen=True)
class RecordSplits:
    """Fragment indices per role, following ``ActivationRecordSliceParams(n_examples_per_split=5)``."""

    explain: np.ndarray  # top[0::4]: the explainer sees these
    score_top: np.ndarray  # top[2::4]: held-out top fragments
    score_random: np.ndarray  # random[1::3][:n]: fragments drawn among those where the feature fires
    n_firing: int  # fragments in which the feature is active at least once


class Fragments:
    """Fixed-length windows over an activation store's contexts, [n_fragments, length] tokens."""

    def __init__(self, store: ActivationStore, tokenizer, length: int = 64):
        if store.context_length % length:
            raise ValueError(f"fragment length {length} must divide the store's context length {store.context_length}")
        self.store, self.length = store, length
        self.tokens = np.asarray(store.tokens).reshape(-1, length)  # [n_fragments, length]
        self.n = len(self.tokens)
        vocab = np.unique(self.tokens)
        self._strings = dict(zip(vocab.tolist(), tokenizer.batch_decode(vocab[:, None].tolist())))

    def token_strings(self, i: int) -> list[str]:
        return [self._strings[t] for t in self.tokens[i].tolist()]

    def token_string(self, token_id: int) -> str:
        """The text of one token id occurring in the fragments."""
        return self._strings[token_id]

    def activations(self, hook: str, dictionary, features: list[int]) -> np.ndarray:
        """[n_features, n_fragments, length] activations of ``features`` (position 0 and separators are 0)."""
        if dictionary_width(dictionary) != self.store.width(hook):
            raise ValueError(
                f"the dictionary expects activations of width {dictionary_width(dictionary)}, but "
                f"{hook} has width {self.store.width(hook)}: use a dictionary trained on {hook}"
            )
        acts = feature_activations(self.store, hook, dictionary, features, row_mask=ordinary_rows(self.store))
        return acts.T.reshape(len(features), self.n, self.length)

    def records(self, idx: np.ndarray, acts: np.ndarray) -> list[Record]:
        """Records for fragments ``idx`` given one feature's activations [n_fragments, length]."""
        return [Record(self.token_strings(int(i)), acts[int(i)]) for i in idx]


def select_records(
    acts: np.ndarray, n_top: int = 20, n_random: int = 20, per_split: int = 5, seed: int = 0
) -> RecordSplits:
    """Split one feature's fragments [n_fragments, length] into explanation and scoring sets as the paper did:
    top ``n_top`` fragments by max activation, ``n_random`` drawn among fragments where it fires; explain on
    top[0::4], score on top[2::4] and random[1::3] (``per_split`` each). A feature that never fires gets empty
    splits."""
    peak = acts.max(axis=1)
    firing = np.flatnonzero(peak > 0)
    top = firing[np.argsort(-peak[firing], kind="stable")][:n_top]
    rng = np.random.default_rng(seed)
    rand = rng.choice(firing, size=min(n_random, len(firing)), replace=False) if len(firing) else firing
    return RecordSplits(top[0::4][:per_split], top[2::4][:per_split], rand[1::3][:per_split], len(firing))
