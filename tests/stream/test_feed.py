"""The batch feed of stream/feed.py: batches, its bound, flow control and acknowledgements."""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import faust
from faust.types import TP

from stream.feed import BulkFeed

TOPIC = "events"


class _Consumer:
    def __init__(self) -> None:
        self.unacked: set[Any] = set()
        self.acked: list[int] = []

    def ack(self, message: Any) -> bool:
        message.acked = True
        self.unacked.discard(message)
        self.acked.append(message.offset)
        return True


class _Flow:
    """Flow control: ``acquire`` waits while suspended, as Faust's does during a rebalance."""

    def __init__(self) -> None:
        self.active = asyncio.Event()
        self.active.set()

    async def acquire(self) -> None:
        await self.active.wait()


def _app() -> Any:
    async def ebb() -> None:
        return None

    return SimpleNamespace(
        consumer=_Consumer(), flow_control=_Flow(), producer=SimpleNamespace(buffer=SimpleNamespace(wait_until_ebb=ebb))
    )


class _Message(SimpleNamespace):
    __hash__ = object.__hash__  # hashable by identity, as Faust's messages are


def _message(offset: int, partition: int = 0) -> Any:
    return _Message(partition=partition, offset=offset, acked=False, tracked=False, value=b"%d" % offset)


async def _take(feed: BulkFeed, max_: int, wait: float) -> tuple[list[int], float]:
    started = time.monotonic()
    batches = feed.batches(max_, lambda: wait)
    batch = await batches.__anext__()
    await batches.aclose()
    return [m.offset for m in batch], time.monotonic() - started


async def test_a_full_batch_is_handed_over_at_once_and_a_partial_one_after_its_wait() -> None:
    app = _app()
    feed = BulkFeed(app, TOPIC, maxsize=100)
    deliver = feed._handler()
    for offset in range(5):
        await deliver(_message(offset))
    offsets, took = await _take(feed, 3, wait=5.0)
    assert offsets == [0, 1, 2] and took < 1.0  # three were there: no wait at all
    offsets, took = await _take(feed, 3, wait=0.1)
    assert offsets == [3, 4] and 0.08 <= took < 1.0  # two of three: after the wait


async def test_a_batch_that_fills_during_its_wait_goes_as_soon_as_it_is_full() -> None:
    feed = BulkFeed(_app(), TOPIC, maxsize=100)
    deliver = feed._handler()

    async def later() -> None:
        await asyncio.sleep(0.05)
        for offset in range(4):
            await deliver(_message(offset))

    task = asyncio.ensure_future(later())
    offsets, took = await _take(feed, 4, wait=5.0)
    await task
    assert offsets == [0, 1, 2, 3] and took < 1.0


async def test_an_empty_wait_hands_nothing_over_and_waits_again() -> None:
    feed = BulkFeed(_app(), TOPIC, maxsize=100)
    deliver = feed._handler()
    waits: list[float] = []

    def wait() -> float:
        waits.append(0.02)
        return 0.02

    async def later() -> None:
        await asyncio.sleep(0.15)
        await deliver(_message(7))

    task = asyncio.ensure_future(later())
    batches = feed.batches(10, wait)
    batch = await batches.__anext__()
    await batches.aclose()
    await task
    assert [m.offset for m in batch] == [7]
    assert len(waits) >= 3  # asked anew before each wait


async def test_delivery_waits_while_the_feed_is_full_and_goes_on_once_a_batch_is_taken() -> None:
    feed = BulkFeed(_app(), TOPIC, maxsize=3)
    deliver = feed._handler()
    for offset in range(3):
        await deliver(_message(offset))
    blocked = asyncio.ensure_future(deliver(_message(3)))
    await asyncio.sleep(0.05)
    assert not blocked.done() and len(feed.messages) == 3  # the fetch loop waits, as on a full queue
    offsets, _ = await _take(feed, 2, wait=1.0)
    await asyncio.wait_for(blocked, 1.0)
    assert offsets == [0, 1] and [m.offset for m in feed.messages] == [2, 3]


async def test_delivery_waits_for_flow_control_and_tracks_what_it_hands_over() -> None:
    app = _app()
    feed = BulkFeed(app, TOPIC, maxsize=10)
    deliver = feed._handler()
    app.flow_control.active.clear()  # a rebalance: flow suspended
    message = _message(0)
    pending = asyncio.ensure_future(deliver(message))
    await asyncio.sleep(0.05)
    assert not pending.done() and not feed.messages and not app.consumer.unacked
    app.flow_control.active.set()
    await asyncio.wait_for(pending, 1.0)
    assert list(feed.messages) == [message] and message.tracked and message in app.consumer.unacked


async def test_only_messages_not_left_are_acknowledged_and_a_drop_frees_the_feed() -> None:
    app = _app()
    feed = BulkFeed(app, TOPIC, maxsize=2)
    deliver = feed._handler()
    first, second = _message(0), _message(1)
    await deliver(first)
    await deliver(second)
    second.acked = True  # left unacknowledged by the fence: marked on the message only
    feed.acknowledge([first, second])
    assert app.consumer.acked == [0]  # the consumer never hears of the left one
    blocked = asyncio.ensure_future(deliver(_message(2)))
    await asyncio.sleep(0.02)
    assert [m.offset for m in feed.drop()] == [0, 1] and not feed.messages
    await asyncio.wait_for(blocked, 1.0)  # the drop made room
    assert [m.offset for m in feed.messages] == [2]


def test_only_the_feed_s_topic_is_routed_to_it() -> None:
    app = faust.App("ccpulse-test-feed", broker="kafka://127.0.0.1:1", store="memory://")
    conductor = app.topics
    feed = BulkFeed(app, TOPIC, maxsize=10)
    built: list[TP] = []
    original = conductor._build_handler

    def record(tp: TP, channels: Any) -> Any:
        built.append(tp)
        return original(tp, channels)

    conductor._build_handler = record
    feed.install()
    routed = {}
    for tp in (TP(TOPIC, 0), TP(TOPIC, 3), TP("other", 0)):
        try:
            routed[tp] = conductor._build_handler(tp, set())
        except Exception:  # Faust's own handler needs a started app; being asked is what counts
            routed[tp] = None
    assert built == [TP("other", 0)]  # Faust builds the other topic's handler, the feed its own
    assert all(routed[TP(TOPIC, p)] is not None for p in (0, 3))
