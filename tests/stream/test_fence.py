"""The batch fence of stream/agents.py: stale generations and repeated offsets never apply."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from stream.agents import Epoch, _Fence


def _app(generation: int, rebalances: int = 5) -> Any:
    return SimpleNamespace(consumer_generation_id=generation, rebalancing_count=rebalances)


def _epoch(assigned_at: int = 5) -> Epoch:
    epoch = Epoch()
    epoch.assigned_at = assigned_at
    return epoch


def _message(partition: int, offset: int, generation: int = 2) -> Any:
    value = f"{partition}/{offset}".encode()
    return SimpleNamespace(partition=partition, offset=offset, generation_id=generation, acked=False, value=value)


def test_an_offset_handed_over_twice_in_one_batch_is_applied_once() -> None:
    app = _app(2)
    offsets = [(0, 10), (1, 4), (0, 11), (0, 12), (0, 11), (0, 12), (1, 5), (0, 13), (1, 5)]
    fence = _Fence(app, _epoch(), [_message(p, o) for p, o in offsets])
    assert [(p, o) for p, o, _ in fence.batch()] == [(0, 10), (1, 4), (0, 11), (0, 12), (1, 5), (0, 13)]


def test_only_exact_repeats_are_dropped_never_an_offset_not_seen_yet() -> None:
    app = _app(2)
    fence = _Fence(app, _epoch(), [_message(0, 20), _message(0, 15), _message(0, 20), _message(0, 16)])
    assert [(p, o) for p, o, _ in fence.batch()] == [(0, 20), (0, 15), (0, 16)]


def test_messages_of_an_older_generation_are_left_for_the_new_owner() -> None:
    app = _app(3)
    stale, fresh = _message(0, 7, generation=2), _message(0, 3, generation=3)
    fence = _Fence(app, _epoch(), [stale, fresh])
    assert [(p, o) for p, o, _ in fence.batch()] == [(0, 3)]
    assert stale.acked and not fresh.acked  # marked on the message only: never committed
    assert fence.current()
    app.consumer_generation_id = 4
    assert not fence.current()
    fence.__exit__(None, None, None)
    assert fresh.acked


def test_a_batch_handed_over_after_a_rebalance_began_is_left_for_the_seek_back() -> None:
    app = _app(3, rebalances=6)  # rebalance 6 began; generation 3 still looks current
    events = [_message(0, 7, generation=3), _message(1, 2, generation=3)]
    fence = _Fence(app, _epoch(assigned_at=5), events)
    assert fence.batch() == []
    assert all(e.acked for e in events)


def test_a_rebalance_beginning_during_a_batch_fences_it_off() -> None:
    app = _app(3)
    fence = _Fence(app, _epoch(), [_message(0, 7, generation=3)])
    assert len(fence.batch()) == 1 and fence.current()
    app.rebalancing_count = 6  # revocation under way, generation unchanged
    assert not fence.current()


def test_a_batch_cancelled_or_failing_halfway_is_never_acknowledged() -> None:
    import asyncio

    import pytest

    for error in (asyncio.CancelledError(), RuntimeError("boom")):
        app = _app(3)
        events = [_message(0, 7, generation=3), _message(0, 8, generation=3)]
        with pytest.raises(type(error)):
            with _Fence(app, _epoch(), events) as fence:
                assert len(fence.batch()) == 2
                raise error
        assert all(e.acked for e in events)  # so the final ack commits nothing
    app = _app(3)
    events = [_message(0, 9, generation=3)]
    with _Fence(app, _epoch(), events) as fence:
        fence.batch()
    assert not events[0].acked  # finished: the agent acknowledges it and Faust commits it
