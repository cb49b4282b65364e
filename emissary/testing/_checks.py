"""Checks of the emulator's settings, with messages that name the setting."""

from __future__ import annotations

import math


def check_seconds(
    name: str, value: float, *, minimum: float | None = 0.0, strict: bool = False
) -> float:
    """`value` as a float, or ValueError naming `name` unless it is a finite number of
    seconds at least `minimum` (above it when `strict`; any finite number when None)."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise ValueError(f"{name} must be a finite number of seconds, got {value!r}")
    if minimum is not None and (value < minimum or (strict and value == minimum)):
        bound = f"> {minimum:g}" if strict else f">= {minimum:g}"
        raise ValueError(f"{name} must be a number of seconds {bound}, got {value!r}")
    return float(value)
