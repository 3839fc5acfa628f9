"""Stage 2 state: customers of one partition of the customer-facts topic.

Contacts of one customer land on different input partitions (they are keyed by contact),
so stage 1 hands each customer's facts to this stage, keyed by ``customer_id``:

- ``contact``: the customer's contact was first offered at ``ts``;
- ``resolved``: a contact was resolved at ``ts`` without a ``first_contact`` flag;
- ``customer.joined``, ``customer.left``, ``purchase``: lifecycle events as they came.

FCR by repeat contact (docs/metrics.md#fcr_rate): a resolution counts as first-contact
resolved unless the same customer has a *different* contact first offered within
``fcr_repeat_days`` after it. Until such a contact shows up, the resolution counts as FCR;
when one does, the resolution's bucket is corrected (``fcr_first`` -1 at the resolution's
time), so ``today`` and the interval windows stay exact.
"""

from __future__ import annotations

from typing import Any

from stream.buckets import BucketState, Horizons, Record, scopes
from stream.windows import WindowClock

MAX_CONTACTS_PER_CUSTOMER = 64
MAX_SOURCE_SKEW_SECONDS = 86400.0  # a silent input partition holds buckets back at most this long


class CustomerState(BucketState):
    """Customer-keyed KPI state of one partition (stage 2)."""

    def __init__(
        self, partition: int, clock: WindowClock, horizons: Horizons, repeat_seconds: float, sources: int = 1
    ) -> None:
        super().__init__(partition, clock, horizons)
        self.repeat_seconds = repeat_seconds
        self.sources = sources  # input partitions that send facts here

    def horizon_watermark(self) -> float:
        """The slowest source partition's watermark: buckets it may still add to are kept.

        Facts from the input partitions interleave in any order (a replay can run one
        partition hours of event time ahead of another), so judging lateness against our
        own newest fact would make the rolling windows depend on that interleaving. A source
        not heard from yet counts as a day behind: the horizon then only ever moves forward,
        so whether a bucket or customer has been forgotten never depends on when a source's
        first fact happened to arrive.
        """
        floor = self.watermark - MAX_SOURCE_SKEW_SECONDS
        sources = self.meta.get("src") or {}
        if len(sources) < self.sources:
            return floor
        return float(max(min(sources.values()), floor))

    def apply(self, fact: dict[str, Any], offset: int) -> None:
        """Apply one customer fact at an offset of the customer-facts topic."""
        reference = fact.get("swm")
        if self.meta["o"] < offset:  # not re-read after a restart
            if reference is not None:
                sources = self.meta.setdefault("src", {})
                name = str(fact.get("src", 0))
                sources[name] = max(sources.get(name, reference), reference)
            if self._made_before(fact):
                self.count("duplicates")  # re-sent by stage 1: this source's facts got past it already
                return
        if not self.advance(fact["ts"], offset, reference):
            return
        key = self.key("u", fact["customer_id"])
        self.entity("u", fact["customer_id"])  # forgets the customer if past its horizon
        record = self._record(key, {"c": [], "r": [], "last": fact["ts"]})
        if record["o"] >= offset:
            return
        if self._seen(record, _dedupe_key(fact)):
            self.count("duplicates")
            return
        self.dirty.add(key)
        record["last"] = max(record["last"], fact["ts"])
        handler = _HANDLERS.get(fact["kind"])
        if handler is not None:
            handler(self, record, fact, offset)

    def _made_before(self, fact: dict[str, Any]) -> bool:
        """Say whether a fact was made at or before the last one taken from its source.

        A source partition's facts reach this partition in the order stage 1 made them; it
        sends a fenced batch's facts again when the batch is re-read, after a rebalance, a
        few offsets later. Remembering where each source's last fact was made (in the meta
        record, written last) tells a re-sent fact from a new one, also when the horizon has
        since forgotten the customer and the ids it held: a batch read at full speed can
        span more event time than ``contact_horizon_seconds``, and its lifecycle facts
        were then counted twice in the totals.
        """
        at = fact.get("at")
        if not at:
            return False
        source, _, rest = str(at).partition(".")
        made = [int(part) for part in rest.split(".")]
        marks = self.meta.setdefault("made", {})
        last = marks.get(source)
        if last is not None and made <= last:
            return True
        marks[source] = made
        return False

    def _on_contact(self, record: Record, fact: dict[str, Any], offset: int) -> None:
        contact, ts = fact["contact_id"], fact["ts"]
        if fact.get("retract"):
            record["c"] = [c for c in record["c"] if c[0] != contact]
            for resolution in record["r"]:  # a repeat this contact made may be gone now
                if resolution[5] and not any(self._is_repeat(resolution, c, t) for c, t in record["c"]):
                    resolution[5] = False
                    self._fcr(resolution, offset, first_delta=1.0, n_delta=0.0)
            return
        record["c"].append([contact, ts])
        del record["c"][:-MAX_CONTACTS_PER_CUSTOMER]
        for resolution in record["r"]:
            if not resolution[5] and self._is_repeat(resolution, contact, ts):
                resolution[5] = True
                self._fcr(resolution, offset, first_delta=-1.0, n_delta=0.0)

    def _on_resolved(self, record: Record, fact: dict[str, Any], offset: int) -> None:
        fid = fact["fact_id"]
        if fact.get("retract"):
            for resolution in [r for r in record["r"] if r[0] == fid]:
                self._fcr(resolution, offset, first_delta=-(not resolution[5]), n_delta=-1.0)
            record["r"] = [r for r in record["r"] if r[0] != fid]
            return
        resolution = [fid, fact["ts"], fact.get("queue") or "unknown", fact.get("channel") or "unknown",
                      fact.get("agent_id"), False, fact.get("contact_id"), fact.get("swm")]
        resolution[5] = any(self._is_repeat(resolution, c, ts) for c, ts in record["c"])
        record["r"].append(resolution)
        del record["r"][:-MAX_CONTACTS_PER_CUSTOMER]
        self._fcr(resolution, offset, first_delta=0.0 if resolution[5] else 1.0, n_delta=1.0)

    def _is_repeat(self, resolution: list[Any], contact: str, ts: float) -> bool:
        resolved_at: float = resolution[1]
        return contact != resolution[6] and resolved_at < ts <= resolved_at + self.repeat_seconds

    def _fcr(self, resolution: list[Any], offset: int, first_delta: float, n_delta: float) -> None:
        _, ts, queue, channel, agent = resolution[:5]
        fact = (resolution[0], ts, queue, channel, agent, (("fcr_first", float(first_delta)), ("fcr_n", n_delta)))
        # judged at the resolution's own source watermark, whichever fact triggers the change
        self.apply_fact(fact, offset, 1.0, resolution[7] if len(resolution) > 7 else None)

    def _on_lifecycle(self, record: Record, fact: dict[str, Any], offset: int) -> None:
        if fact["kind"] == "purchase":
            incs: Any = (("purchases", 1.0), ("purchase_amount", float(fact.get("amount") or 0.0)))
        else:
            incs = (("joined" if fact["kind"] == "customer.joined" else "left", 1.0),)
        self.add_scoped(fact["ts"], ["all"], incs, offset, reference=fact.get("swm"))
        totals = self._record(self.key("t", "totals"), {"s": {}})
        if totals["o"] < offset:
            self.dirty.add(self.key("t", "totals"))
            customers = totals["s"].setdefault("all", {})
            for name, value in incs:
                customers[name] = customers.get(name, 0.0) + value

    def customers_active(self) -> float:
        """Customers joined minus customers left, through the watermark."""
        totals = self.totals().get("all", {})
        return totals.get("joined", 0.0) - totals.get("left", 0.0)

    def entity_expired(self, kind: str, ident: str, record: Record, wm: float) -> bool:
        """Forget a customer's contacts and resolutions once no repeat can change them."""
        if kind != "u":
            return False
        horizon = wm - self.repeat_seconds - self.horizons.lateness
        record["c"] = [c for c in record["c"] if c[1] >= horizon]
        record["r"] = [r for r in record["r"] if r[1] >= horizon]
        return not record["c"] and not record["r"] and wm - record.get("last", wm) > self.horizons.contact


def _dedupe_key(fact: dict[str, Any]) -> str:
    """What makes a fact the same one again.

    Facts stage 1 derives from contacts are deduplicated by where they were made (input
    partition, offset, index): a re-sent batch makes them again in the same place, while a
    fact retracted and added back by a later event is a new one. Customer events come
    straight from the input, where a duplicate is the same event id at another offset.
    """
    sign = "-" if fact.get("retract") else "+"
    where = fact.get("at") if fact["kind"] in ("contact", "resolved") else None
    return f"{sign}{fact['fact_id']}@{where}" if where else sign + fact["fact_id"]


_HANDLERS = {
    "contact": CustomerState._on_contact,
    "resolved": CustomerState._on_resolved,
    "customer.joined": CustomerState._on_lifecycle,
    "customer.left": CustomerState._on_lifecycle,
    "purchase": CustomerState._on_lifecycle,
}

__all__ = ["CustomerState", "scopes"]
