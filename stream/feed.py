"""Hand one topic's messages to its agent in batches, past Faust's event-at-a-time stream.

Faust delivers every message through its conductor to a channel queue, wraps it in an
``Event``, and lets the agent's stream take it out again one at a time: sensors in and out,
a task-local current event, the processors of ``take_events`` that fill its buffer, a
``sleep(0)`` and reference counting for each. For a bare agent that is ~96 µs a message on
the benchmarks' machine, against ~3 µs for aiokafka's own fetch and decode (docs/benchmarks.md),
and ccpulse takes its input 2,000 at a time anyway.

``BulkFeed`` replaces the conductor's callback for the input topic's partitions (and only
theirs): a fetched message waits, as before, for the app's flow control (suspended while
it rebalances) and for the producer's buffer to ebb, is tracked as unacknowledged, and is
appended to a deque the agent takes batches from. The agent acknowledges what it applied
with the consumer's own ``ack``, so Faust's commits, gaps, read offsets and rebalances are
what they were: ``_Fence`` and ``OffsetGuard`` (stream/agents.py) see the same messages,
and what they leave unacknowledged is never committed past.

The deque is bounded (``maxsize``): a full one makes the fetch loop wait, as a full channel
queue did, so a replay of a day does not pull the whole topic into memory.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections import deque
from collections.abc import AsyncIterator, Callable
from typing import Any

from faust.types import TP


class BulkFeed:
    """A topic's fetched messages, for its agent to take ``max_`` at a time."""

    def __init__(self, app: Any, topic: str, maxsize: int) -> None:
        self.app = app
        self.topic = topic
        self.maxsize = maxsize
        self.messages: deque[Any] = deque()
        self._arrived: asyncio.Event | None = None
        self._room: asyncio.Event | None = None
        self.want = 1  # messages that make a batch worth handing over before its wait ends

    def install(self) -> None:
        """Route the topic's messages here from the conductor's next handler map on."""
        conductor = self.app.topics
        build = conductor._build_handler

        def build_handler(tp: TP, channels: Any) -> Callable[[Any], Any]:
            return self._handler() if tp.topic == self.topic else build(tp, channels)

        conductor._build_handler = build_handler  # an instance attribute, shadowing the method

    def _events(self) -> tuple[asyncio.Event, asyncio.Event]:
        if self._arrived is None or self._room is None:  # made in the running loop
            self._arrived, self._room = asyncio.Event(), asyncio.Event()
        return self._arrived, self._room

    def _handler(self) -> Callable[[Any], Any]:
        app = self.app
        acquire_flow_control = app.flow_control.acquire
        wait_until_ebb = app.producer.buffer.wait_until_ebb
        messages = self.messages
        append = messages.append
        maxsize = self.maxsize
        unacked = app.consumer.unacked

        async def on_message(message: Any) -> None:
            await acquire_flow_control()
            await wait_until_ebb()
            arrived, room = self._events()
            while len(messages) >= maxsize:
                room.clear()
                await room.wait()
            message.tracked = True
            unacked.add(message)
            append(message)
            if len(messages) >= self.want:
                arrived.set()

        return on_message

    async def batches(self, max_: int, within: Callable[[], float]) -> AsyncIterator[list[Any]]:
        """Batches of up to ``max_`` messages: as soon as ``max_`` are here, else after ``within()`` s.

        The wait counts from when the previous batch was handed back, as ``take_events``'s
        does; an empty wait hands nothing over and waits again.
        """
        messages = self.messages
        popleft = messages.popleft
        while True:
            arrived, room = self._events()
            if len(messages) < max_:
                self.want = max_
                arrived.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(arrived.wait(), timeout=within())
            if not messages:
                continue
            batch = [popleft() for _ in range(min(max_, len(messages)))]
            room.set()
            yield batch

    def drop(self) -> list[Any]:
        """Empty the deque (a rebalance began): what was in it, for the caller to leave unacknowledged."""
        dropped = list(self.messages)
        self.messages.clear()
        if self._room is not None:
            self._room.set()
        return dropped

    def acknowledge(self, batch: list[Any]) -> None:
        """Acknowledge a batch's messages to the consumer, but those marked to be left."""
        ack = self.app.consumer.ack
        for message in batch:
            if not message.acked:
                ack(message)
