"""The verdict table that ends every results notebook: the paper's claim, its number, ours with a 95% interval, and
one of four verdicts with the reason; then, for each claim, the rule that decides it, the precondition under which
the test can decide, a negative and a positive control, and the unit its intervals resample. The full table is
measured output; the claim -> verdict lines it prints, and the five rule lines under each, are stable across runs,
so nbval checks them (a verdict that flips fails the tests).

The five rule fields are required: no verdict can be built without them. Where a test has no control that can fail,
or no precondition that could make it "not testable here", the field says "none" and why; that is how a test that
cannot fail, or cannot decide as designed, is reported. They hold no measured numbers (those stay in ``ours`` and
``why``), so the lines ``print_verdicts`` writes do not change between runs."""

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
    rule: str  # the statistic, and what counts as reproduced / partly / not reproduced
    precondition: str  # when the test can decide; what would make it "not testable here" ("none" and why if unchecked)
    negative_control: str  # a control that should fail, and whether it did ("none" and why where none can fail)
    positive_control: str  # a control that should pass, and whether it did ("none" and why where there is none)
    unit: str  # the unit of independence the intervals resample (prompt, name, feature, ...), and whether clustered

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
    """Display the table with every column and every cell in full (pandas would cut long cells at
    ``display.max_colwidth`` and hide middle columns beyond ``display.max_columns``)."""
    from IPython.display import display

    with pd.option_context("display.max_colwidth", None, "display.max_columns", None):
        display(verdict_table(rows))


RULE_LINES = (
    ("rule", "rule"),
    ("precondition", "precondition"),
    ("negative control", "negative_control"),
    ("positive control", "positive_control"),
    ("intervals over", "unit"),
)  # (label printed, field) under each claim's verdict line


def print_verdicts(rows: Sequence[Verdict]) -> None:
    """One stable line per claim, for nbval, and under it the claim's rule, precondition, controls and unit (stable
    text: no measured numbers), one indented line each."""
    for r in rows:
        print(f"verdict · {r.claim}: {r.verdict}")
        for label, field in RULE_LINES:
            print(f"    {label}: {' '.join(getattr(r, field).split())}")
