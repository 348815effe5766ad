"""Tolerance-checked result lines for notebooks.

nbval compares printed text, and raw floats wobble across machines. ``check`` prints one line with the measured
value (masked by the nbval sanitizer) and one stable line saying whether it is within tolerance of the value the
committed notebook recorded; outside tolerance it raises, so the regression fails loudly.
"""

from __future__ import annotations

import math


def check(name: str, value: float, expected: float, rtol: float = 0.0, atol: float = 0.0) -> None:
    """Print ``name: measured=...`` and ``name ~= expected (tol): OK``; raise AssertionError outside tolerance."""
    ok = math.isfinite(value) and math.isclose(value, expected, rel_tol=rtol, abs_tol=atol)
    tol = f"rtol={rtol:g}" if rtol else f"atol={atol:g}"
    print(f"{name}: measured={value:.6g}")
    print(f"{name} ~= {expected:g} ({tol}): {'OK' if ok else 'MISMATCH'}")
    if not ok:
        raise AssertionError(f"{name}={value!r} is not within {tol} of {expected}")


def check_between(name: str, value: float, low: float, high: float) -> None:
    """For claims of the form 'well above chance': print a stable line, raise if outside [low, high]."""
    ok = math.isfinite(value) and low <= value <= high
    print(f"{name}: measured={value:.6g}")
    print(f"{name} in [{low:g}, {high:g}]: {'OK' if ok else 'MISMATCH'}")
    if not ok:
        raise AssertionError(f"{name}={value!r} is outside [{low}, {high}]")
