"""A mergeable quantile sketch with a relative-error guarantee (DDSketch's log buckets).

A value x > 0 falls in bucket ``i = ceil(log(x) / log(gamma))`` with
``gamma = (1 + alpha) / (1 - alpha)``; the bucket's representative ``2 gamma^i / (gamma + 1)``
is within ``alpha`` (relative) of every value in it. So a quantile read from the sketch is
within ``alpha`` of the exact value at the same rank. Values below ``MIN_VALUE`` (zero waits)
share bucket ``z`` and read as 0. Buckets live inside an aggregate as ``w:<i>`` counters, so
merging and retracting are plain additions.

Error bound (tested in tests/test_sketch.py): for the nearest-rank quantile
``x_(floor(q * (n - 1)))`` of the samples, the sketch returns ``v`` with
``|v - x| <= ALPHA * x`` (and exactly 0 when ``x < MIN_VALUE``).
"""

from __future__ import annotations

import math
from collections.abc import Mapping

ALPHA = 0.01
GAMMA = (1 + ALPHA) / (1 - ALPHA)
_LOG_GAMMA = math.log(GAMMA)
MIN_VALUE = 0.001  # seconds: a wait shorter than a millisecond counts as zero
PREFIX = "w:"
ZERO_KEY = "w:z"


def bucket_key(value: float) -> str:
    """Return the aggregate key of the sketch bucket holding ``value``."""
    if value < MIN_VALUE:
        return ZERO_KEY
    return f"{PREFIX}{math.ceil(math.log(value) / _LOG_GAMMA)}"


def representative(index: int) -> float:
    """Return the value a bucket reads as (within ALPHA of all its members)."""
    return 2 * GAMMA**index / (GAMMA + 1)


def quantile(agg: Mapping[str, float], q: float) -> float | None:
    """Return the q-quantile (0..1) of the samples in ``agg``'s sketch, or None if empty."""
    return quantiles(agg, (q,))[0]


def quantiles(agg: Mapping[str, float], qs: tuple[float, ...]) -> list[float | None]:
    """Return several quantiles of ``agg``'s sketch at once (its buckets sorted once).

    Which keys of an aggregate are sketch buckets, and what each reads as, is looked up in
    one dict (``_reads``): the quantiles were nine tenths of computing a queue's KPIs, and
    this takes a third off them.
    """
    reads = _reads
    counts = []
    for key, count in agg.items():
        value = reads.get(key, _UNSEEN)
        if value == _UNSEEN:
            value = _read(key)
        if value is not None and count > 0:
            counts.append((value, count))
    counts.sort()
    total = sum(count for _, count in counts)
    if total <= 0:
        return [None] * len(qs)
    out: list[float | None] = []
    for q in qs:
        rank = math.floor(q * (total - 1))
        seen, found = 0.0, counts[-1][0]
        for value, count in counts:
            seen += count
            if seen > rank:
                found = value
                break
        out.append(found)
    return out


_UNSEEN = -1.0  # no bucket reads as a negative value
_READS_LIMIT = 100_000  # distinct aggregate keys remembered (counters, buckets: a few thousand)
_reads: dict[str, float | None] = {ZERO_KEY: 0.0}  # aggregate key -> what its bucket reads as; None: no bucket


def _read(key: str) -> float | None:
    value = representative(int(key[len(PREFIX) :])) if key.startswith(PREFIX) else None
    if len(_reads) < _READS_LIMIT:
        _reads[key] = value
    return value
