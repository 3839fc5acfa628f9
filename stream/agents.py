"""The Faust agents, tables, timer and web pages of a ccpulse worker.

Agents only unpack messages and hand them to the runtime (stream/runtime.py); all KPI
arithmetic lives in the Faust-free modules. Two stages:

- ``ingest`` reads the input topic (raw bytes), keeps contacts and agents;
- ``customers`` reads ``<app_id>-customer-facts`` (keyed by customer), keeps customers.

Before them, one ``platform-<format>`` agent per CCPULSE_PLATFORM_TOPICS pair maps a raw
topic of that platform's payloads onto the input topic (stream/platforms.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable, Iterable, Iterator, Mapping
from pathlib import Path
from typing import Any, cast

import faust
import orjson
from faust.types import TP

from stream.batching import within
from stream.buckets import plain
from stream.checkpoint import Background, Checkpoints, CheckpointStore, Job, write_job
from stream.feed import BulkFeed
from stream.platforms import PlatformFeed, forward
from stream.runtime import Runtime, release
from stream.settings import Settings, platform_topic_table
from stream.topics import CHANGELOG_CONFIG, TopicIds

log = logging.getLogger(__name__)


class PartitionedTable(faust.Table[bytes, bytes]):
    """A table whose keys name their own partition: ``b"<partition>|<kind>|<id>"``.

    A batch spans partitions, so the changelog partition cannot come from "the current
    event" (Faust's default); it comes from the key.
    """

    checkpoints: Checkpoints | None = None

    def partition_for_key(self, key: Any) -> int:
        return int(bytes(key).split(b"|", 1)[0])

    def _new_store(self) -> CheckpointStore:
        store = CheckpointStore(
            "memory://", self.app, self, table_name=self.name, key_type=self.key_type,
            key_serializer=self.key_serializer, value_serializer=self.value_serializer,
            value_type=self.value_type, loop=self.loop, options=self.options,
        )
        store.checkpoints = self.checkpoints
        return store


def state_table(
    app: faust.App, name: str, partitions: int, checkpoints: Checkpoints | None = None
) -> PartitionedTable:
    """Declare one raw-bytes state table with its changelog (and checkpoints, if given)."""
    table = PartitionedTable(
        app,
        name=name,
        beacon=app.tables.beacon,
        partitions=partitions,
        key_type=bytes,
        value_type=bytes,
        help=f"ccpulse {name} state (see stream/buckets.py)",
        extra_topic_configs=CHANGELOG_CONFIG,
    )
    table.checkpoints = checkpoints
    return cast(PartitionedTable, app.tables.add(table))


def compact_json(record: Any) -> bytes:
    """JSON bytes sized to their length, for values that stay in memory.

    ``orjson.dumps`` hands back bytes that keep its whole output buffer (4 KiB for a
    100-byte record); a table of 100k contacts held that way costs 400 MiB.
    """
    return bytes(memoryview(orjson.dumps(record)))


class TopicSender:
    """Produce raw bytes to a topic through the app's producer, skipping ``Topic.send``.

    ``Topic.send`` costs about 450 µs a message in Faust's layers; the producer itself about
    55 µs (measured on this 2-core machine). The returned future resolves once Kafka has
    acknowledged the message. A keyed message goes where Kafka's default partitioner puts
    it (murmur2 of the key), as ``Topic.send`` would.
    """

    def __init__(self, app: faust.App, topic: str) -> None:
        self.app = app
        self.topic = topic

    async def send(
        self, *, key: bytes | None = None, value: bytes | None = None, headers: Any = None,
        partition: int | None = None,
    ) -> Any:
        return await self.app.producer.send(self.topic, key, value, partition, None, headers)


class TableWriter:
    """Write a batch's records to a table's changelog, in order, and wait for Kafka.

    The records go straight to the changelog through the app's producer, as one Kafka record
    batch per partition (``_send_batches``; about 36 µs of CPU a record here, against about
    590 µs through ``Table.__setitem__``), and ``write``
    returns only once Kafka has acknowledged every one, so a batch is acknowledged (and
    its offsets committed) only after its state is durable. ``Table.__setitem__`` queues
    records in Faust's producer buffer instead, and Faust's flush before a commit gives up
    once nothing has been sent for 0.1 s: offsets could be committed ahead of the state
    they stand for, and a graceful stop dropped what was still queued (the 1 → 3 → 2 fault
    test saw ``waiting`` off by one).

    Writing stops at the first record after a rebalance began; the partition's next
    owner re-reads the batch, and a prefix of a batch is safe (docs/reliability.md).
    ``settle`` waits for a batch in progress (``busy``), so a revoked partition's changelog
    is complete before anyone else recovers it.

    The table's store holds a partition's records only while the worker's Python state of
    it does not: Faust's recovery fills it, ``take`` moves it into the Python state, and
    ``keep`` puts it back when the partition is revoked (it then equals the changelog).
    Keeping both copies cost about 580 bytes an open contact (bench/memory.py). A batch
    fenced off halfway leaves the Python state ahead of the changelog: ``replay`` drops
    the partition from the store and has Faust's next recovery read its changelog from
    the first offset.
    """

    def __init__(self, app: faust.App, table: PartitionedTable) -> None:
        self.app = app
        self.table = table
        self.idle = asyncio.Event()
        self.idle.set()
        self._busy = 0
        # partition -> offset of the newest changelog record its Python state includes
        self.offsets: dict[int, int] = {}

    @property
    def in_progress(self) -> bool:
        """Whether a batch is between its first state change and its last write."""
        return self._busy > 0

    @contextlib.contextmanager
    def busy(self) -> Iterator[None]:
        """Mark a batch in progress, from its first state change to its last write."""
        self._busy += 1
        self.idle.clear()
        try:
            yield
        finally:
            self._busy -= 1
            if not self._busy:
                self.idle.set()

    async def write(self, writes: Iterable[tuple[str, Any]], current: Callable[[], bool]) -> None:
        topic = self.table.changelog_topic.get_topic_name()
        kafka = getattr(self.app.producer, "_producer", None)  # aiokafka's, under Faust's
        with self.busy():
            if kafka is not None and hasattr(kafka, "create_batch"):
                acks = await self._send_batches(kafka, topic, writes, current)
            else:
                acks = await self._send_each(topic, writes, current)
            offsets = self.offsets
            metas = await asyncio.gather(*(ack for ack, _ in acks))  # one per ack, in order
            for meta, count in zip(metas, (n for _, n in acks), strict=True):
                last = meta.offset + count - 1  # a batch's records take consecutive offsets
                if last > offsets.get(meta.partition, -1):
                    offsets[meta.partition] = last

    async def _send_batches(
        self, kafka: Any, topic: str, writes: Iterable[tuple[str, Any]], current: Callable[[], bool]
    ) -> list[tuple[Any, int]]:
        """Send the records as one record batch per partition (a new one when it is full).

        A partition's records keep their order: its batches go out one after another, each
        appended to the log whole. Building a batch never yields to the event loop, so
        ``current()`` is asked before each batch is sent, and a rebalance leaves every
        partition with a prefix of its records. Against a ``producer.send`` a record (a future,
        a partitioner call, a debug log call and a callback each), the throughput topic's
        writes took 36 instead of 71 µs of CPU a record, 65 instead of 94 µs until
        acknowledged (bench/changelog.py, 8,270 records).
        """
        acks: list[tuple[Any, int]] = []
        open_batches: dict[int, tuple[Any, int]] = {}  # partition -> (batch, records in it)

        async def send(partition: int) -> None:
            batch, count = open_batches.pop(partition)
            batch.close()  # so that no producer.send() lands in it
            acks.append((await kafka.send_batch(batch, topic, partition=partition), count))

        partition_for_key = self.table.partition_for_key
        for key, record in writes:
            raw_key = key.encode()
            value = None if record is None else orjson.dumps(record)
            partition = partition_for_key(raw_key)
            batch, count = open_batches.get(partition) or (kafka.create_batch(), 0)
            if batch.append(key=raw_key, value=value, timestamp=None) is None:  # full
                open_batches[partition] = (batch, count)
                if not current():
                    return acks
                await send(partition)
                batch, count = kafka.create_batch(), 0
                batch.append(key=raw_key, value=value, timestamp=None)  # a new batch takes any first record
            open_batches[partition] = (batch, count + 1)
        for partition in sorted(open_batches):
            if not current():
                break
            await send(partition)
        return acks

    async def _send_each(
        self, topic: str, writes: Iterable[tuple[str, Any]], current: Callable[[], bool]
    ) -> list[tuple[Any, int]]:
        """Send the records one ``producer.send`` each (a producer without record batches)."""
        send = self.app.producer.send
        acks = []
        for key, record in writes:
            if not current():
                break
            raw_key = key.encode()
            value = None if record is None else orjson.dumps(record)
            partition = self.table.partition_for_key(raw_key)
            acks.append((await send(topic, raw_key, value, partition, None, None), 1))
        return acks

    async def settle(self, timeout: float = 60.0) -> bool:
        """Wait until no batch is in progress (at most ``timeout`` seconds); True if none is."""
        try:
            await asyncio.wait_for(self.idle.wait(), timeout)
        except TimeoutError:
            log.warning("%s: a state write still in progress after %.0f s", self.table.name, timeout)
            return False
        return True

    # -- the store, while the Python state is away ---------------------------------------------
    def _partition_keys(self, partition: int) -> list[bytes]:
        prefix = f"{partition}|".encode()
        return [key for key in list(self.table.data.keys()) if key.startswith(prefix)]

    def _drop(self, keys: Iterable[bytes]) -> None:
        store = self.table.data
        owners = getattr(store, "_key_partition", {})  # faust's memory store: key -> partition
        for key in keys:
            store.pop(key, None)
            owners.pop(key, None)

    def take(self, partition: int) -> Iterator[tuple[str, Any]]:
        """Hand over (key, record) of a recovered partition, and remove them from the store.

        The records are the partition's checkpoint (stream/checkpoint.py), if recovery
        started from one, with the changelog records read after it in their place.
        """
        keys = self._partition_keys(partition)
        store = cast(CheckpointStore, self.table.data)
        items = list(store.take_checkpoint(partition).items())
        items.extend((key.decode(), orjson.loads(store[key])) for key in keys)
        self._drop(keys)
        self.offsets[partition] = self._recovered_offset(partition)
        return iter(items)

    def _recovered_offset(self, partition: int) -> int:
        """The last changelog offset Faust's recovery has read (or started after) for a partition."""
        recovery = getattr(self.app.tables, "_recovery", None)
        changelog = self.table.changelog_topic.get_topic_name()
        offset = None if recovery is None else recovery.active_offsets.get(TP(changelog, partition))
        return -1 if offset is None else int(offset)

    def checkpoint_jobs(self, states: Mapping[int, Any]) -> list[Job]:
        """What a checkpoint of every partition's Python state writes, as of now.

        Empty while a batch is in progress: between batches each state equals its changelog
        through ``offsets[partition]``. Empty too if the changelog's topic id is unknown.
        """
        checkpoints = self.table.checkpoints
        if checkpoints is None or self.in_progress:
            return []
        topic = self.table.changelog_topic.get_topic_name()
        if checkpoints.topic_id(topic) is None:  # asked here, never in a forked child
            return []
        return [
            (checkpoints, topic, partition, self.offsets[partition], state.checkpoint_body)
            for partition, state in list(states.items())
            if partition in self.offsets
        ]

    def checkpoint(self, states: Mapping[int, Any]) -> int:
        """Write a checkpoint of every partition's Python state now; return the records written."""
        written = 0
        for job in self.checkpoint_jobs(states):
            try:
                written += write_job(job)
            except (OSError, ValueError) as error:  # a restart then reads the changelog whole
                log.warning("%s[%d]: no checkpoint written: %s", job[1], job[2], error)
        return written

    def keep(self, partition: int, records: Mapping[str, Any]) -> None:
        """Put a partition's records back into the store (they equal its changelog)."""
        store = self.table.data
        owners = getattr(store, "_key_partition", None)
        self._drop(self._partition_keys(partition))
        for key, record in records.items():
            raw_key = key.encode()
            store[raw_key] = compact_json(plain(record))  # the store holds JSON, never a blob
            if owners is not None:  # so faust drops it once the partition is assigned elsewhere
                owners[raw_key] = partition

    def replay(self, partition: int) -> None:
        """Forget what the store holds of a partition; recover it from the changelog's start."""
        self._drop(self._partition_keys(partition))
        cast(CheckpointStore, self.table.data).forget_checkpoint(partition)
        self.offsets.pop(partition, None)
        recovery = getattr(self.app.tables, "_recovery", None)  # faust's, once it has started
        if recovery is not None:
            changelog = self.table.changelog_topic.get_topic_name()
            recovery.active_offsets.pop(TP(changelog, partition), None)


def register(app: faust.App, settings: Settings, runtime_factory: Any) -> Runtime:
    """Declare topics, tables, agents, the publish timer and web pages on ``app``."""
    raw: dict[str, Any] = {"key_type": bytes, "value_type": bytes, "key_serializer": "raw", "value_serializer": "raw"}
    n = settings.partitions
    input_topic = app.topic(settings.input_topic, partitions=n, **raw)
    facts_topic = app.topic(f"{settings.app_id}-customer-facts", partitions=n, **raw)
    app.topic(settings.dead_letter_topic, partitions=n, **raw)  # declared, so it is created
    checkpoints = None
    if settings.checkpoint_max_age_seconds > 0:
        checkpoints = Checkpoints(
            Path(settings.data_dir) / "checkpoints" / settings.app_id,
            TopicIds(settings),
            settings.checkpoint_max_age_seconds,
        )
        checkpoints.remove_scratch(older_than=3600.0)  # left by writers killed mid-write
    contacts = TableWriter(app, state_table(app, "contacts", n, checkpoints))
    customers = TableWriter(app, state_table(app, "customers", n, checkpoints))
    dead_letters = TopicSender(app, settings.dead_letter_topic)
    runtime: Runtime = runtime_factory(
        dead_letters,
        TopicSender(app, facts_topic.get_topic_name()),
        contacts,
        customers,
    )
    epoch = Epoch()
    for fmt, name in platform_topic_table(settings).items():
        source = app.topic(name, **raw)
        platform_agent(
            app, settings, epoch, PlatformFeed(fmt), source, TopicSender(app, settings.input_topic), dead_letters
        )

    pipeline = runtime.pipeline
    probe = kafka_probe(app)
    contact_order = OffsetGuard(app, settings.input_topic, lambda p: pipeline.contact_state(p).meta["o"], probe)
    fact_order = OffsetGuard(app, facts_topic.get_topic_name(), lambda p: pipeline.customer_state(p).meta["o"], probe)

    feed = BulkFeed(app, settings.input_topic, maxsize=max(4096, 2 * settings.batch_size))
    feed.install()

    @app.agent(input_topic, name="ingest", concurrency=1)
    async def ingest(stream: faust.StreamT[bytes]) -> None:
        # the agent's stream subscribes the topic; its messages come in batches through the
        # feed (stream/feed.py), not one by one through the stream
        async for messages in feed.batches(settings.batch_size, runtime.batch_wait):
            with _Fence(app, epoch, messages) as fence:
                runtime.backlog = backlog(app.consumer, settings.input_topic, fence.messages)
                await runtime.ingest(await contact_order.admit(fence), fence.current)
            feed.acknowledge(messages)

    @app.agent(facts_topic, name="customers", concurrency=1)
    async def customer_stage(stream: faust.StreamT[bytes]) -> None:
        # a message carries the facts of one input batch for this partition (up to 200)
        batches = cast("faust.Stream[bytes]", stream).take_events(
            max(1, settings.batch_size // 20), within=within(runtime.batch_wait)
        )
        async for events in batches:
            with _Fence(app, epoch, [event.message for event in events]) as fence:
                await runtime.ingest_facts(await fact_order.admit(fence), fence.current)

    @app.task  # type: ignore[untyped-decorator]  # faust's TaskArg is an unparameterised Awaitable
    async def publish_loop() -> None:
        # not ``app.timer``: Faust warns "Timer ... is overlapping" whenever a publish takes
        # longer than the interval, and at 0.25 s that is most publishes of a busy worker.
        # Publishes never overlap here; the duty cap (Runtime.publish_due) spaces them out.
        last_start = -math.inf
        while not app.should_stop:
            await app.sleep(runtime.publish_wait(time.monotonic(), last_start))
            last_start = time.monotonic()
            await publish()

    async def publish() -> None:
        if app.rebalancing or getattr(app, "in_recovery", False):
            return
        if not runtime.publish_due(time.monotonic()):
            return
        runtime.sink_health.update(skipped_offsets({"contacts": contact_order, "customers": fact_order}))
        owned = app.consumer.assignment()
        await runtime.tick(
            _partitions(owned, settings.input_topic),
            _partitions(owned, facts_topic.get_topic_name()),
            leader=app.is_leader(),
        )

    @app.on_partitions_assigned.connect  # type: ignore[arg-type]  # mode's SignalHandlerT fits no def
    async def assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
        epoch.assigned_at = app.rebalancing_count
        commit_past_overlapping_gaps(app.consumer)

    @app.on_partitions_revoked.connect  # type: ignore[arg-type]  # mode's SignalHandlerT fits no def
    async def forget(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
        for message in feed.drop():  # fetched before the rebalance: the seek back hands them over again
            _leave_unacknowledged(message)
        # the changelog is complete before the new owner recovers it
        pipeline = runtime.pipeline
        for writer, states, topic in (
            (contacts, pipeline.contacts, settings.input_topic),
            (customers, pipeline.customers, facts_topic.get_topic_name()),
        ):
            settled = await writer.settle()  # then every change of its Python state is written
            release(writer, states, _partitions(revoked, topic), in_changelog=settled)

    background = Background()

    @app.task  # type: ignore[untyped-decorator]  # faust's TaskArg is an unparameterised Awaitable
    async def checkpoint_loop() -> None:
        interval = settings.checkpoint_interval_seconds
        if checkpoints is None or interval <= 0:
            return
        while not app.should_stop:
            await app.sleep(interval)
            busy = background.running()  # reaps the last child: counted once it is done
            runtime.sink_health.update(background.health())
            if app.rebalancing or getattr(app, "in_recovery", False) or busy:
                continue
            for _ in range(200):  # a moment between batches of both stages, within 2 s
                if not contacts.in_progress and not customers.in_progress:
                    break
                await asyncio.sleep(0.01)
            pipeline = runtime.pipeline
            jobs = contacts.checkpoint_jobs(pipeline.contacts) + customers.checkpoint_jobs(pipeline.customers)
            background.start(jobs)

    @app.on_before_shutdown.connect  # type: ignore[arg-type]  # mode's SignalHandlerT fits no def
    async def checkpoint(sender: Any, **kwargs: Any) -> None:
        # Faust has stopped fetching; a batch in progress finishes first
        background.stop()
        pipeline = runtime.pipeline
        for writer, states in ((contacts, pipeline.contacts), (customers, pipeline.customers)):
            started = time.monotonic()
            if await writer.settle(timeout=10.0):
                records = writer.checkpoint(states)
                log.info("%s: checkpoint of %d partitions, %d records in %.2f s", writer.table.name,
                         len(states), records, time.monotonic() - started)

    return runtime


def platform_agent(
    app: faust.App,
    settings: Settings,
    epoch: Epoch,
    feed: PlatformFeed,
    source: Any,
    input_topic: Any,
    dead_letters: Any,
) -> None:
    """Declare the agent mapping one platform's raw topic onto the input topic."""
    topic = source.get_topic_name()

    @app.agent(source, name=f"platform-{feed.format}", concurrency=1)
    async def map_platform(stream: faust.StreamT[bytes]) -> None:
        # take_events is faust.Stream's, not in StreamT
        batches = cast("faust.Stream[bytes]", stream).take_events(settings.batch_size, within=settings.batch_seconds)
        async for events in batches:
            with _Fence(app, epoch, [event.message for event in events]) as fence:
                await forward(feed, topic, fence.batch(), input_topic, dead_letters)


class Epoch:
    """The rebalance count at which the current assignment was made (``app.rebalancing_count``).

    Faust counts a rebalance when it starts, before partitions are revoked; the generation
    id changes only when the new assignment arrives. Between the two, messages of the old
    generation still look current, though Faust will seek back to the committed offsets and
    hand them over again once the new assignment's recovery is done.
    """

    assigned_at: int = -1


class _Fence:
    """Keep a batch read before a rebalance from being applied or acknowledged after it.

    Faust's ``take_events`` acknowledges a whole batch once the agent moves on, and a
    batch may have been read (or still be sending) when a rebalance started. Such events
    must be re-read by whoever owns the partition next: they are marked as acknowledged on
    the message itself, so Faust's consumer never commits past them, and the seek to the
    committed offsets that ends every rebalance hands them over again.
    """

    def __init__(self, app: faust.App, epoch: Epoch, messages: Iterable[Any]) -> None:
        self.app = app
        self.generation = app.consumer_generation_id
        self.rebalances = app.rebalancing_count
        self.settled = self.rebalances == epoch.assigned_at  # no rebalance begun since assignment
        self.messages = list(messages)  # Faust's messages (of raw topics: ``value`` is the bytes)

    def current(self) -> bool:
        """True while no rebalance has begun since the batch was handed over."""
        return bool(
            self.app.consumer_generation_id == self.generation and self.app.rebalancing_count == self.rebalances
        )

    def batch(self) -> list[tuple[int, int, Any]]:
        """(partition, offset, value) of each message to apply: each offset once.

        Faust can hand the same offset over twice in one batch (seen in the fault tests,
        107 messages for the 106 offsets 4880-4985: after a rebalance its consumer seeks
        back to the committed offset while fetched records are still on their way). Inside
        a batch no record is stamped with its offset yet, so a repeat would count twice.
        """
        fresh = []
        seen: set[tuple[int, int]] = set()
        for message in self.messages:
            if message.generation_id != self.generation or not self.settled:
                _leave_unacknowledged(message)  # stale: re-delivered after the rebalance
                continue
            where = (message.partition, message.offset)
            if where not in seen:
                seen.add(where)
                fresh.append((message.partition, message.offset, message.value))
        return fresh

    def leave(self, where: set[tuple[int, int]]) -> None:
        """Leave these (partition, offset) messages unacknowledged, for a re-read."""
        for message in self.messages:
            if (message.partition, message.offset) in where:
                _leave_unacknowledged(message)

    def __enter__(self) -> _Fence:
        return self

    def __exit__(self, kind: Any, error: Any, trace: Any) -> None:
        """Leave the batch unacknowledged unless it finished in the generation it began in.

        ``take_events`` acknowledges the batch in a ``finally``, even when the agent was
        cancelled (a graceful shutdown) or failed halfway through its table writes; Faust
        would then commit offsets whose state was never written.
        """
        if error is not None or not self.current():
            for message in self.messages:
                _leave_unacknowledged(message)


def _leave_unacknowledged(message: Any) -> None:
    """Keep Faust from ever acknowledging (and so committing past) a message.

    It is marked acknowledged on the message only, so the consumer never records it; whoever
    reads the partition from its committed offset next (after a rebalance, or a re-read by
    ``OffsetGuard``) gets it again.
    """
    message.acked = True


Probe = Callable[[TP, int], Awaitable[int | None]]


class OffsetGuard:
    """Apply each partition's messages in offset order, from where its state stands.

    After a rebalance Faust sometimes hands a partition over starting *past* its committed
    offset (records fetched before the seek back to the committed offset), and its consumer
    then records the skipped offsets as a gap, commits past them, and drops them when they
    are fetched again. Seen in the 1 → 3 → 2 fault test: a customer-facts partition whose
    state stood at offset 37 was handed offset 738 next, and facts 38–737 were never applied.

    So when a message is more than one past its partition's last applied offset
    (``last_offset``, kept in the state's meta record), Kafka is asked which offset really
    comes next (``probe``): offsets that are not in the topic (transaction markers,
    compaction, retention) are skipped; otherwise the message and the rest of its
    partition's messages in the batch are left unacknowledged, the consumer is sought back
    to the first missing offset (at most once every ``retry_seconds``) and Faust's gap
    record from there on is dropped. Messages already buffered past the gap keep arriving
    for a few seconds before the re-read ones (the fault tests saw up to four re-reads),
    often in the same batch: each message is judged on its own, so a batch that holds the
    tail of the stale ones and then the first missing offset applies from there (judging
    the whole partition by its first jump left the missing offset behind every time, and
    each re-read's head landed behind the previous one's tail: a partition starved);
    until the first missing offset is handed over, the consumer's read offset is held down
    to it (``ReadOffsets``), or Faust drops the re-read messages as already read.
    Should the probe fail, a jump is taken as real after ``retries`` re-reads, with a
    warning, and the offsets gone on from are counted (``given_up_offsets``, exported as
    ``ccpulse_offsets_skipped_total{reason="given_up"}``, alerted on). A partition with no
    state yet starts at the first offset its topic holds, not at its committed offset: the
    1 → 3 → 2 test once saw customer facts 0–5 committed with no state ever written for
    them, and the next owner started at offset 6 on empty state.
    """

    def __init__(self, app: Any, topic: str, last_offset: Callable[[int], int], probe: Probe,
                 retries: int = 30, retry_seconds: float = 1.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.app = app
        self.topic = topic
        self.last_offset = last_offset
        self.probe = probe
        self.retries = retries
        self.retry_seconds = retry_seconds
        self.clock = clock
        self.rereads: dict[int, tuple[int, int, float]] = {}  # partition -> (offset, re-reads, last at)
        self.next_present: dict[int, tuple[int, int | None]] = {}  # partition -> (offset asked, answer)
        self.skipped_offsets = 0  # offsets found absent from the topic: nothing was there to apply
        self.given_up_offsets = 0  # offsets gone on from without their messages: events possibly lost

    async def admit(self, fence: _Fence) -> list[tuple[int, int, Any]]:
        """The batch's messages that follow on from their partition's state."""
        admitted, left = [], set()
        following: dict[int, int] = {}  # partition -> next offset expected
        reread: dict[int, tuple[int, int]] = {}  # partition -> (first missing offset, offset handed over)
        for partition, offset, value in fence.batch():
            if partition not in following:
                following[partition] = self.last_offset(partition) + 1  # 0 for a partition without state
            expected = following[partition]
            if offset > expected:
                present = await self._next_present(partition, expected)
                if present is not None and present > expected:
                    if expected > 0:
                        self.skipped_offsets += present - expected
                    expected = following[partition] = present  # absent from the topic: nothing to apply
                if offset > expected and not self._given_up(partition, expected, offset):
                    reread.setdefault(partition, (expected, offset))
                    left.add((partition, offset))
                    continue
            if offset == expected and (partition in reread or partition in self.rereads):
                reread.pop(partition, None)  # the missing offset came after stale ones: no re-read
                if self.rereads.get(partition, (-1,))[0] == offset:
                    self.rereads.pop(partition)  # the re-read from there has arrived
            following[partition] = max(expected, offset + 1)
            admitted.append((partition, offset, value))
        if left:
            fence.leave(left)
        self._lift_floors(following, reread)
        for partition, (missing, handed) in reread.items():
            await self._reread(partition, missing, handed)
        return admitted

    def _floors(self) -> dict[TP, int] | None:
        """The consumer's read-offset floors (``ReadOffsets``), if it has them."""
        return getattr(getattr(self.app.consumer, "_read_offset", None), "floors", None)

    def _lift_floors(self, following: Mapping[int, int], reread: Mapping[int, Any]) -> None:
        """Drop the read-offset floor of partitions whose re-read offset was handed over."""
        floors = self._floors()
        if not floors:
            return
        for partition, expected in following.items():
            tp = TP(self.topic, partition)
            floor = floors.get(tp)
            if floor is not None and partition not in reread and expected > floor:
                del floors[tp]

    async def _next_present(self, partition: int, offset: int) -> int | None:
        """The first offset at or after ``offset`` that holds a record (asked once per offset)."""
        asked, answer = self.next_present.get(partition, (-1, None))
        if asked != offset:
            try:
                answer = await self.probe(TP(self.topic, partition), offset)
            except Exception as exc:  # the re-reads below still get it right, only slower
                log.warning("%s[%d]: could not ask Kafka about offset %d (%s)", self.topic, partition, offset, exc)
                answer = None
            self.next_present[partition] = (offset, answer)
            if answer is not None and answer > offset:
                log.info("%s[%d]: offsets %d-%d are not in the topic", self.topic, partition, offset, answer - 1)
        return answer

    def _given_up(self, partition: int, expected: int, offset: int) -> bool:
        sought, times, _ = self.rereads.get(partition, (-1, 0, 0.0))
        if sought != expected or times < self.retries:
            return False
        log.warning("%s[%d]: offsets %d-%d still missing after %d re-reads; going on from %d",
                    self.topic, partition, expected, offset - 1, times, offset)
        self.rereads.pop(partition, None)
        floors = self._floors()
        if floors:
            floors.pop(TP(self.topic, partition), None)
        self.given_up_offsets += offset - expected
        return True

    async def _reread(self, partition: int, offset: int, handed: int) -> None:
        now = self.clock()
        sought, times, at = self.rereads.get(partition, (-1, 0, 0.0))
        if sought == offset and now - at < self.retry_seconds:
            return  # a re-read from there is under way; its messages are still to come
        self.rereads[partition] = (offset, times + 1 if sought == offset else 1, now)
        log.warning("%s[%d]: handed offset %d before %d; re-reading from %d",
                    self.topic, partition, handed, offset, offset)
        tp = TP(self.topic, partition)
        consumer = self.app.consumer
        gaps = getattr(consumer, "_gap", None)
        if gaps is not None and tp in gaps:
            gaps[tp].chop(offset, 2**63)  # Faust would otherwise commit past the re-read offsets
        thread = getattr(consumer, "_thread", None)
        try:
            if thread is not None and hasattr(thread, "seek_wait"):
                # in the consumer's own thread: Faust's Consumer.seek calls aiokafka from this
                # one, racing its fetcher (seen: KeyError in Fetcher.fetched_records, a crash)
                await thread.seek_wait({tp: offset})
            else:
                await consumer.seek(tp, offset)
        except Exception as exc:  # e.g. the partition was revoked meanwhile: its next owner reads it
            log.warning("%s[%d]: re-read from %d not started (%s)", self.topic, partition, offset, exc)
            return
        read = getattr(consumer, "_read_offset", None)
        if read is not None:
            # What Consumer.seek does after its seek: Faust drops every fetched message below
            # the partition's read offset as already read, so without this the re-read
            # messages never arrive and the partition stalls at the gap (seen: two workers
            # of the scale-out benchmark stuck for minutes after one re-read each).
            read[tp] = offset if offset else None
            floors = getattr(read, "floors", None)
            if floors is not None:  # until the re-read offset is handed over (ReadOffsets)
                floors[tp] = offset


def skipped_offsets(guards: Mapping[str, OffsetGuard]) -> dict[str, float]:
    """The offsets each stage's guard went on from, as ``offsets:<stage>:<reason>`` keys
    (sinks/prometheus.py ``offset_families``): ``absent`` (not in the topic, nothing lost) and
    ``given_up`` (still missing after every re-read: events may be lost)."""
    out = {}
    for stage, guard in guards.items():
        out[f"offsets:{stage}:absent"] = float(guard.skipped_offsets)
        out[f"offsets:{stage}:given_up"] = float(guard.given_up_offsets)
    return out


def commit_past_overlapping_gaps(consumer: Any) -> None:
    """Keep Faust's committed offset from crawling one offset a commit (once per consumer).

    Faust commits up to the first run of consecutive offsets in its sorted list of acknowledged
    offsets, after adding to it the offsets of its "gaps" (offsets it skipped reading, counted
    as done). An offset skipped and then read after all (re-delivered after a rebalance, or
    re-read by ``OffsetGuard``) is in both, the list holds it twice, every duplicate ends a
    run, and the commit moved by one offset a second (seen: two workers of the scale-out
    benchmark, state at the end of the topic, commits 1,400 offsets behind and crawling).
    Before Faust computes a partition's offset, offsets already acknowledged are taken out
    of its gaps.
    """
    if getattr(consumer, "_ccpulse_gap_fix", False) or not hasattr(consumer, "_new_offset"):
        return
    compute = consumer._new_offset

    def new_offset(tp: TP) -> int | None:
        drop_acknowledged_from_gaps(consumer, tp)
        return compute(tp)  # type: ignore[no-any-return]

    consumer._new_offset = new_offset
    consumer._ccpulse_gap_fix = True


def drop_acknowledged_from_gaps(consumer: Any, tp: TP) -> None:
    """Chop out of ``consumer._gap[tp]`` every offset ``consumer._acked[tp]`` holds."""
    acked, gaps = consumer._acked.get(tp), consumer._gap.get(tp)
    if not acked or not gaps:
        return
    low, high = min(acked), max(acked) + 1
    for interval in sorted(gaps.overlap(low, high)):
        for offset in [o for o in acked if interval.begin <= o < interval.end]:
            gaps.chop(offset, offset + 1)


class ReadOffsets(defaultdict):  # type: ignore[type-arg]
    """Faust's read offsets (``Consumer._read_offset``: the newest offset handed over per
    partition), with floors that ``OffsetGuard`` sets while it re-reads a partition.

    Faust's fetch loop drops every fetched message below a partition's read offset as
    already read, and moves the read offset to each message it hands over. After a seek
    back to a missing offset, messages fetched before the seek (the rest of the fetch
    being handed over, records aiokafka had buffered) still arrive first and move the read
    offset past the re-read, whose messages are then dropped: the SIGKILL fault test once
    saw a partition re-read from 8640 a dozen times without ever getting 8640. While a
    floor is set, the read offset Faust sees is at most the floor, so the re-read messages
    are handed over whatever came before them.
    """

    def __init__(self, initial: Mapping[TP, int | None] | None = None) -> None:
        super().__init__(lambda: None, initial or {})
        self.floors: dict[TP, int] = {}

    def __getitem__(self, tp: TP) -> int | None:
        value: int | None = super().__getitem__(tp)
        floor = self.floors.get(tp)
        if floor is not None and (value is None or value > floor):
            return floor
        return value

    def pop(self, tp: TP, *default: Any) -> Any:
        """Forget a partition (Faust pops revoked ones), its floor with it."""
        self.floors.pop(tp, None)
        return super().pop(tp, *default)


def use_read_offsets(app: faust.App) -> None:
    """Give the app's consumer a ``ReadOffsets`` from the moment it is made.

    Faust's fetch loop binds the read offsets' methods once when it starts, so the mapping
    is replaced as the consumer is created, before any fetch.
    """

    def read_offsets(consumer: Any) -> None:
        consumer._read_offset = ReadOffsets(getattr(consumer, "_read_offset", None))  # Faust's private one

    on_new_consumer(app, read_offsets)


def on_new_consumer(app: faust.App, adjust: Callable[[Any], None]) -> None:
    """Run ``adjust`` on the app's consumer as it is made, before it fetches anything."""
    make = app._new_consumer

    def new_consumer() -> Any:
        consumer = make()
        adjust(consumer)
        return consumer

    cast(Any, app)._new_consumer = new_consumer  # an instance attribute, shadowing the method


def kafka_probe(app: faust.App) -> Probe:
    """A probe asking the broker, with a short-lived consumer of its own (no group, nothing committed)."""
    from aiokafka import AIOKafkaConsumer, TopicPartition
    from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth, server_list

    async def next_present(tp: TP, offset: int) -> int | None:
        conf = app.conf
        consumer = AIOKafkaConsumer(
            bootstrap_servers=server_list(conf.broker, 9092),
            client_id=f"{conf.broker_client_id}-offset-probe",
            enable_auto_commit=False,
            auto_offset_reset="earliest",  # below the log start: the first offset still kept
            **credentials_to_aiokafka_auth(conf.broker_credentials, conf.ssl_context),
        )
        await consumer.start()
        try:
            where = TopicPartition(tp.topic, tp.partition)
            consumer.assign([where])
            consumer.seek(where, offset)
            fetched = await consumer.getmany(where, timeout_ms=5000, max_records=1)
            records = fetched.get(where) or []
            return records[0].offset if records else None
        finally:
            await consumer.stop()

    return next_present


def backlog(consumer: Any, topic: str, messages: Iterable[Any]) -> int:
    """Messages of ``topic`` already in Kafka after the newest of each partition in ``messages``.

    From the high watermarks the consumer learnt at its last fetch; a partition whose high
    watermark is not known yet counts none.
    """
    newest: dict[int, int] = {}
    for message in messages:
        if message.offset >= newest.get(message.partition, -1):
            newest[message.partition] = message.offset
    waiting = 0
    for partition, offset in newest.items():
        try:
            high = consumer.highwater(TP(topic, partition))
        except Exception:  # not assigned (any more), or no fetch answered yet
            continue
        if high is not None:
            waiting += max(0, int(high) - offset - 1)
    return waiting


def _partitions(assignment: set[TP], topic: str) -> list[int]:
    return sorted(tp.partition for tp in assignment if tp.topic == topic)
