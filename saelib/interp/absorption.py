"""Feature absorption on the first-letter task, after Chanin et al. 2024 ("A is for Absorption: Studying Feature
Splitting and Absorption in Sparse Autoencoders", arXiv 2409.14507) as SAEBench implements it (Karvonen et al.
2025, "SAEBench: A Comprehensive Benchmark for Sparse Autoencoders", arXiv 2503.09532, ``evals/absorption``).

**Absorption.** A sparse dictionary may learn a general latent ("starts with S") and, beside it, latents for
specific tokens (" short") that fire *instead* of the general one: the general latent looks like a clean "starts
with S" detector with holes, and the specific latent has absorbed the first-letter direction for its tokens. The
test needs a ground truth for the concept; the first letter of a single-token word gives one, read by a linear
probe on the model's residual stream.

**Operational definition used here** (the symbols are the module's named constants):

1. Task: lowercase ASCII single-token words of the vocabulary with a leading space and at least ``MIN_WORD_LENGTH``
   letters (``single_token_words``); a seeded sample of at most ``words_per_letter`` per letter
   (``sample_words``), split into probe-train and test words by word (``split_words``, ``TEST_FRACTION``). Each
   word is placed after ``N_ICL_EXAMPLES`` in-context examples drawn from words of the same split, in SAEBench's
   pattern ``"{word} has the first letter: {L}"`` separated by newlines (``icl_prompt``); the residual
   ``blocks.N.hook_resid_post`` is read at the word's token (``word_residuals``).
2. Probe: one logistic regression per letter, one-vs-rest, class-balanced, on the train words' residuals
   (``train_letter_probes``); its F1 at decision threshold 0 on the test words (``letter_probe_f1``). Only letters
   with probe F1 >= ``MIN_PROBE_F1`` (SAEBench's ``min_GT_probe_f1``) are scored (``gate_letters``); the others are
   reported as failing the gate. SAEBench refuses to score a model with fewer than ``MIN_GATED_LETTERS`` such
   letters; here that is a flag (``AbsorptionSummary.enough_letters``), since a 135M model may pass few.
3. Main latents (SAEBench's k-sparse probing, ``main_latents``): latents ranked by the weight of an L1-penalised
   logistic probe on all codes (penalty ``K_SPARSE_L1_DECAY``); for k = 1 .. ``MAX_K`` a logistic probe on the top k
   latents; the main latents are the top k for the largest k reached while each step raised F1 by more than
   ``F1_JUMP``. Their F1 on the test words is the main-latent F1 (``sparse_probe_f1``); beside it the F1 of "some
   main latent fires" (SAEBench's ``f1_sum_sparse_sae``), which is what step 4 reads.
4. Absorption, per test word of a gated letter that the probe classifies correctly as the letter (probe score > 0;
   ``word_absorption``). With p the unit probe direction, the probe projection is x . p and a latent's share of it
   is c_j (d_j . p), d_j its decoder vector (its contribution to the reconstruction is c_j d_j). The word counts as
   **fully absorbed** when (a) no main latent fires (every code < ``FIRING_EPS``), (b) the latent with the largest
   share has cos(d_j, p) >= ``FULL_ABSORPTION_COS``, (c) x . p > 0, and (d) that latent's share is at least
   ``PROJECTION_SHARE`` of x . p. The **absorption rate** of a letter is the fraction of its probe true positives
   that are fully absorbed (SAEBench's ``full_absorption_rate``). SAEBench's **absorption fraction** is reported
   beside it: the probe projection carried by up to ``MAX_ABSORBING_LATENTS`` non-main latents with
   cos >= ``ABSORPTION_FRACTION_COS`` and a positive share, relative to that plus the main latents' share (0 when
   the main latents already carry x . p or the others carry less than ``PROJECTION_SHARE`` of it).
5. Summary (``summarize``): the absorption rate and fraction pooled over every scored word with a 95% interval from
   a bootstrap that resamples whole words (``saelib.core.stats.cluster_bootstrap``), SAEBench's unweighted mean
   over letters beside them, and the probe's and the main latents' F1 averaged over letters with the same
   word-level bootstrap (``macro_f1``).
6. Controls: the same pipeline on a random dictionary of the same shape (random unit directions, ReLU encoder by the
   transposed directions, one threshold that gives the SAE's L0 on these words; ``random_dictionary``) must not show
   the SAE's structure, and on a planted dictionary whose first latents are the probe directions themselves
   (``planted_dictionary``) the absorption rate must be about 0 and the main latents' firing F1 equal the probe F1.
   (Their k-sparse probe F1 can fall below it: that probe's threshold is learned on the train words, where a
   probe fitted to them has wider margins than on test words.)

**Where this departs from Chanin et al. / SAEBench.** Chanin et al. also test candidate absorbing latents causally,
by ablation on the model's first-letter prediction; SAEBench, and this module, use the projection criterion only.
SAEBench uses every alphabetic token of the vocabulary, either case; here lowercase words only (case variants of
one word would fall on both sides of the split), a seeded sample of them per letter, which keeps a CPU run to
minutes. SAEBench trains the probe with Adam on a BCE loss with positive-class weights; here scikit-learn's
class-balanced logistic regression (the same objective up to the L2 penalty). SAEBench picks the main latents on
the test words; here on cross-validated F1 over the train words (folds by word), so the words that are scored
never choose the latents. Latents with equal L1-probe weight (zero, mostly) are ordered by the difference of their
mean code on and off the letter. SAEBench's latent share is c_j cos(d_j, p), the same as c_j (d_j . p) for
unit-norm decoders; the shipped dictionaries fold the input scale into the decoder, so the decoder vector itself is
used. SAEBench reports no intervals, and recommends models of 2B parameters and more: a 135M model may represent
few first letters linearly, which the gate reports.
"""

from __future__ import annotations

import random
from collections import Counter
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from saelib.core.stats import Estimate, cluster_bootstrap
from saelib.dictionaries.sae.base import SAE, SAEConfig
from saelib.dictionaries.sae.tied import TiedSAE

LETTERS = "abcdefghijklmnopqrstuvwxyz"
PROMPT_TEMPLATE = "{word} has the first letter:"  # SAEBench's prompt_template
ANSWER_TEMPLATE = " {letter}"  # the answer after the template: a space and the capital letter (SAEBench)
EXAMPLE_SEPARATOR = "\n"  # between in-context examples; also before the first one (SAEBench's calculator)
N_ICL_EXAMPLES = 10  # in-context examples per prompt (SAEBench's max_icl_examples)
MIN_WORD_LENGTH = 2  # letters in a word, without its leading space
TEST_FRACTION = 0.2  # share of each letter's words held out for testing (SAEBench: 80/20 by token)

MIN_PROBE_F1 = 0.6  # a letter is scored only if its probe reaches this test F1 (SAEBench's min_GT_probe_f1)
MIN_GATED_LETTERS = 20  # SAEBench's min_feats_for_eval: fewer gated letters and it refuses to score the model
PROBE_C = 1.0  # inverse L2 strength of the letter probes (scikit-learn's default)

MAX_K = 10  # largest k of the k-sparse probes (SAEBench's max_k_value)
F1_JUMP = 0.03  # a latent joins the main latents if it raises the k-sparse F1 by more (SAEBench's f1_jump_threshold)
K_SPARSE_L1_DECAY = 0.01  # L1 penalty per mean log loss of the ranking probe (SAEBench's k_sparse_probe_l1_decay)
SELECTION_FOLDS = 3  # cross-validation folds (by word) for the F1 that picks the main latents

FIRING_EPS = 1e-8  # a code below this is silent (SAEBench's EPS)
FULL_ABSORPTION_COS = 0.025  # min cos(decoder, probe) of the top-share latent (SAEBench)
ABSORPTION_FRACTION_COS = 0.1  # min cos of a latent counted in the absorption fraction (SAEBench)
PROJECTION_SHARE = 0.4  # min share of the probe projection the absorbing latent(s) carry (SAEBench)
MAX_ABSORBING_LATENTS = 3  # latents that may share the absorbed projection (SAEBench's absorption fraction)


# --------------------------------------------------------------------------------------------------- the task


def single_token_words(tokenizer, min_length: int = MIN_WORD_LENGTH) -> dict[str, list[str]]:
    """letter -> sorted words (each with its leading space) that the tokenizer encodes as exactly one token:
    lowercase ASCII letters only, at least ``min_length`` of them. Follows SAEBench's ``get_alpha_tokens`` (which
    keeps both cases); re-encoding each candidate checks that the word is one token in running text."""
    by_letter: dict[str, list[str]] = {letter: [] for letter in LETTERS}
    for token, token_id in tokenizer.get_vocab().items():
        text = tokenizer.convert_tokens_to_string([token])
        body = text[1:]
        if not (text.startswith(" ") and len(body) >= min_length and body.isascii() and body.isalpha()):
            continue
        if body.islower() and tokenizer.encode(text, add_special_tokens=False) == [token_id]:
            by_letter[body[0]].append(text)
    return {letter: sorted(words) for letter, words in by_letter.items()}


def sample_words(words_by_letter: Mapping[str, Sequence[str]], per_letter: int, seed: int = 0) -> list[str]:
    """A fixed seeded sample of at most ``per_letter`` words of every letter (all of a letter that has fewer), in
    letter order. The same seed and vocabulary give the same words."""
    if per_letter < 1:
        raise ValueError(f"per_letter must be at least 1, got {per_letter}")
    out: list[str] = []
    for letter in sorted(words_by_letter):
        pool = sorted(words_by_letter[letter])
        rng = random.Random(f"{seed}-{letter}")
        out.extend(sorted(rng.sample(pool, min(per_letter, len(pool)))))
    return out


def first_letter(word: str) -> str:
    """The lowercase first letter of a word with or without its leading space."""
    return word.strip()[0].lower()


def split_words(words: Sequence[str], test_fraction: float = TEST_FRACTION, seed: int = 0) -> tuple[list, list]:
    """(train words, test words): within each letter a seeded shuffle, ``test_fraction`` of the words (rounded, at
    least one where a letter has two or more) held out. The split is by word, never by occurrence: a word's prompts
    all fall on one side (SAEBench splits its vocabulary the same way)."""
    if not 0 < test_fraction < 1:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    if len(set(words)) != len(words):
        raise ValueError("words must be distinct: a repeated word would fall on both sides of the split")
    train: list[str] = []
    test: list[str] = []
    for letter in LETTERS:
        group = sorted(w for w in words if first_letter(w) == letter)
        random.Random(f"{seed}-split-{letter}").shuffle(group)
        n_test = 0 if len(group) < 2 else max(1, round(test_fraction * len(group)))
        test.extend(group[:n_test])
        train.extend(group[n_test:])
    return train, test


def icl_prompt(word: str, examples: Sequence[str], n_examples: int, rng: random.Random) -> str:
    """SAEBench's ``create_icl_prompt``: ``n_examples`` other words of ``examples`` (drawn by ``rng``) each followed
    by its answer, then ``word`` with the answer left open; lines separated by ``EXAMPLE_SEPARATOR``, which also
    starts the prompt."""
    pool = [w for w in examples if w != word]
    if len(pool) < n_examples:
        raise ValueError(f"need {n_examples} in-context examples besides {word!r}, have {len(pool)} words")
    lines = [
        PROMPT_TEMPLATE.format(word=w) + ANSWER_TEMPLATE.format(letter=first_letter(w).upper())
        for w in rng.sample(pool, n_examples)
    ]
    return EXAMPLE_SEPARATOR + EXAMPLE_SEPARATOR.join([*lines, PROMPT_TEMPLATE.format(word=word)])


@dataclass(frozen=True, eq=False)
class FirstLetterTask:
    """The prompts of the first-letter task, one row per prompt (a word may have several prompts)."""

    words: tuple[str, ...]  # the word of each row, with its leading space
    labels: np.ndarray  # [rows] int: index of the word's first letter in LETTERS
    is_test: np.ndarray  # [rows] bool: the word is a test word (else a probe-train word)
    prompts: tuple[str, ...]  # the prompt text of each row; the residual is read at the word's token

    def __post_init__(self) -> None:
        n = len(self.words)
        if not (len(self.labels) == len(self.is_test) == len(self.prompts) == n):
            raise ValueError(
                f"a task needs one label, split flag and prompt per word: got {n} words, {len(self.labels)} "
                f"labels, {len(self.is_test)} split flags, {len(self.prompts)} prompts"
            )

    def __len__(self) -> int:
        return len(self.words)

    def words_per_letter(self, test: bool) -> np.ndarray:
        """[26] distinct test (or train) words of each letter."""
        distinct = {(w, int(lab)) for w, lab, t in zip(self.words, self.labels, self.is_test) if bool(t) == test}
        return np.bincount([lab for _, lab in distinct], minlength=len(LETTERS))


def build_task(
    train_words: Sequence[str],
    test_words: Sequence[str],
    n_examples: int = N_ICL_EXAMPLES,
    prompts_per_word: int = 1,
    seed: int = 0,
) -> FirstLetterTask:
    """The task's rows: ``prompts_per_word`` prompts per word, in-context examples drawn from words of the word's
    own split (SAEBench: train prompts from the train vocabulary, test prompts from the test vocabulary)."""
    if set(train_words) & set(test_words):
        raise ValueError(f"words on both sides of the split: {sorted(set(train_words) & set(test_words))[:5]}")
    rng = random.Random(seed)
    words, labels, is_test, prompts = [], [], [], []
    for split, pool in ((False, list(train_words)), (True, list(test_words))):
        for word in pool:
            for _ in range(prompts_per_word):
                words.append(word)
                labels.append(LETTERS.index(first_letter(word)))
                is_test.append(split)
                prompts.append(icl_prompt(word, pool, n_examples, rng))
    return FirstLetterTask(tuple(words), np.array(labels, dtype=np.int64), np.array(is_test, bool), tuple(prompts))


def tokenize_task(tokenizer, task: FirstLetterTask) -> tuple[torch.Tensor, torch.Tensor]:
    """(tokens [rows, max_len] right-padded, word_positions [rows]): each prompt without special tokens (the
    project's models run without BOS) and the position of its word's token, checked to be that single token."""
    suffix = PROMPT_TEMPLATE.split("{word}", 1)[1]
    rows, positions = [], []
    for word, prompt in zip(task.words, task.prompts):
        ids = tokenizer.encode(prompt, add_special_tokens=False)
        head = tokenizer.encode(prompt[: len(prompt) - len(suffix)], add_special_tokens=False)
        word_ids = tokenizer.encode(word, add_special_tokens=False)
        pos = len(head) - 1
        if len(word_ids) != 1 or ids[: len(head)] != head or ids[pos] != word_ids[0]:
            raise ValueError(f"{word!r} is not a single token at the end of its prompt's head: {prompt!r}")
        rows.append(ids)
        positions.append(pos)
    width = max(len(r) for r in rows)
    tokens = torch.zeros(len(rows), width, dtype=torch.long)  # right padding never reaches earlier positions
    for i, ids in enumerate(rows):
        tokens[i, : len(ids)] = torch.tensor(ids)
    return tokens, torch.tensor(positions)


def word_residuals(
    model, task: FirstLetterTask, layers: Sequence[int], batch_size: int = 32
) -> dict[int, torch.Tensor]:
    """layer -> residuals [rows, d] at each prompt's word token (``blocks.{layer}.hook_resid_post``), float32 on the
    CPU; one pass through the deepest layer, ``batch_size`` prompts at a time
    (``saelib.model.forward.collect_residuals``)."""
    from saelib.model.forward import collect_residuals

    tokens, positions = tokenize_task(model.tokenizer, task)
    out: dict[int, list[torch.Tensor]] = {layer: [] for layer in layers}
    for start in range(0, len(task), batch_size):
        batch = tokens[start : start + batch_size]
        pos = positions[start : start + batch_size]
        batch = batch[:, : int(pos.max()) + 1]  # nothing after the word is needed
        acts, _ = collect_residuals(model, batch, list(layers))
        for layer in layers:
            out[layer].append(acts[layer][torch.arange(len(batch)), pos])
    return {layer: torch.cat(v) for layer, v in out.items()}


# --------------------------------------------------------------------------------------------------- the probe


@dataclass(frozen=True, eq=False)
class LetterProbes:
    """One logistic probe per letter on the residual stream: score = x . weights[l] + bias[l]."""

    weights: np.ndarray  # [26, d] in raw residual units
    bias: np.ndarray  # [26]
    f1: np.ndarray  # [26] F1 on the test words at score > 0 (NaN for a letter without test words)
    n_train: np.ndarray  # [26] train words per letter
    n_test: np.ndarray  # [26] test words per letter

    def scores(self, x: np.ndarray) -> np.ndarray:
        """[rows, 26] probe scores (logits)."""
        return x @ self.weights.T + self.bias

    def direction(self, letter: int) -> np.ndarray:
        """The unit probe direction of a letter, [d]."""
        w = self.weights[letter]
        return w / np.linalg.norm(w)


def _check_rows(x: np.ndarray, task: FirstLetterTask) -> None:
    if x.ndim != 2 or x.shape[0] != len(task):
        raise ValueError(
            f"residuals must be [rows, d] with one row per task prompt ({len(task)}), got shape {tuple(x.shape)}: "
            "pass the residuals word_residuals returned for this task"
        )


def train_letter_probes(x: np.ndarray, task: FirstLetterTask, c: float = PROBE_C) -> LetterProbes:
    """SAEBench's ground-truth probe, one-vs-rest: a class-balanced logistic regression per letter on the train
    rows (scikit-learn, L2 strength 1/``c``), and its F1 on the test rows (``letter_probe_f1``). Features are scaled
    by one scalar (their RMS) for the solver; the weights are returned in raw units, so directions are unchanged."""
    from sklearn.linear_model import LogisticRegression

    _check_rows(x, task)
    train, test = ~task.is_test, task.is_test
    scale = float(np.sqrt(np.mean(x[train] ** 2)))
    xs = x[train] / scale
    weights = np.zeros((len(LETTERS), x.shape[1]))
    bias = np.zeros(len(LETTERS))
    for letter in range(len(LETTERS)):
        y = task.labels[train] == letter
        if y.all() or not y.any():
            bias[letter] = 1.0 if y.all() else -1.0  # no words of this letter (or only these): a constant probe
            continue
        fit = LogisticRegression(C=c, class_weight="balanced", solver="newton-cg", max_iter=1000).fit(xs, y)
        weights[letter], bias[letter] = fit.coef_[0] / scale, fit.intercept_[0]
    n_train, n_test = task.words_per_letter(test=False), task.words_per_letter(test=True)
    probes = LetterProbes(weights, bias, np.full(len(LETTERS), np.nan), n_train, n_test)
    return LetterProbes(weights, bias, letter_probe_f1(probes, x[test], task.labels[test]), n_train, n_test)


def _f1(y: np.ndarray, pred: np.ndarray) -> float:
    tp = float(np.sum(y & pred))
    denom = float(np.sum(y) + np.sum(pred))
    return 2 * tp / denom if denom else 0.0


def letter_probe_f1(probes: LetterProbes, x: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """[26] F1 of each letter's probe (score > 0) on rows ``x`` with true letters ``labels``; NaN for a letter with
    no rows (SAEBench's ``f1_probe``)."""
    scores = probes.scores(x)
    return np.array(
        [_f1(labels == i, scores[:, i] > 0) if np.any(labels == i) else np.nan for i in range(len(LETTERS))]
    )


def gate_letters(probes: LetterProbes, min_f1: float = MIN_PROBE_F1) -> tuple[list[int], list[int]]:
    """(letters whose probe test F1 reaches ``min_f1``, letters that do not), as indices into LETTERS: SAEBench
    scores only letters whose ground-truth probe is good enough (``min_GT_probe_f1``). A letter without test
    words fails."""
    passed = [i for i in range(len(LETTERS)) if probes.f1[i] >= min_f1]
    return passed, [i for i in range(len(LETTERS)) if i not in passed]


# --------------------------------------------------------------------------------------------------- dictionaries


def dictionary_codes(sae: SAE, x: np.ndarray, batch_size: int = 4096) -> np.ndarray:
    """[rows, n_features] codes of residuals ``x`` [rows, d_in] (``SAE.encode``), float32 numpy."""
    if x.ndim != 2 or x.shape[1] != sae.cfg.d_in:
        raise ValueError(
            f"residuals have shape {tuple(x.shape)} but the dictionary reads [rows, {sae.cfg.d_in}]: use a "
            "dictionary trained on this hook's width"
        )
    xt = torch.as_tensor(x, dtype=torch.float32)
    return torch.cat([sae.encode(b) for b in xt.split(batch_size)]).numpy()


def decoder_vectors(sae: SAE, batch_size: int = 1024) -> np.ndarray:
    """[n_features, d_in] each latent's contribution to the reconstruction per unit of code, in raw residual units:
    ``decode(e_j) - decode(0)`` (the decoder row with any input scale folded in; unit norm for SAELens-style
    dictionaries)."""
    n = sae.cfg.n_features
    zero = sae.decode(torch.zeros(1, n))
    rows = [sae.decode(torch.eye(n)[i : i + batch_size]) - zero for i in range(0, n, batch_size)]
    return torch.cat(rows).numpy()


def random_dictionary(
    d_in: int, n_features: int, x: np.ndarray, target_l0: float, seed: int = 0, name: str = "random"
) -> SAE:
    """The negative control: a tied dictionary of ``n_features`` random unit directions whose ReLU encoder is the
    transposed directions with one shared threshold, set so that the mean L0 on residuals ``x`` is ``target_l0``
    (pass the SAE's own L0 on the same rows)."""
    if x.ndim != 2 or x.shape[1] != d_in:
        raise ValueError(f"residuals have shape {tuple(x.shape)}, the dictionary reads [rows, {d_in}]")
    if not 0 < target_l0 < n_features:
        raise ValueError(f"target_l0 must be in (0, {n_features}), got {target_l0}")
    gen = torch.Generator().manual_seed(seed)
    directions = torch.randn(n_features, d_in, generator=gen)
    directions = directions / directions.norm(dim=1, keepdim=True)
    pre = (torch.as_tensor(x, dtype=torch.float32) @ directions.T).numpy()
    threshold = float(np.quantile(pre, 1 - target_l0 / n_features))
    sae = TiedSAE(SAEConfig("tied", d_in, n_features, (0.0,), extra={"control": name, "threshold": threshold}))
    with torch.no_grad():
        sae.weight.copy_(directions[None])
        sae.encoder_bias.fill_(-threshold)
    return sae


def planted_dictionary(base: SAE, probes: LetterProbes) -> SAE:
    """The positive control: a copy of the tied dictionary ``base`` (e.g. ``random_dictionary``) whose latent i is
    the unit probe direction of letter i (i < 26) with the probe's bias, so it fires exactly where the probe says
    the letter: the firing F1 of that latent equals the probe F1, and absorption should be about 0."""
    if not isinstance(base, TiedSAE) or base.cfg.input_scale != 1.0:
        raise ValueError("planted_dictionary needs a tied dictionary with input_scale 1 (from random_dictionary)")
    if probes.weights.shape[1] != base.cfg.d_in or base.cfg.n_features < len(LETTERS):
        raise ValueError(
            f"probes of width {probes.weights.shape[1]} do not fit a dictionary of {base.cfg.n_features} latents "
            f"of width {base.cfg.d_in}"
        )
    sae = TiedSAE(SAEConfig("tied", base.cfg.d_in, base.cfg.n_features, (0.0,), extra={"control": "planted"}))
    norms = np.linalg.norm(probes.weights, axis=1)
    ok = norms > 0
    with torch.no_grad():
        sae.weight.copy_(base.weight)
        sae.encoder_bias.copy_(base.encoder_bias)
        idx = torch.as_tensor(np.flatnonzero(ok))
        sae.weight[0, idx] = torch.as_tensor(probes.weights[ok] / norms[ok, None], dtype=torch.float32)
        sae.encoder_bias[0, idx] = torch.as_tensor(probes.bias[ok] / norms[ok], dtype=torch.float32)
    return sae


# --------------------------------------------------------------------------------------------------- main latents


@dataclass(frozen=True)
class MainLatents:
    """A letter's main latents from k-sparse probing."""

    latents: tuple[int, ...]  # the main latents, most important first
    ranking: tuple[int, ...]  # the top MAX_K latents by the L1 probe, in order
    selection_f1: tuple[float, ...]  # cross-validated train F1 of the top-k probe for each k tried (k = 1, 2, ...)


class _SparseProbe:
    """A class-balanced, L2-penalised logistic regression on a few latents, fitted by Newton's method: the objective
    of scikit-learn's ``LogisticRegression(class_weight="balanced")`` that SAEBench's k-sparse probes use (C = 1,
    intercept not penalised), without its per-fit overhead (thousands of fits per dictionary)."""

    def __init__(self, x: np.ndarray, y: np.ndarray, c: float = 1.0, max_iter: int = 100):
        n, k = x.shape
        x1 = np.hstack([x, np.ones((n, 1))])
        t = y.astype(float)
        s = np.where(y, n / (2 * max(int(y.sum()), 1)), n / (2 * max(int((~y).sum()), 1)))  # balanced weights
        ridge = np.r_[np.ones(k), 0.0]

        def objective(theta: np.ndarray) -> float:
            f = x1 @ theta
            return float(0.5 * theta[:k] @ theta[:k] + c * np.sum(s * (np.logaddexp(0, f) - t * f)))

        theta = np.zeros(k + 1)
        value = objective(theta)
        for _ in range(max_iter):
            p = 1 / (1 + np.exp(-(x1 @ theta)))
            grad = c * x1.T @ (s * (p - t)) + ridge * theta
            if np.abs(grad).max() < 1e-8:
                break
            hess = c * (x1.T * (s * p * (1 - p))) @ x1 + np.diag(ridge + 1e-10)
            step, rate = np.linalg.solve(hess, grad), 1.0
            while rate > 1e-8 and objective(theta - rate * step) > value:
                rate /= 2
            theta = theta - rate * step
            new_value = objective(theta)
            if value - new_value < 1e-12 * max(1.0, abs(value)):
                value = new_value
                break
            value = new_value
        self.coef, self.intercept = theta[:k], float(theta[k])

    def decision_function(self, x: np.ndarray) -> np.ndarray:
        return x @ self.coef + self.intercept


def _fit_sparse(codes: np.ndarray, y: np.ndarray) -> _SparseProbe:
    return _SparseProbe(codes.astype(np.float64), y)


def _word_folds(y: np.ndarray, groups: np.ndarray, folds: int) -> np.ndarray:
    """[rows] fold of each row: every word's rows in one fold, the words of each class (``y``) dealt round-robin in a
    fixed shuffled order, so each fold holds about the same share of the letter."""
    fold = np.zeros(len(y), np.int64)
    for cls in (True, False):
        words = sorted(set(groups[y == cls].tolist()))
        random.Random(0).shuffle(words)
        where = {w: i % folds for i, w in enumerate(words)}
        rows = np.flatnonzero(y == cls)
        fold[rows] = [where[g] for g in groups[rows].tolist()]
    return fold


def _cv_f1(codes: np.ndarray, y: np.ndarray, fold: np.ndarray) -> float:
    """F1 of out-of-fold predictions of the class-balanced logistic probe on ``codes``, folds given per row."""
    pred = np.zeros(len(y), bool)
    for f in np.unique(fold):
        tr, te = fold != f, fold == f
        if y[tr].all() or not y[tr].any():
            continue
        pred[te] = _fit_sparse(codes[tr], y[tr]).decision_function(codes[te]) > 0
    return _f1(y, pred)


def _l1_logistic(c: float):
    """A class-balanced L1-penalised logistic regression (liblinear) in any scikit-learn >= 1.4: ``penalty`` is
    deprecated from 1.8 on in favour of ``l1_ratio``, which older versions ignore without ``elasticnet``."""
    import sklearn
    from sklearn.linear_model import LogisticRegression

    major, minor = (int(p) for p in sklearn.__version__.split(".")[:2])
    penalty = {"l1_ratio": 1.0} if (major, minor) >= (1, 8) else {"penalty": "l1"}
    return LogisticRegression(solver="liblinear", C=c, class_weight="balanced", max_iter=1000, **penalty)


def rank_latents(codes: np.ndarray, y: np.ndarray, l1_decay: float = K_SPARSE_L1_DECAY, top: int = MAX_K) -> list:
    """The ``top`` latents by the weight of an L1-penalised, class-balanced logistic probe on all codes (SAEBench's
    k-sparse ranking; scikit-learn ``C = 1 / (l1_decay * rows)`` matches a penalty of ``l1_decay`` per mean log
    loss); ties (latents the penalty zeroed) ordered by the difference of mean code on and off the letter."""
    weight = _l1_logistic(1.0 / (l1_decay * len(y))).fit(codes, y).coef_[0]
    diff = codes[y].mean(0) - codes[~y].mean(0)
    order = np.lexsort((-diff, -weight))  # last key first: weight descending, then mean difference descending
    return [int(i) for i in order[:top]]


def main_latents(
    codes: np.ndarray,
    y: np.ndarray,
    groups: np.ndarray,
    max_k: int = MAX_K,
    f1_jump: float = F1_JUMP,
    l1_decay: float = K_SPARSE_L1_DECAY,
    folds: int = SELECTION_FOLDS,
) -> MainLatents:
    """SAEBench's main latents (``add_feature_splits_to_metrics_df``) of one letter from train codes [rows, n], the
    letter's labels ``y`` [rows] bool and each row's word ``groups``: the top-k latents of ``rank_latents`` for the
    largest k such that every step from k = 1 raised the cross-validated F1 by more than ``f1_jump``."""
    if codes.ndim != 2 or len(codes) != len(y) or len(y) != len(groups):
        raise ValueError(
            f"codes [rows, n], labels [rows] and groups [rows] must share their rows; got {tuple(codes.shape)}, "
            f"{len(y)}, {len(groups)}"
        )
    if y.all() or not y.any():
        raise ValueError("main_latents needs train rows both of the letter and of other letters")
    ranking = rank_latents(codes, y, l1_decay, top=max_k)
    fold = _word_folds(y, np.asarray(groups), max(2, min(folds, len(set(np.asarray(groups)[y].tolist())))))
    best, chosen, f1s = -np.inf, ranking[:1], []
    for k in range(1, len(ranking) + 1):
        f1 = _cv_f1(codes[:, ranking[:k]], y, fold)
        f1s.append(f1)
        if f1 > best + f1_jump:
            best, chosen = f1, ranking[:k]
        else:
            break
    return MainLatents(tuple(chosen), tuple(ranking), tuple(f1s))


def sparse_probe_predictions(
    codes_train: np.ndarray, y_train: np.ndarray, codes_test: np.ndarray, latents: Sequence[int]
) -> np.ndarray:
    """[test rows] bool: a class-balanced logistic probe on ``latents`` fitted on the train rows, applied to the test
    rows at score > 0 (SAEBench's k-sparse probe): where the main latents alone say the letter."""
    idx = list(latents)
    return _fit_sparse(codes_train[:, idx], y_train).decision_function(codes_test[:, idx]) > 0


def sparse_probe_f1(
    codes_train: np.ndarray, y_train: np.ndarray, codes_test: np.ndarray, y_test: np.ndarray, latents: Sequence[int]
) -> float:
    """Test F1 of ``sparse_probe_predictions`` (SAEBench's ``f1_sparse_sae_k``): how well the main latents alone
    classify the letter."""
    return _f1(y_test, sparse_probe_predictions(codes_train, y_train, codes_test, latents))


def macro_f1(y: np.ndarray, pred: np.ndarray, clusters: np.ndarray, n_boot: int = 2000, seed: int = 0) -> Estimate:
    """Mean over letters (columns) of each letter's F1, for true letters ``y`` [rows, letters] and predictions
    ``pred`` [rows, letters] (bool), with a 95% percentile interval from a bootstrap that resamples whole words
    (``clusters`` [rows]), as ``saelib.core.stats.cluster_bootstrap`` does for means. A letter with no true or
    predicted row in a replicate is left out of that replicate's mean."""
    if y.shape != pred.shape or y.ndim != 2 or len(clusters) != len(y):
        raise ValueError(
            f"y and pred must be [rows, letters] with one cluster label per row; got {y.shape}, {pred.shape}, "
            f"{len(clusters)} labels"
        )
    _, group = np.unique(np.asarray(clusters), return_inverse=True)
    n_groups = int(group.max()) + 1
    tp = (y & pred).astype(float)
    pos = y.astype(float) + pred.astype(float)

    def scores(weights: np.ndarray) -> np.ndarray:  # weights [reps, rows] -> [reps] macro F1
        denom = weights @ pos
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.nanmean(np.where(denom > 0, 2 * (weights @ tp) / denom, np.nan), axis=1)

    mean = float(scores(np.ones((1, len(y))))[0])
    if n_groups == 1:
        return Estimate(mean, 0.0, 1, mean, mean, kind="cluster bootstrap")
    draw = np.random.default_rng(seed).integers(0, n_groups, size=(n_boot, n_groups))
    counts = np.stack([np.bincount(d, minlength=n_groups) for d in draw]).astype(float)
    with np.errstate(invalid="ignore"):
        boot = scores(counts[:, group])
    boot = boot[np.isfinite(boot)]
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Estimate(mean, float(boot.std(ddof=1)), n_groups, float(lo), float(hi), kind="cluster bootstrap")


# --------------------------------------------------------------------------------------------------- absorption


@dataclass(frozen=True)
class WordAbsorption:
    """One scored prompt: a test word the probe classifies correctly as its letter."""

    word: str  # with its leading space
    letter: str
    probe_projection: float  # x . p, p the unit probe direction
    main_fired: bool  # some main latent's code >= FIRING_EPS
    top_latent: int  # the latent with the largest share c_j (d_j . p)
    top_cos: float  # cos(d_j, p) of that latent
    top_share: float  # its share over x . p
    is_full_absorption: bool  # SAEBench's criterion (module docstring, step 4)
    absorption_fraction: float  # SAEBench's absorption fraction, in [0, 1]


def word_absorption(
    x: np.ndarray,
    codes: np.ndarray,
    direction: np.ndarray,
    decoder: np.ndarray,
    main: Sequence[int],
    full_cos: float = FULL_ABSORPTION_COS,
    fraction_cos: float = ABSORPTION_FRACTION_COS,
    share: float = PROJECTION_SHARE,
    max_absorbing: int = MAX_ABSORBING_LATENTS,
) -> tuple[np.ndarray, ...]:
    """SAEBench's ``FeatureAbsorptionCalculator`` on rows ``x`` [n, d] with codes [n, m], the unit probe direction
    [d], decoder vectors [m, d] and the main latents. Returns arrays over rows: (probe projection, main fired, top
    latent, its cos, its share, full absorption, absorption fraction)."""
    if codes.shape[0] != x.shape[0] or decoder.shape != (codes.shape[1], x.shape[1]) or direction.shape != x.shape[1:]:
        raise ValueError(
            f"shapes do not fit: x {tuple(x.shape)}, codes {tuple(codes.shape)}, decoder {tuple(decoder.shape)}, "
            f"direction {tuple(direction.shape)}; need x [n, d], codes [n, m], decoder [m, d], direction [d]"
        )
    if not main:
        raise ValueError("word_absorption needs at least one main latent")
    main_idx = np.asarray(main, dtype=np.int64)
    along = decoder @ direction  # [m] d_j . p
    cos = along / np.maximum(np.linalg.norm(decoder, axis=1), 1e-12)
    proj = codes * along  # [n, m] each latent's share of the probe projection
    act_proj = x @ direction  # [n]
    main_fired = (np.abs(codes[:, main_idx]) >= FIRING_EPS).any(1)
    top = proj.argmax(1)
    top_proj = proj[np.arange(len(x)), top]
    safe = np.where(act_proj > 0, act_proj, np.inf)  # a share of a non-positive projection counts as none
    top_share = top_proj / safe
    full = ~main_fired & (cos[top] >= full_cos) & (act_proj > 0) & (top_share >= share)

    others = np.ones(codes.shape[1], bool)
    others[main_idx] = False
    candidate = np.where((others & (cos >= fraction_cos))[None] & (proj > 0), proj, 0.0)
    k = min(max_absorbing, candidate.shape[1])
    absorbing = -np.sort(-candidate, axis=1)[:, :k].sum(1)
    main_proj = proj[:, main_idx].sum(1)
    unaccounted = np.minimum(absorbing, act_proj - main_proj)
    with np.errstate(divide="ignore", invalid="ignore"):
        partial = np.clip(unaccounted / (unaccounted + main_proj), 0.0, 1.0)
    fraction = np.where(
        (main_proj >= act_proj) | (absorbing / safe < share), 0.0, np.where(main_proj <= 0, 1.0, partial)
    )
    fraction = np.nan_to_num(fraction)
    return act_proj, main_fired, top, cos[top], top_share, full, fraction


# --------------------------------------------------------------------------------------------------- results


@dataclass(frozen=True)
class LetterProbe:
    """The ground-truth probe of one letter and whether the letter is scored."""

    letter: str
    n_train_words: int  # probe-train words of the letter
    n_test_words: int  # test words of the letter
    probe_f1: float  # test F1 of the letter's probe at score > 0 (NaN without test words)
    passes_gate: bool  # probe_f1 >= the gate (MIN_PROBE_F1 unless changed)


@dataclass(frozen=True)
class LetterAbsorption:
    """One gated letter measured on one dictionary."""

    letter: str
    probe_f1: float  # the letter probe's test F1 (the ceiling the main latents are compared with)
    main_latents: tuple[int, ...]  # from k-sparse probing, most important first
    main_latent_cos: tuple[float, ...]  # cos(decoder, probe direction) of each main latent
    selection_f1: tuple[float, ...]  # cross-validated train F1 for k = 1, 2, ... (the last step failed the jump)
    main_latent_f1: float  # test F1 of a logistic probe on the main latents alone (SAEBench's k-sparse F1)
    main_latent_firing_f1: float  # test F1 of "some main latent fires" (SAEBench's f1_sum_sparse_sae)
    n_probe_true_positives: int  # test rows of the letter the probe scores > 0: the rows scored for absorption
    n_full_absorption: int  # of those, fully absorbed
    absorption_rate: float  # n_full_absorption / n_probe_true_positives (NaN when there are none)
    absorption_rate_ci: Estimate | None  # its cluster bootstrap over words (None when there are no rows)
    mean_absorption_fraction: float  # SAEBench's absorption fraction averaged over the same rows
    absorbing_latents: tuple[int, ...]  # top-share latents of the absorbed rows, most frequent first (at most 5)


@dataclass(frozen=True)
class AbsorptionSummary:
    """One dictionary over all gated letters."""

    dictionary: str  # its name (a shipped dictionary, or a control)
    n_latents: int
    l0_on_words: float  # mean active latents per prompt at the word token
    gated_letters: str  # letters scored, e.g. "abcdf"
    failed_gate: str  # letters whose probe missed the gate
    enough_letters: bool  # at least MIN_GATED_LETTERS letters gated (SAEBench's condition to score at all)
    probe_f1: Estimate  # the letter probes' test F1, mean over gated letters, cluster bootstrap by word
    main_latent_f1: Estimate  # the main latents' k-sparse probe test F1, the same way (compare with probe_f1)
    main_latent_firing_f1: Estimate  # F1 of "a main latent fires", the same way: what the absorption test reads
    absorption_rate: Estimate  # pooled over scored rows, cluster bootstrap by word
    absorption_fraction: Estimate  # pooled over scored rows, cluster bootstrap by word
    letter_mean_absorption_rate: float  # SAEBench's headline: unweighted mean over letters with scored rows
    letter_mean_absorption_fraction: float  # the same for the absorption fraction
    mean_main_latents: float  # mean number of main latents per letter (SAEBench's split features + 1)


@dataclass(frozen=True)
class AbsorptionReport:
    """Everything measured on one dictionary."""

    summary: AbsorptionSummary
    letters: tuple[LetterAbsorption, ...]  # one per gated letter
    words: tuple[WordAbsorption, ...]  # one per scored row


def probe_report(probes: LetterProbes, min_f1: float = MIN_PROBE_F1) -> tuple[LetterProbe, ...]:
    """Per letter: the probe's rows, test F1 and gate (``gate_letters``)."""
    passed, _ = gate_letters(probes, min_f1)
    return tuple(
        LetterProbe(letter, int(probes.n_train[i]), int(probes.n_test[i]), float(probes.f1[i]), i in passed)
        for i, letter in enumerate(LETTERS)
    )


def measure_absorption(
    x: np.ndarray,
    task: FirstLetterTask,
    probes: LetterProbes,
    sae: SAE,
    name: str,
    min_probe_f1: float = MIN_PROBE_F1,
    max_k: int = MAX_K,
    f1_jump: float = F1_JUMP,
    full_cos: float = FULL_ABSORPTION_COS,
    share: float = PROJECTION_SHARE,
) -> AbsorptionReport:
    """The whole measurement (module docstring, steps 3-5) of dictionary ``sae`` on residuals ``x`` [rows, d] of
    ``task``, with the letter probes trained on the same rows' train part (``train_letter_probes``). Raises a
    ValueError when no letter passes the gate."""
    _check_rows(x, task)
    if probes.weights.shape[1] != x.shape[1]:
        raise ValueError(f"probes of width {probes.weights.shape[1]} do not fit residuals of width {x.shape[1]}")
    gated, failed = gate_letters(probes, min_probe_f1)
    if not gated:
        best = int(np.nanargmax(np.nan_to_num(probes.f1, nan=-1.0)))
        raise ValueError(
            f"no letter passes the probe-F1 gate ({min_probe_f1}; best {probes.f1[best]:.2f} for "
            f"{LETTERS[best]!r}): the model may be too small to represent first letters at this layer. Try another "
            "layer or more words per letter, or lower min_probe_f1 and say so"
        )
    codes = dictionary_codes(sae, x)
    decoder = decoder_vectors(sae)
    train, test = ~task.is_test, task.is_test
    words = np.asarray(task.words)
    letter_rows: list[LetterAbsorption] = []
    word_rows: list[WordAbsorption] = []
    scores = probes.scores(x)
    scores_test = scores[test]
    y_cols, main_cols, fire_cols, probe_cols = [], [], [], []
    for i in gated:
        letter = LETTERS[i]
        y_train, y_test = task.labels[train] == i, task.labels[test] == i
        chosen = main_latents(codes[train], y_train, words[train], max_k=max_k, f1_jump=f1_jump)
        pred_main = sparse_probe_predictions(codes[train], y_train, codes[test], chosen.latents)
        fire_main = (np.abs(codes[test][:, list(chosen.latents)]) >= FIRING_EPS).any(1)
        y_cols.append(y_test)
        main_cols.append(pred_main)
        fire_cols.append(fire_main)
        probe_cols.append(scores_test[:, i] > 0)
        direction = probes.direction(i)
        along = decoder[list(chosen.latents)] @ direction
        cos_main = along / np.maximum(np.linalg.norm(decoder[list(chosen.latents)], axis=1), 1e-12)
        rows = np.flatnonzero(test & (task.labels == i) & (scores[:, i] > 0))
        act, fired, top, top_cos, top_share, full, fraction = word_absorption(
            x[rows], codes[rows], direction, decoder, chosen.latents, full_cos=full_cos, share=share
        )
        for j, r in enumerate(rows):
            word_rows.append(
                WordAbsorption(
                    str(words[r]),
                    letter,
                    float(act[j]),
                    bool(fired[j]),
                    int(top[j]),
                    float(top_cos[j]),
                    float(top_share[j]),
                    bool(full[j]),
                    float(fraction[j]),
                )
            )
        n = len(rows)
        letter_rows.append(
            LetterAbsorption(
                letter=letter,
                probe_f1=float(probes.f1[i]),
                main_latents=chosen.latents,
                main_latent_cos=tuple(float(c) for c in cos_main),
                selection_f1=chosen.selection_f1,
                main_latent_f1=_f1(y_test, pred_main),
                main_latent_firing_f1=_f1(y_test, fire_main),
                n_probe_true_positives=n,
                n_full_absorption=int(full.sum()),
                absorption_rate=float(full.mean()) if n else float("nan"),
                absorption_rate_ci=cluster_bootstrap(full.astype(float), words[rows]) if n else None,
                mean_absorption_fraction=float(fraction.mean()) if n else float("nan"),
                absorbing_latents=tuple(int(t) for t, _ in Counter(top[full].tolist()).most_common(5)),
            )
        )
    l0 = float((np.abs(codes) >= FIRING_EPS).sum(1).mean())
    y_all, test_words = np.stack(y_cols, 1), words[test]
    f1s = [macro_f1(y_all, np.stack(cols, 1), test_words) for cols in (probe_cols, main_cols, fire_cols)]
    summary = summarize(name, sae.cfg.n_features, l0, letter_rows, word_rows, [LETTERS[i] for i in failed], *f1s)
    return AbsorptionReport(summary, tuple(letter_rows), tuple(word_rows))


def summarize(
    name: str,
    n_latents: int,
    l0: float,
    letters: Sequence[LetterAbsorption],
    words: Sequence[WordAbsorption],
    failed: Sequence[str],
    probe_f1: Estimate,
    main_latent_f1: Estimate,
    main_latent_firing_f1: Estimate,
) -> AbsorptionSummary:
    """One dictionary's summary (module docstring, step 5): pooled rates with a cluster bootstrap over words and the
    unweighted means over letters that SAEBench reports; the F1 arguments are the letters' mean F1s (``macro_f1``)."""
    if not letters:
        raise ValueError("summarize needs at least one gated letter")
    if not words:
        raise ValueError(
            "no test word of a gated letter was classified correctly by its probe, so nothing can be scored: "
            "use more words per letter"
        )
    full = np.array([w.is_full_absorption for w in words], float)
    fraction = np.array([w.absorption_fraction for w in words])
    clusters = np.array([w.word for w in words])
    scored = [row for row in letters if row.n_probe_true_positives]
    return AbsorptionSummary(
        dictionary=name,
        n_latents=n_latents,
        l0_on_words=l0,
        gated_letters="".join(row.letter for row in letters),
        failed_gate="".join(failed),
        enough_letters=len(letters) >= MIN_GATED_LETTERS,
        probe_f1=probe_f1,
        main_latent_f1=main_latent_f1,
        main_latent_firing_f1=main_latent_firing_f1,
        absorption_rate=cluster_bootstrap(full, clusters),
        absorption_fraction=cluster_bootstrap(fraction, clusters),
        letter_mean_absorption_rate=float(np.mean([row.absorption_rate for row in scored])),
        letter_mean_absorption_fraction=float(np.mean([row.mean_absorption_fraction for row in scored])),
        mean_main_latents=float(np.mean([len(row.main_latents) for row in letters])),
    )
