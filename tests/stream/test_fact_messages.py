"""Customer facts travel to stage 2 packed, one message per customer-facts partition
(stream/runtime.py ``fact_messages``); each customer must still land where a message keyed
by its id would, so state already kept per partition stays where it is."""

from __future__ import annotations

import orjson
from aiokafka.partitioner import DefaultPartitioner

from stream.runtime import FACTS_PER_MESSAGE, customer_partition, fact_messages, unpack_facts


def _fact(n: int, customer: str) -> dict[str, object]:
    return {"kind": "contact", "fact_id": f"c{n}.x", "customer_id": customer, "ts": 1000.0 + n}


def test_a_customer_goes_to_the_partition_kafka_picks_for_its_key() -> None:
    partitioner = DefaultPartitioner()
    for n in range(500):
        customer = f"customer-{n * 7919}"
        kafka_picks = partitioner(customer.encode(), list(range(8)), list(range(8)))
        assert customer_partition(customer, 8) == kafka_picks


def test_facts_are_packed_by_partition_in_order_and_split_at_the_limit() -> None:
    facts = [_fact(n, f"u{n % 37}") for n in range(3 * FACTS_PER_MESSAGE + 11)]
    messages = fact_messages(facts, 4)
    unpacked: dict[int, list[dict[str, object]]] = {}
    for partition, raw in messages:
        batch = unpack_facts(raw)
        assert 0 < len(batch) <= FACTS_PER_MESSAGE
        assert {customer_partition(str(f["customer_id"]), 4) for f in batch} == {partition}
        unpacked.setdefault(partition, []).extend(batch)
    for partition, got in unpacked.items():
        sent = [f for f in facts if customer_partition(str(f["customer_id"]), 4) == partition]
        assert got == sent
    assert sum(len(v) for v in unpacked.values()) == len(facts)
    assert fact_messages([], 4) == []


def test_a_message_of_one_fact_written_before_packing_still_reads() -> None:
    fact = _fact(1, "u1")
    assert unpack_facts(orjson.dumps(fact)) == [fact]
