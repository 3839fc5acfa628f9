"""Stage 1 state: contacts and agents of one input partition, on top of ``BucketState``.

Contacts keep their lifecycle events; each new event re-derives the contact's facts
(stream/lifecycle.py) and the difference is applied to the buckets, so out-of-order events
end up counted as if they had arrived in order. Agents keep their current state; the time
spent in a state is added to the buckets it overlaps when the state changes.
"""

from __future__ import annotations

import marshal
import math
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from stream import aggregates, lifecycle
from stream.buckets import BLOB_TYPES, LIVE_KEY, BucketState, Horizons, Record, packed, scoped, split_span
from stream.lanes import CROSS_LANES, MAIN, agent_lane, lane, wanted
from stream.lifecycle import Fact, Rules
from stream.models import AGENT_TYPES, CUSTOMER_TYPES, Event
from stream.windows import WindowClock

MAX_LIFECYCLE_EVENTS = 64
SENTIMENT_EWMA = 0.3  # weight of the newest customer message in a contact's rolling sentiment
# agent time, in whole microseconds: sums of them are exact however a span is cut up (at
# state changes, bucket bounds, batch ends), so the KPIs never depend on batching. State
# written before they existed holds seconds (busy_seconds, ...); occupancy reads both.
AGENT_TIME = {"busy": "busy_us", "after_contact_work": "acw_us", "available": "available_us"}
Piece = tuple[str, float, float]  # (bucket key, start, end) of a span inside one bucket


def _us(ts: float) -> int:
    """An event time in whole microseconds."""
    return round(ts * 1_000_000)


@dataclass
class Outcome:
    """What applying one event produced, for the agent to hand on."""

    customer_facts: list[dict[str, Any]] = field(default_factory=list)


class ContactState(BucketState):
    """KPI state of one input partition (stage 1: contacts and agents)."""

    def __init__(self, partition: int, clock: WindowClock, rules: Rules, horizons: Horizons) -> None:
        super().__init__(partition, clock, horizons)
        self.rules = rules
        self.accrued_hi = -math.inf  # the newest accrual point of any bucket (``acc``)
        self.waiting: dict[str, tuple[str, str, float]] = {}
        self.sentiment: dict[str, tuple[str, str, float]] = {}  # live contacts' rolling sentiment

    def load(self, items: Iterator[tuple[str, Record]]) -> Record:
        """Rebuild the state and its live indexes from recovered table items."""
        saved = super().load(items)
        live = saved.get(LIVE_KEY, {})
        self.accrued_hi = max(
            [self.meta.get("acc", -math.inf)] + [b.get("acc", -math.inf) for b in self.fine.values()]
            + [b.get("acc", -math.inf) for b in self.intervals.values()]
        )
        # a closed contact is in no live index (``_index``): replaying its lifecycle only to
        # find that out was half the time of loading a checkpoint
        for contact_id, record in self._open_contacts():
            entry = live.get(contact_id)
            if entry is None or entry[0] != record["o"]:  # not in the checkpoint, or replaced
                self._index_contact(contact_id, record)
                continue
            if entry[1] is not None:
                self.waiting[contact_id] = entry[1]
            if entry[2] is not None:
                self.sentiment[contact_id] = entry[2]
        return saved

    def _open_contacts(self) -> Iterator[tuple[str, Record]]:
        """(contact id, record) of every contact not closed."""
        prefix = f"{self.partition}|c|"
        start = len(prefix)
        for key, record in self.records.items():
            if key.startswith(prefix) and not record.get("closed"):
                yield key[start:], record

    def _packed(self, kind: str, record: Record) -> Record:
        """``BucketState._packed``, and a closed contact's lifecycle events packed: read
        again only if one more event comes for it (each open contact's are derived again on
        loading, if the live index kept beside it is not of that record)."""
        if kind == "c" and record.get("closed"):
            return packed(record, "e")
        return super()._packed(kind, record)

    def checkpoint_body(self) -> dict[str, Any]:
        """``BucketState.checkpoint_body`` with the live index under ``LIVE_KEY``."""
        body = super().checkpoint_body()
        body[LIVE_KEY] = self.live_index()
        return body

    def live_index(self) -> dict[str, tuple[int, Any, Any]]:
        """Each open contact's live index entries, with the offset of the record they are of:
        ``{contact id: (record o, waiting or None, sentiment or None)}``. Kept beside the
        records in a checkpoint, so that loading it need not derive open contacts again."""
        waiting, sentiment = self.waiting, self.sentiment
        return {
            contact_id: (record["o"], waiting.get(contact_id), sentiment.get(contact_id))
            for contact_id, record in self._open_contacts()
        }

    # -- applying events ----------------------------------------------------------------
    def apply(self, event: Event, offset: int) -> Outcome:
        """Apply one valid event at an input offset; return what goes on downstream."""
        outcome = Outcome()
        if not self.advance(event.ts, offset):
            return outcome
        if event.type in CUSTOMER_TYPES:
            outcome.customer_facts.append(_customer_event_fact(event))
        elif event.type in AGENT_TYPES:
            self._apply_agent(event, offset)
        else:
            self._apply_contact(event, offset, outcome)
        for index, fact in enumerate(outcome.customer_facts):
            # stage 2 judges lateness against the partition a fact came from (stream/customers.py)
            fact["src"], fact["swm"] = self.partition, self.watermark
            fact["at"] = f"{self.partition}.{offset}.{index}"  # the same on every re-send
        return outcome

    def _apply_contact(self, event: Event, offset: int, outcome: Outcome) -> None:
        assert event.contact_id is not None
        key = self.key("c", event.contact_id)
        record = self.entity("c", event.contact_id)
        if record is None and event.ts < self.watermark - self.horizons.contact:
            self.count("beyond_horizon")  # can't tell a straggler from a forgotten duplicate
            return
        record = self._record(key, {"e": [], "last": event.ts})
        if record["o"] >= offset:
            return
        if record["e"].__class__ in BLOB_TYPES:  # a closed contact as a checkpoint left it
            record["e"] = marshal.loads(record["e"])
        if _took(record, event.event_id):
            self.count("duplicates")
            return
        if event.customer_id and not record.get("cust"):
            record["cust"] = event.customer_id
        record["last"] = max(record.get("last", event.ts), event.ts)
        self.dirty.add(key)
        if event.type == "message":
            self._remember(record, event.event_id)
            self._apply_message(event, offset, record)
            return
        before = lifecycle.derive(record["e"], self.rules, record.get("cust"))
        record["e"].append(lifecycle.compact(event))
        record["e"].sort(key=lifecycle.sort_key)
        if len(record["e"]) > MAX_LIFECYCLE_EVENTS:
            self._remember(record, record["e"].pop(0)[2])  # its id still marks a duplicate
            self.count("lifecycle_truncated")
        after = lifecycle.derive(record["e"], self.rules, record.get("cust"))
        self._apply_facts(before.facts, after.facts, offset)
        outcome.customer_facts.extend(_customer_diff(record, before, after, event.contact_id))
        self._index(event.contact_id, after, record)

    def _apply_facts(self, before: set[Fact], after: set[Fact], offset: int) -> None:
        for fact in before - after:
            self.apply_fact(fact, offset, -1.0)
        for fact in after - before:
            self.apply_fact(fact, offset, 1.0)

    def _apply_message(self, event: Event, offset: int, record: Record) -> None:
        if event.speaker != "customer":
            return
        score = event.sentiment
        if score is None:
            score = self.horizons.scorer(event.text or "")
        previous = record.get("snt")
        ewma = score if previous is None else SENTIMENT_EWMA * score + (1 - SENTIMENT_EWMA) * previous[0]
        record["snt"] = [ewma, previous[0] if previous else score]
        derived = lifecycle.derive(record["e"], self.rules, record.get("cust"))
        fact = (f"msg.{event.event_id}", event.ts, derived.queue, derived.channel, derived.agent,
                (("sentiment_n", 1.0), ("sentiment_sum", score)))
        self.apply_fact(fact, offset, 1.0)
        self._index(event.contact_id or "", derived, record)

    def _index(self, contact_id: str, derived: lifecycle.Derivation, record: Record) -> None:
        """Keep the live indexes (waiting contacts, live sentiment) in step with a contact."""
        if derived.waiting:
            self.waiting[contact_id] = derived.waiting
        else:
            self.waiting.pop(contact_id, None)
        if derived.closed:
            record["closed"] = True
        else:  # absent while open: a sixth key would double the dict of every open contact
            record.pop("closed", None)
        snt = record.get("snt")
        if snt is not None and not derived.closed:
            self.sentiment[contact_id] = (derived.queue, derived.channel, snt[0])
        else:
            self.sentiment.pop(contact_id, None)

    def _index_contact(self, contact_id: str, record: Record) -> None:
        self._index(contact_id, lifecycle.derive(record.get("e", []), self.rules, record.get("cust")), record)

    # -- agents ---------------------------------------------------------------------------
    def _apply_agent(self, event: Event, offset: int) -> None:
        assert event.agent_id is not None
        key = self.key("a", event.agent_id)
        record = self._record(key, {"st": None, "since": event.ts, "q": [], "last": event.ts})
        if record["o"] >= offset or self._seen(record, event.event_id):
            if record["o"] < offset:
                self.count("duplicates")
            return
        self.dirty.add(key)
        if event.ts < record["since"]:
            self.count("agent_out_of_order")  # documented: only the newest state counts
            record["last"] = max(record["last"], event.ts)
            return
        queues = record["q"] if event.queues is None else list(event.queues)
        self._change_state(record, event.agent_id, event.ts, event.state, queues, offset)
        record.update(st=event.state, since=event.ts, last=event.ts)
        record["q"] = queues

    # -- agent time ---------------------------------------------------------------------
    #
    # An agent's time in a state goes into the fine and interval buckets it overlaps. It is
    # added as event time passes, not when the state ends: at every batch's end (``flush``)
    # each agent's time up to the watermark is added to the buckets it falls in, and each of
    # those buckets records the time through which it holds every agent's time (``acc``;
    # the meta record's ``acc`` is the partition's). A state change then only settles the
    # stretch since that point (or, for a change older than it, moves the stretch after the
    # change from the old state to the new one). Adding a whole state at its end touched
    # every bucket it spanned, an hour of fine buckets for an hour of availability, each
    # rewritten whole to the changelog: over three quarters of the changelog's bytes and
    # about half the pipeline's time on the benchmarks' throughput topic.

    def _pieces(self, lo: float, hi: float) -> list[Piece]:
        """Cut [lo, hi) into the interval and fine buckets it overlaps, inside the horizons."""
        wm = self.watermark
        start = max(lo, self.clock.interval_horizon(wm))
        pieces = [(self.key("i", interval), a, b) for a, b, interval in self.clock.interval_spans(start, hi)]
        fine_floor = self.clock.fine_horizon(wm, self.horizons.lateness)
        pieces += [
            (self.key("b", self.clock.bucket_start(a)), a, b)
            for a, b in split_span(max(start, fine_floor), hi, self.clock.bucket_seconds)
        ]
        return pieces

    def _change_state(
        self, record: Record, agent: str, ts: float, state: str | None, queues: list[str], offset: int
    ) -> None:
        """Settle the buckets for an agent's state change at ``ts`` (see above)."""
        old, new = AGENT_TIME.get(record.get("st") or ""), AGENT_TIME.get(state or "")
        if old is None and new is None:
            return
        since, accrued = record["since"], self.meta.get("acc")
        lo = since if accrued is None else max(since, min(ts, accrued))
        hi = max(ts, self.accrued_hi)
        if hi <= lo:
            return
        old_names = _agent_scopes(agent, record["q"])
        new_names = _agent_scopes(agent, queues)
        for target, start, end in self._pieces(lo, hi):
            bucket = self.records.get(target)
            if bucket is not None and bucket["o"] >= offset:
                continue
            held = _held(bucket, accrued)
            changes: list[tuple[list[str], str, int]] = []
            owed_from, owed_to = max(start, held, since), min(end, ts)
            if old is not None and owed_to > owed_from:  # the old state, up to the change
                changes.append((old_names, old, _us(owed_to) - _us(owed_from)))
            moved_from, moved_to = max(start, ts), min(end, held)
            if moved_to > moved_from:  # already counted as the old state: the new one's
                span = _us(moved_to) - _us(moved_from)
                if old is not None:
                    changes.append((old_names, old, -span))
                if new is not None:
                    changes.append((new_names, new, span))
            if not changes:
                continue
            bucket = self._record(target, {"s": {}})
            self.dirty.add(target)
            _add_time(scoped(bucket), changes)

    def accrue(self) -> None:
        """Add every agent's time up to the watermark to the buckets it falls in."""
        wm, accrued = self.watermark, self.meta.get("acc")
        if accrued is not None and wm <= accrued:
            return
        counted = [
            (record["since"], counter, _agent_scopes(agent, record["q"]))
            for agent, record in self.agent_records.items()
            if (counter := AGENT_TIME.get(record.get("st") or "")) is not None
        ]
        if accrued is None:
            if not counted:
                return
            lo = min(since for since, _, _ in counted)
        else:
            lo = accrued
        for target, start, end in self._pieces(lo, wm):
            bucket = self.records.get(target)
            held = _held(bucket, accrued)
            begin = max(start, held)
            changes = [
                (names, counter, _us(end) - _us(max(begin, since)))
                for since, counter, names in counted
                if end > max(begin, since)
            ]
            if bucket is None and not changes:
                continue  # no bucket and nothing to add: absent means "nothing through acc"
            bucket = self._record(target, {"s": {}})
            self.dirty.add(target)
            bucket["acc"] = max(held, wm)  # never back (a re-read batch)
            _add_time(scoped(bucket), changes)
        self.meta["acc"] = wm
        self.accrued_hi = max(self.accrued_hi, wm)
        self.dirty.add(self.meta_key)

    def flush(self, offset: int) -> list[tuple[str, Record | None]]:
        """Accrue agent time up to the watermark, then write as ``BucketState.flush``."""
        self.accrue()
        return super().flush(offset)

    def entity_expired(self, kind: str, ident: str, record: Record, wm: float) -> bool:
        if kind != "c" or not self._contact_expired(record, wm):
            return False
        self.waiting.pop(ident, None)
        self.sentiment.pop(ident, None)
        return True

    def _contact_expired(self, record: Record | None, wm: float) -> bool:
        if record is None:
            return False
        limit = self.horizons.contact if record.get("closed") else self.horizons.open_contact
        return bool(wm - record.get("last", wm) > limit)

    def _live(self, index: dict[str, Any]) -> Iterator[Any]:
        """Yield index entries of contacts not past their horizon (swept or not)."""
        wm = self.watermark
        for contact_id, entry in index.items():
            if not self._contact_expired(self.records.get(self.key("c", contact_id)), wm):
                yield entry

    def agents(self) -> Iterator[tuple[str, Record]]:
        """Yield (agent id, record) of the agents this partition knows."""
        yield from self.agent_records.items()

    def live_partials(
        self, reference: float, stale_seconds: float, negative_below: float,
        lanes: Iterable[str] | None = None,
    ) -> dict[str, dict[str, float]]:
        """Live gauges by scope: waiting contacts, oldest offer time, agents, live sentiment.

        Only the scopes of ``lanes`` (stream/lanes.py; None: every scope)."""
        chosen = wanted(lanes)
        main = MAIN in chosen
        live: dict[str, dict[str, float]] = {}
        if main or any(name in CROSS_LANES for name in chosen):
            for queue, channel, offered in self._live(self.waiting):
                for scope in _contact_scopes(queue, channel, chosen):
                    gauges = live.setdefault(scope, {})
                    gauges["waiting"] = gauges.get("waiting", 0.0) + 1
                    gauges["oldest_offered"] = min(gauges.get("oldest_offered", offered), offered)
            for queue, channel, score in self._live(self.sentiment):
                for scope in _contact_scopes(queue, channel, chosen):
                    gauges = live.setdefault(scope, {})
                    gauges["sentiment_live"] = gauges.get("sentiment_live", 0.0) + 1
                    if score < negative_below:
                        gauges["sentiment_negative"] = gauges.get("sentiment_negative", 0.0) + 1
        for agent, record in self.agents():
            own = agent_lane(agent) in chosen
            if not (main or own):  # an agent of another slice, and no queue gauges wanted
                continue
            name = AGENT_GAUGES.get(record.get("st") or "")
            if reference - record.get("last", reference) > stale_seconds and record.get("st") != "offline":
                name = "agents_stale"
            if name is None:
                continue
            for scope in _agent_scopes(agent, record.get("q", []), main, own):
                gauges = live.setdefault(scope, {})
                gauges[name] = gauges.get(name, 0.0) + 1
        return live

    def ongoing_agent_time(
        self, windows: dict[str, tuple[float, float]], lanes: Iterable[str] | None = None
    ) -> dict[str, dict[str, aggregates.Agg]]:
        """Time agents have spent in their current state inside each window, by scope (only
        the scopes of ``lanes``; None: every scope), since it was last added to the buckets."""
        chosen = wanted(lanes)
        accrued = self.meta.get("acc")
        main = MAIN in chosen
        # Agents counting from the same moment add the same time to a window: they are
        # counted by (moment, scope, counter) first, and each count times its time is added
        # once per window, not once per agent. Since time goes into the buckets at every batch
        # (``accrue``), most agents count from that moment. The time is whole microseconds in
        # floats, so the sums are exact in any order or grouping.
        counted: dict[float, dict[str, dict[str, int]]] = {}  # since -> scope -> counter -> agents
        for agent, record in self.agents():
            own = agent_lane(agent) in chosen
            if not (main or own):
                continue
            counter = AGENT_TIME.get(record.get("st") or "")
            if counter is None:
                continue
            since = record["since"] if accrued is None else max(record["since"], accrued)
            scopes = counted.setdefault(since, {})
            for scope in _agent_scopes(agent, record.get("q", []), main, own):
                counters = scopes.setdefault(scope, {})
                counters[counter] = counters.get(counter, 0) + 1
        out: dict[str, dict[str, aggregates.Agg]] = {}
        for window, (start, end) in windows.items():
            changes = [
                ([scope], counter, micros * agents)
                for since, scopes in counted.items()
                if (micros := _us(end) - _us(max(start, since))) > 0
                for scope, counters in scopes.items()
                for counter, agents in counters.items()
            ]
            if changes:
                _add_time(out.setdefault(window, {}), changes)
        return out


def _held(bucket: Record | None, accrued: float | None) -> float:
    """The event time through which a bucket holds every agent's time: its own ``acc``, else
    the partition's (a bucket made since, or none: nothing was owed to it); -inf before any."""
    held = bucket.get("acc", accrued) if bucket is not None else accrued
    return -math.inf if held is None else float(held)


def _add_time(scoped: dict[str, aggregates.Agg], changes: Iterable[tuple[list[str], str, int]]) -> None:
    """Add (negative: take back) microseconds of agent time to scopes of one bucket."""
    for names, counter, micros in changes:
        for scope in names:
            agg = scoped.get(scope)
            if agg is None:
                scoped[scope] = {counter: 0.0 + micros}
                continue
            total = agg.get(counter, 0.0) + micros
            if total:
                agg[counter] = total
            else:
                agg.pop(counter, None)


def _agent_scopes(agent: str, queues: Iterable[str], main: bool = True, own: bool = True) -> list[str]:
    """The scopes an agent's state and time count in: ``all`` and each queue it serves (main
    lane; an agent on two queues adds to the occupancy of both), and its own."""
    names = ["all", *(f"queue:{q}" for q in queues)] if main else []
    if own:
        names.insert(1 if main else 0, f"agent:{agent}")
    return names


AGENT_GAUGES = {
    "available": "agents_available",
    "busy": "agents_busy",
    "after_contact_work": "agents_acw",
    "away": "agents_away",
}


def _took(record: Record, event_id: str) -> bool:
    """Say whether a contact already took an event: its lifecycle events are kept in ``e``
    (their ids are not repeated in ``ids``, about 90 bytes an open contact); ``ids`` holds
    message ids and those of lifecycle events pushed out of ``e``."""
    return event_id in record.get("ids", ()) or any(stored[2] == event_id for stored in record["e"])


def _contact_scopes(queue: str, channel: str, chosen: tuple[str, ...]) -> list[str]:
    """The live scopes of a contact that are in the chosen lanes."""
    every = ("all", f"queue:{queue}", f"channel:{channel}", f"queue:{queue}|channel:{channel}")
    return [scope for scope in every if lane(scope) in chosen]


def _customer_event_fact(event: Event) -> dict[str, Any]:
    """Hand a customer lifecycle or purchase event to the customer stage as a fact."""
    return {
        "kind": event.type, "fact_id": event.event_id, "customer_id": event.customer_id,
        "ts": event.ts, "amount": event.amount,
    }


def _customer_diff(
    record: Record, before: lifecycle.Derivation, after: lifecycle.Derivation, contact_id: str
) -> list[dict[str, Any]]:
    customer = record.get("cust")
    if not customer:
        return []
    out = []
    for sign, facts in (
        (True, before.customer_facts - after.customer_facts),
        (False, after.customer_facts - before.customer_facts),
    ):
        for kind, fid, ts, queue, channel, agent in facts:
            out.append({
                "kind": kind, "fact_id": f"{contact_id}.{fid}", "customer_id": customer, "ts": ts,
                "contact_id": contact_id, "queue": queue, "channel": channel, "agent_id": agent,
                "retract": sign,
            })
    return out
