"""Contact lifecycle: derive a contact's KPI facts from its events, in any arrival order.

A contact keeps its lifecycle events (not its messages) sorted by event time. ``derive``
replays them and returns every fact they imply: "offered in billing/voice at t", "answered
after a 12 s wait", "handled for 340 s"... The state layer applies the difference between
the facts before and after an event arrives, so a late ``contact.offered`` that turns an
abandon into a short abandon retracts one fact and adds the other: the numbers end up as
if the events had arrived in order.

Legs: a contact waits in one queue at a time. ``contact.transferred`` with ``to_queue``
closes the leg (counting ``transferred`` and, if connected, its handle time) and opens a new
leg in the target queue at the transfer time (counted as ``offered`` there); a later
``contact.offered`` for that queue while the leg waits is the same leg, not a new one.
Resolution time runs from the first offer of the first leg, across transfers.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream import sketch
from stream.models import Event

# A stored lifecycle event: [ts, type, event_id, queue, channel, agent_id, extras or None].
Stored = list[Any]
Incs = tuple[tuple[str, float], ...]
# A fact: (fact_id, event time, queue, channel, agent_id, increments).
Fact = tuple[str, float, str, str, str | None, Incs]
# A customer fact: (kind, fact_id, event time, queue, channel, agent_id).
CustomerFactKey = tuple[str, str, float, str, str, str | None]

_EXTRAS = ("to_queue", "to_agent_id", "hold_seconds", "first_contact", "outcome", "survey", "score")
UNKNOWN = "unknown"


@dataclass(frozen=True)
class Rules:
    """Per-queue thresholds the derivation needs."""

    sl_threshold: Callable[[str, str], float]
    short_abandon: Callable[[str], float]
    histogram_bounds: Sequence[float] = ()


@dataclass
class Leg:
    queue: str
    channel: str
    offered_ts: float | None
    answered_ts: float | None = None
    agent: str | None = None
    closed: bool = False
    abandoned: bool = False


@dataclass
class Derivation:
    """What a contact's events imply: facts, live status and customer facts."""

    facts: set[Fact] = field(default_factory=set)
    customer_facts: set[CustomerFactKey] = field(default_factory=set)
    waiting: tuple[str, str, float] | None = None  # (queue, channel, offered_ts)
    queue: str = UNKNOWN
    channel: str = UNKNOWN
    agent: str | None = None
    closed: bool = False


def compact(event: Event) -> Stored:
    """Return the stored form of a lifecycle event."""
    extras = {name: getattr(event, name) for name in _EXTRAS if getattr(event, name) is not None}
    return [
        event.ts,
        event.type,
        event.event_id,
        event.queue,
        event.channel,
        event.agent_id,
        extras or None,
    ]


def histogram_key(kind: str, bounds: Sequence[float], value: float) -> str:
    """Return the key counting ``value`` in histogram ``kind`` (w, h or r: wait, handle,
    resolution): ``h<kind>:<i>`` for the first bound >= value, ``h<kind>:inf`` past the last."""
    for index, bound in enumerate(bounds):
        if value <= bound:
            return f"h{kind}:{index}"
    return f"h{kind}:inf"


class _Deriver:
    def __init__(self, rules: Rules, customer_id: str | None) -> None:
        self.rules = rules
        self.customer_id = customer_id
        self.out = Derivation()
        self.legs: list[Leg] = []
        self.first_offered: float | None = None
        self.resolutions = 0
        self.pending_fcr: list[tuple[str, bool]] = []  # (fact_id, counted as first) to revise
        self.channel = UNKNOWN

    @property
    def leg(self) -> Leg | None:
        return self.legs[-1] if self.legs else None

    def fact(
        self, fid: str, ts: float, leg: Leg | None, incs: list[tuple[str, float]], agent: str | None = None
    ) -> None:
        queue = leg.queue if leg else self.out.queue
        channel = leg.channel if leg else self.channel
        who = agent if agent is not None else (leg.agent if leg else None)
        self.out.facts.add((fid, ts, queue, channel, who, tuple(sorted(incs))))

    def open_leg(self, queue: str, channel: str, ts: float | None) -> Leg:
        leg = Leg(queue=queue, channel=channel, offered_ts=ts)
        self.legs.append(leg)
        n = len(self.legs)
        if ts is not None:
            self.fact(f"off{n}", ts, leg, [("offered", 1.0)])
            if self.first_offered is None:
                self.first_offered = ts
                if self.customer_id:
                    self.out.customer_facts.add(("contact", "c", ts, queue, channel, None))
        return leg

    def on_offered(self, ts: float, queue: str, channel: str) -> None:
        leg = self.leg
        if leg and not leg.closed and leg.answered_ts is None and leg.queue == queue:
            if leg.offered_ts is None:  # an answer arrived first; now we know the wait
                leg.offered_ts = ts
                self.fact(f"off{len(self.legs)}", ts, leg, [("offered", 1.0)])
                if self.first_offered is None:
                    self.first_offered = ts
            return  # same leg: a re-sent offer or the offer after a transfer
        self.open_leg(queue, channel, ts)

    def on_answered(self, ts: float, agent: str | None, queue: str | None) -> None:
        leg = self.leg
        if leg is None or leg.closed:
            leg = self.open_leg(queue or self.out.queue, self.channel, None)
        if leg.answered_ts is not None:
            return  # first_response after answered (or vice versa): the earlier one counts
        leg.answered_ts, leg.agent = ts, agent or leg.agent
        n = len(self.legs)
        self.fact(f"ans{n}", ts, leg, [("answered", 1.0)])
        if leg.offered_ts is not None:
            wait = max(0.0, ts - leg.offered_ts)
            within = 1.0 if wait <= self.rules.sl_threshold(leg.queue, leg.channel) else 0.0
            incs = [("wait_n", 1.0), ("wait_sum", wait), (sketch.bucket_key(wait), 1.0)]
            incs += [("sl_within", within), ("frt_n", 1.0), ("frt_sum", wait)]
            incs.append((histogram_key("w", self.rules.histogram_bounds, wait), 1.0))
            self.fact(f"wait{n}", ts, leg, incs)

    def on_abandoned(self, ts: float) -> None:
        leg = self.leg
        if leg is None or leg.closed or leg.answered_ts is not None:
            return  # an abandon after an answer is a hang-up, not an abandon
        leg.closed = leg.abandoned = True
        n = len(self.legs)
        if leg.offered_ts is None:
            self.fact(f"abn{n}", ts, leg, [("abandoned", 1.0)])
            return
        wait = max(0.0, ts - leg.offered_ts)
        kind = "short_abandoned" if wait < self.rules.short_abandon(leg.queue) else "abandoned"
        self.fact(f"abn{n}", ts, leg, [(kind, 1.0), ("abandon_wait_sum", wait)])

    def on_transferred(self, ts: float, extras: dict[str, Any]) -> None:
        leg = self.leg
        if leg is None:
            return
        n = len(self.legs)
        to_queue, to_agent = extras.get("to_queue"), extras.get("to_agent_id")
        if to_queue:
            self.fact(f"xfer{n}", ts, leg, [("transferred", 1.0)])
            self.close_handle(leg, ts, n)
            leg.closed = True
            self.open_leg(to_queue, leg.channel, ts)
        elif to_agent:
            self.fact(f"xfer{n}", ts, leg, [("transferred", 1.0)])
            self.close_handle(leg, ts, n)
            leg.answered_ts, leg.agent = ts, to_agent

    def close_handle(self, leg: Leg, ts: float, n: int) -> None:
        if leg.answered_ts is not None:
            handle = max(0.0, ts - leg.answered_ts)
            incs = [("handle_n", 1.0), ("handle_sum", handle)]
            incs.append((histogram_key("h", self.rules.histogram_bounds, handle), 1.0))
            self.fact(f"hnd{n}.{leg.agent}", ts, leg, incs)

    def on_wrapped(self, ts: float) -> None:
        leg = self.leg
        if leg is None or leg.answered_ts is None or leg.closed:
            return
        leg.closed = True
        self.close_handle(leg, ts, len(self.legs))

    def on_resolved(self, ts: float, extras: dict[str, Any], event_id: str) -> None:
        self.resolutions += 1
        n, leg = self.resolutions, self.leg
        incs: list[tuple[str, float]] = [("resolved", 1.0)]
        if self.first_offered is not None:
            resolution = max(0.0, ts - self.first_offered)
            incs += [("resolution_n", 1.0), ("resolution_sum", resolution)]
            incs.append((histogram_key("r", self.rules.histogram_bounds, resolution), 1.0))
        if extras.get("outcome") == "converted":
            incs.append(("converted", 1.0))
        self.fact(f"res{n}", ts, leg, incs)
        flag = extras.get("first_contact")
        if flag is not None:
            first = bool(flag)
            self.fact(f"fcr{n}", ts, leg, [("fcr_n", 1.0), ("fcr_first", 1.0 if first else 0.0)])
        elif self.customer_id:
            queue = leg.queue if leg else self.out.queue
            channel = leg.channel if leg else self.channel
            agent = leg.agent if leg else None
            self.out.customer_facts.add(("resolved", f"r{n}", ts, queue, channel, agent))
        else:
            self.fact(f"fcrx{n}", ts, leg, [("fcr_undetermined", 1.0)])

    def on_survey(self, ts: float, extras: dict[str, Any], event_id: str) -> None:
        survey, score = extras.get("survey"), float(extras.get("score", 0))
        incs: list[tuple[str, float]]
        if survey == "csat":
            incs = [("csat_n", 1.0), ("csat_good", 1.0 if score >= 4 else 0.0)]
        elif survey == "nps":
            incs = [("nps_n", 1.0), ("nps_promoters", 1.0 if score >= 9 else 0.0)]
            incs.append(("nps_detractors", 1.0 if score <= 6 else 0.0))
        else:
            incs = [("ces_n", 1.0), ("ces_sum", score), ("ces_easy", 1.0 if score >= 5 else 0.0)]
        leg = self.last_handled_leg()
        self.fact(f"srv.{event_id}", ts, leg, incs)

    def last_handled_leg(self) -> Leg | None:
        for leg in reversed(self.legs):
            if leg.agent is not None:
                return leg
        return self.leg

    def finish(self) -> Derivation:
        out, leg = self.out, self.leg
        if leg is not None:
            out.queue, out.channel, out.agent = leg.queue, leg.channel, leg.agent
            if not leg.closed and leg.answered_ts is None and leg.offered_ts is not None:
                out.waiting = (leg.queue, leg.channel, leg.offered_ts)
            out.closed = leg.closed
        return out


def derive(events: Sequence[Stored], rules: Rules, customer_id: str | None) -> Derivation:
    """Replay a contact's lifecycle events (sorted by time) into facts and live status."""
    d = _Deriver(rules, customer_id)
    for ts, kind, event_id, queue, channel, agent, extras in events:
        extras = extras or {}
        if channel and channel != d.channel and kind == "contact.offered":
            d.channel = channel
        elif channel and d.channel == UNKNOWN:
            d.channel = channel
        if queue and d.out.queue == UNKNOWN:
            d.out.queue = queue
        if kind == "contact.offered":
            d.on_offered(ts, queue or d.out.queue, channel or d.channel)
        elif kind in ("contact.answered", "contact.first_response"):
            d.on_answered(ts, agent, queue)
        elif kind == "contact.abandoned":
            d.on_abandoned(ts)
        elif kind == "contact.transferred":
            d.on_transferred(ts, extras)
        elif kind == "contact.wrapped":
            d.on_wrapped(ts)
        elif kind == "contact.ended":
            _on_ended(d, ts, agent)
        elif kind == "contact.resolved":
            d.on_resolved(ts, extras, event_id)
        elif kind == "contact.reopened":
            d.fact(f"reo.{event_id}", ts, d.leg, [("reopened", 1.0)])
        elif kind == "survey.response":
            d.on_survey(ts, extras, event_id)
    return d.finish()


def _on_ended(d: _Deriver, ts: float, agent: str | None) -> None:
    leg = d.leg
    if leg is not None and leg.answered_ts is not None and agent and leg.agent is None:
        leg.agent = agent


def sort_key(stored: Stored) -> tuple[float, int, str]:
    """Order lifecycle events by time, then by lifecycle stage for equal times."""
    return (stored[0], _STAGE.get(stored[1], 5), stored[2])


_STAGE = {
    "contact.offered": 0,
    "contact.answered": 1,
    "contact.first_response": 1,
    "contact.abandoned": 2,
    "contact.transferred": 2,
    "contact.ended": 3,
    "contact.wrapped": 4,
    "contact.resolved": 5,
    "contact.reopened": 6,
    "survey.response": 7,
}
