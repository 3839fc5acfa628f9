"""A platform's raw topic through the real stack: raw queue_log lines → worker → input topic → Redis."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from ccpulse.adapters import UnmappableError, get_mapper
from ccpulse.producer import event_key
from tests.conftest import KAFKA, make_env, wait_for
from tests.stream.harness import run

pytestmark = pytest.mark.integration

FIXTURE = Path(__file__).resolve().parents[1] / "adapters" / "fixtures" / "asterisk_queue_log.log"
GARBAGE = b"this is not a queue_log line"
COMPARED = ("offered", "answered", "abandoned", "short_abandoned", "transferred", "asa_seconds",
            "service_level", "aht_seconds")  # fmt: skip


def test_raw_asterisk_topic_to_input_topic_dead_letters_and_redis(
    tmp_path: Path, stack: Any, worker_factory: Any
) -> None:
    env = make_env(tmp_path)
    raw_topic = f"{env['CCPULSE_APP_ID']}-raw-asterisk"
    env["CCPULSE_PLATFORM_TOPICS"] = f"asterisk-queue-log={raw_topic}"
    worker = worker_factory(env)
    assert _partition_count(raw_topic) == 4  # created by the worker with CCPULSE_PARTITIONS

    lines = FIXTURE.read_bytes().splitlines()
    garbage_at = _produce(raw_topic, [line + b"\n" for line in lines] + [GARBAGE])
    mapper = get_mapper("asterisk-queue-log")
    expected = {event["event_id"]: event for line in lines for event in mapper.map(line)}
    with pytest.raises(UnmappableError) as garbage_error:
        get_mapper("asterisk-queue-log").map(GARBAGE)

    landed = _canonical(env["CCPULSE_INPUT_TOPIC"], len(expected))
    assert sorted(landed) == sorted(expected), worker.log()
    for event_id, (key, event) in landed.items():
        assert event == expected[event_id]
        assert key == event_key(event)
    print(f"\n{len(lines)} raw lines gave the {len(expected)} canonical events the mapper gives")

    value, headers = _only_dead_letter(env["CCPULSE_DEAD_LETTER_TOPIC"])
    assert value == GARBAGE
    assert headers == {
        "ccpulse-reason": "unmappable",
        "ccpulse-detail": str(garbage_error.value),
        "ccpulse-source": f"{raw_topic}/{garbage_at[0]}/{garbage_at[1]}",
    }

    in_process = run(list(expected.values()))[1]["1h"]["all"]
    reference = {name: in_process[name] for name in COMPARED}
    client = redis.Redis(port=stack["redis_port"])
    key = f"{env['CCPULSE_REDIS_PREFIX']}:v1:{env['CCPULSE_APP_ID']}:kpi:1h:all"

    def published() -> dict[str, Any] | None:
        kpis = {k.decode(): json.loads(v) for k, v in client.hgetall(key).items()}
        done = kpis.get("offered") == reference["offered"] and kpis.get("answered") == reference["answered"]
        return kpis if done else None

    kpis = wait_for(published, timeout=60, message=f"KPIs in Redis at {key}\n{worker.log()}")
    for name, value in reference.items():
        assert kpis[name] == pytest.approx(value, abs=1e-6), name
    print(f"KPIs in Redis match the in-process pipeline on the mapped events: {reference}")


def _partition_count(topic: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=KAFKA)
    try:
        assert topic in admin.list_topics()  # before anything produces to it
    finally:
        admin.close()
    consumer = KafkaConsumer(bootstrap_servers=KAFKA)
    partitions = consumer.partitions_for_topic(topic) or set()
    consumer.close()
    return len(partitions)


def _produce(topic: str, payloads: list[bytes]) -> tuple[int, int]:
    """Produce payloads in order on one key (one PBX); return the last one's partition and offset."""
    producer = KafkaProducer(bootstrap_servers=KAFKA, acks="all")
    futures = [producer.send(topic, key=b"pbx-1", value=payload) for payload in payloads]
    producer.flush()
    producer.close()
    last = futures[-1].get(timeout=10)
    return last.partition, last.offset


def _canonical(topic: str, count: int) -> dict[str, tuple[bytes | None, dict[str, Any]]]:
    """Read the input topic until ``count`` distinct events; a re-sent one must be identical."""
    consumer = KafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", consumer_timeout_ms=30000)
    out: dict[str, tuple[bytes | None, dict[str, Any]]] = {}
    for message in consumer:
        event = orjson.loads(message.value)
        assert out.setdefault(event["event_id"], (message.key, event)) == (message.key, event)
        if len(out) == count:
            break
    consumer.close()
    return out


def _only_dead_letter(topic: str) -> tuple[bytes, dict[str, str]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", consumer_timeout_ms=10000)
    letters = [(m.value, {k: v.decode() for k, v in m.headers}) for m in consumer]
    consumer.close()
    assert letters and all(letter == letters[0] for letter in letters), letters  # re-sends are identical
    return letters[0]
