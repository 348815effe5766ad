"""The verdict table that ends every results notebook: the paper's claim, its number, ours with a 95% interval, and
one of four verdicts with the reason. The full table is measured output; the claim -> verdict lines it prints are
stable across runs, so nbval checks them (a verdict that flips fails the tests)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import pandas as pd

VERDICTS = ("reproduced", "partly", "not reproduced", "not testable here")


@dataclass(frozen=True)
class Verdict:
    claim: str  # short, stable: it keys the checked line
    paper: str  # the paper's number or figure, "" where it gives none
    ours: str  # our number with its 95% interval and n
    verdict: str  # one of VERDICTS
    why: str

    def __post_init__(self) -> None:
        if self.verdict not in VERDICTS:
            raise ValueError(f"verdict must be one of {VERDICTS}, got {self.verdict!r}")


def by_count(n_supporting: int, n_tested: int) -> str:
    """reproduced when every tested case supports the claim, partly when some do, not reproduced when none do."""
    if n_tested == 0:
        return "not testable here"
    return "reproduced" if n_supporting == n_tested else "partly" if n_supporting else "not reproduced"


def verdict_table(rows: Sequence[Verdict]) -> pd.DataFrame:
    return pd.DataFrame([asdict(r) for r in rows]).set_index("claim")


def show_verdicts(rows: Sequence[Verdict]) -> None:
    """Display the table with every cell in full (pandas would cut long cells at ``display.max_colwidth``)."""
    from IPython.display import display

    with pd.option_context("display.max_colwidth", None):
        display(verdict_table(rows))


def print_verdicts(rows: Sequence[Verdict]) -> None:
    """One stable line per claim, for nbval."""
    for r in rows:
        print(f"verdict · {r.claim}: {r.verdict}")
