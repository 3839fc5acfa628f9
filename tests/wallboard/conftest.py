"""Fixtures: a real redis-server per test, a hand-driven feed, the wallboard in-process."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from aiohttp.test_utils import TestClient, TestServer

from ccpulse.wallboard.server import create_app
from stream.settings import Settings
from tests.sinks.redis_server import RedisServer, running_redis
from tests.wallboard.feed import Feed

PREFIX = "t"
APP_ID = "wb"
POLL_SECONDS = 0.2
HEARTBEAT_SECONDS = 0.3

MakeClient = Callable[..., Awaitable[TestClient[Any, Any]]]


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


@pytest.fixture
async def feed(redis_server: RedisServer) -> AsyncIterator[Feed]:
    writer = Feed(redis_server.url, PREFIX, APP_ID)
    yield writer
    await writer.close()


def wallboard_settings(redis_url: str, token: str = "") -> Settings:
    return Settings.from_env(
        {}, redis_url=redis_url, redis_prefix=PREFIX, app_id=APP_ID, wallboard_token=token
    )


@pytest.fixture
async def make_client(redis_server: RedisServer) -> AsyncIterator[MakeClient]:
    """Start wallboard apps (fast poll and heartbeat) under aiohttp's test client."""
    clients: list[TestClient[Any, Any]] = []

    async def make(
        token: str = "", thresholds: dict[str, Any] | None = None, redis_url: str | None = None
    ) -> TestClient[Any, Any]:
        settings = wallboard_settings(redis_url or redis_server.url, token)
        app = create_app(settings, thresholds, POLL_SECONDS, HEARTBEAT_SECONDS)
        client: TestClient[Any, Any] = TestClient(TestServer(app))
        await client.start_server()
        clients.append(client)
        return client

    yield make
    for client in clients:
        await client.close()
