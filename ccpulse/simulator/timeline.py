"""The discrete-event kernel: a heap of actions and a heap of events waiting to be released."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable, Iterator
from typing import Any

Fields = dict[str, Any]
Emitted = tuple[float, str, Fields]


class Timeline:
    """Run actions in time order and release events in non-decreasing event time.

    Actions may commit events for later (a chat's messages, a survey an hour after the call);
    an event is released once no action can still produce an earlier one, i.e. when the next
    action is not before it.
    """

    def __init__(self, start: float) -> None:
        self.now = start
        self._actions: list[tuple[float, int, Callable[[], None]]] = []
        self._events: list[tuple[float, int, str, Fields]] = []
        self._order = itertools.count()

    def at(self, when: float, action: Callable[[], None]) -> None:
        """Schedule `action` to run at time `when` (never before now)."""
        heapq.heappush(self._actions, (max(when, self.now), next(self._order), action))

    def emit(self, when: float, event_type: str, fields: Fields) -> None:
        """Commit an event at time `when`; it must not be earlier than now."""
        if when < self.now:
            raise RuntimeError(f"{event_type} at {when} is before the clock {self.now}")
        heapq.heappush(self._events, (when, next(self._order), event_type, fields))

    def run(self, end: float) -> Iterator[Emitted]:
        """Run every action before `end` and yield the events before `end` in time order."""
        actions = self._actions
        while actions and actions[0][0] < end:
            when = actions[0][0]
            yield from self._release(when, inclusive=True)
            _, _, action = heapq.heappop(actions)
            self.now = when
            action()
        yield from self._release(end, inclusive=False)

    def _release(self, limit: float, *, inclusive: bool) -> Iterator[Emitted]:
        """Yield committed events before `limit` (or at it, when `inclusive`)."""
        events = self._events
        while events and (events[0][0] < limit or (inclusive and events[0][0] == limit)):
            when, _, event_type, fields = heapq.heappop(events)
            yield when, event_type, fields
