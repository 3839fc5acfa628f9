"""Per-partition bucket state: records, fine and interval buckets, and idempotent writes.

A ``BucketState`` holds what one partition of a stage contributes: entity records, fine and
interval buckets of aggregates, cumulative totals (for Prometheus counters) and a meta
record (watermark, pipeline counters). Every record is a JSON-able dict stored in one Faust
table under ``"<partition>|<kind>|<id>"``, so it goes to the changelog partition of its
input partition, in write order.

Exactly-once effect from at-least-once delivery (docs/reliability.md):

- every record carries ``o``, the input offset through which it includes every event;
- an event at offset ``x`` changes a record only if ``record.o < x``;
- a batch is written buckets first, then entity records, then meta, all stamped with
  ``o = last offset of the batch``. The changelog keeps that order, so if an entity record
  survived a crash, the bucket writes of its batch survived too.

After a crash Faust re-delivers from the last committed offset; records that already hold
an event skip it, the others take it. Nothing is lost, nothing counts twice.
"""

from __future__ import annotations

import itertools
import marshal
import secrets
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stream import aggregates
from stream.lanes import LANES
from stream.lanes import split as split_lanes
from stream.lanes import wanted as wanted_lanes
from stream.lifecycle import Fact
from stream.windows import WindowClock

Record = dict[str, Any]
MAX_IDS = 512  # event ids remembered per record (messages of one chat, agent changes)
SWEEP_SECONDS = 60  # entities past their horizon are forgotten once a minute of event time
BLOCK_SECONDS = 300  # rolling windows add up whole five-minute blocks of fine buckets
# Beside a partition's records a checkpoint (stream/checkpoint.py) keeps entries under keys
# no record has (those are "<partition>|<kind>|<id>"): the open contacts' live index, and the
# remembered sums of buckets (``BucketState.checkpoint_body``).
LIVE_KEY = "~live"
SUMS_KEY = "~sums"
PACKED_KINDS = ("b", "i")  # bucket records a checkpoint keeps with their scopes packed
UNPACK_BYTES = 256 * 1024  # of packed blocks and buckets decoded at each read of the windows
PACKED_FIELDS = ("s", "e")  # the fields a checkpoint may keep packed (scopes, lifecycle events)
# a packed field: bytes, or a view of the checkpoint file it was read from (stream/checkpoint.py)
BLOB_TYPES = (bytes, memoryview)


def scoped(record: Record) -> dict[str, aggregates.Agg]:
    """A bucket record's ``{scope: aggregate}``, unpacked in place on first use.

    A checkpoint keeps each bucket's scopes as one marshal blob (``packed``): a restart
    holds it as a view of the checkpoint file (stream/checkpoint.py), and only the buckets
    something reads or changes are ever decoded. Most closed fine buckets are read only through their block's remembered
    sum, which the checkpoint keeps too, so loading an hour of state decodes a few of its
    buckets instead of all of them (``BucketState.checkpoint_body``).
    """
    found = record["s"]
    if found.__class__ in BLOB_TYPES:
        found = record["s"] = marshal.loads(found)
    return found  # type: ignore[no-any-return]


def packed(record: Record, field: str = "s") -> Record:
    """A copy of a record with one field (a bucket's scopes) as a marshal blob (as it is if
    already, or if it has none)."""
    found = record.get(field)
    if found is None or found.__class__ in BLOB_TYPES:
        return record
    return {**record, field: marshal.dumps(found)}


def plain(record: Record) -> Record:
    """The record with every field a checkpoint left packed decoded, in place."""
    for field in PACKED_FIELDS:
        found = record.get(field)
        if found.__class__ in BLOB_TYPES:
            record[field] = marshal.loads(found)
    return record


def scopes(queue: str, channel: str, agent: str | None) -> Iterator[str]:
    """Yield the scope keys a fact counts in (SPEC §2 scopes)."""
    yield "all"
    yield f"queue:{queue}"
    yield f"channel:{channel}"
    yield f"queue:{queue}|channel:{channel}"
    if agent:
        yield f"agent:{agent}"


@dataclass(frozen=True)
class Horizons:
    """Time limits of the state, seconds, and the text sentiment scorer."""

    lateness: float
    contact: float
    open_contact: float
    scorer: Callable[[str], float]



class BucketState:
    """Buckets, totals and meta of one partition of one stage."""

    def __init__(self, partition: int, clock: WindowClock, horizons: Horizons) -> None:
        self.partition = partition
        self.clock = clock
        self.horizons = horizons
        self.records: dict[str, Record] = {}
        self.dirty: set[str] = set()
        self.deleted: set[str] = set()
        self.fine: dict[int, Record] = {}  # fine bucket start -> bucket record
        self.intervals: dict[int, Record] = {}  # interval start -> bucket record
        self.agent_records: dict[str, Record] = {}  # agent id -> agent record (stage 1)
        self.meta = self._record(self.meta_key, {"wm": 0.0, "n": {}})
        self.swept_minute = -1  # event-time minute of the last sweep (memory only)
        # memos of window_partials, by lane (stream/lanes.py): five-minute blocks' sums, fine
        # and interval buckets split by lane, the sum of today's closed intervals
        self._blocks: dict[int, dict[str, dict[str, aggregates.Agg]] | bytes] = {}  # bytes: packed
        self._fine_lanes: dict[int, dict[str, dict[str, aggregates.Agg]]] = {}
        self._interval_lanes: dict[int, dict[str, dict[str, aggregates.Agg]]] = {}
        self._closed: tuple[tuple[float, int], Remembered] | None = None
        self._older: dict[str, tuple[range, Remembered]] = {}
        self._unpacking: list[tuple[str, int]] = []  # what a checkpoint left packed (``_unpack_some``)

    # -- keys and records -------------------------------------------------------------
    def key(self, kind: str, ident: str | int) -> str:
        return f"{self.partition}|{kind}|{ident}"

    def _record(self, key: str, default: Record) -> Record:
        record = self.records.get(key)
        if record is None:
            record = {"o": -1, **default}
            self.records[key] = record
            self.deleted.discard(key)
            self._index_bucket(key, record)
        return record

    def _index_bucket(self, key: str, record: Record) -> None:
        _, kind, ident = key.split("|", 2)
        if kind == "b":
            self.fine[int(ident)] = record
        elif kind == "i":
            self.intervals[int(ident)] = record
        elif kind == "a":
            self.agent_records[ident] = record

    def load(self, items: Iterator[tuple[str, Record]]) -> Record:
        """Rebuild the state from recovered table items of this partition.

        A checkpoint's entries beside the records (keys starting ``~``, see
        ``checkpoint_body``) are no records: the remembered sums are taken where they still
        hold, and all of them are returned as ``{key: entry}``, for the subclass that wrote
        them.
        """
        saved: Record = {}
        for key, record in items:
            if key[0] == "~":
                saved[key] = record
                continue
            self.records[key] = record
            self._index_bucket(key, record)
        self._forget_memos()
        self._restore_sums(saved.get(SUMS_KEY))
        self.meta = self._record(self.meta_key, {"wm": 0.0, "n": {}})
        self.meta.setdefault("n", {})
        return saved

    def checkpoint_body(self) -> dict[str, Any]:
        """What a checkpoint of this partition keeps: its records, bucket scopes packed
        (``packed``), and under ``SUMS_KEY`` the remembered sums: each rolling window's
        buckets before its newest, today's closed intervals, and the five-minute blocks
        (packed too), each stamped with the ``(start, o)`` of the buckets it adds up.

        A restart takes a sum only while its buckets are those it was made of, so a bucket
        the changelog replaced after the checkpoint makes its sums be added up anew. Its
        first publish then decodes the windows' sums, the newest fine bucket and the current
        interval; the rest when something reads it, or a little at each read of the windows
        for what their next move reads (``_unpack_some``).
        """
        self._forget_blocks(self.dirty)  # changed since the last flush: not what the sums hold
        body = {key: self._packed(key.split("|", 2)[1], record) for key, record in self.records.items()}
        stamps = self._block_stamps()
        closed = None
        if self._closed is not None:
            (day, current), (_, split) = self._closed
            closed = (day, current, self._interval_stamp(day, current), split)
        body[SUMS_KEY] = {
            "blocks": {
                block: (stamps.get(block, ()), split if split.__class__ is bytes else marshal.dumps(split))
                for block, split in self._blocks.items()
            },
            "closed": closed,
            "older": {
                window: (spanned.start, spanned.stop, spanned.step, self._span_stamp(spanned), split)
                for window, (spanned, (_, split)) in self._older.items()
            },
        }
        return body

    def _packed(self, kind: str, record: Record) -> Record:
        """A record as a checkpoint keeps it: buckets with their scopes packed (stages add theirs)."""
        return packed(record) if kind in PACKED_KINDS else record

    def _restore_sums(self, sums: Record | None) -> None:
        if not sums:
            return
        stamps = self._block_stamps()
        for block, (stamp, split) in sums["blocks"].items():
            if stamps.get(block) == stamp:
                self._blocks[block] = split  # packed: decoded when first added up, or sooner
        if sums["closed"] is not None:
            day, current, stamp, split = sums["closed"]
            if self._interval_stamp(day, current) == stamp:
                self._closed = ((day, current), (_token(), split))
        for window, (start, stop, step, stamp, split) in sums.get("older", {}).items():
            spanned = range(start, stop, step)
            if self._span_stamp(spanned) == stamp:
                self._older[window] = (spanned, (_token(), split))
        # What the windows' first move on by a bucket reads: every block, and the buckets of
        # the oldest and newest blocks (then the windows' edges). Decoded a little at each
        # read of the windows, oldest buckets first, then the blocks (popped from the end).
        if self.fine:
            edges = {min(self.fine), max(self.fine)}
            edge_blocks = {start - start % BLOCK_SECONDS for start in edges}
            self._unpacking = [("block", block) for block in sorted(self._blocks)]
            self._unpacking += [
                ("b", start) for start in sorted(self.fine, reverse=True)
                if start - start % BLOCK_SECONDS in edge_blocks
            ]

    def unpacking_left(self) -> int:
        """How many blocks and buckets a checkpoint left packed are queued to be decoded."""
        return len(self._unpacking)

    def _unpack_some(self) -> None:
        """Decode about ``UNPACK_BYTES`` of what a checkpoint left packed that the windows'
        first move on by a bucket will read, so that it need not decode it all at once."""
        done = 0
        while self._unpacking and done < UNPACK_BYTES:
            kind, start = self._unpacking.pop()
            if kind == "block":
                found = self._blocks.get(start)
                if found.__class__ is bytes:
                    done += len(found)
                    self._blocks[start] = marshal.loads(found)
            elif start in self.fine and self.fine[start]["s"].__class__ in BLOB_TYPES:
                done += len(self.fine[start]["s"])
                scoped(self.fine[start])

    def _span_stamp(self, spanned: range) -> tuple[tuple[int, int], ...]:
        fine = self.fine
        return tuple((start, fine[start]["o"]) for start in spanned if start in fine)

    def _block_stamps(self) -> dict[int, tuple[tuple[int, int], ...]]:
        """``{block: ((start, o), ...)}`` of the fine buckets in each five-minute block."""
        found: dict[int, list[tuple[int, int]]] = {}
        for start in sorted(self.fine):
            found.setdefault(start - start % BLOCK_SECONDS, []).append((start, self.fine[start]["o"]))
        return {block: tuple(stamp) for block, stamp in found.items()}

    def _interval_stamp(self, day: float, current: int) -> tuple[tuple[int, int], ...]:
        return tuple((s, self.intervals[s]["o"]) for s in sorted(self.intervals) if day <= s < current)

    @property
    def watermark(self) -> float:
        return float(self.meta["wm"])

    def count(self, name: str, n: float = 1.0) -> None:
        """Bump a pipeline counter kept in the meta record (survives restarts)."""
        counters = self.meta["n"]
        counters[name] = counters.get(name, 0) + n
        self.dirty.add(self.meta_key)


    @property
    def meta_key(self) -> str:
        return f"{self.partition}|m|meta"

    def horizon_watermark(self) -> float:
        """The watermark that decides which buckets may still change (stage 2 overrides)."""
        return self.watermark

    def advance(self, ts: float, offset: int, reference: float | None = None) -> bool:
        """Move the watermark for an event; False if meta already holds this offset.

        ``reference`` is the watermark the event is judged late against (default: ours).
        """
        if self.meta["o"] >= offset:
            return False  # re-delivered after a crash and already reflected everywhere
        judged_at = max(self.watermark, ts) if reference is None else reference
        if ts > self.watermark:
            self.meta["wm"] = ts
        if ts < judged_at - self.horizons.lateness:
            self.count("late")
        self.count("processed")
        return True

    def entity(self, kind: str, ident: str) -> Record | None:
        """Return an entity record, or None if absent or past its horizon (then forgotten).

        Expiry is decided here, when an event touches the entity, with the same rule the
        sweep uses: whether a record exists never depends on when the last sweep ran, so
        batching, interleaving or a restart cannot change a result.
        """
        key = self.key(kind, ident)
        record = self.records.get(key)
        if record is not None and self.entity_expired(kind, ident, record, self.horizon_watermark()):
            self._delete(key)
            return None
        return record

    def _sweep_if_due(self) -> None:
        """Forget expired entities once a minute of event time (memory only, see ``entity``)."""
        minute = int(self.horizon_watermark() // SWEEP_SECONDS)
        if minute <= self.swept_minute:
            return
        self.swept_minute = minute
        wm = self.horizon_watermark()
        for key in list(self.records):
            _, kind, ident = key.split("|", 2)
            if kind not in "bimt" and self.entity_expired(kind, ident, self.records[key], wm):
                self._delete(key)

    def _seen(self, record: Record, event_id: str) -> bool:
        """Say whether a record already took this event id; remember it if not."""
        if event_id in record.get("ids", ()):
            return True
        self._remember(record, event_id)
        return False

    @staticmethod
    def _remember(record: Record, event_id: str) -> None:
        ids: list[str] = record.setdefault("ids", [])
        ids.append(event_id)
        if len(ids) > MAX_IDS:
            del ids[: len(ids) - MAX_IDS]

    def apply_fact(self, fact: Fact, offset: int, sign: float, reference: float | None = None) -> None:
        """Add (or retract) a fact to its buckets in every scope, and to the totals.

        ``reference`` is the watermark the fact was judged at (stage 2: its source
        partition's); the fact's buckets are those inside the horizons of both that and ours.
        """
        _, ts, queue, channel, agent, incs = fact
        if ts < self.clock.fine_horizon(self._judged_at(reference), self.horizons.lateness):
            self.count("outside_rolling")
        self.add_scoped(ts, scopes(queue, channel, agent), incs, offset, sign, reference)
        totals = self._record(self.key("t", "totals"), {"s": {}})
        if totals["o"] < offset:
            self.dirty.add(self.key("t", "totals"))
            aggregates.add(totals["s"].setdefault(f"queue:{queue}|channel:{channel}", {}), incs, sign)

    def add_scoped(
        self, ts: float, names: Iterable[str], incs: Any, offset: int, sign: float = 1.0,
        reference: float | None = None,
    ) -> None:
        """Add increments to named scopes of the fine and interval buckets holding ``ts``."""
        names = list(names)
        for target in self._bucket_targets(ts, self._judged_at(reference)):
            bucket = self._record(target, {"s": {}})
            if bucket["o"] >= offset:
                continue
            self.dirty.add(target)
            held = scoped(bucket)
            for scope in names:
                aggregates.add(held.setdefault(scope, {}), incs, sign)

    def _judged_at(self, reference: float | None) -> float:
        # A bucket below our own horizon may already be gone: never recreate it.
        own = self.horizon_watermark()
        return own if reference is None else max(reference, own)

    def _bucket_targets(self, ts: float, judged_at: float) -> list[str]:
        targets = []
        if ts >= self.clock.fine_horizon(judged_at, self.horizons.lateness):
            targets.append(self.key("b", self.clock.bucket_start(ts)))
        if ts >= self.clock.interval_horizon(judged_at):
            targets.append(self.key("i", self.clock.interval_start(ts)))
        return targets

    # -- flushing and expiry ----------------------------------------------------------------
    def flush(self, offset: int) -> list[tuple[str, Record | None]]:
        """Return the dirty records in changelog order, stamped with the batch's last offset.

        Deletions go last: if only a prefix of a batch reaches the changelog (a crash, a
        rebalance mid-write), a record left behind that should have been deleted is
        judged expired again when next touched or swept, while a deletion that landed
        before the records of its batch would forget something an earlier event of the
        re-read batch still needs.
        """
        self.expire()
        self._forget_blocks(self.dirty)
        order = sorted(self.dirty, key=_write_rank)
        writes: list[tuple[str, Record | None]] = []
        for key in order:
            record = self.records.get(key)
            if record is not None:
                plain(record)  # what goes to the changelog is JSON, never a packed blob
                record["o"] = max(record["o"], offset)
                writes.append((key, record))
        writes += [(key, None) for key in sorted(self.deleted)]
        self.meta["o"] = max(self.meta["o"], offset)
        self.dirty.clear()
        self.deleted.clear()
        return writes

    def expire(self) -> None:
        """Forget buckets no window can read or change any more."""
        wm = self.horizon_watermark()
        fine_floor = self.clock.fine_horizon(wm, self.horizons.lateness)
        for start in [s for s in self.fine if s < fine_floor]:
            self._delete(self.key("b", start))
        interval_floor = self.clock.interval_horizon(wm)
        for start in [s for s in self.intervals if s < interval_floor]:
            self._delete(self.key("i", start))
        for start in [s for s in self._blocks if s + BLOCK_SECONDS <= fine_floor]:
            del self._blocks[start]
        for start in [s for s in self._fine_lanes if s < fine_floor]:
            del self._fine_lanes[start]
        for start in [s for s in self._interval_lanes if s < interval_floor]:
            del self._interval_lanes[start]
        self._sweep_if_due()

    def entity_expired(self, kind: str, ident: str, record: Record, wm: float) -> bool:
        """Say whether an entity record is past its horizon (stages override)."""
        return False

    def _delete(self, key: str) -> None:
        del self.records[key]
        _, kind, ident = key.split("|", 2)
        if kind == "b":
            self.fine.pop(int(ident), None)
        elif kind == "i":
            self.intervals.pop(int(ident), None)
        elif kind == "a":
            self.agent_records.pop(ident, None)
        self._forget_blocks((key,))
        self.dirty.discard(key)
        self.deleted.add(key)

    def _forget_blocks(self, keys: Iterable[str]) -> None:
        """Drop the remembered sums and lane splits that changed or deleted buckets are in.

        Every change to a bucket marks it dirty (its changelog write depends on that too), so
        a memo is dropped at the flush of any batch that changed one of its buckets.
        """
        for key in keys:
            _, kind, ident = key.split("|", 2)
            if kind == "b":
                start = int(ident)
                self._blocks.pop(start - start % BLOCK_SECONDS, None)
                self._fine_lanes.pop(start, None)
                for window, (spanned, _) in list(self._older.items()):  # noqa: B007
                    if start in spanned:
                        del self._older[window]
            elif kind == "i":
                start = int(ident)
                self._interval_lanes.pop(start, None)
                if self._closed is not None and start < self._closed[0][1]:
                    self._closed = None

    def _forget_memos(self) -> None:
        self._blocks.clear()
        self._unpacking.clear()
        self._fine_lanes.clear()
        self._interval_lanes.clear()
        self._closed = None

    # -- reading ----------------------------------------------------------------------------
    def window_partials(
        self, watermark: float, lanes: Iterable[str] | None = None
    ) -> dict[str, dict[str, aggregates.Agg]]:
        """Merge this partition's buckets into {window: {scope: aggregate}} at a watermark
        (``window_layers`` put together; every aggregate returned is a new dict)."""
        return compose([self.window_layers(watermark, lanes)])

    def window_layers(self, watermark: float, lanes: Iterable[str] | None = None) -> Layers:
        """This partition's windows at a watermark, as layers that ``compose`` adds up.

        Only the scopes of ``lanes`` (stream/lanes.py; None: every scope). A rolling window
        is the remembered sum of its buckets before the newest (``older``) plus the newest
        fine bucket (``fine``, the same for the three rolling windows); ``today`` is the
        remembered sum of the day's closed intervals plus the current interval
        (``current``), and ``interval`` the current interval alone. A remembered sum has a
        token that changes whenever the sum is added up anew, so a reader that merges many
        partitions can keep its own sum of their ``older`` layers while no token changes.
        Live, only ``fine`` and ``current`` change between two publishes.

        Sums are remembered until one of their buckets changes, and a rolling window's
        ``older`` adds the sums of the whole five-minute blocks it spans and the single
        buckets at its edges (the 1 h window spans 120 fine buckets but about 12 blocks and
        10 edge buckets). Whether a sum was remembered never changes the result: the same
        parts are added in the same order. The layers share the state's dicts: read them,
        never change them.
        """
        self._forget_blocks(self.dirty)  # changed since the last flush (tests, not the worker)
        chosen = wanted_lanes(lanes)
        older: dict[str, list[Any]] = {}
        for window in ROLLING:
            buckets = self.clock.rolling_buckets(window, watermark)
            token, split = self._older_parts(window, buckets[:-1])
            older[window] = [token, _pick(split, chosen)]
        day = self.clock.day_start(watermark)
        current = self.clock.interval_start(watermark)
        token, split = self._closed_intervals(day, current)
        older["today"] = [token, _pick(split, chosen)]
        newest = self.clock.bucket_start(watermark)  # the last bucket of every rolling window
        self._unpack_some()
        return {
            "older": older,
            "fine": _pick(self._fine_split(newest), chosen) if newest in self.fine else {},
            "current": _pick(self._interval_split(current), chosen) if current in self.intervals else {},
        }

    def _older_parts(self, window: str, spanned: range) -> Remembered:
        """The sum of a rolling window's buckets before its newest, by lane (remembered).

        Live, only the newest bucket changes from one publish to the next: the rest of the
        window is added up once each time the window moves by a bucket (30 s), or when a
        late event changes one of its buckets.
        """
        found = self._older.get(window)
        if found is not None and found[0] == spanned:
            return found[1]
        merged = split_lanes(_merge_lanes(self._rolling_parts(spanned), LANES))
        remembered = (_token(), merged)
        self._older[window] = (spanned, remembered)
        return remembered

    def _rolling_parts(self, wanted: range) -> list[dict[str, dict[str, aggregates.Agg]]]:
        """A rolling window's parts, in time order: whole blocks' sums and edge buckets."""
        parts: list[dict[str, dict[str, aggregates.Agg]]] = []
        if not wanted:
            return parts
        step, last, start = wanted.step, wanted[-1], wanted.start
        while start <= last:
            block = start - start % BLOCK_SECONDS
            if start == block and block + BLOCK_SECONDS - step <= last:
                parts.append(self._block(block, step))
                start = block + BLOCK_SECONDS
            else:
                if start in self.fine:
                    parts.append(self._fine_split(start))
                start += step
        return parts

    def _block(self, block: int, step: int) -> dict[str, dict[str, aggregates.Agg]]:
        found = self._blocks.get(block)
        if isinstance(found, dict):
            return found
        if found is not None:  # packed, as a checkpoint left it
            merged: dict[str, dict[str, aggregates.Agg]] = marshal.loads(found)
        else:
            starts = range(block, block + BLOCK_SECONDS, step)
            merged = split_lanes(_merge_scoped(scoped(self.fine[b]) for b in starts if b in self.fine))
        self._blocks[block] = merged
        return merged

    def _fine_split(self, start: int) -> dict[str, dict[str, aggregates.Agg]]:
        found = self._fine_lanes.get(start)
        if found is None:
            found = self._fine_lanes[start] = split_lanes(scoped(self.fine[start]))
        return found

    def _interval_split(self, start: int) -> dict[str, dict[str, aggregates.Agg]]:
        found = self._interval_lanes.get(start)
        if found is None:
            found = self._interval_lanes[start] = split_lanes(scoped(self.intervals[start]))
        return found

    def _closed_intervals(self, day: float, current: int) -> Remembered:
        """The sum of today's intervals before the current one, by lane (remembered)."""
        if self._closed is not None and self._closed[0] == (day, current):
            return self._closed[1]
        starts = sorted(s for s in self.intervals if day <= s < current)
        remembered = (_token(), split_lanes(_merge_scoped(scoped(self.intervals[s]) for s in starts)))
        self._closed = ((day, current), remembered)
        return remembered

    def totals(self) -> dict[str, aggregates.Agg]:
        """Cumulative aggregates by queue×channel since the beginning (for counters)."""
        record = self.records.get(self.key("t", "totals"))
        return record["s"] if record else {}



Layers = dict[str, Any]  # BucketState.window_layers: {"older", "fine", "current"}
Remembered = tuple[str, dict[str, dict[str, aggregates.Agg]]]  # (token, {lane: {scope: agg}})
ROLLING = ("5m", "15m", "1h")
_TOKENS = itertools.count()
_PROCESS = secrets.token_hex(4)  # tokens differ between processes, and so between workers


def _token() -> str:
    return f"{_PROCESS}-{next(_TOKENS)}"


def _pick(split: dict[str, dict[str, aggregates.Agg]], chosen: tuple[str, ...]) -> dict[str, aggregates.Agg]:
    """The scopes of the chosen lanes of a split (one lane: its own dict, shared)."""
    if len(chosen) == 1:
        return split.get(chosen[0], {})
    out: dict[str, aggregates.Agg] = {}
    for name in chosen:
        out.update(split.get(name, {}))
    return out


def compose(
    layered: list[Layers], cache: dict[str, tuple[tuple[str, ...], dict[str, aggregates.Agg]]] | None = None
) -> dict[str, dict[str, aggregates.Agg]]:
    """Add up the window layers of many partitions into {window: {scope: aggregate}}.

    A window is the sum of the partitions' ``older`` layers (kept in ``cache`` while their
    tokens are the same: live, they change every 30 s) plus the sum of their newest layer.
    Every aggregate returned is a new dict; the layers are left as they are.
    """
    fine = _sum([layers["fine"] for layers in layered])
    current = _sum([layers["current"] for layers in layered])
    out: dict[str, dict[str, aggregates.Agg]] = {}
    for window in (*ROLLING, "today"):
        olders = [layers["older"][window] for layers in layered]
        tokens = tuple(token for token, _ in olders)
        kept = None if cache is None else cache.get(window)
        if kept is not None and kept[0] == tokens:
            base = kept[1]
        else:
            base = _sum([scoped for _, scoped in olders])
            if cache is not None:
                cache[window] = (tokens, base)
        out[window] = _plus(base, current if window == "today" else fine)
    out["interval"] = _plus(current, {})
    return out


def _sum(parts: Iterable[dict[str, aggregates.Agg]]) -> dict[str, aggregates.Agg]:
    """Add up ``{scope: aggregate}`` parts into new dicts."""
    total: dict[str, aggregates.Agg] = {}
    for scoped in parts:
        aggregates.merge_scoped(total, scoped)
    return total


def _plus(base: dict[str, aggregates.Agg], more: dict[str, aggregates.Agg]) -> dict[str, aggregates.Agg]:
    return _sum((base, more))


def _write_rank(key: str) -> tuple[int, str]:
    kind = key.split("|", 2)[1]
    return ({"b": 0, "i": 0, "t": 0, "u": 2, "c": 2, "a": 2, "m": 3}.get(kind, 1), key)


def _merge_lanes(
    parts: Iterable[dict[str, dict[str, aggregates.Agg]]], chosen: tuple[str, ...]
) -> dict[str, aggregates.Agg]:
    """Add up the scopes of the chosen lanes of parts split by lane (new dicts)."""
    return _sum(split.get(name, {}) for split in parts for name in chosen)


def _merge_scoped(parts: Any) -> dict[str, aggregates.Agg]:
    return _sum(parts)


def split_span(start: float, end: float, size: int) -> Iterator[tuple[float, float]]:
    """Split [start, end) at multiples of ``size``."""
    cursor = start
    while cursor < end:
        boundary = (cursor // size + 1) * size
        yield cursor, min(boundary, end)
        cursor = min(boundary, end)


