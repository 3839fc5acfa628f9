"""BreachSink against the real stack: events reach the Redis channel and the Kafka topic."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from kafka import KafkaConsumer

from sinks.breaches import BreachSink
from stream.settings import Settings
from stream.snapshot import Snapshot
from tests.conftest import KAFKA, make_env

pytestmark = pytest.mark.integration


def snapshot(at: float, service_level: float) -> Snapshot:
    kpis = {"service_level": service_level, "answered": 40, "abandoned": 4}
    return Snapshot(
        app_id="live",
        watermark=at,
        generated_at=at,
        windows={"15m": {"queue:billing": kpis}},
        bounds={},
        sl_targets={"default": 0.8},
    )


async def test_breach_and_clear_reach_redis_and_kafka(tmp_path: Path, stack: Any) -> None:
    settings = Settings.from_env(make_env(tmp_path))
    sink = BreachSink.from_settings(settings, min_duration_seconds=10.0)
    client = aioredis.Redis(port=stack["redis_port"])
    pubsub = client.pubsub()
    await pubsub.subscribe(f"{settings.redis_prefix}:v1:{settings.app_id}:alerts")
    await pubsub.get_message(timeout=1.0)
    for at, level in ((0.0, 0.5), (5.0, 0.5), (10.0, 0.5), (20.0, 0.9), (30.0, 0.9)):
        await sink.publish(snapshot(1_800_000_000.0 + at, level))
        await sink.flush()
    await sink.publish(snapshot(1_800_000_040.0, 0.9))
    assert sink.failures == 0 and sink.last_success_at is not None
    redis_events = []
    while len(redis_events) < 2:
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=5.0)
        assert message, f"only {redis_events} on the Redis channel"
        redis_events.append(orjson.loads(message["data"]))
    assert [(e["type"], e["scope"], e["at"]) for e in redis_events] == [
        ("breach", "queue:billing", 1_800_000_010.0),
        ("clear", "queue:billing", 1_800_000_030.0),
    ]
    consumer = KafkaConsumer(
        settings.alerts_topic,
        bootstrap_servers=KAFKA,
        auto_offset_reset="earliest",
        consumer_timeout_ms=20000,
    )
    kafka_events = []
    for record in consumer:
        kafka_events.append((record.key, orjson.loads(record.value)))
        if len(kafka_events) == 2:
            break
    consumer.close()
    assert [(key, e["type"]) for key, e in kafka_events] == [
        (b"service_level|queue:billing", "breach"),
        (b"service_level|queue:billing", "clear"),
    ]
    assert [e for _, e in kafka_events] == redis_events
    await pubsub.aclose()
    await client.aclose()
    await sink.close()
