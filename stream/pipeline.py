"""Turn a batch of input messages into dead letters, customer facts and ordered state writes.

Faust-free: the agents in stream/agents.py hand in (partition, offset, bytes) and send out
what comes back, in this order: dead letters and customer facts first (awaited), then the
table writes. That order is what makes a crash safe (docs/reliability.md).
"""

from __future__ import annotations

import contextlib
import gc
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

from stream.buckets import Horizons, Record
from stream.contacts import ContactState
from stream.customers import CustomerState
from stream.events import Rejection, parse_event
from stream.lifecycle import Rules
from stream.sentiment import score_text
from stream.settings import DEFAULT_SL_SECONDS, Settings, sl_bucket_bounds
from stream.windows import WindowClock

StoreItems = Callable[[int], Iterator[tuple[str, Record]]]


@dataclass
class BatchResult:
    """What one batch produced, in the order it must be sent."""

    dead_letters: list[dict[str, Any]] = field(default_factory=list)
    customer_facts: list[dict[str, Any]] = field(default_factory=list)
    writes: list[tuple[str, Record | None]] = field(default_factory=list)


FREEZE_AFTER_RECORDS = 50_000


@contextlib.contextmanager
def gc_paused() -> Iterator[None]:
    """No garbage collection while a partition's state loads (a checkpoint, a recovered store).

    Loading makes objects by the million and no garbage; every collection on the way scans
    the whole growing heap (125 copies of the recovery benchmark's checkpoints, 917k
    records, took 59-64 s to load with collections, against 0.17 s for one copy).
    """
    collecting = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if collecting:
            gc.enable()


_loaded_since_freeze = 0


def freeze_if_large(records: int) -> None:
    """Once loads add up to a large state, move every object alive out of the collector's
    sight (``gc.freeze``).

    Later full collections then no longer scan the loaded state: loading 60 copies of the
    recovery benchmark's checkpoints took 7.4-8.3 s so against 13.9 s without. The records
    are plain dicts and lists, freed by reference counting when dropped; what is frozen and
    later becomes cyclic garbage is never collected, so this is done only once
    ``FREEZE_AFTER_RECORDS`` records have been loaded since the last time, where that is
    little beside the state.
    """
    global _loaded_since_freeze
    _loaded_since_freeze += records
    if _loaded_since_freeze >= FREEZE_AFTER_RECORDS:
        gc.freeze()
        _loaded_since_freeze = 0


def window_clock(settings: Settings) -> WindowClock:
    """Build the window arithmetic of a configuration."""
    return WindowClock(
        bucket_seconds=settings.bucket_seconds,
        interval_seconds=settings.interval_seconds,
        zone=settings.zone,
        day_reset_hour=settings.day_reset_hour,
    )


def histogram_bounds(settings: Settings) -> tuple[float, ...]:
    """Wait/handle histogram bounds, with one at every service-level threshold."""
    return tuple(sl_bucket_bounds(settings, tuple(DEFAULT_SL_SECONDS)))


class Pipeline:
    """Stage 1 (contacts, agents) and stage 2 (customers) state of one worker's partitions."""

    def __init__(
        self,
        settings: Settings,
        store_items: StoreItems | None = None,
        customer_items: StoreItems | None = None,
        clock: Callable[[], float] = time.time,
        scorer: Callable[[str], float] = score_text,
    ) -> None:
        self.settings = settings
        self.clock = clock
        self.window_clock = window_clock(settings)
        self.bounds = histogram_bounds(settings)
        self.rules = Rules(settings.sl_threshold_seconds, settings.short_abandon_threshold, self.bounds)
        self.horizons = Horizons(
            lateness=settings.allowed_lateness_seconds,
            contact=settings.contact_horizon_seconds,
            open_contact=settings.open_contact_horizon_seconds,
            scorer=scorer,
        )
        self.store_items = store_items or (lambda partition: iter(()))
        self.customer_items = customer_items or (lambda partition: iter(()))
        self.contacts: dict[int, ContactState] = {}
        self.customers: dict[int, CustomerState] = {}

    # -- state per partition ------------------------------------------------------------------
    def contact_state(self, partition: int) -> ContactState:
        """Return (loading it on first use) the stage 1 state of a partition."""
        state = self.contacts.get(partition)
        if state is None:
            state = ContactState(partition, self.window_clock, self.rules, self.horizons)
            with gc_paused():
                state.load(self.store_items(partition))
                freeze_if_large(len(state.records))
            self.contacts[partition] = state
        return state

    def customer_state(self, partition: int) -> CustomerState:
        """Return (loading it on first use) the stage 2 state of a partition."""
        state = self.customers.get(partition)
        if state is None:
            repeat = self.settings.fcr_repeat_days * 86400.0
            state = CustomerState(partition, self.window_clock, self.horizons, repeat, self.settings.partitions)
            with gc_paused():
                state.load(self.customer_items(partition))
                freeze_if_large(len(state.records))
            self.customers[partition] = state
        return state

    # -- batches ------------------------------------------------------------------------------
    def process(self, messages: Iterable[tuple[int, int, bytes | None]], topic: str = "") -> BatchResult:
        """Apply a batch of raw input messages (partition, offset, value)."""
        result = BatchResult()
        last: dict[int, int] = {}
        now = self.clock()
        for partition, offset, raw in messages:
            state = self.contact_state(partition)
            last[partition] = max(last.get(partition, -1), offset)
            if state.meta["o"] >= offset:
                continue  # already fully reflected (re-delivery after a crash)
            event = parse_event(raw, self.settings.max_event_bytes)
            if not isinstance(event, Rejection) and event.ts > now + self.settings.max_future_seconds:
                event = Rejection("future_timestamp", f"ts {event.ts:.3f} is ahead of the wall clock")
            if isinstance(event, Rejection):
                state.count(f"rejected:{event.reason}")
                result.dead_letters.append(_dead_letter(event, topic, partition, offset, raw, now))
                continue
            outcome = state.apply(event, offset)
            for fact in outcome.customer_facts:
                result.customer_facts.append(fact)
        for partition, offset in sorted(last.items()):
            result.writes.extend(self.contacts[partition].flush(offset))
        return result

    def process_customer_facts(self, facts: Iterable[tuple[int, int, dict[str, Any]]]) -> BatchResult:
        """Apply a batch of customer facts (partition, offset, fact) from stage 1."""
        result = BatchResult()
        last: dict[int, int] = {}
        for partition, offset, fact in facts:
            self.customer_state(partition).apply(fact, offset)
            last[partition] = max(last.get(partition, -1), offset)
        for partition, offset in sorted(last.items()):
            result.writes.extend(self.customers[partition].flush(offset))
        return result


def _dead_letter(
    rejection: Rejection, topic: str, partition: int, offset: int, raw: bytes | None, now: float
) -> dict[str, Any]:
    return {
        "reason": rejection.reason,
        "detail": rejection.detail,
        "topic": topic,
        "partition": partition,
        "offset": offset,
        "original": raw or b"",
        "rejected_at": now,
    }
