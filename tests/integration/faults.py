"""Helpers for the fault tests: one simulated input, its expected KPIs, and comparisons."""

from __future__ import annotations

import asyncio
import time
import zlib
from functools import lru_cache
from typing import Any

import orjson
import redis
import redis.asyncio as aioredis
from kafka.partitioner.default import murmur2

from ccpulse.producer import event_key
from ccpulse.simulator import default_scenario, generate
from sinks.redis import read_kpis
from stream import snapshot
from stream.pipeline import Pipeline
from stream.settings import Settings
from tests.conftest import KAFKA, REDIS_PORT, samples

START = 1_759_989_600.0  # 2025-10-09T06:00:00Z
PARTITIONS = 4  # CCPULSE_PARTITIONS default


@lru_cache(maxsize=4)
def simulated_lines(hours: float = 24.0, seed: int = 3) -> tuple[bytes, ...]:
    """A busy simulated center with 1 % messy input (duplicates, invalid events)."""
    scenario = default_scenario(queues=6, agents=60)
    events = generate(scenario, seed=seed, start=START, duration_seconds=hours * 3600,
                      rate_multiplier=2.0, dirty_fraction=0.01)
    return tuple(orjson.dumps(e) for e in events)


def line_key(line: bytes) -> bytes | None:
    """The SPEC §1 key of a line, or None when it is not a JSON object."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return event_key(event) if isinstance(event, dict) else None


def partition_of(line: bytes, partitions: int = PARTITIONS) -> int:
    """The input partition of a line: Kafka's default (murmur2 of the key), or fixed if unkeyed."""
    key = line_key(line)
    if key is None:
        return zlib.crc32(line) % partitions
    return kafka_partition(key, partitions)


def kafka_partition(key: bytes, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2) gives a key."""
    return (murmur2(key) & 0x7FFFFFFF) % partitions


def produce(lines: tuple[bytes, ...] | list[bytes], topic: str, partitions: int = PARTITIONS) -> None:
    """Create the topic and produce the lines keyed as SPEC §1 says, to known partitions."""
    from kafka import KafkaProducer
    from kafka.admin import KafkaAdminClient, NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = KafkaAdminClient(bootstrap_servers=KAFKA)
    try:
        admin.create_topics([NewTopic(topic, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    admin.close()
    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all", linger_ms=20)
    for line in lines:
        producer.send(topic, value=line, key=line_key(line), partition=partition_of(line, partitions))
    producer.flush()
    producer.close()


def expected_kpis(
    lines: tuple[bytes, ...] | list[bytes], partitions: int = PARTITIONS, **overrides: Any
) -> dict[str, Any]:
    """The KPIs of an uninterrupted run of the same input: each partition in order, once.

    Event-time rules (lateness, horizons) are judged per input partition, as the worker
    judges them, so the reference reads the same partitions the worker reads.
    """
    pipeline = Pipeline(Settings.from_env({}, live=False, **overrides), clock=time.time)
    by_partition: dict[int, list[tuple[int, int, bytes]]] = {p: [] for p in range(partitions)}
    for line in lines:
        p = partition_of(line, partitions)
        by_partition[p].append((p, len(by_partition[p]), line))
    facts: dict[int, list[tuple[int, int, dict[str, Any]]]] = {p: [] for p in range(partitions)}
    dead_letters: list[tuple[str, bytes]] = []
    for p in range(partitions):
        result = pipeline.process(by_partition[p])
        dead_letters += [(letter["reason"], letter["original"]) for letter in result.dead_letters]
        for fact in result.customer_facts:
            q = kafka_partition(fact["customer_id"].encode(), partitions)
            facts[q].append((q, len(facts[q]), fact))
    for q in range(partitions):
        pipeline.process_customer_facts(facts[q])
    contacts = [pipeline.contact_state(p) for p in range(partitions)]
    customers = [pipeline.customer_state(p) for p in range(partitions)]
    wm = max(c.watermark for c in contacts)
    partials = [snapshot.contact_partial(c, wm, wm, 1800.0, -0.05) for c in contacts]
    partials += [snapshot.customer_partial(c, wm, wm) for c in customers]
    return {"watermark": wm, "windows": snapshot.kpis_by_window(partials, wm),
            "dead_letters": len(dead_letters), "dead_letter_items": dead_letters,
            "stage2": {c.partition: _stage2_facts(c.watermark, c.meta, c.customers_active(), c.totals())
                       for c in customers}}


def _stage2_facts(wm: Any, meta: dict[str, Any], active: Any, totals: Any) -> dict[str, Any]:
    """What a stage 2 partition's customer KPIs rest on, for a failure to show."""
    return {"wm": wm, "o": meta.get("o"), "src": meta.get("src"), "active": active,
            "totals_all": (totals or {}).get("all")}


def published_stage2(env: dict[str, str]) -> dict[str, Any]:
    """The same of each stage 2 partition, from the partials the workers exchange in Redis."""
    client = redis.Redis(port=REDIS_PORT)
    try:
        raw = client.hgetall(f"{env['CCPULSE_REDIS_PREFIX']}:v1:{env['CCPULSE_APP_ID']}:partials")
    finally:
        client.close()
    out: dict[str, Any] = {}
    for name, value in sorted(raw.items()):
        field = name.decode()
        if field.startswith("customers:") and field.count(":") == 1:
            head = orjson.loads(value)
            out[field] = {"wm": head.get("wm"), "at": head.get("at"), "active": head.get("customers_active"),
                          "totals_all": (head.get("totals") or {}).get("all"), "updated": head.get("updated")}
    return out


def published(env: dict[str, str]) -> dict[str, Any]:
    """Read every published KPI of an app from Redis."""
    async def read() -> dict[str, Any]:
        client = aioredis.Redis(port=REDIS_PORT)
        try:
            return await read_kpis(client, env["CCPULSE_REDIS_PREFIX"], env["CCPULSE_APP_ID"])
        finally:
            await client.aclose()

    return asyncio.run(read())


def differences(got: dict[str, Any], want: dict[str, Any]) -> list[str]:
    """List every window/scope/KPI where the published value differs from the expected."""
    diffs = []
    for window, scoped in want["windows"].items():
        for scope, kpis in scoped.items():
            published_kpis = got.get("windows", {}).get(window, {}).get(scope)
            if published_kpis is None:
                diffs.append(f"{window} {scope}: missing")
                continue
            for name, value in kpis.items():
                other = published_kpis.get(name)
                if not _same(value, other):
                    diffs.append(f"{window} {scope} {name}: published {other!r}, expected {value!r}")
    return diffs


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, int | float):
        # both are rounded to 6 digits after sums in another order: one unit of rounding apart
        return abs(a - b) <= 2e-6 * max(1.0, abs(a))
    return bool(a == b)


def processed(metrics_text: str) -> float:
    """Events applied by a worker's stage 1 partitions (its /metrics)."""
    return sum(
        v for labels, v in samples(metrics_text, "ccpulse_events_processed_total") if labels.get("stage") == "contacts"
    )


def rejected(metrics_text: str) -> float:
    return sum(v for _, v in samples(metrics_text, "ccpulse_events_rejected_total"))
