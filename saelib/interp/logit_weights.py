"""Automated interpretability of a feature's logit weights beside that of its activations (Bricken et al. 2023).

Bricken et al. read a feature from both sides: where it fires (its activations) and what it does (its *logit
weights*, the direct effect of its decoder direction on the next-token logits), and asked whether an explanation
written from the activations also predicts the logit weights. This module is the offline analogue, for residual
stream directions of Cunningham et al.'s SAEs and their baselines (neuron basis, PCA, random directions).

**Logit weights.** ``logit_weights``: Wᵤᵀ (g ⊙ d) for a unit direction d, g the final RMSNorm's gain: the direct
path only (the layers after the hook are skipped), the norm frozen (its 1/rms scale treated as a constant), as
Bricken et al. read logit weights. Computed by ``saelib.model.lens.logit_lens``.

**The explanation's prediction of the promoted tokens.** The offline explainer (``TokenExplainer``) names the tokens
that drive the feature, each with a 0-10 level, learned from 5 top records; it says nothing about outputs. An LLM
reading "fires on ' New'" would guess that the feature promotes " York"; the offline stand-in for that knowledge of
language is next-token statistics of held-out text (``TextStatistics``): the explanation's predicted promotion of a
token y is

    p(y) = Σₓ level(x) · P(y follows the firing token | the explanation's token x)

with P counted on the text: the token right after x for an explanation "Fires on the tokens x", the token two after
x for "Fires on the token right after x" (the firing token is the one after x).

**The score** (``promotion_auroc``, primary): over the candidate vocabulary V (the distinct tokens of the held-out
text, the separator left out), the positives are the feature's ``LOGIT_K`` most promoted tokens in V (top logit
weights); the score is the AUROC of p(y) in telling them from the rest of V, ties counted one half (Mann-Whitney).
0.5 = the explanation says nothing about what the feature promotes, 1 = every promoted token is predicted above every
other token. Why this statistic: it is rank-based, so the very different logit-weight scales of the methods do not
enter; its chance level is exactly 0.5 for every method and feature (a feature that never fires, or an explanation
naming nothing, scores 0.5); and it uses the whole predicted ranking, not only a top-k overlap that is ~0 for
almost every feature. With predictions that are zero on most of V it is close to 0.5 + ½·(share of promoted tokens
the explanation predicts at all − share of other tokens it predicts), refined by the order among predicted tokens.
The candidate vocabulary is restricted to tokens of the text because a text-based predictor cannot name a token
the text never shows; ``FeatureLogitScore.in_text_share`` says how many of the full-vocabulary top tokens that
leaves.

**Negative control** (``pairing_aurocs``): each feature's explanation scored against every *other* scored feature's
logit weights (same method and layer), averaged: the exact expectation of the score under a random shuffle of the
pairing. It keeps everything the methods share (frequent tokens that every explanation predicts, promoted tokens
common to many features) and removes only the link between this feature's explanation and its own outputs; a real
effect is a paired advantage (own − shuffled) whose interval lies above 0. Random unit directions are a method of
their own (``saelib.baselines.directions.random_directions``).

**Explanation-free statistic** (``next_token_profile``): the same AUROC with p(y) replaced by the activation-weighted
count of the tokens that actually follow the feature's ``NEXT_TOKEN_POSITIONS`` strongest activations in the
held-out text: whether the feature's output is consistent with where it fires, with no explainer in the way (with
its own shuffled-pairing control). **Naming share**: the share of the promoted tokens the explanation names itself;
in a model with tied embeddings (SmolLM2: Wᵤ = Wₑᵀ) a direction that reads a token's embedding also promotes that
token on the direct path, so this "echo" is high where a feature is still close to its input token.

**Intervals** are over features (the unit: one number per feature): Student's t 95% intervals of the mean
(``saelib.core.stats.mean_se``), and of the paired own − shuffled difference.

Limits: the lexical explainer describes token identity only, and the bigram stand-in for "what follows" knows only
the held-out text; the logit weights are the direct path, informative at late layers and a rough guide at early
ones, where later layers rewrite the residual stream before the unembedding.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from scipy import sparse
from scipy.stats import rankdata

from saelib.core.stats import Estimate, mean_se
from saelib.interp.autointerp import ProtocolConfig
from saelib.interp.explanations import Explainer, TokenExplainer, parse_explanation
from saelib.interp.fragments import Record, select_records
from saelib.interp.tokens import readable_tokens
from saelib.model.hooks import layer_of
from saelib.model.lens import NORM_HANDLING, logit_lens

LOGIT_K = 20  # promoted tokens per feature: its LOGIT_K largest logit weights (the AUROC's positives)
NEXT_TOKEN_POSITIONS = 64  # strongest activations whose following tokens form the explanation-free prediction
CHANCE = 0.5  # the AUROC of a prediction that carries no information
_RESIDUAL = "blocks.0.hook_resid_post"  # any residual hook: the direct path does not depend on the layer
_OFFSETS = {"token": 1, "previous": 2}  # explanation mode -> tokens from the named token to the one after the firing


def logit_weights(model, direction: torch.Tensor, hook: str | None = None) -> torch.Tensor:
    """Logit weights of ``direction`` ([d] or [n, d]): the direct effect on the logits of adding one unit of the
    (unit-normalised) direction to the final residual stream, Wᵤᵀ (g ⊙ d) with g the final RMSNorm's gain.

    The direct path, norm frozen, as Bricken et al. read logit weights: the layers after the hook are skipped and
    the norm's 1/rms scale is treated as a constant (only its gain is applied), via ``saelib.model.lens.logit_lens``.
    ``hook`` None (or a residual hook) reads a residual-stream direction; an ``mlp.hook_post`` hook a direction of
    that MLP's hidden layer, through its W_out first. Returns [vocab] or [n, vocab] float32 on the direction's
    device; a direction of the wrong width, with a non-finite value or of zero norm raises ``ValueError``."""
    hook = hook or _RESIDUAL
    d = torch.as_tensor(direction)
    if d.ndim not in (1, 2):
        raise ValueError(f"direction must be [d] or [n, d], got shape {tuple(d.shape)}")
    rows = d.reshape(-1, d.shape[-1]).float()
    width = int(model.blocks[layer_of(hook)].mlp.W_out.shape[0]) if ".mlp." in hook else int(model.W_U.shape[0])
    if rows.shape[1] != width:
        raise ValueError(f"direction has width {rows.shape[1]}, but {hook} has width {width}")
    if not torch.isfinite(rows).all():
        raise ValueError("direction has a NaN or infinite value")
    norms = rows.norm(dim=1, keepdim=True)
    if (norms == 0).any():
        raise ValueError("direction has zero norm: it has no logit weights")
    out = logit_lens(model, hook)(rows / norms)
    return out[0] if d.ndim == 1 else out


def logit_concentration(weights: np.ndarray, k: int = LOGIT_K) -> float:
    """How far the ``k`` largest logit weights stand out: their mean z-score over the vocabulary,
    (mean(top k) − mean) / sd. Scale-free; for Gaussian weights over ~49k tokens and k = 20 about 3.9, larger for a
    direction that promotes a few tokens strongly. NaN for constant weights."""
    w = np.asarray(weights, np.float64).ravel()
    sd = w.std()
    if sd == 0:
        return float("nan")
    return float((np.partition(w, -k)[-k:].mean() - w.mean()) / sd)


def top_k_indices(weights: np.ndarray, k: int) -> np.ndarray:
    """Indices of the ``k`` largest entries of each row of ``weights`` [..., n], largest first (ties: lower index)."""
    w = np.asarray(weights)
    if not 0 < k < w.shape[-1]:
        raise ValueError(f"k must be between 1 and {w.shape[-1] - 1} (the candidates less one), got {k}")
    return np.argsort(-w, axis=-1, kind="stable")[..., :k]


def pairing_aurocs(predictions: np.ndarray, weights: np.ndarray, k: int = LOGIT_K) -> np.ndarray:
    """[F, F] AUROC of prediction i [F, n] (row i of ``predictions``) in telling the ``k`` most promoted candidates
    of logit weights j [F, n] from the other n − k, ties counted one half (Mann-Whitney U / (k (n − k))). The
    diagonal is each feature's score; the mean of row i off the diagonal its shuffled-pairing control."""
    p, w = np.asarray(predictions, np.float64), np.asarray(weights, np.float64)
    if p.ndim != 2 or p.shape != w.shape:
        raise ValueError(f"predictions and weights must both be [features, candidates], got {p.shape} and {w.shape}")
    if not (np.isfinite(p).all() and np.isfinite(w).all()):
        raise ValueError("predictions and logit weights must be finite")
    n = p.shape[1]
    top = top_k_indices(w, k)  # [F, k]
    ranks = rankdata(p, axis=1)  # [F, n], ties share their mean rank
    rank_sums = ranks[:, top].sum(-1)  # [F (prediction), F (weights)]
    return (rank_sums - k * (k + 1) / 2) / (k * (n - k))


def promotion_auroc(prediction: np.ndarray, weights: np.ndarray, k: int = LOGIT_K) -> float:
    """The score of one prediction [n] against one feature's logit weights [n] over the candidates (see the module
    docstring): AUROC of the prediction for the ``k`` most promoted candidates."""
    return float(pairing_aurocs(np.asarray(prediction)[None], np.asarray(weights)[None], k)[0, 0])


class TextStatistics:
    """Held-out text as the stand-in for knowledge of language: which token follows which, and the explainer's
    records. ``tokens`` [n_fragments, length] token ids, ``strings`` id -> text for every id in them (the strings
    the explainer sees), ``exclude`` ids left out of the candidates and of every count (the document separator).

    Candidates (V) are the distinct ids of the text less ``exclude``, in increasing order; ``follow[o]`` [|V|, |V|]
    (sparse) counts, within a fragment, token b at o positions after token a, over windows with no excluded id."""

    def __init__(self, tokens: np.ndarray, strings: Mapping[int, str], exclude: Sequence[int] = ()):
        toks = np.asarray(tokens)
        if toks.ndim != 2 or toks.shape[1] < 3:
            raise ValueError(f"tokens must be [n_fragments, length >= 3], got shape {toks.shape}")
        self.tokens = toks
        self.candidates = np.setdiff1d(np.unique(toks), np.asarray(list(exclude), dtype=toks.dtype))
        missing = [int(t) for t in self.candidates if int(t) not in strings]
        if missing:
            raise ValueError(f"strings has no text for {len(missing)} token ids of the text, e.g. {missing[:5]}")
        self.strings = {int(t): strings[int(t)] for t in np.unique(toks)}
        self._index = {int(t): i for i, t in enumerate(self.candidates)}
        self.by_string: dict[str, list[int]] = defaultdict(list)  # text -> candidate indices decoding to it
        for i, t in enumerate(self.candidates):
            self.by_string[self.strings[int(t)]].append(i)
        ok = ~np.isin(toks, np.asarray(list(exclude), dtype=toks.dtype))
        col = np.searchsorted(self.candidates, toks)  # [n, length]; valid where ok
        self.follow: dict[int, sparse.csr_matrix] = {}
        for o in sorted(set(_OFFSETS.values())):
            valid = np.ones((toks.shape[0], toks.shape[1] - o), bool)
            for j in range(o + 1):
                valid &= ok[:, j : toks.shape[1] - o + j]
            a, b = col[:, :-o][valid], col[:, o:][valid]
            n = len(self.candidates)
            self.follow[o] = sparse.csr_matrix((np.ones(len(a)), (a, b)), shape=(n, n))

    @property
    def n_candidates(self) -> int:
        return len(self.candidates)

    def candidate_weights(self, weights: np.ndarray) -> np.ndarray:
        """The logit weights [..., vocab] restricted to the candidates, [..., |V|]."""
        w = np.asarray(weights)
        if w.shape[-1] <= int(self.candidates.max()):
            raise ValueError(f"logit weights have {w.shape[-1]} tokens, but the text has id {self.candidates.max()}")
        return w[..., self.candidates]

    def records(self, idx: np.ndarray, acts: np.ndarray) -> list[Record]:
        """Records of fragments ``idx`` for one feature's activations [n_fragments, length] (as ``Fragments``)."""
        return [Record([self.strings[int(t)] for t in self.tokens[int(i)]], acts[int(i)]) for i in idx]

    def predict(self, explanation: str) -> np.ndarray:
        """p(y) over the candidates [|V|] for a ``TokenExplainer`` sentence: the explanation's levels times the
        share of each candidate among the tokens that follow the firing token (module docstring); zeros for an
        explanation that names nothing in the text. ValueError for a sentence that is not a token explanation."""
        mode, terms = parse_explanation(explanation)
        counts = self.follow[_OFFSETS[mode]]
        out = np.zeros(self.n_candidates)
        for text, level in terms.items():
            rows = self.by_string.get(text, [])
            if not rows or level <= 0:
                continue
            after = np.asarray(counts[rows].sum(0)).ravel()
            if after.sum() > 0:
                out += level * after / after.sum()
        return out

    def named(self, explanation: str) -> np.ndarray:
        """[|V|] bool: candidates whose text the explanation names (either mode)."""
        _, terms = parse_explanation(explanation)
        out = np.zeros(self.n_candidates, bool)
        for text in terms:
            out[self.by_string.get(text, [])] = True
        return out

    def next_token_profile(self, acts: np.ndarray, n_positions: int = NEXT_TOKEN_POSITIONS) -> np.ndarray:
        """Explanation-free prediction [|V|]: over the ``n_positions`` strongest positive activations of one feature
        ([n_fragments, length], on this text) that have a next token in their fragment, the activation-weighted
        count of each candidate as that next token. Zeros for a feature that never fires."""
        a = np.asarray(acts, np.float64)
        if a.shape != self.tokens.shape:
            raise ValueError(f"activations have shape {a.shape}; the text is {self.tokens.shape}")
        head, nxt = a[:, :-1].ravel(), self.tokens[:, 1:].ravel()
        keep = (head > 0) & np.isin(nxt, self.candidates)
        pos = np.flatnonzero(keep)
        pos = pos[np.argsort(-head[pos], kind="stable")[:n_positions]]
        out = np.zeros(self.n_candidates)
        np.add.at(out, np.searchsorted(self.candidates, nxt[pos]), head[pos])
        return out


@dataclass(frozen=True)
class PromotedTokens:
    """A feature's most promoted tokens over the whole vocabulary, most promoted first."""

    ids: tuple[int, ...]  # token ids, largest logit weight first
    tokens: tuple[str, ...]  # their readable text
    weights: tuple[float, ...]  # their logit weights (per unit of the direction)


def promoted_tokens(weights: np.ndarray, k: int = LOGIT_K, tokenizer=None, strings=None) -> PromotedTokens:
    """The ``k`` largest logit weights of one feature [vocab]; text from ``tokenizer`` (``readable_tokens``), else
    from the ``strings`` mapping, else the id."""
    w = np.asarray(weights, np.float64)
    ids = top_k_indices(w, k).tolist()
    if tokenizer is not None:
        text = readable_tokens(tokenizer, ids)
    else:
        text = [(strings or {}).get(i, f"<{i}>") for i in ids]
    return PromotedTokens(tuple(ids), tuple(text), tuple(float(w[i]) for i in ids))


@dataclass(frozen=True)
class FeatureLogitScore:
    """One feature's logit weights, its activation-based explanation, and how well the one predicts the other."""

    feature: int  # index in its dictionary
    status: str  # "scored", or "never fires" (no activation on the text: no explanation, scores at chance)
    explanation: str  # TokenExplainer's sentence from the feature's explanation records ("" when it never fires)
    promoted: PromotedTokens  # its LOGIT_K most promoted tokens over the whole vocabulary
    concentration: float  # logit_concentration over the whole vocabulary (mean z of the top k)
    in_text_share: float  # share of the whole-vocabulary top k that are candidates (occur in the text)
    score: float  # primary: AUROC of the explanation's prediction for its own top-k promoted candidates
    shuffled: float  # the same explanation against every other scored feature's logit weights (mean AUROC)
    naming_share: float  # share of its top-k promoted candidates the explanation names itself (the echo)
    next_token: float  # explanation-free: AUROC of the tokens following its strongest activations
    next_token_shuffled: float  # the same against every other scored feature's logit weights


def score_features(
    features: Sequence[int],
    weights: np.ndarray,
    acts: np.ndarray,
    text: TextStatistics,
    explainer: Explainer | None = None,
    cfg: ProtocolConfig = ProtocolConfig(),
    k: int = LOGIT_K,
    tokenizer=None,
) -> list[FeatureLogitScore]:
    """Score ``features`` of one dictionary at one layer: ``weights`` [F, vocab] their logit weights
    (``logit_weights``), ``acts`` [F, n_fragments, length] their activations on ``text``. The explanation comes
    from the records autointerp explains from (``select_records`` with ``cfg``, seed ``cfg.seed + feature``), so it
    is notebook 02's explanation of the same feature; the shuffled control pairs it with the other features of this
    call, so score at least two."""
    feats = [int(f) for f in features]
    w, a = np.asarray(weights, np.float64), np.asarray(acts)
    if len(feats) < 2:
        raise ValueError("score at least two features: the shuffled control pairs each with the others")
    if w.ndim != 2 or len(w) != len(feats):
        raise ValueError(f"weights must be [{len(feats)} features, vocab], got shape {w.shape}")
    if a.shape != (len(feats), *text.tokens.shape):
        raise ValueError(f"acts must be [{len(feats)}, {text.tokens.shape[0]}, {text.tokens.shape[1]}], got {a.shape}")
    explainer = explainer or TokenExplainer()
    wc = text.candidate_weights(w)  # [F, |V|]
    explanations, statuses = [], []
    for f, act in zip(feats, a):
        splits = select_records(act, cfg.n_top, cfg.n_random, cfg.per_split, seed=cfg.seed + f)
        fires = splits.n_firing > 0
        statuses.append("scored" if fires else "never fires")
        explanations.append(explainer.explain(text.records(splits.explain, act)) if fires else "")
    predictions = np.stack([text.predict(e) if e else np.zeros(text.n_candidates) for e in explanations])
    profiles = np.stack([text.next_token_profile(act) for act in a])
    own, nxt = pairing_aurocs(predictions, wc, k), pairing_aurocs(profiles, wc, k)
    off = ~np.eye(len(feats), dtype=bool)
    top = top_k_indices(wc, k)
    out = []
    for i, f in enumerate(feats):
        promoted = promoted_tokens(w[i], k, tokenizer, text.strings)
        named = text.named(explanations[i]) if explanations[i] else np.zeros(text.n_candidates, bool)
        out.append(
            FeatureLogitScore(
                feature=f,
                status=statuses[i],
                explanation=explanations[i],
                promoted=promoted,
                concentration=logit_concentration(w[i], k),
                in_text_share=float(np.isin(promoted.ids, text.candidates).mean()),
                score=float(own[i, i]),
                shuffled=float(own[i][off[i]].mean()),
                naming_share=float(named[top[i]].mean()),
                next_token=float(nxt[i, i]),
                next_token_shuffled=float(nxt[i][off[i]].mean()),
            )
        )
    return out


@dataclass(frozen=True)
class MethodSummary:
    """One method at one layer: means over its scored features with Student's t 95% intervals (features the unit)."""

    method: str  # "SAE", "neuron basis", "PCA", "random"
    n: int  # features scored
    never_fires: int  # of them, features with no activation on the text (scored at chance)
    score: Estimate  # the explanation's AUROC for its own feature's promoted tokens
    shuffled: Estimate  # the same against other features' logit weights (negative control)
    advantage: Estimate  # paired score − shuffled: a real effect has its interval above 0
    next_token: Estimate  # explanation-free AUROC
    next_token_advantage: Estimate  # paired next_token − next_token_shuffled
    naming_share: Estimate  # share of promoted tokens the explanation names (tied-embedding echo)
    concentration: Estimate  # logit-weight concentration
    in_text_share: Estimate  # share of the whole-vocabulary top k that occur in the text (are candidates)
    beats_control: bool  # advantage's interval lies wholly above 0


def summarize(method: str, scores: Sequence[FeatureLogitScore]) -> MethodSummary:
    """Means with t intervals over ``scores`` (one per feature); ``advantage`` is the paired difference."""
    if not scores:
        raise ValueError(f"{method}: no feature scores to summarise")
    col = lambda name: np.array([getattr(s, name) for s in scores], np.float64)  # noqa: E731
    advantage = mean_se(col("score") - col("shuffled"))
    conc = col("concentration")
    return MethodSummary(
        method=method,
        n=len(scores),
        never_fires=sum(s.status == "never fires" for s in scores),
        score=mean_se(col("score")),
        shuffled=mean_se(col("shuffled")),
        advantage=advantage,
        next_token=mean_se(col("next_token")),
        next_token_advantage=mean_se(col("next_token") - col("next_token_shuffled")),
        naming_share=mean_se(col("naming_share")),
        concentration=mean_se(conc[np.isfinite(conc)]) if np.isfinite(conc).any() else mean_se([np.nan]),
        in_text_share=mean_se(col("in_text_share")),
        beats_control=advantage.above(0.0),
    )


DEFINITIONS = {
    "logit_weights": f"W_U^T (g * d) for the unit direction d: {NORM_HANDLING}",
    "score": (
        f"AUROC over the candidate tokens (distinct tokens of the held-out text) of the explanation's predicted "
        f"promotion p(y) = sum_x level(x) P(y follows the firing token | x) for the feature's {LOGIT_K} most "
        "promoted candidates against the rest; chance 0.5"
    ),
    "shuffled": "the explanation scored against every other scored feature's logit weights, averaged",
    "next_token": (
        f"the same AUROC with p(y) = activation-weighted counts of the tokens following the feature's "
        f"{NEXT_TOKEN_POSITIONS} strongest activations (no explainer)"
    ),
    "naming_share": "share of the top promoted candidates the explanation names (tied-embedding echo)",
    "concentration": f"mean z-score over the vocabulary of the {LOGIT_K} largest logit weights",
    "interval": "Student's t 95% interval over features (saelib.core.stats.mean_se)",
}
