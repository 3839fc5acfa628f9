"""Shared fixtures: the real local stack, isolated settings per test, worker processes.

Integration tests run against the Kafka, Redis and Prometheus that ``make test`` starts
(stack/stack.sh). If the stack is down the session starts it; a stack that cannot start
fails the tests, it never skips them.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest

ROOT = Path(__file__).resolve().parent.parent
STACK = ROOT / "stack" / "stack.sh"
KAFKA = f"127.0.0.1:{os.environ.get('CCPULSE_KAFKA_PORT', '9092')}"
REDIS_PORT = int(os.environ.get("CCPULSE_REDIS_PORT", "6379"))
PROMETHEUS_PORT = int(os.environ.get("CCPULSE_PROMETHEUS_PORT", "9090"))
# file_sd folder the local stack's Prometheus watches (stack/stack.sh)
SCRAPE_TARGETS = Path(os.environ.get("CCPULSE_STACK_DIR", ROOT / ".stack")) / "prometheus" / "targets"


@pytest.fixture(scope="session")
def stack() -> dict[str, Any]:
    """Make sure Kafka, Redis and Prometheus are up; start them if not."""
    if subprocess.run(["bash", str(STACK), "status"], capture_output=True).returncode != 0:
        started = subprocess.run(["bash", str(STACK), "up"], capture_output=True, text=True)
        assert started.returncode == 0, f"could not start the stack:\n{started.stdout}\n{started.stderr}"
    return {"kafka": KAFKA, "redis_port": REDIS_PORT, "prometheus_port": PROMETHEUS_PORT}


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture
def isolated_env(stack: dict[str, Any], tmp_path: Path) -> dict[str, str]:
    """CCPULSE_* variables giving this test its own app id, topics, Redis keys and port."""
    return make_env(tmp_path)


def make_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    tag = uuid.uuid4().hex[:10]
    env = {
        "CCPULSE_BROKER": f"kafka://{KAFKA}",
        "CCPULSE_APP_ID": f"t{tag}",
        "CCPULSE_INPUT_TOPIC": f"t{tag}-events",
        "CCPULSE_DEAD_LETTER_TOPIC": f"t{tag}-dlq",
        "CCPULSE_ALERTS_TOPIC": f"t{tag}-alerts",
        "CCPULSE_REDIS_URL": f"redis://127.0.0.1:{REDIS_PORT}/0",
        "CCPULSE_REDIS_PREFIX": f"t{tag}",
        "CCPULSE_WEB_PORT": str(free_port()),
        "CCPULSE_DATA_DIR": str(tmp_path / "data"),
        "CCPULSE_LIVE": "false",
        "CCPULSE_LOG_LEVEL": "WARNING",
        "CCPULSE_PUBLISH_INTERVAL_SECONDS": "0.3",
    }
    env.update(extra)
    return env


class WorkerProcess:
    """A real ``ccpulse worker`` in a subprocess, with its log in a file."""

    def __init__(self, env: dict[str, str], log_path: Path) -> None:
        self.env = {**os.environ, **env}
        self.log_path = log_path
        self.port = int(env["CCPULSE_WEB_PORT"])
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 60.0) -> WorkerProcess:
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "ccpulse.cli", "worker"],
            env=self.env, cwd=ROOT, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"worker exited with {self.proc.returncode}:\n{self.log()}")
            if self.healthy():
                return self
            time.sleep(0.3)
        raise AssertionError(f"worker not healthy within {timeout}s:\n{self.log()}")

    def healthy(self) -> bool:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/healthz", timeout=1) as reply:
                return bool(orjson.loads(reply.read())["ok"])
        except OSError:
            return False

    def metrics(self, accept: str = "text/plain") -> str:
        request = urllib.request.Request(f"http://127.0.0.1:{self.port}/metrics", headers={"Accept": accept})
        with urllib.request.urlopen(request, timeout=5) as reply:
            return str(reply.read().decode())

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")[-6000:]

    def stop(self, sig: int = signal.SIGTERM, timeout: float = 30.0) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.killpg(self.proc.pid, sig)
        try:
            self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait(10)

    def kill(self) -> None:
        self.stop(signal.SIGKILL)


@pytest.fixture
def worker_factory(tmp_path: Path) -> Iterator[Any]:
    """Start workers on demand; stop every one at the end of the test."""
    started: list[WorkerProcess] = []

    def start(env: dict[str, str], name: str = "worker") -> WorkerProcess:
        if any(w.port == int(env["CCPULSE_WEB_PORT"]) and w.proc and w.proc.poll() is None for w in started):
            env = {**env, "CCPULSE_WEB_PORT": str(free_port())}  # a second worker of the same app
        worker = WorkerProcess(env, tmp_path / f"{name}-{len(started)}.log").start()
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.stop()


def samples(text: str, name: str) -> list[tuple[dict[str, str], float]]:
    """Return (labels, value) of every sample called ``name`` in a Prometheus exposition."""
    from prometheus_client.parser import text_string_to_metric_families

    found = []
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name:
                found.append((dict(sample.labels), float(sample.value)))
    return found


def run_cli(
    env: dict[str, str], *args: str, stdin: bytes | None = None, timeout: float = 120
) -> subprocess.CompletedProcess[bytes]:
    """Run ``ccpulse ARGS`` with the given environment."""
    return subprocess.run(
        [sys.executable, "-m", "ccpulse.cli", *args],
        env={**os.environ, **env}, cwd=ROOT, input=stdin, capture_output=True, timeout=timeout,
    )


def wait_for(predicate: Any, timeout: float = 60.0, interval: float = 0.25, message: str = "") -> Any:
    """Poll until ``predicate()`` is truthy; return its value or fail with ``message``."""
    deadline = time.time() + timeout
    last: Any = None
    while time.time() < deadline:
        last = predicate()
        if last:
            return last
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s: {message} (last: {last!r})")


@pytest.fixture
def scrape_target(stack: dict[str, Any]) -> Iterator[Any]:
    """Have the stack's Prometheus scrape a worker (``add(port, tag)``); forget it afterwards."""
    written: list[Path] = []

    def add(port: int, tag: str) -> None:
        SCRAPE_TARGETS.mkdir(parents=True, exist_ok=True)
        path = SCRAPE_TARGETS / f"test-{tag}.json"
        path.write_text(json.dumps([{"targets": [f"127.0.0.1:{port}"], "labels": {"test": tag}}]))
        written.append(path)

    yield add
    for path in written:
        path.unlink(missing_ok=True)


def prometheus_query(base: str, expr: str) -> list[dict[str, Any]]:
    """Run an instant PromQL query; return its result vector (or a scalar as one sample)."""
    url = f"{base}/api/v1/query?{urllib.parse.urlencode({'query': expr})}"
    with urllib.request.urlopen(url, timeout=10) as reply:
        body = json.loads(reply.read())
    assert body["status"] == "success", body
    data = body["data"]
    if data["resultType"] in ("scalar", "string"):
        return [{"value": data["result"]}]
    return list(data["result"])
