"""Publish cost: what one publish of a worker costs, timed in-process against the real Redis.

The throughput topic's events are run through the pure pipeline (stream/pipeline.py), spread
over four partitions by their Kafka key as the producer's partitioner spreads them, in
``steps`` equal slices. After each slice one publish is timed in its parts: the partials of
the four partitions (``Runtime._partials``), the KPIs of every window and scope
(``Runtime._snapshot``), and the Redis sink's write. The first publish writes every field;
the others only what changed (the sink's heartbeat is set beyond the run).

The same state is also built the way the worker builds it (stream/lanes.py): the main lane
(queue, channel and ``all`` scopes) and one agent slice of eight per publish, against the
every-scope build above as the baseline (``lanes_over_every_scope``).

Baseline for the Redis write, in the same run and on the same snapshots: the same hashes written the usual way,
``HSET`` of every changed field + ``EXPIRE`` per hash in one ``MULTI``/``EXEC`` (a redis-py
pipeline), which is how ccpulse wrote them until its sink moved to one script call.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any

import orjson
import redis.asyncio as aioredis
from kafka.partitioner.default import murmur2

from bench import dataset
from bench.worker import REDIS_URL
from sinks.redis import RedisSink, kpi_hashes, meta_fields, stamps
from stream.lanes import rotation
from stream.pipeline import Pipeline
from stream.runtime import Runtime
from stream.settings import Settings

PARTITIONS = 4


def measure(events: list[dict[str, Any]], prefix: str, steps: int = 10) -> dict[str, Any]:
    """Time ``steps`` publishes over ``events``; return milliseconds per publish by part."""
    return asyncio.run(_measure(events, prefix, steps))


def _partitioned(events: list[dict[str, Any]]) -> dict[int, list[tuple[int, int, bytes]]]:
    by_partition: dict[int, list[tuple[int, int, bytes]]] = {p: [] for p in range(PARTITIONS)}
    for n, (key, value) in enumerate(dataset.keyed(events)):
        partition = (murmur2(key) & 0x7FFFFFFF) % PARTITIONS if key else n % PARTITIONS
        messages = by_partition[partition]
        messages.append((partition, len(messages), value))
    return by_partition


class Discard:
    """Dead letters, customer facts and table writes go nowhere: only publishing is timed."""

    async def send(self, **_: Any) -> Any:
        done = asyncio.get_running_loop().create_future()
        done.set_result(None)
        return done

    async def write(self, writes: Any, current: Any) -> None:
        for _ in writes:
            pass

    def busy(self) -> Any:
        return contextlib.nullcontext()

    def keep(self, partition: int, records: Any) -> None:
        pass

    def replay(self, partition: int) -> None:
        pass


async def _measure(events: list[dict[str, Any]], prefix: str, steps: int) -> dict[str, Any]:
    settings = Settings.from_env({"CCPULSE_LIVE": "false", "CCPULSE_APP_ID": prefix})
    pipeline = Pipeline(settings)
    discard = Discard()
    runtime = Runtime(settings, pipeline, discard, discard, discard, discard)
    sink = RedisSink(REDIS_URL, prefix, "script", settings.redis_ttl_seconds, heartbeat_seconds=1e9)
    baseline = _TransactionWriter(aioredis.Redis.from_url(REDIS_URL), f"{prefix}:v1:multi:", settings.redis_ttl_seconds)
    parts = {
        "partials": 0.0, "kpis": 0.0, "redis_script": 0.0, "redis_multi": 0.0,
        "lanes_partials": 0.0, "lanes_kpis": 0.0,
    }
    written = hashes = 0
    messages = _partitioned(events)
    try:
        for step in range(steps):
            for batch in messages.values():
                start, end = len(batch) * step // steps, len(batch) * (step + 1) // steps
                await runtime.ingest(batch[start:end])
            contacts = [pipeline.contact_state(p) for p in range(PARTITIONS)]
            customers = [pipeline.customer_state(p) for p in range(PARTITIONS)]
            watermark, now = max(c.watermark for c in contacts), time.time()
            t0 = time.perf_counter()
            partials = runtime._partials(contacts, customers, watermark, now)
            t1 = time.perf_counter()
            snapshot = runtime._snapshot(partials, partials, watermark, now, leader=True)
            t2 = time.perf_counter()
            await sink.publish(snapshot)
            t3 = time.perf_counter()
            changed = await baseline.publish(snapshot, now)
            t4 = time.perf_counter()
            lanes = rotation(step)
            local = [p for lane in lanes for p in runtime._partials(contacts, customers, watermark, now, (lane,))]
            t5 = time.perf_counter()
            runtime._snapshot(local, local, watermark, now, True, lanes)
            t6 = time.perf_counter()
            timed = (t1 - t0, t2 - t1, t3 - t2, t4 - t3, t5 - t4, t6 - t5)
            for name, seconds in zip(parts, timed, strict=True):
                parts[name] += seconds
            written += changed
            hashes = sum(len(scoped) for scoped in snapshot.windows.values())
        if sink.failures:
            raise RuntimeError(f"the Redis sink failed {sink.failures} times")
    finally:
        await sink.close()
        await baseline.client.aclose()
    per_publish = {f"{name}_ms": 1000 * seconds / steps for name, seconds in parts.items()}
    return {
        "events": len(events),
        "publishes": steps,
        "hashes": hashes,
        "hashes_written_per_publish": written / steps,
        **per_publish,
        "script_over_multi": per_publish["redis_script_ms"] / per_publish["redis_multi_ms"],
        "lanes_over_every_scope": (per_publish["lanes_partials_ms"] + per_publish["lanes_kpis_ms"])
        / (per_publish["partials_ms"] + per_publish["kpis_ms"]),
    }


class _TransactionWriter:
    """The baseline: changed fields by ``HSET`` and an ``EXPIRE`` per hash, in one transaction."""

    def __init__(self, client: aioredis.Redis, base: str, ttl: int) -> None:
        self.client, self.base, self.ttl = client, base, ttl
        self.held: dict[str, dict[str, Any]] = {}

    async def publish(self, snapshot: Any, now: float) -> int:
        changed = [h for h in kpi_hashes(self.base, snapshot) if self.held.get(h.key) != h.kpis]
        async with self.client.pipeline(transaction=True) as pipe:
            for h in changed:
                fields = {**h.fields(self.held.get(h.key)), **stamps(snapshot, h.window, now)}
                pipe.hset(h.key, mapping={name: orjson.dumps(value) for name, value in fields.items()})
                pipe.expire(h.key, self.ttl)
            pipe.hset(self.base + "meta", mapping=meta_fields(snapshot, now))  # type: ignore[arg-type]
            pipe.publish(self.base + "updates", b"{}")
            await pipe.execute()
        self.held.update((h.key, h.kpis) for h in changed)
        return len(changed)
