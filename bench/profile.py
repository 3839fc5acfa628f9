"""Profile a ccpulse worker with py-spy while it reads the throughput topic.

The samples (all threads, on-CPU only) are sorted into where the time goes, by the
outermost frame that says so: snapshot building and the sinks (the publish timer), table
changelog writes, JSON decoding and validation, the KPI pipeline, and Faust/aiokafka's own
work (fetching, streaming, producing the changelog, committing).
"""

from __future__ import annotations

import collections
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from bench.worker import Worker, wait_caught_up, worker_env

# (category, frames any of which puts a sample in it), first match wins, within the
# publish timer and the ingest agents respectively.
PUBLISH = (
    ("sinks: Redis publish", ("RedisSink.",)),
    ("sinks: Prometheus", ("PrometheusSink.", "SnapshotCollector.")),
    ("snapshot: partial exchange (Redis)", ("PartialExchange.",)),
    ("snapshot building (partials, merge, KPIs)", ("Runtime.tick",)),
)
INGEST = (
    ("table changelog writes (TableWriter.write)", ("TableWriter.write (stream/agents.py",)),
    ("JSON decode + validation (parse_event)", ("parse_event (stream/events.py",)),
    ("KPI pipeline (lifecycle, buckets, customers)", ("Pipeline.process",)),
    ("sending customer facts / dead letters", ("Runtime.ingest", "Runtime.ingest_facts")),
)
FAUST = (
    (
        "Faust/aiokafka: producing (changelog, facts)",
        ("faust/transport/producer.py", "aiokafka/producer/"),
    ),
    (
        "Faust/aiokafka: consuming and streaming",
        (
            "faust/transport/consumer.py",
            "faust/streams.py",
            "aiokafka/consumer/",
            "faust/transport/conductor.py",
        ),
    ),
    ("logging (debug records built, then dropped)", ("logging/__init__.py",)),
)


def categorise(stack: str) -> str:
    """Return the category of one collapsed stack."""
    if "Runtime.tick" in stack:
        return _first(PUBLISH, stack)
    if "_pages.<locals>.metrics" in stack:
        return "/metrics scrapes"
    if "Runtime.ingest" in stack:
        return _first(INGEST, stack)
    leaf = stack.rsplit(";", 1)[-1]
    if "select (selectors.py" in leaf:
        return "idle (waiting in epoll)"
    for name, needles in FAUST:
        if any(n in stack for n in needles):
            return name
    if any(n in stack for n in ("faust/", "mode/", "aiokafka/")):
        return "Faust/aiokafka/mode: other"
    return "other (imports, start-up, asyncio)"


def _first(rules: tuple[tuple[str, tuple[str, ...]], ...], stack: str) -> str:
    for name, needles in rules:
        if any(n in stack for n in needles):
            return name
    return rules[-1][0]


def _short(frame: str) -> str:
    frame = re.sub(r" \(.*?(site-packages/|/work/main/|/lib/python3\.\d+/)", " (", frame)
    return re.sub(r":\d+\)$", ")", frame)


def summarise(raw: Path, top: int = 15) -> dict[str, Any]:
    """Return shares by category and the top functions (self and inclusive) of a raw profile."""
    by_category: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack:
            continue
        n = int(count)
        total += n
        by_category[categorise(stack)] += n
        frames = [_short(f) for f in stack.split(";")]
        own[frames[-1]] += n
        for frame in set(frames):
            if "(stream/" in frame or "(sinks/" in frame:
                inclusive[frame] += n
    share = lambda c: {k: round(100.0 * v / max(total, 1), 1) for k, v in c.most_common(top)}  # noqa: E731
    return {
        "samples": total,
        "by_category_percent": share(by_category),
        "self_percent": share(own),
        "ccpulse_inclusive_percent": share(inclusive),
    }


def profile(topic: str, app_id: str, work: Path, timeout: float) -> dict[str, Any]:
    """Run one worker on ``topic`` under ``py-spy record`` until it caught up."""
    raw = work / f"{app_id}.pyspy.txt"
    worker = Worker(
        worker_env(app_id, topic, work / f"{app_id}-data"), work / f"{app_id}.log"
    ).start()
    spy = subprocess.Popen(
        [
            str(Path(sys.executable).parent / "py-spy"),
            "record",
            "--pid",
            str(worker.pid),
            "--format",
            "raw",
            "--rate",
            "100",
            "-o",
            str(raw),
        ],
        stdout=subprocess.DEVNULL,
        stderr=open(work / "py-spy.log", "ab"),
    )
    try:
        first_at, first_n, end_at, end_n = wait_caught_up([worker], app_id, topic, timeout)
    finally:
        spy.send_signal(signal.SIGINT)
        spy.wait(60)
        worker.stop()
    summary = (
        summarise(raw)
        if raw.exists()
        else {"error": f"py-spy wrote nothing; see {work / 'py-spy.log'}"}
    )
    summary["rate_under_profiler"] = (end_n - first_n) / (end_at - first_at)
    return summary
