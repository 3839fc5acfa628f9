"""Window arithmetic: which bucket an event time falls in, which buckets a window spans.

Two kinds of tumbling buckets hold aggregates:

- fine buckets of ``bucket_seconds`` (default 30 s) for the rolling windows ``5m``, ``15m``,
  ``1h``. A rolling window ending at watermark W spans the bucket holding W and the
  ``size / bucket_seconds - 1`` buckets before it, so it covers between
  ``size - bucket_seconds`` and ``size`` of event time. Example, 30 s buckets, W = 10:04:10:
  ``5m`` = buckets 09:59:30 .. 10:04:00, i.e. events from 09:59:30 up to W.
- interval buckets of ``interval_minutes`` (15 or 30) aligned to local wall-clock time in
  ``time_zone``; ``interval`` is the one holding W and ``today`` is every interval from the
  local day start (``day_reset_hour``) up to W.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

ROLLING_SECONDS = {"5m": 300, "15m": 900, "1h": 3600}
WINDOWS = ("5m", "15m", "1h", "today", "interval")


@dataclass(frozen=True)
class WindowClock:
    """Bucket and window bounds for one configuration."""

    bucket_seconds: int
    interval_seconds: int
    zone: ZoneInfo
    day_reset_hour: int
    # the last interval and day found, as (start, end): most events fall in the same ones,
    # and each look-up made two datetimes in the zone (~5 % of a worker's time)
    _last: dict[str, tuple[float, float]] = field(default_factory=dict, compare=False, repr=False)

    def bucket_start(self, ts: float) -> int:
        """Return the start (epoch seconds) of the fine bucket holding ``ts``."""
        return int(math.floor(ts / self.bucket_seconds) * self.bucket_seconds)

    def interval_start(self, ts: float) -> int:
        """Return the start of the local interval holding ``ts``.

        Remembered for the span it holds for: from the interval's start for
        ``interval_seconds``, when the zone's offset is the same at both ends (no clock
        change inside; a clock change inside an interval is never remembered).
        """
        start, end = self._last.get("interval", _NONE)
        if start <= ts < end:
            return int(start)
        start = self._interval_start(ts)
        end = start + self.interval_seconds
        if start <= ts < end and _offset(start, self.zone) == _offset(end, self.zone):
            self._last["interval"] = (start, end)
        return start

    def _interval_start(self, ts: float) -> int:
        local = datetime.fromtimestamp(ts, self.zone)
        midnight = local.replace(hour=0, minute=0, second=0, microsecond=0)
        elapsed = (local - midnight).total_seconds()
        start = midnight + timedelta(seconds=(elapsed // self.interval_seconds) * self.interval_seconds)
        return int(start.timestamp())

    def interval_spans(self, start: float, end: float) -> Iterator[tuple[float, float, int]]:
        """Split [start, end) where local intervals change: (piece start, piece end, interval).

        Equivalent to cutting the span into fine buckets and giving each bucket the interval
        of its start, without visiting every bucket.
        """
        cursor = start
        while cursor < end:
            interval = self.interval_start(cursor)
            stop = min(end, self._next_interval(interval, cursor))
            yield cursor, stop, interval
            cursor = stop

    def _next_interval(self, interval: int, cursor: float) -> float:
        guess = interval + self.interval_seconds
        offset = _offset(cursor, self.zone)
        if guess > cursor and _offset(interval, self.zone) == offset == _offset(guess, self.zone):
            return guess
        # a clock change inside the interval: walk fine buckets until the interval changes
        step = self.bucket_start(cursor) + self.bucket_seconds
        while self.interval_start(step) == interval:
            step += self.bucket_seconds
        return step

    def day_start(self, ts: float) -> int:
        """Return the start of the local 'today' holding ``ts`` (at the reset hour).

        Remembered until the next day's start: a local day lasts 23 to 25 hours, so the
        start of the day holding its start + 26 h is the next one. A day with a clock change
        in it is never remembered (a reset hour inside a repeated hour starts it twice).
        """
        start, end = self._last.get("day", _NONE)
        if start <= ts < end:
            return int(start)
        start = self._day_start(ts)
        end = self._day_start(start + 26 * 3600)
        if (start <= ts < end and _offset(start, self.zone) == _offset(end, self.zone)
                and self._day_start(end - 1) == start):
            self._last["day"] = (start, end)
        return start

    def _day_start(self, ts: float) -> int:
        local = datetime.fromtimestamp(ts, self.zone)
        start = local.replace(hour=self.day_reset_hour, minute=0, second=0, microsecond=0)
        if start > local:
            start = _previous_day(start)
        return int(start.timestamp())

    def rolling_buckets(self, window: str, watermark: float) -> range:
        """Return the fine bucket starts a rolling window spans at ``watermark``."""
        last = self.bucket_start(watermark)
        count = ROLLING_SECONDS[window] // self.bucket_seconds
        return range(last - (count - 1) * self.bucket_seconds, last + 1, self.bucket_seconds)

    def bounds(self, window: str, watermark: float) -> tuple[float, float]:
        """Return (start, end) of a window in event time; end is the watermark."""
        if window in ROLLING_SECONDS:
            return float(self.rolling_buckets(window, watermark)[0]), watermark
        if window == "today":
            return float(self.day_start(watermark)), watermark
        return float(self.interval_start(watermark)), watermark

    def fine_horizon(self, watermark: float, lateness: float) -> float:
        """Oldest fine bucket start any rolling window can still need."""
        return self.bucket_start(watermark - max(ROLLING_SECONDS.values()) - lateness)

    def interval_horizon(self, watermark: float) -> float:
        """Oldest interval start 'today' can still need (with a day of slack for replays)."""
        return self.day_start(watermark) - 86400


_NONE = (math.inf, -math.inf)  # a span nothing falls in


def _offset(ts: float, zone: ZoneInfo) -> timedelta | None:
    return datetime.fromtimestamp(ts, zone).utcoffset()


def _previous_day(start: datetime) -> datetime:
    day = (start - timedelta(days=1)).date()
    return datetime(day.year, day.month, day.day, start.hour, tzinfo=start.tzinfo)
