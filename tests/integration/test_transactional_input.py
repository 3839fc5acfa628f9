"""Input written by a transactional producer: commit markers leave offsets with no record.

The offset guard (stream/agents.py) refuses a message more than one past its partition's
state unless Kafka says the offsets between hold nothing; here every transaction leaves such
an offset on every partition it wrote, and every message must still be counted exactly once.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from kafka.admin import KafkaAdminClient, NewTopic

from tests.conftest import KAFKA, make_env, wait_for
from tests.integration.faults import (
    PARTITIONS,
    differences,
    expected_kpis,
    line_key,
    partition_of,
    processed,
    published,
    rejected,
    simulated_lines,
)

pytestmark = pytest.mark.integration

PER_TRANSACTION = 200


def _produce_in_transactions(lines: tuple[bytes, ...], topic: str, tag: str) -> int:
    admin = KafkaAdminClient(bootstrap_servers=KAFKA)
    admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    admin.close()
    producer = KafkaProducer(bootstrap_servers=KAFKA, transactional_id=f"{tag}-tx", acks="all")
    producer.init_transactions()
    transactions = 0
    for start in range(0, len(lines), PER_TRANSACTION):
        producer.begin_transaction()
        for line in lines[start:start + PER_TRANSACTION]:
            producer.send(topic, value=line, key=line_key(line), partition=partition_of(line))
        producer.commit_transaction()
        transactions += 1
    producer.close()
    return transactions


def test_input_from_a_transactional_producer_is_counted_exactly(
    tmp_path: Path, stack: Any, worker_factory: Any
) -> None:
    lines = simulated_lines(2.0)
    env = make_env(tmp_path)
    transactions = _produce_in_transactions(lines, env["CCPULSE_INPUT_TOPIC"], env["CCPULSE_APP_ID"])
    want = expected_kpis(lines)
    started = time.time()
    worker = worker_factory(env)
    wait_for(lambda: not differences(published(env), want), timeout=120, interval=0.5,
             message="published KPIs equal the reference run")
    took = time.time() - started
    text = worker.metrics()
    assert processed(text) + rejected(text) == len(lines)
    assert rejected(text) == want["dead_letters"]
    print(f"\ntransactional input: {len(lines)} messages in {transactions} transactions (a commit marker "
          f"on each partition each time); processed {processed(text):.0f}, dead-lettered {rejected(text):.0f} "
          f"(expected {want['dead_letters']}); every KPI equals the reference run, {took:.1f} s from the start")
