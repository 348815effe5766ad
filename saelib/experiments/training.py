"""The verdict of notebook 01 (training at the notebook's own budget): the sparsity-reconstruction trade-off of an
L1-penalised SAE (Cunningham et al. 2023, section 2 and their α sweeps), decided per layer from the sweep's
held-out metrics, with the release's sweeps (the same recipe on 16x the data) as the positive control."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from saelib.core.verdicts import Verdict, by_count

MIN_MEMBERS = 3  # members with α > 0 a layer needs before its ordering can say anything


@dataclass(frozen=True)
class SweepMember:
    """One member of a layer's α sweep at one ratio, measured on held-out tokens."""

    alpha: float  # L1 coefficient (tied convention, scaled activations)
    l0: float  # mean active features per token
    fvu: float  # pooled fraction of variance unexplained


def trades_off(members: Sequence[SweepMember]) -> bool:
    """True when, ordered by α, every step to a larger α lowers L0 and raises FVU."""
    ordered = sorted((m for m in members if m.alpha > 0), key=lambda m: m.alpha)
    return all(b.l0 < a.l0 and b.fvu > a.fvu for a, b in zip(ordered, ordered[1:]))


def tradeoff_verdict(
    sweeps: Mapping[int, Sequence[SweepMember]], release_sweeps: Mapping[int, Sequence[SweepMember]]
) -> Verdict:
    """Per layer of ``sweeps`` (layer -> the members at the paper's ratio), does a larger α buy sparsity with
    reconstruction? ``release_sweeps`` (the release's tied R = 2 sweeps) run through the same rule as the positive
    control."""
    testable = {la: ms for la, ms in sweeps.items() if sum(m.alpha > 0 for m in ms) >= MIN_MEMBERS}
    holding = [la for la, ms in testable.items() if trades_off(ms)]
    broken = [la for la in testable if la not in holding]
    positive = {la: trades_off(ms) for la, ms in release_sweeps.items() if len(ms) >= MIN_MEMBERS}
    ours = "; ".join(
        f"L{la}: " + ", ".join(f"α {m.alpha:.2g}: L0 {m.l0:.0f}, FVU {m.fvu:.3f}" for m in sorted(ms, key=_alpha))
        for la, ms in testable.items()
    )
    why = (
        f"L0 falls and FVU rises with α at {len(holding)} of {len(testable)} layers"
        + (f"; FVU not monotone at {', '.join(f'L{la}' for la in broken)}" if broken else "")
        + f"; positive control (the release's R = 2 sweeps, 16x the data) holds at {sum(positive.values())} of "
        f"{len(positive)} layers; one seed, a few hundred Adam steps"
    )
    return Verdict(
        "a larger L1 coefficient buys sparsity at the cost of reconstruction",
        "Cunningham et al., section 2 and their α sweeps: L0 falls and reconstruction loss rises with α",
        ours,
        by_count(len(holding), len(testable)),
        why,
        rule="per layer, the members at the paper's ratio (R = 2) ordered by α: every step to a larger α lowers the "
        "held-out L0 and raises the held-out FVU; reproduced at every testable layer, partly at some, not "
        "reproduced at none",
        precondition=f"a layer is testable with at least {MIN_MEMBERS} members with α > 0",
        negative_control="none: no sweep known to break the trade-off is run; the rule itself can fail (an "
        "under-trained member with a larger α and a lower FVU breaks it)",
        positive_control="the release's tied R = 2 sweeps (the same recipe on 16x the data) through the same rule "
        "should hold at every layer; reported, not required",
        unit="none: one seed per layer; FVU and L0 pooled over the held-out tokens, no interval",
    )


def _alpha(m: SweepMember) -> float:
    return m.alpha
