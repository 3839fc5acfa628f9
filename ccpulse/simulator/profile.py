"""Arrival-rate profile over the day and week, and Poisson arrival times under it."""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Sequence

DAY_SECONDS = 86_400.0
SEGMENT_SECONDS = 300.0

# Relative arrival rate per local hour (value at the middle of the hour, peak = 1.0): a quiet
# night, a morning peak at 10-11, a lunch dip and a second, slightly lower afternoon peak.
DAILY_PROFILE: tuple[float, ...] = (
    0.12, 0.08, 0.06, 0.05, 0.05, 0.08, 0.18, 0.38, 0.65, 0.88, 1.00, 0.97,
    0.82, 0.85, 0.95, 0.92, 0.80, 0.62, 0.45, 0.35, 0.28, 0.22, 0.18, 0.15,
)  # fmt: skip

# Relative volume Monday..Sunday.
WEEKDAY_FACTORS: tuple[float, ...] = (1.08, 1.0, 0.98, 0.97, 0.95, 0.6, 0.45)


def daily_factor(profile: Sequence[float], local_seconds: float) -> float:
    """Interpolate the hourly profile at a local time of day (seconds since local midnight)."""
    hour = (local_seconds % DAY_SECONDS) / 3600.0 - 0.5
    index = math.floor(hour)
    fraction = hour - index
    low = profile[index % 24]
    high = profile[(index + 1) % 24]
    return low + (high - low) * fraction


def weekday_factor(factors: Sequence[float], local_seconds: float) -> float:
    """Return the weekday factor; epoch day 0 (1970-01-01) was a Thursday, Monday is 0."""
    return factors[int((local_seconds // DAY_SECONDS + 3) % 7)]


def profile_area_hours(profile: Sequence[float]) -> float:
    """Return the integral of the profile over one day, in peak-hour equivalents."""
    return float(sum(profile))


def next_arrival(
    now: float,
    rate_per_second: Callable[[float], float],
    boundaries: Sequence[float],
    rng: random.Random,
    horizon: float,
) -> float:
    """Return the next arrival time of a Poisson process with a piecewise-constant rate.

    The rate is taken as constant on 5-minute segments (and between the `boundaries` where a
    spike starts or stops), so the draw is exact for that step function. Returns `math.inf`
    when nothing arrives before `horizon`.
    """
    remaining = rng.expovariate(1.0)
    t = now
    while t < horizon:
        segment_end = _segment_end(t, boundaries)
        rate = rate_per_second(t)
        span = segment_end - t
        if rate * span >= remaining:
            return t + remaining / rate
        remaining -= rate * span
        t = segment_end
    return math.inf


def _segment_end(t: float, boundaries: Sequence[float]) -> float:
    end = (math.floor(t / SEGMENT_SECONDS) + 1) * SEGMENT_SECONDS
    for boundary in boundaries:
        if t < boundary < end:
            end = boundary
    return end
