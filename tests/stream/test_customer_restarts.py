"""Stage 2 under crashes and re-sent facts: the customer totals and windows of a partition
equal those of one uninterrupted pass over its facts.

A crash lands a prefix of a batch's writes (buckets and totals first, then customers, then
the meta record); the restarted state is rebuilt from what landed and reads on from where
its meta record stands (the offset guard's rule), sometimes from an earlier committed
offset. Stage 1 re-sends a fenced batch's facts at later offsets of the facts topic.
"""

from __future__ import annotations

import copy
import random
import time
from typing import Any

from stream import snapshot
from stream.pipeline import Pipeline
from stream.settings import Settings
from tests.integration.faults import PARTITIONS, kafka_partition, partition_of, simulated_lines


def _messages(hours: float) -> dict[int, list[list[dict[str, Any]]]]:
    """Each facts partition's messages: the facts of one stage 1 batch each, as the worker sends them."""
    stage1 = Pipeline(Settings.from_env({}, live=False), clock=time.time)
    by_partition: dict[int, list[tuple[int, int, bytes]]] = {p: [] for p in range(PARTITIONS)}
    for line in simulated_lines(hours):
        p = partition_of(line)
        by_partition[p].append((p, len(by_partition[p]), line))
    messages: dict[int, list[list[dict[str, Any]]]] = {q: [] for q in range(PARTITIONS)}
    for p in range(PARTITIONS):
        for start in range(0, len(by_partition[p]), 200):
            per: dict[int, list[dict[str, Any]]] = {}
            for fact in stage1.process(by_partition[p][start:start + 200]).customer_facts:
                per.setdefault(kafka_partition(fact["customer_id"].encode(), PARTITIONS), []).append(fact)
            for q, facts in per.items():
                messages[q].append(facts)
    return messages


def _apply(pipeline: Pipeline, q: int, items: list[tuple[int, list[dict[str, Any]]]]) -> list[Any]:
    return pipeline.process_customer_facts([(q, offset, fact) for offset, facts in items for fact in facts]).writes


def _land(durable: dict[str, Any], writes: list[Any]) -> None:
    for key, record in writes:
        if record is None:
            durable.pop(key, None)
        else:
            durable[key] = copy.deepcopy(record)


def _pipeline(customer_items: Any = None, **overrides: Any) -> Pipeline:
    return Pipeline(Settings.from_env({}, live=False, **overrides), clock=time.time, customer_items=customer_items)


def _restarted(durable: dict[str, Any]) -> Pipeline:
    return _pipeline(lambda p: iter(copy.deepcopy(list(durable.items()))))


def _one_pass(topic: list[list[dict[str, Any]]], q: int, **overrides: Any) -> Pipeline:
    """Partition ``q``'s facts applied in one uninterrupted pass."""
    pipeline = _pipeline(**overrides)
    _apply(pipeline, q, list(enumerate(topic)))
    return pipeline


def _by_source(topic: list[list[dict[str, Any]]]) -> dict[int, list[list[dict[str, Any]]]]:
    """A partition's messages by the input partition that sent them, each in its order."""
    by_source: dict[int, list[list[dict[str, Any]]]] = {}
    for facts in topic:
        by_source.setdefault(facts[0]["src"], []).append(facts)
    return by_source


def _result(pipeline: Pipeline, q: int, watermark: float) -> Any:
    state = pipeline.customer_state(q)
    partial = snapshot.customer_partial(state, watermark, watermark)
    return state.customers_active(), state.totals(), snapshot.kpis_by_window([partial], watermark)


def test_crashes_and_re_sent_facts_leave_customer_totals_and_windows_as_one_pass() -> None:
    messages = _messages(6.0)
    rng = random.Random(11)
    for trial in range(12):
        q = trial % PARTITIONS
        reference = _one_pass(messages[q], q)
        topic = list(messages[q])
        for _ in range(rng.randrange(1, 4)):  # a fenced stage 1 batch, re-sent a little later
            k = rng.randrange(len(topic))
            topic.insert(min(len(topic), k + rng.randrange(1, 5)), copy.deepcopy(topic[k]))
        durable: dict[str, Any] = {}
        pipeline, position, committed, crashes = _restarted(durable), 0, 0, 0
        while position < len(topic):
            items = [(o, topic[o]) for o in range(position, min(len(topic), position + rng.choice((1, 3, 8))))]
            writes = _apply(pipeline, q, items)
            if rng.random() < 0.2:  # a crash: a prefix of the batch's writes landed
                _land(durable, writes[: rng.randrange(0, len(writes) + 1)])
                pipeline, crashes = _restarted(durable), crashes + 1
                position = pipeline.customer_state(q).meta["o"] + 1
                if rng.random() < 0.5:
                    position = min(position, committed)  # Faust re-delivers from further back
                continue
            _land(durable, writes)
            position = committed = items[-1][0] + 1
        watermark = reference.customer_state(q).watermark
        assert crashes > 0
        assert _result(pipeline, q, watermark) == _result(reference, q, watermark), (trial, q)


def test_any_interleaving_of_the_source_partitions_gives_the_same_customer_kpis() -> None:
    """Workers read the input partitions at their own pace, so the facts of different
    sources reach a stage 2 partition in any interleaving (each source's in order)."""
    messages = _messages(6.0)
    rng = random.Random(5)
    for trial in range(8):
        q = trial % PARTITIONS
        reference = _one_pass(messages[q], q)
        by_source = _by_source(messages[q])
        pace = {source: rng.uniform(0.2, 5.0) for source in by_source}  # one source far ahead, another behind
        interleaved: list[list[dict[str, Any]]] = []
        while any(by_source.values()):
            source = rng.choices(list(by_source), weights=[pace[s] * bool(by_source[s]) for s in by_source])[0]
            interleaved.append(by_source[source].pop(0))
        pipeline = _one_pass(interleaved, q)
        watermark = reference.customer_state(q).watermark
        assert _result(pipeline, q, watermark) == _result(reference, q, watermark), (trial, q)


def test_facts_re_sent_after_the_horizon_forgot_their_customers_count_once() -> None:
    """A fenced stage 1 batch is re-sent after other sources moved the horizon past it: its
    lifecycle-only customers are forgotten by then, and with them the ids that told a
    repeat. Where each source's last fact was made tells it instead."""
    overrides: dict[str, Any] = {"contact_horizon_seconds": 900.0}
    messages = _messages(6.0)
    for q in range(PARTITIONS):
        by_source = _by_source(messages[q])
        interleaved = [m for group in zip(*by_source.values(), strict=False) for m in group]  # sources in step
        reference = _one_pass(interleaved, q, **overrides)
        topic = list(interleaved)
        for k in (len(topic) // 4, len(topic) // 2):  # re-sent once the rest has moved on
            topic.insert(k + 40, copy.deepcopy(topic[k]))
        pipeline = _one_pass(topic, q, **overrides)
        watermark = reference.customer_state(q).watermark
        assert _result(pipeline, q, watermark) == _result(reference, q, watermark), q
