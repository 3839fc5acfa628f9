"""A real ``ccpulse worker`` in a subprocess, as the benchmarks drive it.

Each worker gets its own app id, topics, Redis prefix, web port and data folder (the same
isolation as tests/conftest.py ``make_env``). Progress is read from its ``/metrics``
(``ccpulse_events_processed_total`` by stage), memory from ``/proc/<pid>/status``.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

from bench.kafka import BROKER, Offsets

ROOT = Path(__file__).resolve().parent.parent
REDIS_URL = f"redis://127.0.0.1:{os.environ.get('CCPULSE_REDIS_PORT', '6379')}/0"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def worker_env(app_id: str, input_topic: str, data_dir: Path, **extra: str) -> dict[str, str]:
    """Return the CCPULSE_* variables of an isolated worker reading ``input_topic``."""
    env = {
        "CCPULSE_BROKER": f"kafka://{BROKER}",
        "CCPULSE_APP_ID": app_id,
        "CCPULSE_INPUT_TOPIC": input_topic,
        "CCPULSE_DEAD_LETTER_TOPIC": f"{app_id}-dlq",
        "CCPULSE_ALERTS_TOPIC": f"{app_id}-alerts",
        "CCPULSE_REDIS_URL": REDIS_URL,
        "CCPULSE_REDIS_PREFIX": app_id,
        "CCPULSE_WEB_PORT": str(free_port()),
        "CCPULSE_DATA_DIR": str(data_dir),
        "CCPULSE_LIVE": "false",
        "CCPULSE_LOG_LEVEL": "WARNING",
    }
    env.update(extra)
    return env


class Worker:
    """One ``python -m ccpulse.cli worker`` process with its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = env
        self.log_path = log_path
        self.port = int(env["CCPULSE_WEB_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None
        self.started_at = 0.0

    def start(self) -> Worker:
        """Start the process (returns at once; see ``wait_healthy``)."""
        log = open(self.log_path, "ab")
        self.started_at = time.time()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ccpulse.cli", "worker"],
            env={**os.environ, **self.env},
            cwd=ROOT,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        return self

    @property
    def pid(self) -> int:
        assert self.proc is not None
        return self.proc.pid

    def check_alive(self) -> None:
        if self.proc is not None and self.proc.poll() is not None:
            raise RuntimeError(f"worker exited with {self.proc.returncode}:\n{self.log()}")

    def metrics_text(self) -> str | None:
        try:
            with urllib.request.urlopen(
                f"http://127.0.0.1:{self.port}/metrics", timeout=2
            ) as reply:
                return str(reply.read().decode())
        except OSError:
            return None

    def processed(self) -> dict[str, float]:
        """Return ``ccpulse_events_processed_total`` by stage ({} before the first publish)."""
        text = self.metrics_text()
        out: dict[str, float] = {}
        if text is None:
            return out
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                if sample.name == "ccpulse_events_processed_total":
                    stage = sample.labels.get("stage", "")
                    out[stage] = out.get(stage, 0.0) + float(sample.value)
        return out

    def rss_bytes(self) -> int:
        """Return the worker's resident set size (VmRSS), bytes."""
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        return 0

    def wait_healthy(self, timeout: float) -> None:
        wait_healthy(self, timeout)

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-4000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)


def processed_total(workers: list[Worker], stage: str) -> float:
    """Sum ``ccpulse_events_processed_total`` of a stage over workers (one /metrics read each)."""
    return sum(w.processed().get(stage, 0.0) for w in workers)


def wait_caught_up(
    workers: list[Worker],
    group: str,
    input_topic: str,
    timeout: float,
    poll_seconds: float = 0.2,
    partial: bool = False,
) -> tuple[float, int, float, int]:
    """Wait until the group committed the end of the input topic and of its customer facts.

    Progress comes from the broker (committed offsets), never from the worker's /metrics: a
    /metrics exposition of 50 queues and 600 agents costs the worker real CPU, and scraping
    it ten times a second took a quarter of the worker's time in a first profile.
    Return (first_progress_at, committed_then, caught_up_at, committed_at_end); the rate is
    (committed_at_end - committed_then) / (caught_up_at - first_progress_at). With
    ``partial``, running out of time returns the progress so far instead of raising.
    """
    offsets = Offsets()
    facts_topic = f"{group}-customer-facts"
    try:
        target = offsets.end(input_topic)
        deadline = time.time() + timeout
        first: tuple[float, int] | None = None
        while time.time() < deadline:
            for worker in workers:
                worker.check_alive()
            now = time.time()
            done = offsets.committed(group, input_topic)
            if first is None and done > 0:
                first = (now, done)
            if done >= target and offsets.committed(group, facts_topic) >= offsets.end(facts_topic):
                assert first is not None
                return first[0], first[1], now, done
            time.sleep(poll_seconds)
        if partial and first is not None:
            return first[0], first[1], time.time(), offsets.committed(group, input_topic)
        raise TimeoutError(
            f"group {group} did not catch up on {target} events within {timeout:.0f} s"
        )
    finally:
        offsets.close()


def _healthy(port: int) -> bool:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as reply:
            return bool(reply.status == 200)
    except OSError:
        return False


def wait_healthy(worker: Worker, timeout: float) -> None:
    """Wait until a worker answers /healthz."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        worker.check_alive()
        if _healthy(worker.port):
            return
        time.sleep(0.2)
    raise TimeoutError(f"worker not healthy within {timeout:.0f} s:\n{worker.log()}")
