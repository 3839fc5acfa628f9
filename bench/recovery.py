"""Recovery: time from a worker's start to its first correct publish after a restart.

A worker catches up on one hour of the simulated center, publishes, and is stopped
(SIGTERM), which writes its checkpoints (stream/checkpoint.py). Its Redis keys are deleted, a
new worker starts on the same app id and data folder, and the time from process start until
``…:kpi:1h:all`` again equals the pre-restart hash (every field but ``updated_at``) is the
recovery time. It is measured twice: from the checkpoints (a restart after a graceful stop),
and with the checkpoints deleted, so the state comes from the table changelogs alone (a
restart after a crash, or on another machine).

One hour at 1,000 events/s is too much to build in a benchmark run. For the checkpoint path
the part that grows with the state is reading the checkpoints into the Python state, so it
is timed here, in this process, on as many copies of the measured hour's checkpoints as
make up 1,000 events/s (``checkpoint_load``): every record copied, buckets included (a
center that much busier has that many more contacts, customers and agents, and its buckets
that many more agent scopes). The changelog path is extrapolated linearly in its records
(``extrapolate``).
"""

from __future__ import annotations

import gc
import json
import resource
import shutil
import subprocess
import sys
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
    """Build one hour of state, restart twice (from checkpoints, from the changelogs), time both."""
    topic = f"{app_id}-events"
    create_topic(topic)
    wait_for_topic(topic)
    events = produce(topic, keyed(one_hour(agents_scale)))
    client = redis.Redis.from_url(REDIS_URL)
    data = work / f"{app_id}-data"
    env = worker_env(app_id, topic, data, CCPULSE_PUBLISH_INTERVAL_SECONDS="0.5")
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
    folder = data / "checkpoints" / app_id
    kept = work / f"{app_id}-checkpoints"
    shutil.copytree(folder, kept)  # as the graceful stop left them
    seconds = {}
    for name in ("checkpoint", "changelog"):
        if name == "changelog":
            shutil.rmtree(folder)
        for key in client.scan_iter(f"{app_id}:*"):
            client.delete(key)
        worker = Worker(env, work / f"{app_id}-{name}.log").start()
        try:
            seconds[name] = _first_match(worker, client, app_id, reference, timeout) - worker.started_at
        finally:
            worker.stop()
    client.close()
    return {
        "events": events,
        "event_rate_per_second": events / HOUR,
        "changelog_records_written": written,
        "changelog_records": changelog,
        "fresh_start_seconds": fresh_start_seconds,
        "recovery_seconds": seconds["checkpoint"],
        "recovery_from_changelog_seconds": seconds["changelog"],
        "changelog_records_per_second": changelog / max(seconds["changelog"] - fresh_start_seconds, 1e-9),
        "checkpoints": str(kept),
    }


def checkpoint_load(folder: Path, copies: int) -> dict[str, Any]:
    """Time reading ``copies`` copies of a run's checkpoints into Python state, all kept at once.

    What a restart from checkpoints does per partition before its first publish
    (``Checkpoints.read``, then ``ContactState.load`` / ``CustomerState.load`` as
    ``Pipeline`` does, then the partition's windows at its watermark, which decode the
    buckets a checkpoint left packed that the first publish reads), with every copy held
    until the end, so the heap grows as a real worker's would. CPU time is split into user
    and kernel (``sys``): most of the kernel's is first touches of the growing heap, which
    cost 2-10 µs a page on the benchmark VM depending on the host, so it varies run to run.
    """
    from stream.checkpoint import Checkpoints
    from stream.pipeline import Pipeline
    from stream.settings import Settings

    files = sorted(folder.glob("*/*.ckpt"))
    reader = Checkpoints(folder, lambda topic: _topic_id(files, topic), max_age_seconds=1e12)
    held, states, records, size = [], [], 0, 0
    before = resource.getrusage(resource.RUSAGE_SELF)
    started = time.perf_counter()
    for _ in range(copies):
        loaded: dict[tuple[str, int], dict[str, Any]] = {}
        for path in files:
            found = reader.read(path.parent.name, int(path.stem))
            if found is None:
                raise RuntimeError(f"checkpoint {path} did not read back")
            loaded[("contacts" if "-contacts-" in path.parent.name else "customers", int(path.stem))] = found[1]
            records += len(found[1])
            size += path.stat().st_size
        pipeline = Pipeline(
            Settings(),
            store_items=lambda p, got=loaded: iter(got.pop(("contacts", p), {}).items()),
            customer_items=lambda p, got=loaded: iter(got.pop(("customers", p), {}).items()),
        )
        for table, partition in list(loaded):
            if table == "contacts":
                state: Any = pipeline.contact_state(partition)
            else:
                state = pipeline.customer_state(partition)
            state.window_layers(state.watermark)
            states.append(state)
        held.append(pipeline)
    seconds = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_SELF)
    # the publishes after the first decode a little each of what a checkpoint left packed
    # (``BucketState._unpack_some``); once event time moves on by a fine bucket every rolling window is added up
    # again from its blocks: both timed, at the same watermark until no block is left packed
    warm, publishes = time.perf_counter(), 0
    while any(state.unpacking_left() for state in states):
        for state in states:
            state.window_layers(state.watermark)
        publishes += 1
    warm_seconds = time.perf_counter() - warm
    moved = time.perf_counter()
    for state in states:
        state.window_layers(state.watermark + state.clock.bucket_seconds)
    moved_seconds = time.perf_counter() - moved
    again = time.perf_counter()  # the next move: what every 30 s of event time costs, as live
    for state in states:
        state.window_layers(state.watermark + 2 * state.clock.bucket_seconds)
    again_seconds = time.perf_counter() - again
    states.clear()
    held.clear()
    gc.collect()
    return {
        "copies": copies, "records": records, "bytes": size, "seconds": seconds,
        "user_seconds": after.ru_utime - before.ru_utime, "sys_seconds": after.ru_stime - before.ru_stime,
        "page_faults": after.ru_minflt - before.ru_minflt, "windows_moved_seconds": moved_seconds,
        "windows_moved_again_seconds": again_seconds,
        "warm_publishes": publishes, "warm_seconds": warm_seconds,
    }


def repeated_load(folder: Path, copies: int, times: int) -> dict[str, Any]:
    """``checkpoint_load`` ``times`` times, each in a new process as a restart is (a process
    that loaded once before reuses the memory it was given, which is then cheaper to
    touch): the median run, with every run's seconds kept."""
    runs = []
    for _ in range(times):
        done = subprocess.run(
            [sys.executable, "-m", "bench.recovery", str(folder), str(copies)],
            check=True, capture_output=True, text=True,
        )
        runs.append(json.loads(done.stdout.strip().splitlines()[-1]))
    median = sorted(runs, key=lambda run: run["seconds"])[len(runs) // 2]
    return {**median, "runs_seconds": [run["seconds"] for run in runs]}


def _topic_id(files: list[Path], topic: str) -> str | None:
    """The topic id the checkpoints were written with (the topic itself may be gone)."""
    import orjson

    for path in files:
        if path.parent.name == topic:
            with open(path, "rb") as source:
                return str(orjson.loads(source.readline())["topic_id"])
    return None


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
    """Recovery seconds from the changelogs for one hour at ``events_per_second``, linear in records.

    A fresh worker's time to its first publish is the fixed part; the rest of the measured
    recovery is restoring the changelog, at the measured records per second. The records
    are those the changelogs held at the restart (after compaction), per event: within an
    hour every contact and customer is inside its horizon, so what compaction leaves grows
    with the events. Kafka compacts on its own schedule, so this varies from run to run.
    """
    per_event = result["changelog_records"] / result["events"]
    records = per_event * events_per_second * HOUR
    return float(result["fresh_start_seconds"] + records / result["changelog_records_per_second"])


def extrapolate_checkpoint(result: dict[str, Any], one: dict[str, Any], scaled: dict[str, Any]) -> float:
    """Recovery seconds from checkpoints for the scaled state: the measured restart, with the
    load of one copy of its checkpoints replaced by the load of all the copies."""
    return float(result["recovery_seconds"] - one["seconds"] + scaled["seconds"])


if __name__ == "__main__":  # one timed load in this process (``repeated_load``)
    print(json.dumps(checkpoint_load(Path(sys.argv[1]), int(sys.argv[2]))))


def extrapolate_crash(result: dict[str, Any], checkpoint_seconds: float, interval: float,
                      events_per_second: float = 1000.0) -> float:
    """Recovery seconds after a crash (SIGKILL) for one hour at ``events_per_second``, the
    last background checkpoint a whole ``interval`` old: the checkpoint restart, plus the
    changelog written since it restored at the measured rate. Every record written in that
    interval counts (none compacted yet), at the measured records written per event."""
    written = result["changelog_records_written"] / result["events"] * events_per_second * interval
    return float(checkpoint_seconds + written / result["changelog_records_per_second"])
