"""The partial exchange (stream/exchange.py) against a real redis-server: what one worker
writes, another reads whole; older layers travel only when their tokens change."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest
import redis.asyncio as aioredis

from ccpulse.simulator.defaults import default_scenario
from ccpulse.simulator.engine import generate
from stream import snapshot
from stream.exchange import OLDER, PartialExchange
from stream.pipeline import Pipeline
from tests.sinks.redis_server import RedisServer, running_redis
from tests.stream.harness import T0, settings

KEY = "t:v1:app:partials"


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


def _pipeline() -> tuple[Pipeline, list[dict]]:
    scenario = default_scenario(queues=3, channels=("voice", "chat"), agents=12)
    events = list(generate(scenario, seed=3, start=T0, duration_seconds=2 * 3600))
    return Pipeline(settings()), events


def _feed(pipeline: Pipeline, events: list[dict], start: int) -> None:
    for n, event in enumerate(events):
        pipeline.process([(n % 2, start + n, orjson.dumps(event))])


def _partials(pipeline: Pipeline, partition: int) -> list[dict]:
    state = pipeline.contact_state(partition)
    wm = state.watermark
    return [snapshot.contact_partial(state, wm, wm, 1800.0, -0.05, (lane,)) for lane in ("main", "a0")]


def _windows(partials: list[dict]) -> dict:
    return snapshot.merge_windows([p for p in partials if "lane" not in p], customers=False)


async def test_another_worker_reads_the_partials_whole_and_older_layers_only_when_they_change(
    redis_server: RedisServer,
) -> None:
    pipeline, events = _pipeline()
    _feed(pipeline, events[: len(events) // 2], 0)
    client = aioredis.Redis.from_url(redis_server.url)
    writer = PartialExchange(client, "t", "app", 2, 3600)  # owns partition 0
    reader = PartialExchange(client, "t", "app", 2, 3600)  # owns partition 1
    try:
        mine = _partials(pipeline, 0)
        await writer.swap(mine, ("main", "a0"))
        got = await reader.swap(_partials(pipeline, 1), ("main", "a0"))
        assert got is not None
        theirs = [p for p in got if p["partition"] == 0]
        assert len(theirs) == 2
        assert _windows(theirs) == _windows(mine)  # sums, newest bucket, agent time: all there

        await client.hdel(KEY, f"contacts:0{OLDER}")
        await writer.swap(mine, ("main", "a0"))  # same tokens: the older layers are not sent again
        assert not await client.hexists(KEY, f"contacts:0{OLDER}")
        again = await reader.swap(_partials(pipeline, 1), ("main", "a0"))
        assert again is not None
        assert _windows([p for p in again if p["partition"] == 0]) == _windows(mine)  # from its cache
        newcomer = PartialExchange(client, "t", "app", 2, 3600)
        fresh = await newcomer.swap([], ("main",))
        assert fresh is not None and not any(p["partition"] == 0 for p in fresh)  # sits out once

        _feed(pipeline, events[len(events) // 2 :], len(events))
        changed = _partials(pipeline, 0)
        await writer.swap(changed, ("main", "a0"))  # new tokens: the older layers go again
        assert await client.hexists(KEY, f"contacts:0{OLDER}")
        later = await reader.swap(_partials(pipeline, 1), ("main", "a0"))
        assert later is not None
        assert _windows([p for p in later if p["partition"] == 0]) == _windows(changed)
        assert _windows(changed) != _windows(mine)
    finally:
        await client.aclose()
