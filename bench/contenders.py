"""Run each throughput contender on the same topic and return its events/s.

Every contender is its own process reading the whole topic from the beginning with a fresh
consumer group: the limit (bench/limit.py), the Faust floor (bench/floor.py), the Quix
Streams peer (bench/peer_quix.py) and ccpulse (``ccpulse worker``, one or more).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import orjson

from bench.worker import ROOT, Worker, wait_caught_up, worker_env


def _python_module(module: str, args: list[str], log_path: Path) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", module, *args],
        cwd=ROOT,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
        stdout=open(log_path, "ab"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait(10)


def run_module(
    module: str, args: list[str], result_path: Path, log_path: Path, timeout: float
) -> dict[str, Any]:
    """Start ``python -m module args``; wait for its result file; stop it; return the result."""
    result_path.unlink(missing_ok=True)
    proc = _python_module(module, args, log_path)
    deadline = time.time() + timeout
    try:
        while time.time() < deadline:
            if result_path.exists() and result_path.stat().st_size:
                time.sleep(0.05)
                result: dict[str, Any] = orjson.loads(result_path.read_bytes())
                result["rate"] = (result["events"] - 1) / result["seconds"]
                return result
            if proc.poll() is not None and not result_path.exists():
                raise RuntimeError(f"{module} exited with {proc.returncode}; see {log_path}")
            time.sleep(0.1)
        raise TimeoutError(f"{module} gave no result within {timeout:.0f} s; see {log_path}")
    finally:
        _stop(proc)


def limit(topic: str, count: int, work: Path, group: str, timeout: float) -> dict[str, Any]:
    return run_module(
        "bench.limit",
        [topic, str(count), str(work / "limit.json"), group],
        work / "limit.json",
        work / "limit.log",
        timeout,
    )


def floor(topic: str, count: int, work: Path, app_id: str, timeout: float, *modes: str) -> dict[str, Any]:
    """The Faust floor; ``modes``: "prompt" (ccpulse's prompt delivery, stream/delivery.py),
    "bulk" (ccpulse's batch feed, stream/feed.py)."""
    name = "-".join(("floor", *modes))
    args = [topic, str(count), str(work / f"{name}.json"), str(work / f"{name}-data"), app_id, *modes]
    return run_module("bench.floor", args, work / f"{name}.json", work / f"{name}.log", timeout)


def peer(topic: str, count: int, work: Path, group: str, timeout: float) -> dict[str, Any]:
    args = [topic, str(count), str(work / "quix.json"), str(work / "quix-state"), group]
    return run_module("bench.peer_quix", args, work / "quix.json", work / "quix.log", timeout)


def ccpulse(topic: str, app_id: str, work: Path, workers: int, timeout: float) -> dict[str, Any]:
    """Run ``workers`` ccpulse workers (one group) until they committed the whole topic."""
    started = []
    try:
        for n in range(workers):
            env = worker_env(app_id, topic, work / f"{app_id}-{n}")
            started.append(Worker(env, work / f"{app_id}-{n}.log").start())
        first_at, first_n, end_at, end_n = wait_caught_up(started, app_id, topic, timeout)
        processed = sum(w.processed().get("contacts", 0.0) for w in started)
        rss = [w.rss_bytes() for w in started]
        return {
            "events": end_n,
            "seconds": end_at - first_at,
            "rate": (end_n - first_n) / (end_at - first_at),
            "start_to_caught_up_seconds": end_at - started[0].started_at,
            "processed_metric": processed,
            "rss_bytes": rss,
        }
    finally:
        for worker in started:
            worker.stop()
