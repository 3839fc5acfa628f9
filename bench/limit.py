"""Limit: raw aiokafka consumption of the topic with JSON decoding, no framework.

Run as a subprocess: ``python -m bench.limit TOPIC COUNT RESULT_PATH GROUP``. Reads COUNT
messages from the beginning with a fresh consumer group GROUP, ``orjson.loads`` each value, and
writes ``{"events", "seconds"}`` (first to last message) to RESULT_PATH.
"""

from __future__ import annotations

import asyncio
import sys
import time

import orjson
from aiokafka import AIOKafkaConsumer

from bench.kafka import BROKER


async def consume(topic: str, count: int, group: str) -> dict[str, float]:
    """Consume ``count`` messages; return events and seconds from first to last."""
    consumer = AIOKafkaConsumer(
        topic,
        bootstrap_servers=BROKER,
        group_id=group,
        auto_offset_reset="earliest",
        enable_auto_commit=True,
    )
    await consumer.start()
    seen, first, last = 0, 0.0, 0.0
    try:
        while seen < count:
            # aiokafka hands over whole fetches: the clock starts when the call that brought
            # the first records started (at most 100 ms early), not after they were decoded.
            called_at = time.perf_counter()
            batches = await consumer.getmany(timeout_ms=100, max_records=10000)
            for records in batches.values():
                if records and not seen:
                    first = called_at
                for record in records:
                    orjson.loads(record.value)
                    seen += 1
            last = time.perf_counter()
    finally:
        await consumer.stop()
    return {"events": seen, "seconds": last - first}


def main(argv: list[str]) -> int:
    topic, count, result_path, group = argv[0], int(argv[1]), argv[2], argv[3]
    result = asyncio.run(consume(topic, count, group))
    with open(result_path, "wb") as out:
        out.write(orjson.dumps(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
