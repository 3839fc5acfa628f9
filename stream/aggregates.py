"""Mergeable KPI aggregates: ``initialize() -> add(agg, incs) -> merge(a, b) -> result(agg)``.

An aggregate is a sparse ``dict[str, float]`` of additive counters (``offered``,
``wait_sum``, sketch buckets ``w:<i>``...). Every counter is a count or a sum, so merging
two buckets, two partitions or two workers is addition, and a retraction (a fact corrected
by a late event) is subtraction. The formulas live in docs/metrics.md; ``result`` is their
one implementation.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from stream import sketch

Agg = dict[str, float]
Kpis = dict[str, Any]

COUNT_KPIS = ("offered", "answered", "abandoned", "short_abandoned", "transferred", "resolved")

# Every KPI name a window snapshot carries, in display order (SPEC §2).
KPI_NAMES = (
    *COUNT_KPIS,
    "reopened",
    "abandon_rate",
    "service_level",
    "service_level_answered",
    "service_level_offered",
    "asa_seconds",
    "wait_p50_seconds",
    "wait_p90_seconds",
    "frt_seconds",
    "aht_seconds",
    "art_seconds",
    "fcr_rate",
    "csat",
    "nps",
    "ces",
    "ces_easy_ratio",
    "sentiment",
    "negative_ratio",
    "conversion_rate",
    "waiting",
    "oldest_wait_seconds",
    "agents_available",
    "agents_busy",
    "agents_acw",
    "agents_away",
    "agents_stale",
    "occupancy",
    "retention_rate",
    "churn_rate",
    "clv",
)

# The KPIs that mean something for one agent (SPEC §2: agent scope only for agent KPIs).
AGENT_KPI_NAMES = (
    "answered",
    "transferred",
    "resolved",
    "aht_seconds",
    "frt_seconds",
    "fcr_rate",
    "csat",
    "nps",
    "ces",
    "conversion_rate",
    "occupancy",
    "sentiment",
)


def initialize() -> Agg:
    """Return an empty aggregate."""
    return {}


def add(agg: Agg, incs: Iterable[tuple[str, float]], sign: float = 1.0) -> Agg:
    """Add (or with sign -1, retract) one fact's increments in place."""
    for key, value in incs:
        total = agg.get(key, 0.0) + sign * value
        if abs(total) < 1e-9:
            agg.pop(key, None)
        else:
            agg[key] = total
    return agg


def merge(target: Agg, other: Mapping[str, float]) -> Agg:
    """Merge ``other`` into ``target`` in place."""
    for key, value in other.items():
        target[key] = target.get(key, 0.0) + value
    return target


def merge_scoped(total: dict[str, Agg], scoped: Mapping[str, Mapping[str, float]]) -> None:
    """Merge ``{scope: aggregate}`` into ``total`` in place; a scope new to ``total`` gets a
    copy (aggregate values are floats, so the copy equals merging into an empty one)."""
    for scope, agg in scoped.items():
        target = total.get(scope)
        if target is None:
            total[scope] = dict(agg)
        else:
            merge(target, agg)


def merged(aggs: Iterable[Mapping[str, float]]) -> Agg:
    """Return the merge of many aggregates."""
    total = initialize()
    for agg in aggs:
        merge(total, agg)
    return total


def _ratio(numerator: float, denominator: float) -> float | None:
    """Return numerator / denominator, or None for an empty window (never 0, never 1)."""
    if denominator <= 0:
        return None
    return numerator / denominator


def agent_result(agg: Mapping[str, float]) -> Kpis:
    """Compute the KPIs an agent scope carries (AGENT_KPI_NAMES), and only those.

    Agents are most scopes of a center (600 agents × 5 windows of the benchmarks' 3,500
    hashes): computing every KPI, wait quantiles included, to keep a dozen was most of a
    publish's arithmetic. ``result`` takes these same values, so each formula is written once.
    """
    g = agg.get
    nps = _ratio(g("nps_promoters", 0.0) - g("nps_detractors", 0.0), g("nps_n", 0.0))
    return {
        "answered": int(round(g("answered", 0.0))),
        "transferred": int(round(g("transferred", 0.0))),
        "resolved": int(round(g("resolved", 0.0))),
        "aht_seconds": _ratio(g("handle_sum", 0.0), g("handle_n", 0.0)),
        "frt_seconds": _ratio(g("frt_sum", 0.0), g("frt_n", 0.0)),
        "fcr_rate": _ratio(g("fcr_first", 0.0), g("fcr_n", 0.0)),
        "csat": _ratio(g("csat_good", 0.0), g("csat_n", 0.0)),
        "nps": None if nps is None else 100.0 * nps,
        "ces": _ratio(g("ces_sum", 0.0), g("ces_n", 0.0)),
        "conversion_rate": _ratio(g("converted", 0.0), g("answered", 0.0)),
        "occupancy": occupancy(agg),
        "sentiment": _ratio(g("sentiment_sum", 0.0), g("sentiment_n", 0.0)),
    }


# The counters of agent time: in microseconds (stream/contacts.py), and in seconds in state
# written before. ``occupancy`` is the one KPI that reads them.
AGENT_TIME_COUNTERS = frozenset(
    ("busy_us", "acw_us", "available_us", "busy_seconds", "acw_seconds", "available_seconds")
)


def occupancy(agg: Mapping[str, float]) -> float | None:
    """Busy and after-contact work time over all logged-in, non-away time (docs/metrics.md)."""
    g = agg.get
    working = (g("busy_us", 0.0) + g("acw_us", 0.0)) / 1e6 + g("busy_seconds", 0.0) + g("acw_seconds", 0.0)
    available = g("available_us", 0.0) / 1e6 + g("available_seconds", 0.0)
    return _ratio(working, working + available)


def same_but_agent_time(old: Mapping[str, float], new: Mapping[str, float]) -> bool:
    """Whether two aggregates hold the same counters but for agent time."""
    time = AGENT_TIME_COUNTERS
    matched = 0
    for key, value in new.items():
        if key in time:
            continue
        if old.get(key) != value:
            return False
        matched += 1
    return matched == len(old) - sum(1 for key in time if key in old)


def result(agg: Mapping[str, float]) -> Kpis:
    """Compute every windowed KPI of one scope from its merged aggregate."""
    g = agg.get
    shared = agent_result(agg)
    offered, answered = g("offered", 0.0), g("answered", 0.0)
    abandoned, short = g("abandoned", 0.0), g("short_abandoned", 0.0)
    within = g("sl_within", 0.0)
    kpis: Kpis = {name: int(round(g(name, 0.0))) for name in (*COUNT_KPIS, "reopened")}
    kpis["abandon_rate"] = _ratio(abandoned, offered - short)
    kpis["service_level"] = _ratio(within, answered + abandoned)
    kpis["service_level_answered"] = _ratio(within, answered)
    kpis["service_level_offered"] = _ratio(within, offered)
    kpis["asa_seconds"] = _ratio(g("wait_sum", 0.0), g("wait_n", 0.0))
    kpis["wait_p50_seconds"], kpis["wait_p90_seconds"] = sketch.quantiles(agg, (0.5, 0.9))
    kpis["frt_seconds"] = shared["frt_seconds"]
    kpis["aht_seconds"] = shared["aht_seconds"]
    kpis["art_seconds"] = _ratio(g("resolution_sum", 0.0), g("resolution_n", 0.0))
    kpis["fcr_rate"] = shared["fcr_rate"]
    kpis["csat"] = shared["csat"]
    kpis["nps"] = shared["nps"]
    kpis["ces"] = shared["ces"]
    kpis["ces_easy_ratio"] = _ratio(g("ces_easy", 0.0), g("ces_n", 0.0))
    kpis["sentiment"] = shared["sentiment"]
    kpis["conversion_rate"] = shared["conversion_rate"]
    kpis["occupancy"] = shared["occupancy"]
    kpis.update(customer_kpis(agg))
    return kpis


def customer_kpis(agg: Mapping[str, float]) -> Kpis:
    """Retention, churn and CLV over a window (docs/metrics.md#retention).

    ``customers_end`` is the number of active customers at the window's end (all joins
    minus all leaves up to the watermark); customers at the start follow from it.
    """
    g = agg.get
    end, joined, left = g("customers_end", 0.0), g("joined", 0.0), g("left", 0.0)
    start = end - joined + left
    retention = _ratio(end - joined, start)
    churn = _ratio(left, start)
    purchases = g("purchases", 0.0)
    clv = None
    if churn and purchases and end > 0:
        average_value = g("purchase_amount", 0.0) / purchases
        clv = average_value * (purchases / end) * (1.0 / churn)
    return {"retention_rate": retention, "churn_rate": churn, "clv": clv}


def round_kpis(kpis: Mapping[str, Any], digits: int = 6) -> Kpis:
    """Round floats for publishing; counts and None pass through."""
    return {k: round(v, digits) if isinstance(v, float) else v for k, v in kpis.items()}


def round_kpi(value: Any, digits: int = 6) -> Any:
    """One value as ``round_kpis`` rounds it."""
    return round(value, digits) if isinstance(value, float) else value
