"""Tolerance-checked result lines for notebooks.

nbval compares printed text, and raw floats wobble across machines. ``check`` prints one line with the measured
value (masked by the nbval sanitizer) and one stable line saying whether it is within tolerance of the value the
committed notebook recorded; outside tolerance it raises, so the regression fails loudly.

A regression value (a number read off the committed run, not a property of the model or the mathematics) holds for
the profile that run used and no other: ``regression`` compares it on that profile and only reports it on the rest,
so ``./run_all.sh --profile dev`` tests the code path and the directional checks without failing on run size.
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


RECORDED_ON = "default"  # the profile of the committed notebooks, whose run the regression values come from


def regression(name: str, value: float, expected: float, *, profile: str, rtol: float = 0.0, atol: float = 0.0) -> None:
    """``check`` against a value recorded by the committed notebooks' run, on that run's profile; on another
    profile, print the measurement beside the recorded value and compare nothing (a NaN still raises)."""
    if profile == RECORDED_ON:
        check(name, value, expected, rtol=rtol, atol=atol)
        return
    print(f"{name}: measured={value:.6g}")
    print(f"{name}: {expected:g} on the {RECORDED_ON} profile; not compared on {profile!r}")
    if not math.isfinite(value):
        raise AssertionError(f"{name}={value!r} is not a finite number")


def check_between(name: str, value: float, low: float, high: float) -> None:
    """For claims of the form 'well above chance': print a stable line, raise if outside [low, high]."""
    ok = math.isfinite(value) and low <= value <= high
    print(f"{name}: measured={value:.6g}")
    print(f"{name} in [{low:g}, {high:g}]: {'OK' if ok else 'MISMATCH'}")
    if not ok:
        raise AssertionError(f"{name}={value!r} is outside [{low}, {high}]")
