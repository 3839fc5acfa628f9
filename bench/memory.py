"""Memory: worker RSS with many open contacts, and with many customers in FCR state.

One worker reads a topic filled in steps; after each step has been committed (and the
customer stage caught up) the worker's VmRSS is read. With two steps the growth per
contact (or customer) is the slope, and sizes beyond what was loaded are extrapolated
linearly from it, and reported as such.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

from bench.dataset import keyed
from bench.kafka import create_topic, produce, wait_for_topic
from bench.worker import Worker, wait_caught_up, worker_env


def measure(
    load: Callable[[int, int], Iterator[dict[str, Any]]],
    steps: list[int],
    app_id: str,
    work: Path,
    timeout: float,
    settle_seconds: float = 2.0,
) -> dict[str, Any]:
    """Load ``steps`` (cumulative entity counts) one after the other; RSS after each."""
    topic = f"{app_id}-events"
    create_topic(topic)
    wait_for_topic(topic)
    worker = Worker(
        worker_env(app_id, topic, work / f"{app_id}-data"), work / f"{app_id}.log"
    ).start()
    points: list[tuple[int, int]] = []
    try:
        worker.wait_healthy(90)
        time.sleep(settle_seconds)
        points.append((0, worker.rss_bytes()))
        loaded = 0
        for total in steps:
            produce(topic, keyed(load(total - loaded, loaded)))
            loaded = total
            wait_caught_up([worker], app_id, topic, timeout)
            time.sleep(settle_seconds)
            points.append((total, worker.rss_bytes()))
    finally:
        worker.stop()
    (n1, rss1), (n2, rss2) = points[-2], points[-1]
    return {"points": points, "bytes_per_entity": (rss2 - rss1) / max(n2 - n1, 1)}


def at(result: dict[str, Any], entities: int) -> float:
    """RSS at ``entities``: measured if loaded, else extrapolated from the last slope."""
    n, rss = result["points"][-1]
    return float(rss + result["bytes_per_entity"] * (entities - n))
