"""Survey answers (CSAT 1-5, NPS 0-10, CES 1-7) from one latent experience score."""

from __future__ import annotations

import bisect
import random
from statistics import NormalDist

_NORMAL = NormalDist()

# Cumulative shares of each score for an average experience (latent mean 0). They give about
# 76 % CSAT 4-5 (seed 003's 111 of 146), NPS about +20, and 64 % CES of 5 or more (seed 004).
_CUMULATIVE = {
    "csat": (0.06, 0.11, 0.22, 0.50),  # P(score <= 1), <= 2, <= 3, <= 4
    "nps": (0.03, 0.04, 0.06, 0.08, 0.11, 0.16, 0.25, 0.38, 0.55, 0.75),  # <= 0 .. <= 9
    "ces": (0.04, 0.08, 0.15, 0.36, 0.62, 0.85),  # <= 1 .. <= 6
}
_LOWEST = {"csat": 1, "nps": 0, "ces": 1}
_CUTS = {kind: [_NORMAL.inv_cdf(p) for p in shares] for kind, shares in _CUMULATIVE.items()}


def experience(
    *, resolved: bool, wait_ratio: float, transferred: bool, mood: float, rng: random.Random
) -> float:
    """Return a latent experience score (0 = average) for a handled contact.

    `wait_ratio` is the wait divided by the channel's service-level target.
    """
    shift = 0.3 if resolved else -0.9
    shift -= 0.2 * max(0.0, min(wait_ratio, 4.0) - 1.0)
    shift -= 0.25 if transferred else 0.0
    shift += 0.4 * mood
    return shift + rng.gauss(0.0, 1.0)


def score(kind: str, latent: float, rng: random.Random) -> int:
    """Return a survey score of `kind` for the latent experience, with answer noise."""
    noisy = 0.8 * latent + 0.6 * rng.gauss(0.0, 1.0)
    return _LOWEST[kind] + bisect.bisect(_CUTS[kind], noisy)
