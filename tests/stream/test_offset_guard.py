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
        events.append(SimpleNamespace(partition=partition, offset=offset, generation_id=app.consumer_generation_id,
                                      acked=False, value=b"%d/%d" % (partition, offset)))
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
    assert [m.acked for m in fence.messages] == [True, False, True, False]  # left for the re-read
    # Faust's gap from 38 on is gone
    assert [(i.begin, i.end) for i in sorted(app.consumer._gap[TP(TOPIC, 0)])] == [(20, 30)]
    assert app.consumer._read_offset[TP(TOPIC, 0)] == 38  # so the re-fetched 38 on is delivered


def test_re_deliveries_and_the_next_offset_are_admitted_in_order() -> None:
    app, guard, _ = _setup({0: 37})
    fence = _fence(app, [(0, 30), (0, 37), (0, 38), (0, 39), (0, 41), (0, 42)])
    assert _admit(guard, fence) == [(0, 30), (0, 37), (0, 38), (0, 39)]
    assert app.consumer.seeks == [(0, 40)]


def test_a_missing_offset_behind_stale_ones_in_the_same_batch_is_applied_from_there() -> None:
    # the tail of messages fetched before a re-read's seek, then the re-read's head
    app, guard, _ = _setup({0: 3798, 1: 9})
    fence = _fence(app, [(0, 4990), (1, 10), (0, 4991), (0, 3799), (0, 3800), (1, 11)])
    assert _admit(guard, fence) == [(1, 10), (0, 3799), (0, 3800), (1, 11)]
    assert app.consumer.seeks == [], "the missing offset came: no re-read"
    assert [m.acked for m in fence.messages] == [True, False, True, False, False, False]


def test_each_re_read_head_behind_the_previous_tail_still_gets_applied() -> None:
    """The starvation the SIGKILL fault test saw with prompt delivery on: every batch began
    with the tail of the previous read; judging a partition by its first jump left the
    missing offset behind it every time."""
    clock = [0.0]
    last = {0: 3798}
    app, guard, _ = _setup(last, clock=clock)
    assert _admit(guard, _fence(app, [(0, 4959), (0, 4960)])) == []
    assert app.consumer.seeks == [(0, 3799)]
    clock[0] = 0.4
    assert _admit(guard, _fence(app, [(0, 4961), (0, 3799), (0, 3800), (0, 3801)])) == [(0, 3799), (0, 3800), (0, 3801)]
    last[0] = 3801
    clock[0] = 0.8
    assert _admit(guard, _fence(app, [(0, 3802), (0, 3803)])) == [(0, 3802), (0, 3803)]
    assert app.consumer.seeks == [(0, 3799)] and guard.rereads == {} and guard.skipped_offsets == 0


def test_a_jump_after_applied_messages_of_the_batch_re_reads_from_the_new_gap() -> None:
    app, guard, _ = _setup({0: 37})
    fence = _fence(app, [(0, 50), (0, 38), (0, 39), (0, 60), (0, 61)])
    assert _admit(guard, fence) == [(0, 38), (0, 39)]
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
    assert guard.given_up_offsets == 2 and guard.skipped_offsets == 0 and asked == [(0, 38)]  # Kafka asked once


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


# -- the read offsets Faust drops fetched messages by (stream/agents.py ReadOffsets) ---------


def _drain(read_offset: Any, fetches: list[list[int]], between: Any) -> list[int]:
    """Run Faust's own fetch loop (``Consumer._drain_messages``) over ``fetches`` (offsets of
    partition 0, one list a fetch) and return the offsets it handed over; ``between(n)`` runs
    after fetch n was handed over (where a re-read seeks)."""
    from faust.transport.consumer import Consumer

    tp = TP(TOPIC, 0)
    handed: list[int] = []
    stopped = asyncio.Event()
    queue = list(fetches)

    async def getmany(timeout: float) -> Any:
        if not queue:
            stopped.set()
            return
        offsets = queue.pop(0)
        for offset in offsets:
            yield tp, SimpleNamespace(offset=offset, topic=TOPIC, key=None, value=None)
        between(len(fetches) - len(queue))

    async def callback(message: Any) -> None:
        handed.append(message.offset)

    async def wait_first(*coros: Any) -> None:
        await coros[0]
        for other in coros[1:]:
            other.close()

    async def add_gap(tp: TP, start: int, end: int) -> None:
        pass

    async def nothing(*_: Any) -> None:
        pass

    consumer = SimpleNamespace(
        callback=callback, getmany=getmany, _stopped=stopped, _read_offset=read_offset,
        consumer_stopped_errors=(), should_stop=False,
        diag=SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None),
        _commit_every=None, app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True)),
        sleep=nothing, _add_gap=add_gap, wait_first=wait_first, suspend_flow=SimpleNamespace(wait=nothing),
        transport=SimpleNamespace(app=SimpleNamespace(should_stop=False)),
        log=SimpleNamespace(dev=lambda *a: None, exception=lambda *a: None),
    )
    asyncio.run(Consumer._drain_messages(consumer, SimpleNamespace(_stopped=asyncio.Event())))
    return handed


def _seek_back(read_offset: Any, offset: int) -> Any:
    """What OffsetGuard._reread does to the read offsets, after fetch 1, and nothing after."""
    def between(fetch: int) -> None:
        if fetch == 1:
            read_offset[TP(TOPIC, 0)] = offset
            if hasattr(read_offset, "floors"):
                read_offset.floors[TP(TOPIC, 0)] = offset
    return between


def test_faust_drops_a_re_read_once_messages_fetched_before_it_moved_the_read_offset() -> None:
    from collections import defaultdict

    read: Any = defaultdict(lambda: None)
    # fetch 1 ends with 8643; the seek back to 8640 is made while 8644-8645 are still to come
    handed = _drain(read, [[8641, 8642, 8643], [8644, 8645], [8640, 8641, 8642]], _seek_back(read, 8640))
    assert handed == [8641, 8642, 8643, 8644, 8645], "the re-read 8640-8642 was dropped"


def test_with_a_floor_the_re_read_is_handed_over_whatever_came_before_it() -> None:
    from stream.agents import ReadOffsets

    read = ReadOffsets()
    handed = _drain(read, [[8641, 8642, 8643], [8644, 8645], [8640, 8641, 8642]], _seek_back(read, 8640))
    assert handed == [8641, 8642, 8643, 8644, 8645, 8640, 8641, 8642]


def test_read_offsets_floors_cap_the_offset_until_lifted_and_go_with_their_partition() -> None:
    from stream.agents import ReadOffsets

    tp, other = TP(TOPIC, 0), TP(TOPIC, 1)
    read = ReadOffsets({tp: 9000, other: 5})
    assert read[tp] == 9000 and read[TP(TOPIC, 2)] is None
    read.floors[tp] = 8640
    read[tp] = 9500  # Faust's fetch loop moves it on
    assert read[tp] == 8640 and read[other] == 5
    read.pop(tp, None)  # revoked
    assert read.floors == {} and read[tp] is None


def test_the_guard_sets_a_floor_when_it_re_reads_and_lifts_it_once_the_offset_came() -> None:
    from stream.agents import ReadOffsets

    last = {0: 37}
    app, guard, _ = _setup(last)
    app.consumer._read_offset = ReadOffsets()
    tp = TP(TOPIC, 0)
    assert _admit(guard, _fence(app, [(0, 40), (0, 41)])) == []
    assert app.consumer._read_offset.floors == {tp: 38}
    assert _admit(guard, _fence(app, [(0, 42)])) == [], "still missing: the floor stays"
    assert app.consumer._read_offset.floors == {tp: 38}
    assert _admit(guard, _fence(app, [(0, 38), (0, 39), (0, 40)])) == [(0, 38), (0, 39), (0, 40)]
    assert app.consumer._read_offset.floors == {}


def test_the_worker_app_s_consumer_has_read_offsets_with_floors() -> None:
    from stream.agents import ReadOffsets
    from stream.app import create_app
    from stream.settings import Settings

    app = create_app(Settings(broker="kafka://127.0.0.1:1"))
    assert isinstance(app.consumer._read_offset, ReadOffsets)


def test_offsets_gone_on_from_are_exported_by_stage_and_reason() -> None:
    from sinks.prometheus import offset_families
    from stream.agents import skipped_offsets

    clock = [0.0]
    _, contacts, _ = _setup({0: 37}, present={(0, 38): 39})
    _, facts, _ = _setup({0: 37}, present={(0, 38): None}, clock=clock)
    asyncio.run(contacts.admit(_fence(contacts.app, [(0, 39)])))  # 38 absent: skipped, nothing lost
    for at in (0.0, 1.5, 3.0):  # no answer from Kafka: given up after two re-reads
        clock[0] = at
        asyncio.run(facts.admit(_fence(facts.app, [(0, 45)])))
    keys = skipped_offsets({"contacts": contacts, "customers": facts})
    assert keys == {
        "offsets:contacts:absent": 1.0, "offsets:contacts:given_up": 0.0,
        "offsets:customers:absent": 0.0, "offsets:customers:given_up": 7.0,
    }
    (family,) = offset_families(keys, "ccpulse")
    samples = {(s.labels["stage"], s.labels["reason"]): s.value for s in family.samples if s.name.endswith("_total")}
    assert samples == {("contacts", "absent"): 1.0, ("contacts", "given_up"): 0.0,
                       ("customers", "absent"): 0.0, ("customers", "given_up"): 7.0}
    assert list(offset_families({"processed": 3.0}, "ccpulse")) == []
