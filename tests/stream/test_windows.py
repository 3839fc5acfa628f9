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


def _per_bucket(clock: WindowClock, start: float, end: float) -> dict[int, float]:
    """Seconds of [start, end) per interval, cutting at every fine bucket (the slow way)."""
    from stream.buckets import split_span

    out: dict[int, float] = {}
    for a, b in split_span(start, end, clock.bucket_seconds):
        interval = clock.interval_start(a)
        out[interval] = out.get(interval, 0.0) + (b - a)
    return out


def test_interval_spans_equal_cutting_at_every_bucket_even_across_clock_changes() -> None:
    cases = [
        (ZoneInfo("UTC"), "2026-11-23T07:59:47.25+00:00", 5.5 * 3600),
        (ZoneInfo("Asia/Kathmandu"), "2026-11-23T10:03:10+05:45", 7200.0),
        (ZoneInfo("Europe/Berlin"), "2026-10-25T01:10:05+02:00", 4 * 3600.0),  # back one hour
        (ZoneInfo("Europe/Berlin"), "2026-03-29T01:20:00+01:00", 3 * 3600.0),  # forward one hour
    ]
    for zone, start_text, length in cases:
        clock = WindowClock(30, 900, zone, 0)
        start = ts(start_text)
        fast: dict[int, float] = {}
        pieces = list(clock.interval_spans(start, start + length))
        for a, b, interval in pieces:
            fast[interval] = fast.get(interval, 0.0) + (b - a)
        slow = _per_bucket(clock, start, start + length)
        assert fast.keys() == slow.keys(), zone
        assert all(abs(fast[k] - slow[k]) < 1e-9 for k in slow), zone
        assert pieces[0][0] == start and pieces[-1][1] == start + length
        assert all(a < b for a, b, _ in pieces)


def test_remembered_intervals_and_days_equal_working_them_out_every_time() -> None:
    import random

    rng = random.Random(7)
    zones = ["UTC", "Europe/Berlin", "America/New_York", "Australia/Lord_Howe", "Asia/Kathmandu"]
    for name in zones:
        for interval, reset in ((900, 0), (1800, 2), (900, 5)):  # 02:00 is a skipped hour in spring
            clock = WindowClock(30, interval, ZoneInfo(name), reset)
            for around in ("2026-03-08T00:00:00+00:00", "2026-03-29T00:00:00+00:00", "2026-04-05T00:00:00+00:00",
                           "2026-10-04T00:00:00+00:00", "2026-10-25T00:00:00+00:00", "2026-11-01T00:00:00+00:00"):
                base = ts(around)
                walk = [base + step * 37.5 for step in range(6000)]  # two and a half days, in order
                jumps = [base + rng.uniform(-86400, 3 * 86400) for _ in range(1500)]  # and out of order
                for t in walk + jumps:
                    assert clock.interval_start(t) == clock._interval_start(t), (name, interval, t)
                    assert clock.day_start(t) == clock._day_start(t), (name, reset, t)
