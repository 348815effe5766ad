"""Uncertainty for sampled numbers: every mean or rate in a notebook comes with a 95% interval.

Means get Student's t interval (scipy), rates the Wilson score interval (statsmodels): unlike the normal ("Wald")
interval it stays inside [0, 1] and does not collapse to zero width at 0% or 100%. Where observations come in
groups that are not independent (several prompts per name, several tokens per document), ``cluster_bootstrap``
resamples whole groups, so the interval reflects the number of groups rather than the number of rows.
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
    kind: str = "t"  # "t" for a mean, "Wilson" for a rate, "cluster bootstrap" for a mean over clustered rows

    @property
    def ci95(self) -> tuple[float, float]:
        return (self.lo, self.hi)

    def __str__(self) -> str:
        label = {"Wilson": "Wilson 95% CI", "cluster bootstrap": "cluster-bootstrap 95% CI"}.get(self.kind, "95% CI")
        unit = " clusters" if self.kind == "cluster bootstrap" else ""
        return f"{self.mean:.3f} ({label} [{self.lo:.3f}, {self.hi:.3f}], n={self.n}{unit})"

    def above(self, value: float = 0.0) -> bool:
        """Whether the whole 95% interval lies above ``value``."""
        return self.lo > value

    def below(self, value: float = 0.0) -> bool:
        """Whether the whole 95% interval lies below ``value``."""
        return self.hi < value


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


def cluster_bootstrap(
    values: np.ndarray | list[float], clusters: np.ndarray | list, n_boot: int = 2000, seed: int = 0
) -> Estimate:
    """Mean of ``values`` with a 95% percentile interval from a bootstrap that resamples whole clusters.

    ``clusters`` labels each value with its unit of independence (the name a prompt is built on, the template, the
    document a token comes from). Each replicate draws as many clusters as there are, with replacement, and takes
    the mean over all their rows (clusters of unequal size keep their weight). ``se`` is the replicates' standard
    deviation and ``n`` the number of clusters; a single cluster gives a zero-width interval, which says that the
    data cannot estimate the spread."""
    x = np.asarray(values, dtype=np.float64).ravel()
    labels = np.asarray(clusters).ravel()
    if x.size == 0:
        raise ValueError("cluster_bootstrap needs at least one value")
    if labels.size != x.size:
        raise ValueError(f"cluster_bootstrap needs one cluster label per value; got {labels.size} for {x.size} values")
    _, group = np.unique(labels, return_inverse=True)
    sums, counts = np.bincount(group, weights=x), np.bincount(group).astype(np.float64)
    mean = float(x.mean())
    if sums.size == 1:
        return Estimate(mean, 0.0, 1, mean, mean, kind="cluster bootstrap")
    draw = np.random.default_rng(seed).integers(0, sums.size, size=(n_boot, sums.size))
    boot = sums[draw].sum(1) / counts[draw].sum(1)
    lo, hi = np.percentile(boot, [2.5, 97.5])
    return Estimate(mean, float(boot.std(ddof=1)), int(sums.size), float(lo), float(hi), kind="cluster bootstrap")
