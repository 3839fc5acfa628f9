"""The offset guard of stream/agents.py: a partition's messages apply in order from its state."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

from faust.types import TP
from intervaltree import IntervalTree

from stream.agents import Epoch, OffsetGuard, _Fence

TOPIC = "events"


class _Consumer:
    def __init__(self) -> None:
        self.seeks: list[tuple[int, int]] = []
        self._gap: dict[TP, IntervalTree] = {}
        self._read_offset: dict[TP, int | None] = {}

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


def _setup(last: dict[int, int], present: dict[tuple[int, int], int | None] | None = None,
           clock: list[float] | None = None) -> tuple[Any, OffsetGuard, list[tuple[int, int]]]:
    """A guard whose probe answers from ``present`` ((partition, offset) -> next offset held;
    by default every offset is held) and records what it was asked."""
    app = SimpleNamespace(consumer=_Consumer(), consumer_generation_id=3, rebalancing_count=7)
    asked: list[tuple[int, int]] = []

    async def probe(tp: TP, offset: int) -> int | None:
        asked.append((tp.partition, offset))
        return (present or {}).get((tp.partition, offset), offset)

    now = clock if clock is not None else [0.0]
    guard = OffsetGuard(app, TOPIC, lambda p: last[p], probe, retries=2, retry_seconds=1.0, clock=lambda: now[0])
    return app, guard, asked


def _admit(guard: OffsetGuard, fence: _Fence) -> list[tuple[int, int]]:
    return [(p, o) for p, o, _ in asyncio.run(guard.admit(fence))]


def test_a_partition_handed_over_past_its_state_is_re_read_from_the_first_missing_offset() -> None:
    app, guard, asked = _setup({0: 37, 1: 9})
    app.consumer._gap[TP(TOPIC, 0)] = IntervalTree.from_tuples([(20, 30), (39, 738)])
    app.consumer._read_offset[TP(TOPIC, 0)] = 739  # Faust would drop a re-fetched 38 as already read
    fence = _fence(app, [(0, 738), (1, 10), (0, 739), (1, 11)])
    assert _admit(guard, fence) == [(1, 10), (1, 11)]
    assert asked == [(0, 38)]  # Kafka says offset 38 holds a record: it was skipped, not absent
    assert app.consumer.seeks == [(0, 38)]
    assert [e.message.acked for e in fence.events] == [True, False, True, False]  # left for the re-read
    assert [(i.begin, i.end) for i in sorted(app.consumer._gap[TP(TOPIC, 0)])] == [(20, 30)]  # Faust's gap from 38 on is gone
    assert app.consumer._read_offset[TP(TOPIC, 0)] == 38  # so the re-fetched 38 on is delivered


def test_re_deliveries_and_the_next_offset_are_admitted_in_order() -> None:
    app, guard, _ = _setup({0: 37})
    fence = _fence(app, [(0, 30), (0, 37), (0, 38), (0, 39), (0, 41), (0, 42)])
    assert _admit(guard, fence) == [(0, 30), (0, 37), (0, 38), (0, 39)]
    assert app.consumer.seeks == [(0, 40)]


def test_a_partition_without_state_starts_at_the_first_offset_its_topic_holds() -> None:
    app, guard, asked = _setup({2: -1, 3: -1}, present={(3, 0): 500})
    assert _admit(guard, _fence(app, [(2, 0), (2, 1)])) == [(2, 0), (2, 1)]
    assert asked == []
    assert _admit(guard, _fence(app, [(2, 6), (3, 500), (3, 501)])) == [(3, 500), (3, 501)]  # 3 begins at 500
    assert app.consumer.seeks == [(2, 0)]  # committed past offsets no state holds: read from the start
    assert guard.skipped_offsets == 0


def test_offsets_not_in_the_topic_are_skipped_at_once() -> None:
    # a transaction marker at 38 (or offsets compacted or deleted by retention)
    app, guard, _ = _setup({0: 37}, present={(0, 38): 39})
    assert _admit(guard, _fence(app, [(0, 39), (0, 40)])) == [(0, 39), (0, 40)]
    assert app.consumer.seeks == [] and guard.skipped_offsets == 1


def test_held_offsets_after_an_absent_range_are_re_read() -> None:
    app, guard, _ = _setup({0: 37}, present={(0, 38): 45})
    assert _admit(guard, _fence(app, [(0, 50)])) == []
    assert app.consumer.seeks == [(0, 45)]


def test_without_an_answer_from_kafka_a_jump_is_taken_as_real_after_the_re_reads() -> None:
    clock = [0.0]
    app, guard, asked = _setup({0: 37}, present={(0, 38): None}, clock=clock)
    assert _admit(guard, _fence(app, [(0, 40)])) == []
    clock[0] = 0.5
    assert _admit(guard, _fence(app, [(0, 40)])) == []  # the re-read is still under way: no second seek
    assert app.consumer.seeks == [(0, 38)]
    clock[0] = 1.6
    assert _admit(guard, _fence(app, [(0, 40)])) == []
    assert app.consumer.seeks == [(0, 38), (0, 38)]
    clock[0] = 3.0
    assert _admit(guard, _fence(app, [(0, 40), (0, 41)])) == [(0, 40), (0, 41)]  # after two re-reads
    assert guard.skipped_offsets == 2 and asked == [(0, 38)]  # Kafka asked once


def _faust_consumer(acked: list[int], gaps: list[tuple[int, int]], committed: int) -> Any:
    """The attributes Faust's Consumer._new_offset reads, around the real method."""
    from collections import defaultdict

    from faust.transport.consumer import Consumer

    tp = TP(TOPIC, 0)
    consumer = SimpleNamespace(
        _acked=defaultdict(list, {tp: list(acked)}),
        _gap=defaultdict(IntervalTree, {tp: IntervalTree.from_tuples(gaps)}),
        _committed_offset=defaultdict(lambda: None, {tp: committed}),
        _acked_index=defaultdict(set, {tp: set(acked)}),
    )
    consumer._new_offset = Consumer._new_offset.__get__(consumer)
    return consumer


def test_offsets_both_skipped_and_read_no_longer_hold_back_faust_commits() -> None:
    from stream.agents import commit_past_overlapping_gaps

    tp = TP(TOPIC, 0)
    acked, gaps = list(range(1049, 1200)), [(1050, 1150)]  # 1050-1149 skipped, then read after all
    stock = _faust_consumer(acked, gaps, committed=1049)
    assert stock._new_offset(tp) == 1051  # Faust alone: a duplicate ends the run, two offsets on
    fixed = _faust_consumer(acked, gaps, committed=1049)
    commit_past_overlapping_gaps(fixed)
    assert fixed._new_offset(tp) == 1200  # every acknowledged offset at once
    commit_past_overlapping_gaps(fixed)  # installed once
    assert fixed._new_offset.__name__ == "new_offset"


def test_gaps_of_offsets_never_read_still_count_as_done() -> None:
    from stream.agents import commit_past_overlapping_gaps

    tp = TP(TOPIC, 0)
    fixed = _faust_consumer(list(range(10, 20)) + list(range(30, 40)), [(20, 30)], committed=9)
    commit_past_overlapping_gaps(fixed)
    assert fixed._new_offset(tp) == 40  # 20-29 are transaction markers, say: nothing to wait for
