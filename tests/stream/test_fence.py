"""The batch fence of stream/agents.py: stale generations and repeated offsets never apply."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from stream.agents import _Fence


def _event(partition: int, offset: int, generation: int = 2) -> Any:
    message = SimpleNamespace(partition=partition, offset=offset, generation_id=generation, acked=False)
    return SimpleNamespace(message=message, value=f"{partition}/{offset}".encode())


def test_an_offset_handed_over_twice_in_one_batch_is_applied_once() -> None:
    app = SimpleNamespace(consumer_generation_id=2)
    offsets = [(0, 10), (1, 4), (0, 11), (0, 12), (0, 11), (0, 12), (1, 5), (0, 13), (1, 5)]
    fence = _Fence(app, [_event(p, o) for p, o in offsets])
    assert [(p, o) for p, o, _ in fence.batch()] == [(0, 10), (1, 4), (0, 11), (0, 12), (1, 5), (0, 13)]


def test_messages_of_an_older_generation_are_left_for_the_new_owner() -> None:
    app = SimpleNamespace(consumer_generation_id=3)
    stale, fresh = _event(0, 7, generation=2), _event(0, 3, generation=3)
    fence = _Fence(app, [stale, fresh])
    assert [(p, o) for p, o, _ in fence.batch()] == [(0, 3)]
    assert stale.message.acked and not fresh.message.acked  # marked on the message only: never committed
    assert fence.current()
    app.consumer_generation_id = 4
    assert not fence.current()
    fence.release()
    assert fresh.message.acked
