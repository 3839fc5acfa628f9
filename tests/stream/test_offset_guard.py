"""The offset guard of stream/agents.py: a partition's messages apply in order from its state."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from intervaltree import IntervalTree

from faust.types import TP
from stream.agents import Epoch, OffsetGuard, _Fence

TOPIC = "events"


class _Consumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []
        self._gap: dict[TP, IntervalTree] = {}
        self.earliest: dict[int, int] = {}

    async def earliest_offsets(self, *tps: TP) -> dict[TP, int]:
        return {tp: self.earliest.get(tp.partition, 0) for tp in tps}

    async def seek(self, tp: TP, offset: int) -> None:
        self.seeks.append((tp.partition, offset))


def _fence(app: Any, where: list[tuple[int, int]]) -> _Fence:
    epoch = Epoch()
    epoch.assigned_at = app.rebalancing_count
    events = []
    for partition, offset in where:
        message = SimpleNamespace(partition=partition, offset=offset, generation_id=app.consumer_generation_id, acked=False)
        events.append(SimpleNamespace(message=message, value=b"%d/%d" % (partition, offset)))
    return _Fence(app, epoch, events)


def _setup(last: dict[int, int], clock: list[float] | None = None) -> tuple[Any, OffsetGuard]:
    app = SimpleNamespace(consumer=_Consumer(), consumer_generation_id=3, rebalancing_count=7)
    now = clock if clock is not None else [0.0]
    guard = OffsetGuard(app, TOPIC, lambda p: last[p], retries=2, retry_seconds=1.0, clock=lambda: now[0])
    return app, guard


def _admit(guard: OffsetGuard, fence: _Fence) -> list[tuple[int, int]]:
    return [(p, o) for p, o, _ in asyncio.run(guard.admit(fence))]


def test_a_partition_handed_over_past_its_state_is_re_read_from_the_first_missing_offset() -> None:
    app, guard = _setup({0: 37, 1: 9})
    app.consumer._gap[TP(TOPIC, 0)] = IntervalTree.from_tuples([(20, 30), (39, 738)])
    fence = _fence(app, [(0, 738), (1, 10), (0, 739), (1, 11)])
    assert _admit(guard, fence) == [(1, 10), (1, 11)]
    assert app.consumer.seeks == [(0, 38)]
    assert [e.message.acked for e in fence.events] == [True, False, True, False]  # left for the re-read
    assert [(i.begin, i.end) for i in sorted(app.consumer._gap[TP(TOPIC, 0)])] == [(20, 30)]  # Faust's gap from 38 on is gone


def test_re_deliveries_and_the_next_offset_are_admitted_in_order() -> None:
    app, guard = _setup({0: 37})
    fence = _fence(app, [(0, 30), (0, 37), (0, 38), (0, 39), (0, 41), (0, 42)])
    assert _admit(guard, fence) == [(0, 30), (0, 37), (0, 38), (0, 39)]
    assert app.consumer.seeks == [(0, 40)]


def test_a_partition_without_state_starts_where_kafka_starts_it() -> None:
    app, guard = _setup({2: -1})
    assert _admit(guard, _fence(app, [(2, 500), (2, 501)])) == [(2, 500), (2, 501)]
    assert app.consumer.seeks == []


def test_offsets_missing_on_every_re_read_are_taken_as_absent() -> None:
    clock = [0.0]
    app, guard = _setup({0: 37}, clock)
    assert _admit(guard, _fence(app, [(0, 40)])) == []
    clock[0] = 0.5
    assert _admit(guard, _fence(app, [(0, 40)])) == []  # the re-read is still under way: no second seek
    assert app.consumer.seeks == [(0, 38)]
    clock[0] = 1.6
    assert _admit(guard, _fence(app, [(0, 40)])) == []
    assert app.consumer.seeks == [(0, 38), (0, 38)]
    clock[0] = 3.0
    assert _admit(guard, _fence(app, [(0, 40), (0, 41)])) == [(0, 40), (0, 41)]  # after two re-reads
    assert guard.skipped_ranges == 1


def test_offsets_deleted_by_retention_are_skipped_at_once() -> None:
    app, guard = _setup({1: 99})
    app.consumer.earliest = {1: 5000}
    assert _admit(guard, _fence(app, [(1, 5000), (1, 5001)])) == []
    assert app.consumer.seeks == [(1, 5000)]
    assert _admit(guard, _fence(app, [(1, 5000), (1, 5001)])) == [(1, 5000), (1, 5001)]
    assert guard.skipped_ranges == 1
