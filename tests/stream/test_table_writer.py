"""How a batch's state reaches the changelog (stream/agents.py ``TableWriter``, buckets.flush).

The producers here only record what it is handed and resolves acknowledgements when the test
says so; that Kafka keeps them is the fault tests' business (tests/integration/test_faults.py).
"""

from __future__ import annotations

import asyncio
from types import SimpleNamespace
from typing import Any

import orjson
from aiokafka.producer.message_accumulator import BatchBuilder
from aiokafka.record.default_records import DefaultRecordBatch
from faust.types import TP

from stream.agents import PartitionedTable, TableWriter
from stream.pipeline import Pipeline
from stream.settings import Settings


class _Producer:
    def __init__(self) -> None:
        self.sent: list[tuple[str, bytes, bytes | None, int]] = []
        self.acks: list[asyncio.Future[Any]] = []

    def acknowledge(self, ack: asyncio.Future[Any]) -> None:
        """Resolve an acknowledgement as Kafka would: the record's partition and offset."""
        index = self.acks.index(ack)
        ack.set_result(SimpleNamespace(partition=self.sent[index][3], offset=100 + index))

    async def send(
        self, topic: str, key: bytes, value: bytes | None, partition: int, timestamp: Any, headers: Any
    ) -> Any:
        self.sent.append((topic, key, value, partition))
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack


class _Store(dict):  # type: ignore[type-arg]
    """A memory store with no checkpoint loaded (stream/checkpoint.py CheckpointStore)."""

    def take_checkpoint(self, partition: int) -> dict[str, Any]:
        return {}

    def forget_checkpoint(self, partition: int) -> None:
        pass


def _writer(recovery: Any = None) -> tuple[TableWriter, _Producer, dict[bytes, bytes]]:
    producer = _Producer()
    store: dict[bytes, bytes] = _Store({b"1|c|gone": b"{}"})
    table = SimpleNamespace(
        name="contacts",
        data=store,
        changelog_topic=SimpleNamespace(get_topic_name=lambda: "app-contacts-changelog"),
        partition_for_key=lambda key: PartitionedTable.partition_for_key(None, key),  # type: ignore[arg-type]
    )
    app = SimpleNamespace(producer=producer, tables=SimpleNamespace(_recovery=recovery))
    return TableWriter(app, table), producer, store  # type: ignore[arg-type]


def test_write_returns_only_once_kafka_acknowledged_every_record() -> None:
    async def scenario() -> None:
        writer, producer, store = _writer()
        writes = [("1|b|60", {"o": 7, "s": {}}), ("3|c|x", {"o": 7}), ("1|c|gone", None)]
        task = asyncio.create_task(writer.write(writes, lambda: True))
        await asyncio.sleep(0.01)
        assert [(key, partition) for _, key, _, partition in producer.sent] == [
            (b"1|b|60", 1), (b"3|c|x", 3), (b"1|c|gone", 1)
        ]
        assert producer.sent[1][2] == b'{"o":7}' and producer.sent[2][2] is None
        assert store == {b"1|c|gone": b"{}"}, "the store is not a second copy of loaded state"
        assert not task.done(), "returned before Kafka acknowledged the records"
        for ack in producer.acks[:2]:
            producer.acknowledge(ack)
        await asyncio.sleep(0.01)
        assert not task.done()
        producer.acknowledge(producer.acks[2])
        await asyncio.wait_for(task, 1)
        assert writer.offsets == {1: 102, 3: 101}, "the newest acknowledged offset of each partition"

    asyncio.run(scenario())


def test_a_rebalance_stops_the_write_at_the_next_record_and_settle_waits_for_it() -> None:
    async def scenario() -> None:
        writer, producer, _ = _writer()
        current = [True]

        def still_current() -> bool:
            return current[0]

        writes = [(f"0|c|{n}", {"o": n}) for n in range(5)]
        original = producer.send

        async def send(*args: Any) -> Any:
            if len(producer.sent) == 2:
                current[0] = False  # the rebalance begins while the third record is being handed over
            return await original(*args)

        producer.send = send  # type: ignore[method-assign]
        task = asyncio.create_task(writer.write(writes, still_current))
        await asyncio.sleep(0.01)
        assert len(producer.sent) == 3, "a record handed over after the rebalance began"
        settled = asyncio.create_task(writer.settle(5))
        await asyncio.sleep(0.01)
        assert not settled.done(), "settle returned while a write still waited for Kafka"
        for ack in producer.acks:
            producer.acknowledge(ack)
        await asyncio.wait_for(asyncio.gather(task, settled), 1)

    asyncio.run(scenario())


def test_a_batch_deletes_after_its_meta_record() -> None:
    state = Pipeline(Settings.from_env({}, live=False)).contact_state(0)
    state.records["0|c|old"] = {"o": 1, "last": 0.0}
    state._delete("0|c|old")
    state.add_scoped(30.0, ["all"], (("offered", 1.0),), offset=5)
    state.count("processed")
    keys = [key for key, _ in state.flush(5)]
    assert keys[-2:] == ["0|m|meta", "0|c|old"]
    assert {"0|b|30", "0|i|0"} <= set(keys[:-2])


def test_take_moves_a_recovered_partition_out_of_the_store_and_keep_puts_it_back() -> None:
    writer, _, store = _writer()
    store.update({b"2|c|a": b'{"o":3,"e":[]}', b"2|m|meta": b'{"o":3,"wm":9.0}'})
    store[b"12|c|b"] = b'{"o":1}'  # partition 12, not 2
    state = Pipeline(Settings.from_env({}, live=False), store_items=writer.take).contact_state(2)
    assert state.records["2|c|a"] == {"o": 3, "e": []} and state.watermark == 9.0
    assert set(store) == {b"1|c|gone", b"12|c|b"}, "partition 2 still held twice"
    state.records["2|c|a"]["o"] = 4
    writer.keep(2, state.records)
    assert orjson.loads(store[b"2|c|a"]) == {"o": 4, "e": []}
    assert set(store) == {b"1|c|gone", b"12|c|b", b"2|c|a", b"2|m|meta"}
    kept = {key: orjson.loads(orjson.dumps(record)) for key, record in state.records.items()}
    assert dict(writer.take(2)) == kept


def test_replay_empties_a_partition_and_has_faust_recover_it_from_the_first_offset() -> None:
    changelog = "app-contacts-changelog"
    recovery = SimpleNamespace(active_offsets={TP(changelog, 2): 5120, TP(changelog, 3): 77})
    writer, _, store = _writer(recovery)
    store[b"2|c|a"] = b'{"o":3}'
    writer.replay(2)
    assert b"2|c|a" not in store and b"1|c|gone" in store
    assert recovery.active_offsets == {TP(changelog, 3): 77}


def test_settle_waits_for_a_whole_batch_not_only_its_write() -> None:
    async def scenario() -> None:
        writer, _, _ = _writer()
        with writer.busy():
            settled = asyncio.create_task(writer.settle(5))
            await asyncio.sleep(0.01)
            assert not settled.done(), "settle returned while a batch was still being applied"
        assert await asyncio.wait_for(settled, 1) is True

    asyncio.run(scenario())


def test_release_puts_settled_state_back_and_recovers_the_rest_anew() -> None:
    from stream.runtime import release

    changelog = "app-contacts-changelog"
    recovery = SimpleNamespace(active_offsets={TP(changelog, 0): 40, TP(changelog, 1): 41})
    writer, _, store = _writer(recovery)
    pipeline = Pipeline(Settings.from_env({}, live=False))
    for partition in (0, 1):
        pipeline.contact_state(partition).count("processed")
    release(writer, pipeline.contacts, [0], in_changelog=True)
    release(writer, pipeline.contacts, [1, 5], in_changelog=False)
    assert pipeline.contacts == {}
    assert orjson.loads(store[b"0|m|meta"])["n"] == {"processed": 1}
    assert not any(key.startswith(b"1|") for key in store)
    assert recovery.active_offsets == {TP(changelog, 0): 40}


class _Kafka:
    """aiokafka's producer as far as record batches go: real batches, acknowledged by the test."""

    def __init__(self, batch_bytes: int = 110) -> None:
        self.batch_bytes = batch_bytes
        self.sent: list[tuple[str, int, list[tuple[bytes, bytes | None]]]] = []
        self.acks: list[asyncio.Future[Any]] = []
        self.on_send: Any = None

    def create_batch(self) -> BatchBuilder:
        return BatchBuilder(self.batch_bytes, 0)

    async def send_batch(self, batch: BatchBuilder, topic: str, *, partition: int) -> Any:
        if self.on_send is not None:
            self.on_send()
        assert batch.append(key=b"late", value=b"", timestamp=None) is None, "batch sent while still open"
        records = [(r.key, r.value) for r in DefaultRecordBatch(bytes(batch._build()))]
        self.sent.append((topic, partition, records))
        ack: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        return ack

    def acknowledge(self, index: int, base_offset: int) -> None:
        self.acks[index].set_result(SimpleNamespace(partition=self.sent[index][1], offset=base_offset))


def _batch_writer(kafka: _Kafka) -> TableWriter:
    writer, _, _ = _writer()
    writer.app.producer = SimpleNamespace(_producer=kafka)  # Faust's producer around aiokafka's
    return writer


def test_records_go_as_one_batch_a_partition_in_order_and_a_full_batch_starts_another() -> None:
    async def scenario() -> None:
        kafka = _Kafka()
        writer = _batch_writer(kafka)
        writes = [(f"{n % 2}|c|{n}", {"o": n}) for n in range(8)] + [("0|c|gone", None)]
        task = asyncio.create_task(writer.write(writes, lambda: True))
        await asyncio.sleep(0.01)
        by_partition: dict[int, list[tuple[bytes, bytes | None]]] = {0: [], 1: []}
        for topic, partition, records in kafka.sent:
            assert topic == "app-contacts-changelog"
            by_partition[partition] += records
        assert by_partition[0] == (
            [(f"0|c|{n}".encode(), orjson.dumps({"o": n})) for n in (0, 2, 4, 6)] + [(b"0|c|gone", None)]
        )
        assert by_partition[1] == [(f"1|c|{n}".encode(), orjson.dumps({"o": n})) for n in (1, 3, 5, 7)]
        assert len(kafka.sent) > 2, "a batch of 110 bytes takes these records in several"
        for index in range(len(kafka.sent) - 1):
            kafka.acknowledge(index, 10 * index)
        await asyncio.sleep(0.01)
        assert not task.done(), "returned before Kafka acknowledged every batch"
        last = len(kafka.sent) - 1
        kafka.acknowledge(last, 500)
        await asyncio.wait_for(task, 1)
        newest = {p: max(10 * i + len(r) - 1 if i < last else 500 + len(r) - 1
                         for i, (_, q, r) in enumerate(kafka.sent) if q == p) for p in (0, 1)}
        assert writer.offsets == newest, "the offset of each partition's last record acknowledged"

    asyncio.run(scenario())


def test_a_rebalance_while_a_batch_is_sent_sends_no_batch_after_it() -> None:
    async def scenario() -> None:
        kafka = _Kafka()
        writer = _batch_writer(kafka)
        current = [True]

        def rebalance_begins() -> None:
            current[0] = False  # while the first batch is being handed over

        kafka.on_send = rebalance_begins
        writes = [(f"{n % 2}|c|{n}", {"o": n}) for n in range(8)]
        task = asyncio.create_task(writer.write(writes, lambda: current[0]))
        await asyncio.sleep(0.01)
        assert len(kafka.sent) == 1, "a batch handed over after the rebalance began"
        partition, records = kafka.sent[0][1], kafka.sent[0][2]
        assert records == [
            (f"{partition}|c|{n}".encode(), orjson.dumps({"o": n})) for n in range(partition, 2 * len(records), 2)
        ]
        settled = asyncio.create_task(writer.settle(5))
        await asyncio.sleep(0.01)
        assert not settled.done(), "settle returned while a batch still waited for Kafka"
        kafka.acknowledge(0, 40)
        await asyncio.wait_for(asyncio.gather(task, settled), 1)
        assert writer.offsets == {partition: 40 + len(records) - 1}

    asyncio.run(scenario())


def test_keep_and_flush_write_fields_a_checkpoint_left_packed_as_json() -> None:
    """A bucket's scopes and a closed contact's events stay packed after a restart until read;
    putting the partition back into the store, or a batch's flush, writes them decoded."""
    from stream.buckets import packed

    writer, _, store = _writer()
    state = Pipeline(Settings.from_env({}, live=False)).contact_state(2)
    scopes, events = {"all": {"offered": 2.0}}, [[1.0, "contact.offered", "e1", "q", "voice", None, None]]
    state.load(iter([
        ("2|b|30", packed({"o": 3, "s": scopes})),
        ("2|c|a", packed({"o": 3, "e": events, "last": 1.0, "closed": True}, "e")),
        ("2|m|meta", {"o": 3, "wm": 40.0, "n": {}}),
    ]))
    assert isinstance(state.records["2|b|30"]["s"], bytes) and isinstance(state.records["2|c|a"]["e"], bytes)
    writer.keep(2, state.records)
    assert orjson.loads(store[b"2|b|30"]) == {"o": 3, "s": scopes}
    assert orjson.loads(store[b"2|c|a"]) == {"o": 3, "e": events, "last": 1.0, "closed": True}
    again = Pipeline(Settings.from_env({}, live=False)).contact_state(2)
    again.load(iter([("2|b|30", packed({"o": 3, "s": scopes})), ("2|m|meta", {"o": 3, "wm": 40.0, "n": {}})]))
    again.dirty.add("2|b|30")  # as any change marks it
    written = dict(again.flush(5))
    assert written["2|b|30"] == {"o": 5, "s": scopes}
