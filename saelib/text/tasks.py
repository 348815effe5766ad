"""Prompt sets for the paper's behavioural experiments (Cunningham et al. 2023, sections 1.10-1.11).

* IOI (Wang et al. 2022 templates): clean prompt, and a counterfactual where the indirect object (IO)
  is replaced by a third name C with the subject (S) unchanged, as in Cunningham et al.'s
  ``ioi_counterfact.py``. Prompts stop where the IO name is predicted.
* Gendered pronouns: the next token should be " he" / " she".
* Few-shot gender classification: " My name is X and I am a male." shots, next token " male" / " female".

All names must be single tokens with a leading space, so clean and counterfactual prompts (and all
prompts of one template) have the same token length and aligned positions. Everything is
deterministic for a seed (``random.Random(seed)``; no global RNG state is touched).
"""

from __future__ import annotations

import random
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import torch

from saelib.text.names import GENDERS, check_single_token, gendered_names

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

# --------------------------------------------------------------------------------------- IOI

# Wang et al. (2022) BABA templates ({S} = subject B, {IO} = indirect object A), with the final IO
# dropped. ABBA versions swap the first "{S} and {IO}" pair. On SmolLM2-135M-Instruct (100 prompts,
# seed 0, default names) logit[IO] - logit[S] = 5.47 +- 0.26 (SE), IO above S in 98% of prompts.
IOI_TEMPLATES_BABA: tuple[str, ...] = (
    "Then, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {S} and {IO} had a lot of fun at the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {S} and {IO} were working at the {PLACE}. {S} decided to give a {OBJECT} to",
    "Then, {S} and {IO} were thinking about going to the {PLACE}. {S} wanted to give a {OBJECT} to",
    "Then, {S} and {IO} had a long argument, and afterwards {S} said to",
    "After {S} and {IO} went to the {PLACE}, {S} gave a {OBJECT} to",
    "When {S} and {IO} got a {OBJECT} at the {PLACE}, {S} decided to give it to",
    "When {S} and {IO} got a {OBJECT} at the {PLACE}, {S} decided to give the {OBJECT} to",
    "While {S} and {IO} were working at the {PLACE}, {S} gave a {OBJECT} to",
    "While {S} and {IO} were commuting to the {PLACE}, {S} gave a {OBJECT} to",
    "After the lunch, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Afterwards, {S} and {IO} went to the {PLACE}. {S} gave a {OBJECT} to",
    "Then, {S} and {IO} had a long argument. Afterwards {S} said to",
    "The {PLACE} {S} and {IO} went to had a {OBJECT}. {S} gave it to",
    "Friends {S} and {IO} found a {OBJECT} at the {PLACE}. {S} gave it to",
)
IOI_TEMPLATES_ABBA: tuple[str, ...] = tuple(t.replace("{S} and {IO}", "{IO} and {S}", 1) for t in IOI_TEMPLATES_BABA)
IOI_TEMPLATES: dict[str, tuple[str, ...]] = {"ABBA": IOI_TEMPLATES_ABBA, "BABA": IOI_TEMPLATES_BABA}
PLACES: tuple[str, ...] = (
    "store",
    "garden",
    "restaurant",
    "school",
    "hospital",
    "office",
    "house",
    "station",
)
OBJECTS: tuple[str, ...] = (
    "ring",
    "kiss",
    "bone",
    "basketball",
    "computer",
    "necklace",
    "drink",
    "snack",
)


@dataclass(frozen=True)
class IOIPrompt:
    """One IOI pair. ``text`` should be continued by `` {io}``; ``counterfactual_text`` has ``cf_name``
    in place of ``io`` (``s`` unchanged), so it should be continued by `` {cf_name}``."""

    text: str
    io: str
    s: str
    counterfactual_text: str
    cf_name: str
    template_id: int
    order: str  # "ABBA" | "BABA"


def name_token_id(tokenizer: PreTrainedTokenizerBase, name: str) -> int:
    """Id of ``" " + name``; ValueError naming it if that is more than one token."""
    check_single_token(tokenizer, [name])
    return tokenizer.encode(" " + name, add_special_tokens=False)[0]


def _n_tokens(tokenizer: PreTrainedTokenizerBase, text: str) -> int:
    return len(tokenizer.encode(text, add_special_tokens=False))


def default_ioi_names(tokenizer: PreTrainedTokenizerBase, n_per_gender: int = 100) -> list[str]:
    """The most frequent single-token census names of both sexes (not hand-picked), male first."""
    by_gender = gendered_names(tokenizer, n_per_gender=n_per_gender)
    return [n for g in GENDERS for n in by_gender[g]]


def _ioi_orders(n: int, rng: random.Random) -> list[str]:
    """Exactly balanced ABBA/BABA (ABBA gets the odd one), in random order."""
    orders = ["ABBA"] * ((n + 1) // 2) + ["BABA"] * (n // 2)
    rng.shuffle(orders)
    return orders


def _make_ioi_prompt(order: str, rng: random.Random, pool: Sequence[str]) -> IOIPrompt:
    tid = rng.randrange(len(IOI_TEMPLATES_BABA))
    io, s, cf = rng.sample(list(pool), 3)
    fill = {"PLACE": rng.choice(PLACES), "OBJECT": rng.choice(OBJECTS), "S": s}
    template = IOI_TEMPLATES[order][tid]
    return IOIPrompt(
        text=template.format(IO=io, **fill),
        io=io,
        s=s,
        counterfactual_text=template.format(IO=cf, **fill),
        cf_name=cf,
        template_id=tid,
        order=order,
    )


def make_ioi_prompts(
    tokenizer: PreTrainedTokenizerBase,
    n: int,
    seed: int = 0,
    names: Sequence[str] | None = None,
) -> list[IOIPrompt]:
    """``n`` IOI prompts with counterfactuals; IO, S and C are three distinct names.

    ``names`` defaults to ``default_ioi_names``. Raises ValueError for multi-token names (named) and
    if a clean/counterfactual pair differs in token length (positions must align for patching).
    """
    pool = list(dict.fromkeys(names if names is not None else default_ioi_names(tokenizer)))
    check_single_token(tokenizer, pool)
    if len(pool) < 3:
        raise ValueError(f"IOI needs at least 3 distinct names, got {len(pool)}: {pool}")
    rng = random.Random(seed)
    prompts = [_make_ioi_prompt(order, rng, pool) for order in _ioi_orders(n, rng)]
    for p in prompts:
        n_clean, n_cf = _n_tokens(tokenizer, p.text), _n_tokens(tokenizer, p.counterfactual_text)
        if n_clean != n_cf:
            raise ValueError(
                f"Clean and counterfactual prompts differ in token length ({n_clean} vs {n_cf}): "
                f"{p.text!r} / {p.counterfactual_text!r}"
            )
    return prompts


def ioi_token_ids(
    tokenizer: PreTrainedTokenizerBase, prompts: Sequence[IOIPrompt]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(io_ids, s_ids, cf_ids), each a LongTensor of shape [n_prompts]: the answer tokens
    for the logit difference ``logit[io] - logit[s]`` (and ``cf`` for the counterfactual run)."""
    cols = [[name_token_id(tokenizer, getattr(p, f)) for p in prompts] for f in ("io", "s", "cf_name")]
    io_ids, s_ids, cf_ids = (torch.tensor(c, dtype=torch.long) for c in cols)
    return io_ids, s_ids, cf_ids


# ---------------------------------------------------------------------------- gender: pronouns

# Chosen among 19 candidates on SmolLM2-135M-Instruct (100 census names per gender): in each,
# " he"/" she" is the top-1 next token for most names (pronoun mass 0.19-0.71) and the choice follows
# the name (accuracy >= 0.97 for both genders). The first is the paper's pronoun prompt. The name is
# never the first word: sentence-initial names (no leading space, no BOS) fell to 0.71 accuracy.
PRONOUN_TEMPLATES: tuple[str, ...] = (
    "Yesterday {name} went to the store, and",
    "After {name} got home from work,",
    "I asked {name} about the trip, and",
    "Everyone likes {name} because",
    "Last week {name} bought a new car because",
)


@dataclass(frozen=True)
class PronounPrompt:
    """A prompt whose next token should be " he" (male) or " she" (female)."""

    text: str
    name: str
    gender: str  # "male" | "female"
    template_id: int


def _check_genders(names_by_gender: Mapping[str, Sequence[str]]) -> None:
    unknown = set(names_by_gender) - set(GENDERS)
    if unknown:
        raise ValueError(f"names_by_gender keys must be among {GENDERS}, got {sorted(unknown)}")


def make_pronoun_prompts(
    tokenizer: PreTrainedTokenizerBase,
    names_by_gender: Mapping[str, Sequence[str]],
    templates: Sequence[str] | None = None,
    seed: int = 0,
) -> list[PronounPrompt]:
    """Every (name, template) pair, shuffled with ``seed``; ``templates`` use a ``{name}`` field."""
    _check_genders(names_by_gender)
    check_single_token(tokenizer, [n for ns in names_by_gender.values() for n in ns])
    templates = PRONOUN_TEMPLATES if templates is None else tuple(templates)
    prompts = [
        PronounPrompt(t.format(name=n), n, g, tid)
        for g, ns in names_by_gender.items()
        for n in ns
        for tid, t in enumerate(templates)
    ]
    random.Random(seed).shuffle(prompts)
    return prompts


def _word_ids(tokenizer: PreTrainedTokenizerBase, words: Mapping[str, str]) -> dict[str, int]:
    """Single-token ids of the given words (leading space included by the caller)."""
    out = {}
    for key, word in words.items():
        ids = tokenizer.encode(word, add_special_tokens=False)
        if len(ids) != 1:
            raise ValueError(f"{word!r} is not a single token: {tokenizer.tokenize(word)}")
        out[key] = ids[0]
    return out


def pronoun_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """``{"male": id(" he"), "female": id(" she")}``."""
    return _word_ids(tokenizer, {"male": " he", "female": " she"})


# ------------------------------------------------------------- gender: few-shot classification

# The paper's prompt. On SmolLM2-135M-Instruct (3 shots, 100 names per gender) " male"/" female" take
# 99% of the mass, but the model leans male: accuracy 0.99 (male) vs 0.88 (female).
GENDER_CLASS_SENTENCE = " My name is {name} and I am a {gender}."
GENDER_CLASS_QUERY = " My name is {name} and I am a"


@dataclass(frozen=True)
class GenderClassPrompt:
    """Few-shot prompt whose next token should be " male" or " female"."""

    text: str
    name: str
    gender: str  # "male" | "female"
    shots: tuple[tuple[str, str], ...]  # (name, gender) of the in-context examples, in order


def _gender_class_prompt(
    name: str, gender: str, shot_pool: Mapping[str, Sequence[str]], n_shots: int, rng: random.Random
) -> GenderClassPrompt:
    shots = [(n, g) for g in GENDERS for n in rng.sample([m for m in shot_pool[g] if m != name], n_shots)]
    rng.shuffle(shots)
    context = "".join(GENDER_CLASS_SENTENCE.format(name=n, gender=g) for n, g in shots)
    return GenderClassPrompt(context + GENDER_CLASS_QUERY.format(name=name), name, gender, tuple(shots))


def make_gender_class_prompts(
    tokenizer: PreTrainedTokenizerBase,
    names_by_gender: Mapping[str, Sequence[str]],
    n_shots: int = 3,
    seed: int = 0,
    shot_names_by_gender: Mapping[str, Sequence[str]] | None = None,
) -> list[GenderClassPrompt]:
    """One prompt per query name with ``n_shots`` examples per class in random order (paper 1.11).

    Shot names never include the query name; pass ``shot_names_by_gender`` (e.g. the training
    split) to draw them from a different pool. All prompts have the same token length.
    Use ``gender_class_token_ids`` for the answer tokens.
    """
    shot_pool = names_by_gender if shot_names_by_gender is None else shot_names_by_gender
    _check_genders(names_by_gender)
    _check_genders(shot_pool)
    check_single_token(tokenizer, [n for pool in (names_by_gender, shot_pool) for ns in pool.values() for n in ns])
    for g in GENDERS:
        if len(shot_pool.get(g, ())) < n_shots + 1:
            raise ValueError(f"Need at least {n_shots + 1} {g} shot names, got {len(shot_pool.get(g, ()))}")
    rng = random.Random(seed)
    prompts = [_gender_class_prompt(n, g, shot_pool, n_shots, rng) for g, ns in names_by_gender.items() for n in ns]
    rng.shuffle(prompts)
    return prompts


def gender_class_token_ids(tokenizer: PreTrainedTokenizerBase) -> dict[str, int]:
    """``{"male": id(" male"), "female": id(" female")}``."""
    return _word_ids(tokenizer, {"male": " male", "female": " female"})


def gender_labels(prompts: Sequence[PronounPrompt | GenderClassPrompt]) -> torch.Tensor:
    """LongTensor [n_prompts]: 0 = male, 1 = female (the paper's class codes)."""
    return torch.tensor([GENDERS.index(p.gender) for p in prompts], dtype=torch.long)
