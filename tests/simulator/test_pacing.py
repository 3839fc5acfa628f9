"""pace() plays events on an injected wall clock; retime_to_now() moves them to the present."""

from __future__ import annotations

import math

import pytest

from ccpulse.simulator import pace, retime_to_now


class FakeClock:
    """A wall clock that only moves when slept on (or when told to)."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now
        self.sleeps: list[float] = []

    def __call__(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds


def _events(*offsets):
    return [
        {"event_id": str(i), "type": "x", "ts": f"2026-11-23T08:00:{s:06.3f}Z"}
        for i, s in enumerate(offsets)
    ]


def test_speed_ten_sleeps_a_tenth_of_the_gaps():
    clock = FakeClock()
    events = _events(0, 1, 3, 3, 7.5)
    played = list(pace(events, 10.0, clock=clock, sleep=clock.sleep))
    assert played == events
    assert clock.sleeps == pytest.approx([0.1, 0.2, 0.45])


def test_epoch_second_timestamps_work_too():
    clock = FakeClock()
    events = [{"ts": 100.0}, {"ts": 102.0}, {"ts": 106.0}]
    list(pace(events, 2.0, clock=clock, sleep=clock.sleep))
    assert clock.sleeps == pytest.approx([1.0, 2.0])


def test_a_slow_consumer_catches_up_instead_of_drifting():
    clock = FakeClock()
    played = pace(_events(0, 1, 2, 3), 1.0, clock=clock, sleep=clock.sleep)
    next(played)
    clock.now += 2.5  # the consumer spent 2.5 s on the first event
    next(played), next(played)
    assert clock.sleeps == []
    next(played)
    assert clock.sleeps == pytest.approx([0.5])


@pytest.mark.parametrize("speed", [0.0, math.inf])
def test_zero_or_infinite_speed_never_sleeps(speed):
    clock = FakeClock()
    assert len(list(pace(_events(0, 60, 3600), speed, clock=clock, sleep=clock.sleep))) == 3
    assert clock.sleeps == []


def test_events_without_a_readable_time_pass_straight_through():
    clock = FakeClock()
    events = [_events(0)[0], {"type": "broken"}, {"ts": "next tuesday"}, _events(4)[0]]
    assert list(pace(events, 2.0, clock=clock, sleep=clock.sleep)) == events
    assert clock.sleeps == pytest.approx([2.0])


def test_negative_speed_is_refused():
    with pytest.raises(ValueError):
        list(pace(_events(0), -1.0))


def test_retime_moves_the_first_event_to_now_and_keeps_the_gaps():
    clock = FakeClock(now=1_800_000_000.5)
    moved = list(retime_to_now(_events(0, 1.25) + [{"ts": 1_795_420_802.0}], clock=clock))
    assert [e["ts"] for e in moved] == [
        "2027-01-15T08:00:00.500Z",
        "2027-01-15T08:00:01.750Z",
        1_800_000_002.5,
    ]
    assert [e["event_id"] for e in moved[:2]] == ["0", "1"]
