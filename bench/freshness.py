"""Freshness: event produced -> KPI visible in Redis, p50/p99, at a fixed input rate.

A live worker (``CCPULSE_LIVE=true``) reads a fresh topic. A producer thread sends the
simulated center's events with ``ts`` = now at the target rate and, ten times a second, a
probe: a ``contact.offered`` on queue ``bench_probe``, all probes on partition 0 so they are
processed in the order sent. The main thread listens on ``<prefix>:v1:<app>:updates`` and,
after each publish, reads ``offered`` of the ``5m`` hash of ``queue:bench_probe``: when it
reads ``k``, probes 1..k are visible, and each one's latency is now - its send time. The
same is read from the drill-down scope ``queue:bench_probe|channel:voice``, which the worker
recomputes every fourth publish (stream/lanes.py), and reported beside it.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import redis

from bench.dataset import keyed
from bench.kafka import BROKER, create_topic, wait_for_topic
from bench.worker import REDIS_URL, Worker, worker_env
from ccpulse.producer import event_key
from ccpulse.simulator.timestamps import format_ts

PROBE_QUEUE = "bench_probe"
PROBES_PER_SECOND = 10
TICK_SECONDS = 0.01


def percentile(values: list[float], share: float) -> float:
    """Return the nearest-rank percentile (``inf`` entries stand for probes never seen)."""
    if not values:
        return math.nan
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, math.ceil(share * len(ordered)) - 1))]


class Load(threading.Thread):
    """Send background events at ``rate`` per second and probes ten times a second."""

    def __init__(
        self, topic: str, events: list[dict[str, Any]], rate: float, seconds: float, tag: str
    ) -> None:
        super().__init__(daemon=True)
        self.topic, self.events, self.rate, self.seconds, self.tag = (
            topic,
            events,
            rate,
            seconds,
            tag,
        )
        self.sent_at: list[float] = []
        self.background = 0
        self.elapsed = 0.0

    def run(self) -> None:
        from confluent_kafka import Producer

        producer = Producer({"bootstrap.servers": BROKER, "linger.ms": 5, "acks": "all"})
        start = time.time()
        stream = self._background()
        while (now := time.time()) < start + self.seconds:
            due = int((now - start) * self.rate) - self.background
            for _ in range(due):
                key, value = next(stream)
                producer.produce(self.topic, value=value, key=key)
                self.background += 1
            if (now - start) * PROBES_PER_SECOND >= len(self.sent_at):
                self._probe(producer)
            producer.poll(0)
            time.sleep(TICK_SECONDS)
        self.elapsed = time.time() - start
        producer.flush(30)

    def _background(self) -> Iterator[tuple[bytes | None, bytes]]:
        n = 0
        while True:
            for event in self.events:
                n += 1
                live = {
                    **event,
                    "ts": format_ts(time.time()),
                    "event_id": f"{event['event_id']}-{n}",
                }
                yield from keyed([live])

    def _probe(self, producer: Any) -> None:
        k = len(self.sent_at) + 1
        event = {
            "event_id": f"probe-{self.tag}-{k}",
            "type": "contact.offered",
            "ts": format_ts(time.time()),
            "contact_id": f"probe-{self.tag}-{k}",
            "queue": PROBE_QUEUE,
            "channel": "voice",
        }
        self.sent_at.append(time.time())
        producer.produce(self.topic, value=orjson.dumps(event), key=event_key(event), partition=0)


def watch(load: Load, app_id: str, drain_seconds: float) -> tuple[dict[int, float], dict[int, float]]:
    """Listen to the worker's publishes; return probe number -> seconds until visible, in
    the queue's scope and in its queue×channel scope."""
    client = redis.Redis.from_url(REDIS_URL)
    base = f"{app_id}:v1:{app_id}:"
    keys = (f"{base}kpi:5m:queue:{PROBE_QUEUE}", f"{base}kpi:5m:queue:{PROBE_QUEUE}|channel:voice")
    pubsub = client.pubsub(ignore_subscribe_messages=True)
    pubsub.subscribe(f"{base}updates")
    found: tuple[dict[int, float], dict[int, float]] = ({}, {})
    deadline = math.inf
    try:
        while time.time() < deadline:
            if not load.is_alive() and deadline == math.inf:
                deadline = time.time() + drain_seconds
            if pubsub.get_message(timeout=0.05) is None:
                continue
            seen_at = time.time()
            for key, latencies in zip(keys, found, strict=True):
                raw = client.hget(key, "offered")
                visible = int(orjson.loads(raw)) if raw else 0
                for k in range(len(latencies) + 1, min(visible, len(load.sent_at)) + 1):
                    latencies[k] = seen_at - load.sent_at[k - 1]
            if not load.is_alive() and all(len(f) >= len(load.sent_at) for f in found):
                break
    finally:
        pubsub.close()
        client.close()
    return found


def measure(
    rate: float,
    seconds: float,
    events: list[dict[str, Any]],
    app_id: str,
    work: Path,
    drain_seconds: float = 15.0,
) -> dict[str, Any]:
    """Run one live worker at ``rate`` events/s for ``seconds``; return the latency summary."""
    topic = f"{app_id}-events"
    create_topic(topic)
    wait_for_topic(topic)
    worker = Worker(
        worker_env(app_id, topic, work / f"{app_id}-data", CCPULSE_LIVE="true"),
        work / f"{app_id}.log",
    )
    worker.start()
    try:
        worker.wait_healthy(90)
        time.sleep(3)  # let the group settle: the first assignment is not what we measure
        load = Load(topic, events, rate, seconds, app_id)
        load.start()
        latencies, drilldown = watch(load, app_id, drain_seconds)
        load.join(30)
        samples = [latencies.get(k, math.inf) for k in range(1, len(load.sent_at) + 1)]
        cross = [drilldown.get(k, math.inf) for k in range(1, len(load.sent_at) + 1)]
        return {
            "target_rate": rate,
            "achieved_rate": load.background / max(load.elapsed, 1e-9),
            "probes": len(samples),
            "unseen": sum(1 for s in samples if s == math.inf),
            "drain_seconds": drain_seconds,
            "p50_ms": 1000 * percentile(samples, 0.5),
            "p99_ms": 1000 * percentile(samples, 0.99),
            "max_ms": 1000 * max(samples) if samples else math.nan,
            "drilldown_p50_ms": 1000 * percentile(cross, 0.5),
            "drilldown_p99_ms": 1000 * percentile(cross, 0.99),
            "drilldown_unseen": sum(1 for s in cross if s == math.inf),
            "rss_bytes": worker.rss_bytes(),
        }
    finally:
        worker.stop()
