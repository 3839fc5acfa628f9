"""Faults against the real stack: no event lost or counted twice (issue #7).

Every test compares the KPIs published in Redis (every window, every scope) with those of
an uninterrupted single-process run of the same input, and prints what was sent,
processed and dead-lettered.
"""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from typing import Any

import pytest

from tests.conftest import STACK, make_env, wait_for
from tests.integration.faults import (
    differences,
    expected_kpis,
    processed,
    produce,
    published,
    published_stage2,
    rejected,
    simulated_lines,
)

pytestmark = pytest.mark.integration


def _wait_equal(env: dict[str, str], want: dict[str, Any], workers: list[Any], timeout: float = 150) -> None:
    try:
        wait_for(lambda: not differences(published(env), want), timeout=timeout, interval=1.0,
                 message="published KPIs equal the uninterrupted run")
    except AssertionError:
        diffs = differences(published(env), want)
        logs = "\n".join(w.log()[-3000:] for w in workers)
        stage2 = f"stage 2, expected: {want['stage2']}\nstage 2, published partials: {published_stage2(env)}"
        raise AssertionError(f"{len(diffs)} differences, first: {diffs[:15]}\n{stage2}\n{logs}") from None


def _report(name: str, lines: Any, want: dict[str, Any], workers: list[Any]) -> None:
    """Print what was sent and counted, and check every message is counted exactly once."""
    texts = [w.metrics() for w in workers]
    done, dead = sum(processed(t) for t in texts), sum(rejected(t) for t in texts)
    print(f"\n{name}: sent {len(lines)} messages; processed {done:.0f}, dead-lettered "
          f"{dead:.0f} (expected {want['dead_letters']}); every KPI of every window and scope "
          f"equals the uninterrupted run ({sum(len(s) for s in want['windows'].values())} scope-windows)")
    assert done + dead == len(lines), "every message is counted once, across the workers that own it"
    assert dead == want["dead_letters"]


def test_sigkill_mid_stream_twice_loses_and_doubles_nothing(tmp_path: Path, stack: Any, worker_factory: Any) -> None:
    lines = simulated_lines(24.0)
    env = make_env(tmp_path)
    produce(lines, env["CCPULSE_INPUT_TOPIC"])
    want = expected_kpis(lines)
    for n, fraction in enumerate((0.2, 0.55)):
        worker = worker_factory(env, name=f"killed{n}")
        wait_for(lambda w=worker, f=fraction: processed(w.metrics()) >= f * len(lines), timeout=90, interval=0.1,
                 message=f"worker reaching {fraction:.0%}")
        worker.kill()  # SIGKILL: no shutdown, no final commit, no flush
    final = worker_factory(env, name="final")
    _wait_equal(env, want, [final])
    text = final.metrics()
    assert processed(text) + rejected(text) == len(lines)  # counters survive the crashes exactly
    assert rejected(text) == want["dead_letters"]
    _report("SIGKILL at 20 % and 55 %", lines, want, [final])


def test_restarts_from_checkpoints_and_the_changelog_after_them_lose_and_double_nothing(
    tmp_path: Path, stack: Any, worker_factory: Any
) -> None:
    """Graceful stops leave checkpoints (stream/checkpoint.py), and running workers write
    them every second here; a restart reads them and only the changelog written after them,
    also after a worker was killed halfway between two."""
    lines = simulated_lines(24.0)
    env = make_env(tmp_path, CCPULSE_LOG_LEVEL="INFO", CCPULSE_CHECKPOINT_INTERVAL_SECONDS="1")
    produce(lines, env["CCPULSE_INPUT_TOPIC"])
    want = expected_kpis(lines)
    workers = []
    for n, (fraction, stop) in enumerate(((0.25, "term"), (0.5, "term"), (0.75, "kill"))):
        worker = worker_factory(env, name=f"run{n}")
        workers.append(worker)
        wait_for(lambda w=worker, f=fraction: processed(w.metrics()) >= f * len(lines), timeout=90, interval=0.1,
                 message=f"worker reaching {fraction:.0%}")
        if stop == "term":
            worker.stop()
        else:
            # a restart from checkpoints can reach 75 % within the first checkpoint interval:
            # the kill waits for one background checkpoint, so there is one to restart from
            wait_for(lambda w=worker: "checkpoints written in the background" in w.log_path.read_text(),
                     timeout=30, interval=0.1, message="a background checkpoint before the kill")
            worker.kill()
    final = worker_factory(env, name="final")
    _wait_equal(env, want, [final])
    text = final.metrics()
    assert processed(text) + rejected(text) == len(lines)
    for worker in workers[:2]:
        assert "contacts: checkpoint of 4 partitions" in worker.log_path.read_text(), "a graceful stop writes one"
    for worker in (workers[1], workers[2], final):
        assert "contacts-changelog[0]: checkpoint of" in worker.log_path.read_text(), "each restart reads one"
    # killed: no checkpoint at the stop, but some written in the background while it ran
    assert "contacts: checkpoint of" not in workers[2].log_path.read_text()
    assert "checkpoints written in the background" in workers[2].log_path.read_text()
    _report("restarts from checkpoints (stop, stop, kill)", lines, want, [final])


def test_workers_joining_and_leaving_mid_stream_change_nothing(tmp_path: Path, stack: Any, worker_factory: Any) -> None:
    lines = simulated_lines(24.0)
    env = make_env(tmp_path)
    produce(lines, env["CCPULSE_INPUT_TOPIC"])
    want = expected_kpis(lines)
    first = worker_factory(env, name="first")
    wait_for(lambda: processed(first.metrics()) >= 0.15 * len(lines), timeout=90, interval=0.1, message="15 %")
    second = worker_factory(env, name="second")
    third = worker_factory(env, name="third")
    wait_for(lambda: sum(processed(w.metrics()) for w in (first, second, third)) >= 0.5 * len(lines),
             timeout=90, interval=0.2, message="50 % across three workers")
    first.stop()  # a graceful leave: its partitions move to the others
    _wait_equal(env, want, [second, third])
    _report("1 → 3 → 2 workers", lines, want, [second, third])


def test_two_workers_from_the_start_equal_one(tmp_path: Path, stack: Any, worker_factory: Any) -> None:
    lines = simulated_lines(6.0)
    env = make_env(tmp_path)
    produce(lines, env["CCPULSE_INPUT_TOPIC"])
    want = expected_kpis(lines)
    a, b = worker_factory(env, name="a"), worker_factory(env, name="b")
    _wait_equal(env, want, [a, b])
    _report("2 workers", lines, want, [a, b])


def _service(action: str, name: str) -> None:
    result = subprocess.run(["bash", str(STACK), action, name], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout + result.stderr


def _first_half_read(tmp_path: Path, worker_factory: Any) -> tuple[tuple[bytes, ...], dict[str, str], Any]:
    """Produce the first half of the input and return once a worker has read all of it."""
    lines = simulated_lines(6.0)
    half = len(lines) // 2
    env = make_env(tmp_path)
    produce(lines[:half], env["CCPULSE_INPUT_TOPIC"])
    worker = worker_factory(env)
    wait_for(lambda: processed(worker.metrics()) + rejected(worker.metrics()) >= half, timeout=60, message="first half")
    return lines, env, worker


def test_broker_restart_recovers_without_a_manual_step(tmp_path: Path, stack: Any, worker_factory: Any) -> None:
    lines, env, worker = _first_half_read(tmp_path, worker_factory)
    half = len(lines) // 2
    _service("stop-service", "kafka")
    try:
        time.sleep(8)
        assert worker.proc is not None and worker.proc.poll() is None, "the worker died with the broker"
    finally:
        _service("start-service", "kafka")
    produce(lines[half:], env["CCPULSE_INPUT_TOPIC"])
    want = expected_kpis(lines)
    _wait_equal(env, want, [worker], timeout=180)
    _report("Kafka stopped 8 s mid-stream", lines, want, [worker])


def test_redis_outage_keeps_processing_and_republishes(tmp_path: Path, stack: Any, worker_factory: Any) -> None:
    lines, env, worker = _first_half_read(tmp_path, worker_factory)
    half = len(lines) // 2
    _service("stop-service", "redis")
    try:
        produce(lines[half:], env["CCPULSE_INPUT_TOPIC"])
        wait_for(lambda: processed(worker.metrics()) + rejected(worker.metrics()) == len(lines), timeout=60,
                 message="processing goes on without Redis")
    finally:
        _service("start-service", "redis")
    want = expected_kpis(lines)
    _wait_equal(env, want, [worker], timeout=60)
    assert worker.log().count("unreachable") <= 3, "Redis outage should be logged once per client, not per publish"
    _report("Redis stopped while the second half arrived", lines, want, [worker])
