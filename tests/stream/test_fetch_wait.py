"""The worker's Kafka consumer waits at most CCPULSE_FETCH_MAX_WAIT_SECONDS per fetch."""

from __future__ import annotations

import asyncio

import pytest

from stream.app import create_app
from stream.settings import Settings, SettingsError


def _worker_consumer_wait(env: dict[str, str]) -> int:
    async def build() -> int:
        app = create_app(Settings.from_env(env))
        thread = app.consumer._new_consumer_thread()
        consumer = thread._create_worker_consumer(app.transport)
        return int(consumer._fetch_max_wait_ms)

    return asyncio.run(build())


def test_the_worker_consumer_gets_the_configured_fetch_wait() -> None:
    assert _worker_consumer_wait({}) == 100  # Faust alone builds it with 1500
    assert _worker_consumer_wait({"CCPULSE_FETCH_MAX_WAIT_SECONDS": "0.25"}) == 250


def test_a_fetch_wait_out_of_range_is_refused() -> None:
    with pytest.raises(SettingsError, match="FETCH_MAX_WAIT"):
        Settings.from_env({"CCPULSE_FETCH_MAX_WAIT_SECONDS": "0"})
