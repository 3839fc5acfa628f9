"""The worker's moving parts between Faust and the pure pipeline: send, write, publish.

Agents hand batches to ``Runtime.ingest`` / ``Runtime.ingest_facts``; the publish timer
calls ``Runtime.tick``. The order inside ``ingest`` is the crash-safety argument of
docs/reliability.md: dead letters and customer facts are sent and *acknowledged* by Kafka
before the batch's table writes are produced, and the table writes go buckets first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any, Protocol

import orjson
from aiokafka.partitioner import murmur2

from stream.exchange import PartialExchange
from stream.lanes import MAIN, rotation
from stream.pipeline import Pipeline
from stream.settings import Settings
from stream.snapshot import (
    Partial,
    Snapshot,
    contact_partial,
    customer_partial,
    effective_watermark,
    kpis_by_window,
    merge_counters,
    merge_totals,
    window_bounds,
)
from stream.windows import WINDOWS

log = logging.getLogger(__name__)
Fence = Callable[[], bool]
FACTS_PER_MESSAGE = 200  # customer facts packed into one message of the customer-facts topic
PUBLISH_DUTY = 0.1  # at most this share of the worker's time goes to building snapshots ...
PUBLISH_MIN_WAIT = 0.01  # seconds the publish timer always sleeps, so it never spins
PUBLISH_DUTY_KEEPING_UP = 0.5  # ... or this, while it keeps up with its input (Runtime.keeping_up)
BACKLOG_BATCHES = 4  # a worker with this many batches of input waiting in Kafka is behind
BEHIND_BATCH_SECONDS = 0.1  # the shortest batch wait of a worker behind (Runtime.batch_wait)


def _always() -> bool:
    return True


class Sink(Protocol):
    name: str

    async def publish(self, snapshot: Snapshot) -> None: ...

    async def close(self) -> None: ...


class Sender(Protocol):
    """A topic (Faust's ``Topic.send``) the runtime can produce to."""

    async def send(
        self, *, key: Any = None, value: Any = None, headers: Any = None,
        partition: int | None = None,
    ) -> Any: ...


class Writer(Protocol):
    """Where a batch's state writes go (stream/agents.py ``TableWriter``): in order, awaited.

    ``write`` returns once every record is durable, and stops early once ``current()``
    turns false (a rebalance began).
    """

    async def write(self, writes: Iterable[tuple[str, dict[str, Any] | None]], current: Fence) -> None: ...

    def busy(self) -> AbstractContextManager[None]:
        """Mark a batch in progress (``settle`` waits for it)."""
        ...

    def keep(self, partition: int, records: dict[str, Any]) -> None:
        """Put a partition's records back where recovery finds them (they equal its changelog)."""
        ...

    def replay(self, partition: int) -> None:
        """The partition's Python state is ahead of its changelog: recover it anew."""
        ...


@dataclass
class Runtime:
    """One worker's pipeline, outputs and publish loop."""

    settings: Settings
    pipeline: Pipeline
    dead_letters: Sender
    customer_facts: Sender
    contact_store: Writer
    customer_store: Writer
    sinks: Sequence[Sink] = ()
    exchange: PartialExchange | None = None
    clock: Callable[[], float] = time.time
    global_watermark: float = 0.0
    sink_health: dict[str, float] = field(default_factory=dict)
    last_snapshot: Snapshot | None = None
    next_publish_at: float = 0.0  # time.monotonic() before which the timer skips a tick
    kpi_memo: dict[str, Any] = field(default_factory=dict)  # lane -> stream/snapshot.py kpis_by_window memo
    lane_kpis: dict[str, dict[str, dict[str, Any]]] = field(default_factory=dict)  # lane -> window -> scope -> KPIs
    publishes: int = 0  # snapshots built: whose turn it is among the agent lanes
    older_sums: dict[str, Any] = field(default_factory=dict)  # lane -> stream/buckets.py compose cache
    build_seconds: float = 0.0  # time the last publish spent building its snapshot
    batch_fill: float = 1.0  # the last input batch's size over CCPULSE_BATCH_SIZE
    backlog: int = 0  # input messages already in Kafka after the last batch (stream/agents.py)

    async def ingest(self, batch: Sequence[tuple[int, int, bytes | None]], current: Fence = _always) -> bool:
        """Process one batch of input messages end to end; False if a rebalance fenced it off.

        ``current()`` says whether this worker still owns what it read. A rebalance while
        the batch's sends are in flight hands its partitions to another worker, which
        re-reads them: the batch's table writes are then dropped, never written by two.
        The whole batch counts as busy (``settle`` waits for it): from its first change to
        the state until the state either is in the changelog or has been forgotten.
        """
        self.batch_fill = len(batch) / max(1, self.settings.batch_size)
        with self.contact_store.busy():
            result = self.pipeline.process(batch, topic=self.settings.input_topic)
            log.debug("batch of %d: %d dead letters, %d customer facts, %d writes", len(batch),
                      len(result.dead_letters), len(result.customer_facts), len(result.writes))
            pending = [await self._dead_letter(letter) for letter in result.dead_letters]
            for partition, raw in fact_messages(result.customer_facts, self.settings.partitions):
                pending.append(await self.customer_facts.send(value=raw, partition=partition))
            if pending:
                await asyncio.gather(*pending)
            partitions = {p for p, _, _ in batch}
            store, states = self.contact_store, self.pipeline.contacts
            return await _write_or_forget(store, states, partitions, result.writes, current)

    async def ingest_facts(self, batch: Sequence[tuple[int, int, bytes]], current: Fence = _always) -> bool:
        """Process one batch of customer facts (stage 2); False if a rebalance fenced it off."""
        with self.customer_store.busy():
            facts = [(p, o, fact) for p, o, raw in batch for fact in unpack_facts(raw)]
            result = self.pipeline.process_customer_facts(facts)
            partitions = {p for p, _, _ in batch}
            store, states = self.customer_store, self.pipeline.customers
            return await _write_or_forget(store, states, partitions, result.writes, current)

    async def _dead_letter(self, letter: dict[str, Any]) -> Any:
        headers = dead_letter_headers(
            letter["reason"], letter["detail"], letter["topic"], letter["partition"], letter["offset"]
        )
        return await self.dead_letters.send(key=None, value=letter["original"], headers=headers)

    # -- publishing ---------------------------------------------------------------------------
    def publish_due(self, monotonic_now: float) -> bool:
        """Say whether the publish timer should build a snapshot now.

        Publishing is capped at PUBLISH_DUTY of the worker's time while it is behind
        (``keeping_up``): a snapshot that took 0.1 s to build is
        followed by 0.9 s for the events, 0.4 s (thousands of scopes during a replay) by
        3.6 s. What such a worker would publish is behind anyway; catching up sooner makes
        it fresh sooner (a quarter of the time instead of a tenth: 1,151-1,350 events/s
        against 1,477-1,765 on the benchmarks' throughput topic, 40,000 events; with
        ``keeping_up`` reading the backlog too, 1,517-1,646 against 1,105-1,514). A worker
        keeping up (smaller batches) has time to spare, and gives publishing up to
        PUBLISH_DUTY_KEEPING_UP: after a build it waits as long as the build took. What
        counts is the time spent building a snapshot (partials and KPIs, which hold the
        event loop), not the wall time of the whole publish: while a publish waits on Redis
        the loop runs batches, and counting those made a busy worker publish less.
        A cheap snapshot still goes out every ``publish_interval_seconds``.
        """
        return monotonic_now >= self.next_publish_at

    def publish_wait(self, monotonic_now: float, last_start: float) -> float:
        """Seconds the publish timer sleeps before its next try: until ``publish_interval_seconds``
        after the last publish began and the duty pause (``publish_due``) is over, whichever
        is later. Counting the interval from the end of a publish instead added a whole
        publish (~0.3 s at 1,000 events/s) to every cycle, and to the age of what it showed.
        """
        interval = self.settings.publish_interval_seconds
        return max(last_start + interval - monotonic_now, self.next_publish_at - monotonic_now, PUBLISH_MIN_WAIT)

    def batch_wait(self) -> float:
        """Seconds the next batch waits to fill (stream/batching.py): ``batch_seconds`` while
        the worker keeps up, at least BEHIND_BATCH_SECONDS while it is behind.

        Short batches make KPIs fresher, long ones cost fewer flushes a second: on the
        benchmarks' throughput topic 0.05 s batches ran at 4,820 and 4,243 events/s against
        5,057 and 4,892 at 0.1 s, alternating.
        """
        wait = self.settings.batch_seconds
        return wait if self.keeping_up() else max(wait, BEHIND_BATCH_SECONDS)

    def keeping_up(self) -> bool:
        """Whether the worker reads its input about as fast as it comes.

        Behind: the last input batch came at least half full, or four batches' worth of
        input was already waiting in Kafka after it (``backlog``; 8 s of input at 1,000
        events/s with the default batch size, so a live worker that falls a little behind
        now and then still publishes at its keeping-up pace). The second is what says so on
        a machine where Faust hands over fewer than half a batch in ``CCPULSE_BATCH_SECONDS``
        however far behind the worker is (about 4,000 messages/s here: 800 of 2,000).
        """
        return self.batch_fill < 0.5 and self.backlog < BACKLOG_BATCHES * self.settings.batch_size

    async def tick(
        self, contact_partitions: Iterable[int], customer_partitions: Iterable[int], leader: bool
    ) -> Snapshot:
        """Build a snapshot of every KPI and hand it to every sink."""
        self.build_seconds = 0.0
        try:
            return await self._tick(contact_partitions, customer_partitions, leader)
        finally:
            duty = PUBLISH_DUTY_KEEPING_UP if self.keeping_up() else PUBLISH_DUTY
            pause = self.build_seconds * (1.0 / duty - 1.0)
            self.next_publish_at = time.monotonic() + pause

    async def _tick(
        self, contact_partitions: Iterable[int], customer_partitions: Iterable[int], leader: bool
    ) -> Snapshot:
        now = self.clock()
        contacts = [self.pipeline.contact_state(p) for p in sorted(contact_partitions)]
        customers = [self.pipeline.customer_state(p) for p in sorted(customer_partitions)]
        data_wm = max([s.watermark for s in contacts] + [self.global_watermark])
        watermark = self._effective(data_wm, now)
        lanes = rotation(self.publishes)  # main and one agent slice (stream/lanes.py)
        self.publishes += 1
        started = time.perf_counter()
        local = [p for lane in lanes for p in self._partials(contacts, customers, watermark, now, (lane,))]
        self.build_seconds += time.perf_counter() - started
        everyone = await self.exchange.swap(local, lanes) if self.exchange else None
        partials = everyone if everyone is not None else local
        self.global_watermark = max([p["wm"] for p in partials if p["stage"] == "contacts"] + [data_wm])
        watermark = max(watermark, self._effective(self.global_watermark, now))
        started = time.perf_counter()
        snapshot = self._snapshot(partials, local, watermark, now, leader, lanes)
        self.build_seconds += time.perf_counter() - started
        await self._publish(snapshot)
        self.last_snapshot = snapshot
        return snapshot

    def _effective(self, data_wm: float, now: float) -> float:
        lateness = self.settings.allowed_lateness_seconds
        return effective_watermark(data_wm, now, self.settings.live, lateness)

    def _partials(
        self, contacts: list[Any], customers: list[Any], watermark: float, now: float,
        lanes: Sequence[str] | None = None,
    ) -> list[Partial]:
        s = self.settings
        out = [
            contact_partial(c, watermark, now, s.agent_stale_seconds, s.sentiment_negative_below, lanes)
            for c in contacts
        ]
        out += [customer_partial(c, watermark, now, lanes) for c in customers]
        return out

    def _snapshot(
        self, partials: list[Partial], local: list[Partial], watermark: float, now: float,
        leader: bool, lanes: Sequence[str] | None = None,
    ) -> Snapshot:
        """The snapshot of a publish. ``lanes``: the lanes the partials hold, one partial a
        lane (None: every scope in each partial); the other lanes' scopes keep the KPIs
        they were last given."""
        main = [p for p in partials if "lane" not in p]
        own = [p for p in local if "lane" not in p]  # this worker's partitions, main lane
        pipeline = merge_counters(own)
        pipeline.update(self.sink_health)
        if lanes is None:
            memo, cache = self.kpi_memo.setdefault("*", {}), self.older_sums.setdefault("*", {})
            windows = kpis_by_window(partials, watermark, memo, cache=cache)
        else:
            for lane in lanes:
                mine = main if lane == MAIN else [p for p in partials if p.get("lane") == lane]
                memo, cache = self.kpi_memo.setdefault(lane, {}), self.older_sums.setdefault(lane, {})
                self.lane_kpis[lane] = kpis_by_window(mine, watermark, memo, lane == MAIN, cache)
            windows = {window: {} for window in WINDOWS}
            for by_window in self.lane_kpis.values():
                for window, scoped in by_window.items():
                    windows[window].update(scoped)
        return Snapshot(
            app_id=self.settings.app_id,
            watermark=watermark,
            generated_at=now,
            windows=windows,
            bounds=window_bounds(self.pipeline.window_clock, watermark),
            totals=merge_totals(own),
            histogram_bounds=self.pipeline.bounds,
            pipeline=pipeline,
            sl_thresholds=self._thresholds(main),
            sl_targets=self._targets(main),
            leader=leader,
            partitions_seen=len(main),
        )

    def _thresholds(self, partials: list[Partial]) -> dict[str, float]:
        pairs = set()
        for partial in partials:
            for scope in partial.get("totals", {}):
                if not scope.startswith("queue:") or "|channel:" not in scope:
                    continue  # the customer stage's "all" totals name no queue
                queue, _, channel = scope.partition("|")
                pairs.add((queue.removeprefix("queue:"), channel.removeprefix("channel:")))
        return {f"{q}|{c}": self.settings.sl_threshold_seconds(q, c) for q, c in sorted(pairs)}

    def _targets(self, partials: list[Partial]) -> dict[str, float]:
        queues = {q for key in self._thresholds(partials) for q in [key.split("|")[0]]}
        targets = {q: self.settings.sl_target(q) for q in sorted(queues)}
        targets["default"] = self.settings.sl_target(None)
        return targets

    async def _publish(self, snapshot: Snapshot) -> None:
        for sink in self.sinks:
            try:
                await sink.publish(snapshot)
            except Exception:  # a sink must never stop the pipeline; its own metrics say why
                log.exception("sink %s failed to publish", sink.name)
                key = f"publish:{sink.name}:failures"
                self.sink_health[key] = self.sink_health.get(key, 0.0) + 1
            else:
                self._record_health(sink)

    def _record_health(self, sink: Sink) -> None:
        last = getattr(sink, "last_success_at", None)
        if last is not None:
            self.sink_health[f"publish:{sink.name}:last_success"] = last
        failures = getattr(sink, "failures", None)
        if failures is not None:
            self.sink_health[f"publish:{sink.name}:failures"] = float(failures)

    async def close(self) -> None:
        for sink in self.sinks:
            await sink.close()


async def _write_or_forget(
    store: Writer, states: dict[int, Any], partitions: set[int], writes: list[Any], current: Fence
) -> bool:
    """Write a batch's state; if a rebalance fenced the batch off, before or during the
    writes, forget its partitions' state instead (ahead of the changelog now: recovered anew)
    and return False. The partitions' next owner re-reads the batch."""
    if current():
        await store.write(writes, current)
    if current():
        return True
    release(store, states, partitions, in_changelog=False)
    return False


def release(
    store: Writer, states: dict[int, Any], partitions: Iterable[int], in_changelog: bool
) -> None:
    """Drop the Python state of partitions, leaving their store as the changelog has them:
    the records put back if every change is in the changelog, else the partition recovered
    anew from the changelog's first offset."""
    for partition in partitions:
        state = states.pop(partition, None)
        if state is None:
            continue
        if in_changelog:
            store.keep(partition, state.records)
        else:
            store.replay(partition)


def customer_partition(customer_id: str, partitions: int) -> int:
    """The customer-facts partition of a customer: where Kafka's default partitioner puts
    a message keyed by the customer id (murmur2, as the Java client and aiokafka do)."""
    return int(murmur2(customer_id.encode()) & 0x7FFFFFFF) % partitions


def fact_messages(facts: Iterable[dict[str, Any]], partitions: int) -> list[tuple[int, bytes]]:
    """Pack a batch's customer facts into one message per customer-facts partition.

    A message is a JSON array of facts in the order they were made, at most
    FACTS_PER_MESSAGE of them (far below Kafka's 1 MB message limit). One message per fact
    cost a producer send and a trip through Faust's stream each: about a fifth of a live
    worker's time at 1,000 events/s (py-spy, bench/freshness.py's load). Stage 2 takes every
    fact of a message at the message's offset; its records are stamped at the batch's last
    offset, so a re-read message is skipped whole or taken whole.
    """
    grouped: dict[int, list[dict[str, Any]]] = {}
    for fact in facts:
        grouped.setdefault(customer_partition(fact["customer_id"], partitions), []).append(fact)
    return [
        (partition, orjson.dumps(group[start : start + FACTS_PER_MESSAGE]))
        for partition, group in sorted(grouped.items())
        for start in range(0, len(group), FACTS_PER_MESSAGE)
    ]


def unpack_facts(raw: bytes) -> list[dict[str, Any]]:
    """The facts of one customer-facts message: an array, or (written before) one fact."""
    value = orjson.loads(raw)
    return value if isinstance(value, list) else [value]


def dead_letter_headers(reason: str, detail: str, topic: str, partition: int, offset: int) -> list[tuple[str, bytes]]:
    """Return the headers every dead letter carries (docs/events.md): reason, detail, source."""
    return [
        ("ccpulse-reason", reason.encode()),
        ("ccpulse-detail", detail.encode("utf-8", "replace")),
        ("ccpulse-source", f"{topic}/{partition}/{offset}".encode()),
    ]
