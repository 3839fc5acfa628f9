"""Score customer message text offline with VADER (vaderSentiment, shipped on PyPI).

VADER's ``compound`` score is already on -1..1, the scale of the event's ``sentiment``
field, so a scored message and a message that came with a score mean the same thing.
"""

from __future__ import annotations

from functools import lru_cache

from vaderSentiment.vaderSentiment import SentimentIntensityAnalyzer


@lru_cache(maxsize=1)
def _analyzer() -> SentimentIntensityAnalyzer:
    return SentimentIntensityAnalyzer()


def score_text(text: str) -> float:
    """Return the compound sentiment (-1..1) of one message."""
    if not text.strip():
        return 0.0
    return float(_analyzer().polarity_scores(text[:2000])["compound"])
