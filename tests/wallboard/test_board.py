"""Reading tiles from what the worker's real RedisSink writes (not only from the test feed)."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest
import redis.asyncio as aioredis

from ccpulse.wallboard.board import changed_scopes, read_board, shown
from ccpulse.wallboard.colors import parse_thresholds
from sinks.redis import RedisSink, key_base
from tests.sinks import snapshots
from tests.sinks.redis_server import RedisServer

WRITTEN_AT = snapshots.WM + 2.0


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    sink = RedisSink(redis_server.url, "t", "app", 3600, 5.0, clock=lambda: WRITTEN_AT)
    await sink.publish(snapshots.snapshot())
    await sink.close()
    reader = aioredis.Redis.from_url(redis_server.url)
    yield reader
    await reader.aclose()


def no_target(queue: str | None) -> float:
    raise AssertionError("meta carries every target; the settings' fallback is not needed")


async def test_board_reads_the_sinks_layout(client: aioredis.Redis) -> None:
    board = await read_board(client, key_base("t", "app"), "15m", parse_thresholds({}), no_target)
    expected = snapshots.snapshot().windows["15m"]
    assert (board.window, board.updated_at, board.watermark) == ("15m", WRITTEN_AT, snapshots.WM)
    assert sorted(board.tiles) == ["all", "queue:billing", "queue:sales"]
    for scope, tile in board.tiles.items():
        values = {kpi: judged["value"] for kpi, judged in tile["kpis"].items()}
        assert values == {kpi: expected[scope].get(kpi) for kpi in values}, scope
        assert tile["updated_at"] == WRITTEN_AT
    billing = board.tiles["queue:billing"]["kpis"]
    assert billing["waiting"]["value"] == 2
    assert billing["oldest_wait_seconds"]["value"] == 42.5
    # 5 within T of 7 answered + 2 abandoned (short abandons excluded)
    assert billing["service_level"]["value"] == pytest.approx(5 / 9)
    assert billing["service_level"]["target"] == 0.9  # billing's own target, from meta
    assert billing["service_level"]["level"] == "bad"  # amber from 0.8
    assert board.tiles["all"]["kpis"]["service_level"]["target"] == 0.8  # meta's default


async def test_board_reads_only_the_asked_scopes(client: aioredis.Redis) -> None:
    board = await read_board(
        client,
        key_base("t", "app"),
        "5m",
        parse_thresholds({}),
        no_target,
        scopes=["queue:billing", "queue:sales"],
    )
    assert sorted(board.tiles) == ["queue:billing"]  # sales has no 5m hash


def test_shown_scopes_and_changed_labels() -> None:
    assert [shown(s) for s in ("all", "queue:a", "queue:a|channel:voice", "channel:voice")] == [
        True,
        True,
        False,
        False,
    ]
    assert not shown("agent:a1")
    labels = ["15m|all", "15m|queue:a", "1h|queue:b", "15m|queue:a|channel:chat", "15m|agent:x"]
    assert changed_scopes(labels, "15m") == {"all", "queue:a"}
    assert changed_scopes(labels, "today") == set()
