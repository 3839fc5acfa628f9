"""Changelog writes: what a batch's state writes cost, against the real broker.

The throughput topic's events go through the pure pipeline (stream/pipeline.py) in batches
of ``CCPULSE_BATCH_SIZE`` over four partitions, as the worker would take them; each batch's
table writes are then written to a changelog topic by ``TableWriter.write``
(stream/agents.py) through one aiokafka producer configured as the worker's (acks from
every replica, ``CCPULSE_PRODUCER_BATCH_BYTES`` batches), and the time until Kafka
acknowledged them all is summed, with the CPU time this process spent (what a worker's
event loop pays; the rest is waiting on the broker):

- **record batches** (ccpulse): one record batch per partition, built in place and sent whole;
- **one send a record** (the baseline, how ccpulse wrote until this benchmark): a
  ``producer.send`` and its future per record, every future awaited at the end.

The two alternate batch by batch, on the same writes, each into its own topic.
"""

from __future__ import annotations

import asyncio
import time
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka import AIOKafkaProducer

from bench.kafka import BROKER, create_topic, wait_for_topic
from bench.publish import PARTITIONS, _partitioned
from stream.agents import PartitionedTable, TableWriter
from stream.pipeline import Pipeline
from stream.settings import Settings


def measure(events: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    """Write every batch's records both ways; return seconds, records and the ratio."""
    return asyncio.run(_measure(events, prefix))


class _PerRecord:
    """Faust's producer's ``send`` signature over aiokafka's ``send``: one future a record."""

    def __init__(self, kafka: AIOKafkaProducer) -> None:
        self.kafka = kafka

    async def send(self, topic: str, key: bytes, value: bytes | None, partition: int, timestamp: Any, headers: Any) -> Any:
        return await self.kafka.send(topic, value, key=key, partition=partition)


def _writer(producer: Any, topic: str) -> TableWriter:
    table = SimpleNamespace(
        name=topic,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: topic),
        partition_for_key=lambda key: PartitionedTable.partition_for_key(None, key),  # type: ignore[arg-type]
    )
    return TableWriter(SimpleNamespace(producer=producer), table)  # type: ignore[arg-type]


def _batches(events: list[dict[str, Any]], settings: Settings) -> list[list[tuple[str, Any]]]:
    """The table writes of each input batch, as the worker would make them."""
    pipeline = Pipeline(settings)
    messages = [m for partition in _partitioned(events).values() for m in partition]
    messages.sort(key=lambda m: (m[1], m[0]))  # interleaved, as the consumer hands them over
    size = settings.batch_size
    return [
        [(key, _copy(record)) for key, record in pipeline.process(messages[i : i + size]).writes]
        for i in range(0, len(messages), size)
    ]


def _copy(record: Any) -> Any:
    return None if record is None else orjson.loads(orjson.dumps(record))  # later batches change the live ones


async def _measure(events: list[dict[str, Any]], prefix: str) -> dict[str, Any]:
    settings = Settings.from_env({"CCPULSE_LIVE": "false", "CCPULSE_APP_ID": prefix})
    batches = _batches(events, settings)
    topics = {"batches": f"{prefix}-batches-changelog", "each": f"{prefix}-each-changelog"}
    for topic in topics.values():
        create_topic(topic, PARTITIONS)
        wait_for_topic(topic)
    kafka = AIOKafkaProducer(bootstrap_servers=BROKER, acks="all", max_batch_size=settings.producer_batch_bytes)
    await kafka.start()
    seconds = {"batches": 0.0, "each": 0.0}
    cpu = {"batches": 0.0, "each": 0.0}  # this process's CPU time: what the worker's loop pays
    writers = {"batches": _writer(SimpleNamespace(_producer=kafka), topics["batches"]),
               "each": _writer(_PerRecord(kafka), topics["each"])}
    try:
        for n, writes in enumerate(batches):
            order = ("batches", "each") if n % 2 == 0 else ("each", "batches")
            for name in order:
                started, cpu_started = time.perf_counter(), time.process_time()
                await writers[name].write(writes, lambda: True)
                seconds[name] += time.perf_counter() - started
                cpu[name] += time.process_time() - cpu_started
    finally:
        await kafka.stop()
    records = sum(len(writes) for writes in batches)
    offsets = {name: sum(w.offsets.values()) + len(w.offsets) for name, w in writers.items()}
    if offsets["batches"] != records or offsets["each"] != records:
        raise RuntimeError(f"records acknowledged {offsets} differ from the {records:,} written")
    return {
        "events": len(events),
        "batches": len(batches),
        "records": records,
        "record_batches_seconds": seconds["batches"],
        "one_send_a_record_seconds": seconds["each"],
        "record_batches_us_per_record": 1e6 * seconds["batches"] / records,
        "one_send_a_record_us_per_record": 1e6 * seconds["each"] / records,
        "batches_over_each": seconds["batches"] / seconds["each"],
        "record_batches_cpu_us_per_record": 1e6 * cpu["batches"] / records,
        "one_send_a_record_cpu_us_per_record": 1e6 * cpu["each"] / records,
        "cpu_batches_over_each": cpu["batches"] / cpu["each"],
    }
