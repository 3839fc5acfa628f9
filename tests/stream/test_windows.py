"""Window boundaries: rolling buckets, local intervals, 'today' with a reset hour."""

from __future__ import annotations

from datetime import datetime
from zoneinfo import ZoneInfo

from stream.windows import WindowClock

UTC = ZoneInfo("UTC")


def ts(text: str) -> float:
    return datetime.fromisoformat(text).timestamp()


def test_rolling_window_spans_whole_buckets_ending_at_the_watermark() -> None:
    clock = WindowClock(30, 900, UTC, 0)
    buckets = clock.rolling_buckets("5m", ts("2026-11-23T10:04:10+00:00"))
    assert len(buckets) == 10
    assert buckets[0] == ts("2026-11-23T09:59:30+00:00")
    assert buckets[-1] == ts("2026-11-23T10:04:00+00:00")


def test_interval_is_aligned_to_local_wall_clock() -> None:
    kolkata = WindowClock(30, 1800, ZoneInfo("Asia/Kolkata"), 0)  # UTC+05:30
    start = kolkata.interval_start(ts("2026-11-23T10:20:00+05:30"))
    assert start == ts("2026-11-23T10:00:00+05:30")
    nepal = WindowClock(30, 900, ZoneInfo("Asia/Kathmandu"), 0)  # UTC+05:45
    assert nepal.interval_start(ts("2026-11-23T10:20:00+05:45")) == ts("2026-11-23T10:15:00+05:45")


def test_today_starts_at_the_local_reset_hour() -> None:
    clock = WindowClock(30, 900, ZoneInfo("America/New_York"), 6)
    assert clock.day_start(ts("2026-11-23T07:00:00-05:00")) == ts("2026-11-23T06:00:00-05:00")
    assert clock.day_start(ts("2026-11-23T05:59:00-05:00")) == ts("2026-11-22T06:00:00-05:00")


def test_today_across_a_dst_change() -> None:
    clock = WindowClock(30, 900, ZoneInfo("Europe/Berlin"), 0)
    # 2026-03-29: clocks jump from 02:00 to 03:00; the day starts at local midnight (UTC+1)
    assert clock.day_start(ts("2026-03-29T12:00:00+02:00")) == ts("2026-03-29T00:00:00+01:00")
