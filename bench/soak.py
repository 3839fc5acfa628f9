"""Soak: memory over many simulated days stays flat once the horizons are full.

One worker reads a simulated center day after day (each day produced once the previous one
is committed). After each day the benchmark reads the worker's VmRSS and, from the same
events run in this process through the pure pipeline (each partition in order, as the
worker reads them), how many state records the tables hold. Windows expire, closed contacts
are forgotten after 6 h and customers after their FCR horizon (set to one day here), so
from the third day on the record count should stop growing; RSS follows, less smoothly (Python does not hand
freed memory back to the system eagerly).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import orjson

from bench.dataset import keyed
from bench.kafka import create_topic, produce, wait_for_topic
from bench.worker import Worker, wait_caught_up, worker_env
from ccpulse.producer import event_key
from ccpulse.simulator import default_scenario, generate
from stream.pipeline import Pipeline
from stream.settings import Settings

START = 1_759_968_000  # 2025-10-09T00:00:00Z
DAY = 86_400
PARTITIONS = 4
# The FCR horizon is shortened to one day so that every horizon fills within a few simulated
# days; with the default 7 days the customer stage grows for a week, then levels off alike.
FCR_REPEAT_DAYS = "1"


def _day(n: int) -> list[dict[str, Any]]:
    """Day ``n`` of a 6-queue, 60-agent center (customers return across days)."""
    scenario = default_scenario(queues=6, agents=60)
    return list(
        generate(
            scenario, seed=100 + n, start=START + n * DAY, duration_seconds=DAY, rate_multiplier=2.0
        )
    )


class _Mirror:
    """The worker's stage 1 + 2 state, rebuilt in this process to count its records."""

    def __init__(self) -> None:
        from kafka.partitioner.default import murmur2

        self.murmur2 = murmur2
        settings = Settings.from_env({"CCPULSE_FCR_REPEAT_DAYS": FCR_REPEAT_DAYS}, live=False)
        self.pipeline = Pipeline(settings, clock=time.time)
        self.offsets = [0] * PARTITIONS
        self.fact_offsets = [0] * PARTITIONS

    def _partition(self, key: bytes | None) -> int:
        return 0 if key is None else (self.murmur2(key) & 0x7FFFFFFF) % PARTITIONS

    def feed(self, events: list[dict[str, Any]]) -> None:
        by_partition: list[list[tuple[int, int, bytes]]] = [[] for _ in range(PARTITIONS)]
        for event in events:
            p = self._partition(event_key(event))
            by_partition[p].append((p, self.offsets[p], orjson.dumps(event)))
            self.offsets[p] += 1
        for batch in by_partition:
            for start in range(0, len(batch), 2000):
                result = self.pipeline.process(batch[start : start + 2000])
                facts = []
                for fact in result.customer_facts:
                    q = self._partition(fact["customer_id"].encode())
                    facts.append((q, self.fact_offsets[q], fact))
                    self.fact_offsets[q] += 1
                self.pipeline.process_customer_facts(facts)

    def records(self) -> dict[str, int]:
        contacts = sum(len(self.pipeline.contact_state(p).records) for p in range(PARTITIONS))
        customers = sum(len(self.pipeline.customer_state(p).records) for p in range(PARTITIONS))
        return {"contact_stage": contacts, "customer_stage": customers}


def measure(days: int, app_id: str, work: Path, timeout: float) -> dict[str, Any]:
    """Feed ``days`` simulated days; RSS and state records after each."""
    topic = f"{app_id}-events"
    create_topic(topic)
    wait_for_topic(topic)
    env = worker_env(
        app_id, topic, work / f"{app_id}-data", CCPULSE_FCR_REPEAT_DAYS=FCR_REPEAT_DAYS
    )
    worker = Worker(env, work / f"{app_id}.log").start()
    mirror = _Mirror()
    points: list[dict[str, Any]] = []
    try:
        worker.wait_healthy(90)
        points.append({"day": 0, "events": 0, "rss_bytes": worker.rss_bytes(), **mirror.records()})
        total = 0
        for n in range(days):
            events = _day(n)
            total += produce(topic, keyed(events))
            mirror.feed(events)
            wait_caught_up([worker], app_id, topic, timeout)
            time.sleep(2.0)
            point = {
                "day": n + 1,
                "events": total,
                "rss_bytes": worker.rss_bytes(),
                **mirror.records(),
            }
            points.append(point)
            print(
                f"      day {n + 1}: {total:,} events, RSS {point['rss_bytes'] / 2**20:,.0f} MiB, "
                f"records {point['contact_stage']:,} + {point['customer_stage']:,}",
                flush=True,
            )
    finally:
        worker.stop()
    last, before = points[-1], points[-2]
    return {
        "days": days,
        "points": points,
        "rss_growth_last_day_bytes": last["rss_bytes"] - before["rss_bytes"],
        "records_growth_last_day": (last["contact_stage"] + last["customer_stage"])
        - (before["contact_stage"] + before["customer_stage"]),
    }
