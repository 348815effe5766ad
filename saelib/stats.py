"""Uncertainty for sampled numbers: every mean in a notebook comes with a standard error or 95% interval."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class Estimate:
    mean: float
    se: float  # standard error of the mean
    n: int

    @property
    def ci95(self) -> tuple[float, float]:
        return (self.mean - 1.96 * self.se, self.mean + 1.96 * self.se)

    def __str__(self) -> str:
        lo, hi = self.ci95
        return f"{self.mean:.3f} ± {1.96 * self.se:.3f} (95% CI [{lo:.3f}, {hi:.3f}], n={self.n})"


def mean_se(values: np.ndarray | list[float]) -> Estimate:
    """Mean and its standard error (sample SD / sqrt(n)); SE is 0 for a single value."""
    x = np.asarray(values, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("mean_se needs at least one value")
    se = float(x.std(ddof=1) / np.sqrt(x.size)) if x.size > 1 else 0.0
    return Estimate(float(x.mean()), se, int(x.size))


def proportion(successes: np.ndarray | list[bool]) -> Estimate:
    """A rate with its binomial standard error."""
    x = np.asarray(successes, dtype=np.float64).ravel()
    if x.size == 0:
        raise ValueError("proportion needs at least one value")
    p = float(x.mean())
    return Estimate(p, float(np.sqrt(p * (1 - p) / x.size)), int(x.size))
