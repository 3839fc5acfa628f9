"""Round trip through the real stack: replay → Kafka → worker → Redis, /metrics, dead letters."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from kafka import KafkaConsumer

from tests.conftest import KAFKA, make_env, run_cli, samples, wait_for
from tests.stream.harness import T0, Events

pytestmark = pytest.mark.integration

BAD_LINES = {
    "invalid_json": b'{"event_id": "x1", "type": "contact.offered", ',
    "missing_field": orjson.dumps({"event_id": "x2", "type": "contact.offered", "ts": T0, "contact_id": "z"}),
    "wrong_type": orjson.dumps({"event_id": "x3", "type": "contact.abandoned", "ts": T0, "contact_id": 42}),
    "unknown_type": orjson.dumps({"event_id": "x4", "type": "contact.exploded", "ts": T0, "contact_id": "z"}),
    "oversized": orjson.dumps(
        {"event_id": "x5", "type": "message", "ts": T0, "contact_id": "z", "speaker": "customer", "text": "a" * 100_000}
    ),
}


def reference_kpis(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Compute the core KPIs of the `all` scope straight from the file, independently."""
    first = {}
    for e in sorted(events, key=lambda e: e["ts"]):
        first.setdefault((e["contact_id"], e["type"]), e)
    contacts = {cid for cid, _ in first}
    waits, abandoned, short = [], 0, 0
    for cid in contacts:
        offered = first.get((cid, "contact.offered"))
        answered = first.get((cid, "contact.answered"))
        gone = first.get((cid, "contact.abandoned"))
        if offered and answered:
            waits.append(answered["ts"] - offered["ts"])
        if offered and gone:
            if gone["ts"] - offered["ts"] < 5:
                short += 1
            else:
                abandoned += 1
    within = sum(1 for w in waits if w <= 20)
    return {
        "offered": sum(1 for _, kind in first if kind == "contact.offered"),
        "answered": len(waits),
        "abandoned": abandoned,
        "short_abandoned": short,
        "service_level": within / (len(waits) + abandoned),
        "asa_seconds": sum(waits) / len(waits),
        "abandon_rate": abandoned / (len(contacts) - short),
    }


def calls() -> list[dict[str, Any]]:
    ev = Events()
    for i in range(40):
        offered = i * 7.0
        if i % 5 == 3:
            ev.call(f"c{i}", offered, abandoned=offered + (2 if i % 2 else 35))
        else:
            ev.call(f"c{i}", offered, answered=offered + (i % 9) * 4, wrapped=offered + 200, agent=f"a{i % 3}")
    return ev.items


def test_replay_to_worker_to_redis_metrics_and_dead_letters(tmp_path: Path, stack: Any, worker_factory: Any) -> None:
    env = make_env(tmp_path)
    events = calls()
    lines = [orjson.dumps(e) for e in events]
    duplicates = lines[:10]  # at-least-once producers: the same events again
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines + list(BAD_LINES.values()) + duplicates) + b"\n")

    replay = run_cli(env, "replay", str(path), "--no-progress")
    assert replay.returncode == 0, replay.stderr.decode()
    assert b"5 malformed" not in replay.stderr  # only one line is not JSON; the rest are valid JSON
    worker = worker_factory(env)

    client = redis.Redis(port=stack["redis_port"])
    key = f"{env['CCPULSE_REDIS_PREFIX']}:v1:{env['CCPULSE_APP_ID']}:kpi:1h:all"
    expected = reference_kpis(events)

    def published() -> dict[str, Any] | None:
        raw = client.hgetall(key)
        kpis = {k.decode(): json.loads(v) for k, v in raw.items()}
        done = kpis.get("offered") == expected["offered"] and kpis.get("answered") == expected["answered"]
        return kpis if done else None

    kpis = wait_for(published, timeout=60, message=f"KPIs in Redis at {key}\n{worker.log()}")
    for name, value in expected.items():
        assert kpis[name] == pytest.approx(value, abs=1e-6), name
    print(f"\nsent {len(lines) + len(duplicates)} valid ({len(duplicates)} duplicates) + {len(BAD_LINES)} bad; "
          f"KPIs match the independent calculation: {expected}")

    letters = _dead_letters(env["CCPULSE_DEAD_LETTER_TOPIC"], len(BAD_LINES))
    assert sorted(letters) == sorted(BAD_LINES)
    for reason, (value, headers) in letters.items():
        assert value == BAD_LINES[reason]
        assert headers["ccpulse-detail"]
    metrics = wait_for(lambda: _rejected(worker.metrics()), timeout=20, message="rejections in /metrics")
    assert metrics == {reason: 1.0 for reason in BAD_LINES}
    duplicates_counted = samples(worker.metrics(), "ccpulse_events_duplicate_total")
    assert ({"stage": "contacts"}, 10.0) in duplicates_counted


def _dead_letters(topic: str, count: int) -> dict[str, tuple[bytes, dict[str, str]]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest", consumer_timeout_ms=20000,
                             max_partition_fetch_bytes=4 * 1024 * 1024)
    out = {}
    for message in consumer:
        headers = {k: v.decode() for k, v in message.headers}
        out[headers["ccpulse-reason"]] = (message.value, headers)
        if len(out) == count:
            break
    consumer.close()
    return out


def _rejected(text: str) -> dict[str, float] | None:
    found = {labels["reason"]: value for labels, value in samples(text, "ccpulse_events_rejected_total")}
    return found if len(found) == len(BAD_LINES) else None
