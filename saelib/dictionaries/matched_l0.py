"""Comparing architectures at matched sparsity: which member of a sweep sits at a target L0, and which L1
coefficients put a ReLU-L1 SAE there.

TopK holds its L0 at k by construction, BatchTopK at about k, JumpReLU near the target of its L0 penalty; a ReLU-L1
SAE's L0 follows its coefficient α, roughly as a power law. ``calibrated_alphas`` interpolates log L0 against log α
between the members of a short pilot sweep that bracket each target; ``member_at_l0`` picks, among evaluated
members, the one whose held-out L0 is within the tolerance of a target, or says which alphas to add.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

L0_TOLERANCE = 0.10  # a member is "at" a target L0 when its held-out L0 is within ±10% of it


class TargetL0NotReachedError(ValueError):
    """No member of a sweep has a held-out L0 within the tolerance of a target."""


def l0_distance(l0: float, target: float) -> float:
    """How far a held-out L0 is from a target on a log scale (what "nearest" means when members are compared)."""
    return abs(math.log(max(l0, 1e-9) / target))


def within(l0: float, target: float, tolerance: float = L0_TOLERANCE) -> bool:
    return abs(l0 - target) <= tolerance * target


def member_at_l0(rows: Sequence[dict], target: float, tolerance: float = L0_TOLERANCE) -> dict:
    """The row (one evaluated member: at least ``alpha`` and held-out ``l0``) nearest ``target`` among those within
    ``tolerance``; ``TargetL0NotReachedError`` naming the run, the L0s reached and the fix otherwise."""
    if not rows:
        raise TargetL0NotReachedError(f"no evaluated members to match L0 = {target:g}")
    inside = [r for r in rows if within(r["l0"], target, tolerance)]
    if inside:
        return min(inside, key=lambda r: abs(r["l0"] - target))
    reached = ", ".join(f"alpha {r['alpha']:.3g}: L0 {r['l0']:.1f}" for r in sorted(rows, key=lambda r: r["alpha"]))
    run = rows[0].get("run", "the sweep")
    try:
        hint = f"train alpha {calibrated_alphas(rows, [target], source='members')[0]:.4g} (log-log interpolation)"
    except TargetL0NotReachedError as err:
        hint = str(err)
    raise TargetL0NotReachedError(f"{run}: no member within ±{tolerance:.0%} of L0 = {target:g} ({reached}); {hint}")


def calibrated_alphas(rows: Sequence[dict], targets: Sequence[float], source: str = "pilot") -> list[float]:
    """For each target L0, the α at which log L0 reaches it on the straight line through the two pilot members
    (rows with ``alpha`` > 0 and ``l0`` > 0) that bracket it. A target outside the pilot's range of L0 is an error
    that names the range and which way to extend the grid; ``source`` names the rows in that message ("pilot",
    or "members" when a trained run's own members are interpolated)."""
    points = sorted((r["alpha"], r["l0"]) for r in rows if r["alpha"] > 0 and r["l0"] > 0)
    if len(points) < 2:
        raise TargetL0NotReachedError("calibration needs at least two pilot members with alpha > 0 and L0 > 0")
    out = []
    for target in targets:
        pair = next(((a, b) for a, b in zip(points, points[1:]) if min(a[1], b[1]) <= target <= max(a[1], b[1])), None)
        if pair is None:
            low, high = min(p[1] for p in points), max(p[1] for p in points)
            side = "smaller alphas (denser)" if target > high else "larger alphas (sparser)"
            owner = f"{source}'" if source.endswith("s") else f"{source}'s"
            raise TargetL0NotReachedError(
                f"L0 = {target:g} lies outside the {owner} L0 range [{low:.1f}, {high:.1f}]:"
                f" extend the {owner} alpha grid to {side}"
            )
        (a0, l0), (a1, l1) = pair
        if l0 == l1:
            out.append(math.sqrt(a0 * a1))
            continue
        t = (math.log(target) - math.log(l0)) / (math.log(l1) - math.log(l0))
        out.append(math.exp(math.log(a0) + t * (math.log(a1) - math.log(a0))))
    return out
