"""Recorded time at a chosen speed: how replay spaces its steps and serve its stream events.

A speed of 1 keeps the recorded pacing, N plays N times faster, and 0 does not wait at all.
"""

from __future__ import annotations

import math

from runtap.errors import RuntapError


def check_speed(speed: float) -> float:
    """Validate `--speed`; raise RuntapError for a negative, infinite or NaN value."""
    if not (speed >= 0 and math.isfinite(speed)):
        raise RuntapError(f"--speed must be 0 (no waiting) or a positive finite number, got {speed}")
    return speed


def scaled(seconds: float, speed: float) -> float:
    """A recorded duration at `speed`: divided by it, or 0 at speed 0."""
    return 0.0 if speed == 0 else seconds / speed
