"""Play events at their own pace on the wall clock, and move them to the present."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from ccpulse.simulator.timestamps import format_ts, parse_ts

Event = dict[str, Any]


def pace(
    events: Iterable[Event],
    speed: float,
    clock: Callable[[], float] = time.time,
    sleep: Callable[[float], None] = time.sleep,
) -> Iterator[Event]:
    """Yield each event once its event time, relative to the first event, / `speed` has passed.

    `speed` 1 is real time, 10 is ten times faster; 0 or infinity means as fast as possible.
    The schedule is anchored at the first event, so slow consumers catch up instead of
    drifting. Events without a readable `ts` (messy input) go out right away.
    """
    if speed < 0 or math.isnan(speed):
        raise ValueError("speed must be >= 0")
    if speed == 0 or math.isinf(speed):
        yield from events
        return
    first_event: float | None = None
    first_wall = 0.0
    for event in events:
        event_time = parse_ts(event.get("ts"))
        if event_time is not None:
            if first_event is None:
                first_event, first_wall = event_time, clock()
            delay = first_wall + (event_time - first_event) / speed - clock()
            if delay > 0:
                sleep(delay)
        yield event


def retime_to_now(
    events: Iterable[Event], clock: Callable[[], float] = time.time
) -> Iterator[Event]:
    """Shift every event's `ts` by one offset so the first event happens now.

    For replaying a recorded or generated stream as live traffic; string times stay RFC 3339,
    numbers stay epoch seconds. (For a live simulation, pass `start=time.time()` to
    `generate` instead.)
    """
    shift: float | None = None
    for event in events:
        event_time = parse_ts(event.get("ts"))
        if event_time is None:
            yield event
            continue
        if shift is None:
            shift = clock() - event_time
        moved = event_time + shift
        yield {**event, "ts": format_ts(moved) if isinstance(event["ts"], str) else moved}
