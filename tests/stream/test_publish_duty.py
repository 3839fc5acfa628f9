"""How much of a worker's time publishing may take (stream/runtime.py ``publish_due``).

A worker behind its input publishes at most PUBLISH_DUTY of its time, one keeping up
PUBLISH_DUTY_KEEPING_UP. Behind: its last batch came at least half full, or BACKLOG_BATCHES
batches of input were already waiting in Kafka after it (stream/agents.py ``backlog``).
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP

from bench.publish import Discard
from stream import runtime as runtime_module
from stream.agents import backlog
from stream.pipeline import Pipeline
from stream.runtime import BACKLOG_BATCHES, PUBLISH_DUTY, PUBLISH_DUTY_KEEPING_UP, Runtime
from tests.stream.harness import settings


class _Consumer:
    def __init__(self, high: dict[int, int | None]) -> None:
        self.high = high

    def highwater(self, tp: TP) -> int | None:
        if tp.partition not in self.high:
            raise AssertionError("partition not assigned")  # what aiokafka raises is its own
        return self.high[tp.partition]


def _messages(where: list[tuple[int, int]]) -> list[Any]:
    return [SimpleNamespace(partition=p, offset=o) for p, o in where]


def test_backlog_counts_what_kafka_holds_after_each_partition_s_newest_message() -> None:
    consumer = _Consumer({0: 20, 1: 4, 3: None})
    events = _messages([(0, 5), (0, 9), (0, 7), (1, 3), (2, 50), (3, 8)])
    # partition 0: 10-19 waiting; 1: none; 2 not assigned any more; 3: no fetch answered yet
    assert backlog(consumer, "events", events) == 10
    assert backlog(consumer, "events", []) == 0


def _runtime() -> Runtime:
    discard = Discard()
    return Runtime(settings(), Pipeline(settings()), discard, discard, discard, discard)


def test_a_worker_is_behind_with_half_full_batches_or_a_batch_waiting_in_kafka() -> None:
    runtime = _runtime()
    waiting = BACKLOG_BATCHES * runtime.settings.batch_size
    runtime.batch_fill, runtime.backlog = 0.1, 0
    assert runtime.keeping_up()
    runtime.backlog = waiting - 1
    assert runtime.keeping_up()
    runtime.backlog = waiting
    assert not runtime.keeping_up(), "batches of input waiting in Kafka"
    runtime.batch_fill, runtime.backlog = 0.5, 0
    assert not runtime.keeping_up(), "a half-full batch"


@pytest.mark.parametrize(("waiting", "duty"), [(0, PUBLISH_DUTY_KEEPING_UP), (100_000, PUBLISH_DUTY)])
def test_the_pause_after_a_publish_gives_publishing_its_duty(
    monkeypatch: pytest.MonkeyPatch, waiting: int, duty: float
) -> None:
    ticks = itertools.count()
    monkeypatch.setattr(runtime_module.time, "perf_counter", lambda: 0.05 * next(ticks))
    runtime = _runtime()
    runtime.batch_fill, runtime.backlog = 0.1, waiting
    before = time.monotonic()
    asyncio.run(runtime.tick([0], [0], leader=True))
    assert runtime.build_seconds == pytest.approx(0.1)  # two timed phases of 0.05 s each
    pause = runtime.next_publish_at - before
    expected = 0.1 * (1 / duty - 1)
    assert expected <= pause <= expected + 0.3  # 0.1 s keeping up, 0.9 s behind
    assert not runtime.publish_due(before + expected - 0.01)


def test_the_timer_counts_its_interval_from_the_start_of_the_last_publish() -> None:
    from stream.runtime import PUBLISH_MIN_WAIT

    runtime = _runtime()
    interval = runtime.settings.publish_interval_seconds
    runtime.next_publish_at = 100.0  # the duty pause ends at 100
    # a publish began at 99.5 and took 0.3 s: the interval has passed, the pause has not
    assert runtime.publish_wait(99.8, 99.5) == pytest.approx(0.2)
    assert runtime.publish_wait(99.95, 99.9) == pytest.approx(interval - 0.05)  # the interval has not
    assert runtime.publish_wait(100.2, 99.9) == PUBLISH_MIN_WAIT  # both over: go (never spin)
    runtime.next_publish_at = 0.0
    assert runtime.publish_wait(100.05, 100.0) == pytest.approx(interval - 0.05)  # a quick one
    assert runtime.publish_wait(5.0, -math.inf) == PUBLISH_MIN_WAIT  # the first


def test_batches_wait_briefly_while_keeping_up_and_longer_behind() -> None:
    from stream.runtime import BEHIND_BATCH_SECONDS

    runtime = _runtime()
    runtime.batch_fill, runtime.backlog = 0.1, 0
    assert runtime.batch_wait() == runtime.settings.batch_seconds < BEHIND_BATCH_SECONDS
    runtime.backlog = BACKLOG_BATCHES * runtime.settings.batch_size
    assert runtime.batch_wait() == BEHIND_BATCH_SECONDS
    slow = Runtime(settings(batch_seconds=0.5), runtime.pipeline, *([Discard()] * 4))
    slow.backlog = runtime.backlog
    assert slow.batch_wait() == 0.5  # behind never waits less than it is told to
