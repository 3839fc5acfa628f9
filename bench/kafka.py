"""Kafka helpers of the benchmarks: bench topics, fast producing, end and committed offsets.

Producing uses confluent-kafka (installed with quixstreams by scripts/bench.sh): it fills a
topic with a few hundred thousand events in seconds, so set-up time stays out of the way.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable

from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import TopicAlreadyExistsError, UnknownTopicOrPartitionError

BROKER = f"127.0.0.1:{os.environ.get('CCPULSE_KAFKA_PORT', '9092')}"
PARTITIONS = 4


def admin() -> KafkaAdminClient:
    return KafkaAdminClient(bootstrap_servers=[BROKER], client_id="ccpulse-bench")


def create_topic(name: str, partitions: int = PARTITIONS) -> None:
    """Create a topic (4 partitions, replication 1) unless it exists."""
    client = admin()
    try:
        client.create_topics([NewTopic(name, partitions, 1)])
    except TopicAlreadyExistsError:
        pass
    finally:
        client.close()


def delete_topics_with_prefix(prefix: str) -> int:
    """Delete every topic whose name starts with ``prefix``; return how many."""
    client = admin()
    try:
        names = [t for t in client.list_topics() if t.startswith(prefix)]
        if names:
            try:
                client.delete_topics(names)
            except UnknownTopicOrPartitionError:
                pass
        return len(names)
    finally:
        client.close()


def produce(topic: str, messages: Iterable[tuple[bytes | None, bytes]]) -> int:
    """Produce (key, value) pairs as fast as the broker takes them; return the count."""
    from confluent_kafka import Producer

    producer = Producer(
        {
            "bootstrap.servers": BROKER,
            "linger.ms": 20,
            "batch.num.messages": 10000,
            "queue.buffering.max.messages": 500000,
            "compression.type": "none",
            "acks": "all",
        }
    )
    count = 0
    for key, value in messages:
        while True:
            try:
                producer.produce(topic, value=value, key=key)
                break
            except BufferError:
                producer.poll(0.05)
        count += 1
        if count % 10000 == 0:
            producer.poll(0)
    if producer.flush(60) != 0:
        raise RuntimeError(f"could not deliver every message to {topic}")
    return count


class Offsets:
    """End offsets of topics and committed offsets of groups, over one pair of connections."""

    def __init__(self) -> None:
        self.consumer = KafkaConsumer(bootstrap_servers=[BROKER])
        self.admin = admin()

    def end(self, topic: str) -> int:
        """Return the sum of a topic's end offsets (0 if it does not exist yet)."""
        parts = self.consumer.partitions_for_topic(topic) or set()
        ends = self.consumer.end_offsets([TopicPartition(topic, p) for p in parts]) if parts else {}
        return sum(ends.values())

    def committed(self, group: str, topic: str) -> int:
        """Return the sum of a group's committed offsets on a topic (0 before any commit)."""
        offsets = self.admin.list_group_offsets({group: None}).get(group, {})
        return sum(max(meta.offset, 0) for tp, meta in offsets.items() if tp.topic == topic)

    def close(self) -> None:
        self.consumer.close()
        self.admin.close()


def end_offsets(topic: str) -> dict[int, int]:
    """Return partition -> end offset of a topic."""
    consumer = KafkaConsumer(bootstrap_servers=[BROKER])
    try:
        parts = consumer.partitions_for_topic(topic) or set()
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in parts])
        return {tp.partition: offset for tp, offset in ends.items()}
    finally:
        consumer.close()


def count_records(topic: str, idle_seconds: float = 2.0) -> int:
    """Read a topic from its first offsets to its ends; return how many records it holds.

    After log compaction a topic holds fewer records than its end offsets say (offsets of
    removed records are never reused).
    """
    from confluent_kafka import Consumer
    from confluent_kafka import TopicPartition as Part

    ends = end_offsets(topic)
    consumer = Consumer({
        "bootstrap.servers": BROKER, "group.id": f"bench-count-{time.time_ns()}",
        "enable.auto.commit": False, "auto.offset.reset": "earliest",
    })
    try:
        consumer.assign([Part(topic, p, 0) for p in ends])
        position = {p: 0 for p in ends}
        count, idle_since = 0, time.monotonic()
        while any(position[p] < end for p, end in ends.items()):
            messages = consumer.consume(10_000, 0.5)
            if not messages:
                if time.monotonic() - idle_since > idle_seconds:
                    break
                continue
            idle_since = time.monotonic()
            for message in messages:
                if message.error() is None:
                    count += 1
                    position[message.partition()] = message.offset() + 1
        return count
    finally:
        consumer.close()


def wait_for_topic(topic: str, timeout: float = 30.0) -> None:
    """Wait until a topic's metadata lists all its partitions."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        if len(end_offsets(topic)) == PARTITIONS:
            return
        time.sleep(0.2)
    raise RuntimeError(f"topic {topic} did not appear")


def delete_run_leftovers(tag: str) -> int:
    """Delete the topics, consumer groups and Redis keys whose names contain a run's tag."""
    import redis

    client = admin()
    removed = 0
    try:
        topics = [t for t in client.list_topics() if tag in t]
        if topics:
            client.delete_topics(topics)
            removed += len(topics)
        groups = [_group_id(g) for g in client.list_groups()]
        mine = [g for g in groups if tag in g]
        if mine:
            try:
                client.delete_groups(mine)
            except Exception:  # a group still settling is harmless; the topics are what cost
                pass
    finally:
        client.close()
    store = redis.Redis.from_url(
        f"redis://127.0.0.1:{os.environ.get('CCPULSE_REDIS_PORT', '6379')}/0"
    )
    try:
        for key in store.scan_iter(f"{tag}*", count=1000):
            store.delete(key)
            removed += 1
    finally:
        store.close()
    return removed


def _group_id(listed: object) -> str:
    """kafka-python 3 lists groups as dicts, older ones as tuples."""
    if isinstance(listed, dict):
        return str(listed.get("group_id") or listed.get("group") or "")
    return str(listed[0]) if isinstance(listed, tuple) else str(listed)
