"""Uncertainty for sampled numbers: every mean or rate in a notebook comes with a 95% interval.

Means get Student's t interval (scipy), rates the Wilson score interval (statsmodels): unlike the normal ("Wald")
interval it stays inside [0, 1] and does not collapse to zero width at 0% or 100%.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats as sps
from statsmodels.stats.proportion import proportion_confint


@dataclass(frozen=True)
class Estimate:
    mean: float
    se: float  # standard error of the mean (binomial for a rate)
    n: int
    lo: float  # 95% interval
    hi: float
    kind: str = "t"  # "t" for a mean, "Wilson" for a rate

    @property
    def ci95(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def __str__(self) -> str:
        label = "Wilson 95% CI" if self.kind == "Wilson" else "95% CI"
        return f"{self.mean:.3f} ({label} [{self.lo:.3f}, {self.hi:.3f}], n={self.n})"


def mean_se(values: np.ndarray | list[float]) -> Estimate:
    """Mean, its standard error (sample SD / sqrt(n)) and Student's t 95% interval; a single value has SE 0."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("mean_se needs at least one value")
    mean = float(x.mean())
    se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0
    half = float(sps.t.ppf(0.975, x.size - 1)) * se if x.size > 1 else 0.0
    return Estimate(mean, se, int(x.size), mean - half, mean + half)


def proportion(successes: np.ndarray | list[bool]) -> Estimate:
    """A rate with its binomial standard error and Wilson 95% interval."""
    x = np.asarray(successes, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("proportion needs at least one value")
    if not np.isin(x, (0.0, 1.0)).all():
        raise ValueError("proportion needs booleans (or 0/1 values)")
    k, n = int(x.sum()), int(x.size)
    lo, hi = proportion_confint(k, n, alpha=0.05, method="wilson")
    p = k / n
    return Estimate(p, float(np.sqrt(p * (1 - p) / n)), n, float(lo), float(hi), kind="Wilson")
