"""The batch wait that follows the backlog (stream/batching.py), in Faust's own take_events."""

from __future__ import annotations

import asyncio
import time

import faust

from stream.batching import within


async def test_take_events_asks_the_wait_anew_for_every_batch() -> None:
    app = faust.App("ccpulse-test-batching", broker="kafka://127.0.0.1:1", store="memory://")
    waits = [0.02, 0.3, 0.02]  # seconds the batch loop is told, one per wait
    asked: list[float] = []
    batches: list[tuple[list[int], float]] = []

    def seconds() -> float:
        asked.append(waits[min(len(asked), len(waits) - 1)])
        return asked[-1]

    @app.agent()
    async def collect(stream: faust.StreamT[int]) -> None:
        started = time.monotonic()
        async for events in stream.take_events(100, within=within(seconds)):  # type: ignore[attr-defined]
            batches.append(([e.value for e in events], time.monotonic() - started))
            started = time.monotonic()

    async with collect.test_context() as agent:
        await agent.put(1)
        await asyncio.sleep(0.1)  # the first wait (0.02 s) ends with [1]
        await agent.put(2)
        await asyncio.sleep(0.15)  # inside the second wait (0.3 s): 2 and 3 go together
        await agent.put(3)
        await asyncio.sleep(0.4)
    assert [values for values, _ in batches] == [[1], [2, 3]]
    assert len(asked) >= 3  # asked before each wait, not once
    assert batches[1][1] >= 0.25  # the second batch waited its 0.3 s, not the first 0.02
