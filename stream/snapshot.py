"""Snapshots: the one thing sinks see, built by merging per-partition partials.

A *partial* is one partition's contribution at a watermark, as plain JSON-able data:
its window aggregates by scope, its live gauges, its cumulative totals and counters.
Partials of every partition (from this worker and, through Redis, from the others) merge by
addition into one ``Snapshot``: every KPI of every scope and window, by canonical name.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stream import aggregates
from stream.buckets import compose
from stream.contacts import ContactState
from stream.customers import CustomerState
from stream.lanes import MAIN
from stream.windows import WINDOWS, WindowClock

Partial = dict[str, Any]
LIVE_KPIS = (
    "waiting",
    "oldest_wait_seconds",
    "agents_available",
    "agents_busy",
    "agents_acw",
    "agents_away",
    "agents_stale",
    "negative_ratio",
)


@dataclass(frozen=True)
class Snapshot:
    """Every KPI by window and scope at one watermark, plus this worker's raw counters."""

    app_id: str
    watermark: float  # event time (epoch s) every window ends at
    generated_at: float  # wall clock (epoch s) when this snapshot was built
    windows: Mapping[str, Mapping[str, Mapping[str, Any]]]  # window -> scope -> KPI -> value
    bounds: Mapping[str, tuple[float, float]]  # window -> (start, end), epoch s
    totals: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # "queue:q|channel:c" -> counters
    histogram_bounds: tuple[float, ...] = ()
    pipeline: Mapping[str, float] = field(default_factory=dict)  # this worker's counters
    sl_thresholds: Mapping[str, float] = field(default_factory=dict)  # "queue|channel" -> seconds
    sl_targets: Mapping[str, float] = field(default_factory=dict)  # queue or "default" -> 0..1
    leader: bool = True  # this worker's snapshot carries the KPIs for everyone
    partitions_seen: int = 0  # partitions whose partials went into the KPIs

    @property
    def watermark_lag_seconds(self) -> float:
        return max(0.0, self.generated_at - self.watermark)


def effective_watermark(data_watermark: float, now: float, live: bool, lateness: float) -> float:
    """Windows end at the newest event time, and in live mode never behind now - lateness."""
    if live:
        return max(data_watermark, now - lateness)
    return data_watermark


def window_bounds(clock: WindowClock, watermark: float) -> dict[str, tuple[float, float]]:
    """Return (start, end) of every window at a watermark."""
    return {window: clock.bounds(window, watermark) for window in WINDOWS}


def contact_partial(
    state: ContactState, watermark: float, now: float, stale_seconds: float, negative_below: float,
    lanes: Sequence[str] | None = None,
) -> Partial:
    """One stage 1 partition's contribution at a watermark (only the scopes of ``lanes``,
    stream/lanes.py; None: every scope). Totals and counters come with the main lane."""
    partial: Partial = {
        "stage": "contacts",
        "partition": state.partition,
        "wm": state.watermark,
        "at": watermark,
        "layers": state.window_layers(watermark, lanes),
        "ongoing": state.ongoing_agent_time(window_bounds(state.clock, watermark), lanes),
        "live": state.live_partials(watermark, stale_seconds, negative_below, lanes),
        "updated": now,
    }
    return _with_main(partial, lanes, state.totals(), state.meta["n"])


def customer_partial(
    state: CustomerState, watermark: float, now: float, lanes: Sequence[str] | None = None
) -> Partial:
    """One stage 2 partition's contribution at a watermark (see ``contact_partial``)."""
    partial: Partial = {
        "stage": "customers",
        "partition": state.partition,
        "wm": state.watermark,
        "at": watermark,
        "layers": state.window_layers(watermark, lanes),
        "live": {},
        "updated": now,
    }
    if lanes is None or MAIN in lanes:
        partial["customers_active"] = state.customers_active()
    return _with_main(partial, lanes, state.totals(), state.meta["n"])


def _with_main(partial: Partial, lanes: Sequence[str] | None, totals: Any, counters: Any) -> Partial:
    if lanes is None or MAIN in lanes:
        partial["totals"] = totals
        partial["counters"] = dict(counters)
    else:
        partial["lane"] = ",".join(lanes)
    return partial


def merge_windows(
    partials: Iterable[Partial], customers: bool = True, cache: dict[str, Any] | None = None
) -> dict[str, dict[str, aggregates.Agg]]:
    """Add up the window aggregates of many partials (``customers``: give ``all`` the
    customers active at the end, as the main lane does; ``cache``: kept by the caller from
    one call to the next, see stream/buckets.py ``compose``)."""
    partials = list(partials)
    merged = compose([p["layers"] for p in partials if "layers" in p], cache)
    customers_active = 0.0
    for partial in partials:
        customers_active += partial.get("customers_active", 0.0)
        for name in ("windows", "ongoing"):  # "windows": a partial written before layers
            for window, scoped in partial.get(name, {}).items():
                aggregates.merge_scoped(merged[window], scoped)
    if customers:
        for scoped in merged.values():
            scoped.setdefault("all", {})["customers_end"] = customers_active
    return merged


def merge_live(partials: Iterable[Partial]) -> dict[str, dict[str, float]]:
    """Add up live gauges (the oldest offer time takes the minimum)."""
    merged: dict[str, dict[str, float]] = {}
    for partial in partials:
        for scope, gauges in partial.get("live", {}).items():
            target = merged.setdefault(scope, {})
            for name, value in gauges.items():
                if name == "oldest_offered":
                    target[name] = min(target.get(name, value), value)
                else:
                    target[name] = target.get(name, 0.0) + value
    return merged


def live_kpis(gauges: Mapping[str, float], watermark: float) -> dict[str, Any]:
    """Live KPIs of one scope: oldest wait is 0 when nobody waits."""
    oldest = gauges.get("oldest_offered")
    live_sentiment = gauges.get("sentiment_live", 0.0)
    return {
        "waiting": int(gauges.get("waiting", 0)),
        "oldest_wait_seconds": max(0.0, watermark - oldest) if oldest is not None else 0.0,
        "agents_available": int(gauges.get("agents_available", 0)),
        "agents_busy": int(gauges.get("agents_busy", 0)),
        "agents_acw": int(gauges.get("agents_acw", 0)),
        "agents_away": int(gauges.get("agents_away", 0)),
        "agents_stale": int(gauges.get("agents_stale", 0)),
        "negative_ratio": (
            gauges.get("sentiment_negative", 0.0) / live_sentiment if live_sentiment else None
        ),
    }


MemoEntry = tuple[aggregates.Agg, dict[str, float], float, dict[str, Any]]  # (agg, gauges, wm, KPIs)
Memo = dict[tuple[str, str], MemoEntry]


def kpis_by_window(
    partials: list[Partial], watermark: float, memo: Memo | None = None, main: bool = True,
    cache: dict[str, Any] | None = None,
) -> dict[str, dict[str, dict[str, Any]]]:
    """Every KPI of every scope and window from merged partials.

    ``memo`` (kept by the caller from one publish to the next) remembers each scope's
    aggregate, live gauges and KPIs: a scope whose aggregate and gauges are unchanged (and,
    when somebody waits, whose watermark is too) gets the very same KPI dict again, without
    computing it, and the Redis sink sees by identity that it has nothing to write. During a
    live day most scopes are unchanged from one publish to the next.

    ``main``: the partials hold the main lane (stream/lanes.py), not only agent scopes;
    ``cache``: the caller's, for ``merge_windows``.
    """
    windows = merge_windows(partials, customers=main, cache=cache)
    live = merge_live(partials)
    remembered: Memo = {} if memo is None else memo
    kept: Memo = {}
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for window, scoped in windows.items():
        result: dict[str, dict[str, Any]] = {}
        for scope in sorted(set(scoped) | set(live)):
            agg, gauges = scoped.get(scope, {}), live.get(scope, {})
            wm = watermark if "oldest_offered" in gauges else 0.0  # the only use of the watermark
            before = remembered.get((window, scope))
            kpis = _scope_kpis(scope, agg, gauges, watermark) if before is None else _kpis_since(
                before, scope, agg, gauges, wm, watermark
            )
            kept[(window, scope)] = (agg, gauges, wm, kpis)
            result[scope] = kpis
        out[window] = result
    if memo is not None:
        memo.clear()
        memo.update(kept)
    return out


def _kpis_since(
    before: MemoEntry, scope: str,
    agg: aggregates.Agg, gauges: dict[str, float], wm: float, watermark: float,
) -> dict[str, Any]:
    """A scope's KPIs, given what they were computed from at the last publish (the memo).

    Unchanged inputs give the very same dict. Otherwise only the parts whose inputs changed
    are computed again: the live KPIs (gauges, watermark), occupancy (agent time), the rest
    (the event counters). Agent time moves at every publish for every scope with an agent
    logged in, so a third of the scopes of a live center differ in nothing else; their wait
    quantiles and rates are kept. The result equals ``_scope_kpis`` of the inputs.
    """
    old_agg, old_gauges, old_wm, old_kpis = before
    same_live = old_wm == wm and old_gauges == gauges
    if old_agg == agg:
        if same_live:
            return old_kpis
        kpis = dict(old_kpis)
    elif aggregates.same_but_agent_time(old_agg, agg):
        kpis = dict(old_kpis)
        kpis["occupancy"] = aggregates.round_kpi(aggregates.occupancy(agg))
        if same_live:
            return kpis
    else:
        return _scope_kpis(scope, agg, gauges, watermark)
    kpis.update(aggregates.round_kpis(_live_part(scope, gauges, watermark)))
    return kpis


def _scope_kpis(
    scope: str, agg: aggregates.Agg, gauges: Mapping[str, float], watermark: float
) -> dict[str, Any]:
    kpis = aggregates.agent_result(agg) if scope.startswith("agent:") else aggregates.result(agg)
    kpis.update(_live_part(scope, gauges, watermark))
    return aggregates.round_kpis(kpis)


def _live_part(scope: str, gauges: Mapping[str, float], watermark: float) -> dict[str, Any]:
    return _agent_live(gauges) if scope.startswith("agent:") else live_kpis(gauges, watermark)


def _agent_live(gauges: Mapping[str, float]) -> dict[str, Any]:
    for name in ("agents_available", "agents_busy", "agents_acw", "agents_away", "agents_stale"):
        if gauges.get(name):
            return {"state": name.removeprefix("agents_")}
    return {"state": "offline"}


def merge_totals(partials: Iterable[Partial]) -> dict[str, aggregates.Agg]:
    """Add up cumulative totals by scope (this worker's partitions only)."""
    merged: dict[str, aggregates.Agg] = {}
    for partial in partials:
        for scope, agg in partial.get("totals", {}).items():
            aggregates.merge(merged.setdefault(scope, {}), agg)
    return merged


def merge_counters(partials: Iterable[Partial]) -> dict[str, float]:
    """Add up pipeline counters (processed, late, duplicates, rejected:<reason>...)."""
    merged: dict[str, float] = {}
    for partial in partials:
        for name, value in partial.get("counters", {}).items():
            key = f"{partial['stage']}:{name}" if partial["stage"] == "customers" else name
            merged[key] = merged.get(key, 0.0) + value
    return merged
