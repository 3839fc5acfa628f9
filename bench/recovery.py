"""Recovery: time from a worker's start to its first correct publish after a restart.

A worker catches up on one hour of the simulated center, publishes, and is stopped
(SIGTERM). Its Redis keys are deleted, a new worker starts on the same app id, rebuilds its
state from the table changelogs, and the time from process start until ``…:kpi:1h:all``
again equals the pre-restart hash (every field but ``updated_at``) is the recovery time.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import redis

from bench.dataset import keyed
from bench.kafka import Offsets, count_records, create_topic, produce, wait_for_topic
from bench.worker import REDIS_URL, Worker, wait_caught_up, worker_env

HOUR = 3600.0
FIRST_HOUR = 9 * HOUR  # 09:00-10:00 UTC of the simulated day: a busy hour


def one_hour(agents_scale: int) -> list[dict[str, Any]]:
    """Return the events of 09:00-10:00 of a center ``agents_scale`` times the bench one."""
    from bench import dataset
    from ccpulse.simulator import default_scenario, generate

    scenario = default_scenario(
        queues=dataset.QUEUES, channels=dataset.CHANNELS, agents=dataset.AGENTS * agents_scale
    )
    events = generate(
        scenario, seed=dataset.SEED, start=dataset.START, duration_seconds=FIRST_HOUR + HOUR
    )
    begin = dataset.START + FIRST_HOUR
    from ccpulse.simulator.timestamps import parse_ts

    return [e for e in events if (parse_ts(e["ts"]) or 0) >= begin]


def kpi_hash(client: redis.Redis, app_id: str) -> dict[bytes, bytes]:
    """Return ``…:kpi:1h:all`` without ``updated_at``."""
    fields = client.hgetall(f"{app_id}:v1:{app_id}:kpi:1h:all")
    fields.pop(b"updated_at", None)
    return dict(fields)


def settled_hash(client: redis.Redis, app_id: str, timeout: float = 60.0, quiet: float = 8.0) -> dict[bytes, bytes]:
    """Wait until the hash has not changed for ``quiet`` seconds (the last batch is published).

    Publishing is capped at a quarter of the worker's time, so after a 1.2 s snapshot the
    next one comes 3.6 s later: two reads 1.5 s apart can agree on a hash that is still to
    change (seen once the worker got faster).
    """
    deadline, last, since = time.time() + timeout, None, time.time()
    while time.time() < deadline:
        current = kpi_hash(client, app_id)
        if current != last:
            last, since = current, time.time()
        elif current and time.time() - since >= quiet:
            return current
        time.sleep(0.5)
    raise TimeoutError("the 1h hash did not settle")


def measure(agents_scale: int, app_id: str, work: Path, timeout: float) -> dict[str, Any]:
    """Build one hour of state, restart, and time the first correct publish."""
    topic = f"{app_id}-events"
    create_topic(topic)
    wait_for_topic(topic)
    events = produce(topic, keyed(one_hour(agents_scale)))
    client = redis.Redis.from_url(REDIS_URL)
    env = worker_env(app_id, topic, work / f"{app_id}-data", CCPULSE_PUBLISH_INTERVAL_SECONDS="0.5")
    first = Worker(env, work / f"{app_id}-1.log").start()
    try:
        fresh_start_seconds = _first_publish(first, client, app_id, timeout) - first.started_at
        wait_caught_up([first], app_id, topic, timeout)
        reference = settled_hash(client, app_id)
    finally:
        first.stop()
    offsets = Offsets()
    changelogs = [f"{app_id}-{table}-changelog" for table in ("contacts", "customers")]
    written = sum(offsets.end(topic) for topic in changelogs)
    offsets.close()
    changelog = sum(count_records(topic) for topic in changelogs)  # what compaction left
    for key in client.scan_iter(f"{app_id}:*"):
        client.delete(key)
    second = Worker(env, work / f"{app_id}-2.log").start()
    try:
        recovered_at = _first_match(second, client, app_id, reference, timeout)
    finally:
        second.stop()
        client.close()
    seconds = recovered_at - second.started_at
    return {
        "events": events,
        "event_rate_per_second": events / HOUR,
        "changelog_records_written": written,
        "changelog_records": changelog,
        "fresh_start_seconds": fresh_start_seconds,
        "recovery_seconds": seconds,
        "changelog_records_per_second": changelog / max(seconds - fresh_start_seconds, 1e-9),
    }


def _first_publish(worker: Worker, client: redis.Redis, app_id: str, timeout: float) -> float:
    """Return when a fresh worker's first publish landed: its fixed start-up cost."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        worker.check_alive()
        if client.exists(f"{app_id}:v1:{app_id}:meta"):
            return time.time()
        time.sleep(0.02)
    raise TimeoutError(f"no publish within {timeout:.0f} s of the start")


def _first_match(
    worker: Worker, client: redis.Redis, app_id: str, reference: dict[bytes, bytes], timeout: float
) -> float:
    deadline = time.time() + timeout
    current: dict[bytes, bytes] = {}
    while time.time() < deadline:
        worker.check_alive()
        current = kpi_hash(client, app_id)
        if current == reference:
            return time.time()
        time.sleep(0.02)
    differ = sorted(k for k in set(current) | set(reference) if current.get(k) != reference.get(k))
    shown = ", ".join(f"{k.decode()}: {reference.get(k)!r} before, {current.get(k)!r} after" for k in differ[:8])
    raise TimeoutError(f"no correct publish within {timeout:.0f} s after the restart; {len(differ)} fields differ: {shown}")


def extrapolate(result: dict[str, Any], events_per_second: float = 1000.0) -> float:
    """Recovery seconds for one hour at ``events_per_second``, linear in changelog records.

    A fresh worker's time to its first publish is the fixed part; the rest of the measured
    recovery is restoring the changelog, at the measured records per second. The records
    are those the changelogs held at the restart (after compaction), per event: within an
    hour every contact and customer is inside its horizon, so what compaction leaves grows
    with the events. Kafka compacts on its own schedule, so this varies from run to run.
    """
    per_event = result["changelog_records"] / result["events"]
    records = per_event * events_per_second * HOUR
    return float(result["fresh_start_seconds"] + records / result["changelog_records_per_second"])
