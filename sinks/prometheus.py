"""Prometheus sink: the latest snapshot as metric families, built at scrape time.

One custom collector is registered on an injected registry. Every scrape builds the families
from the newest snapshot, so the series of a queue this worker no longer owns disappear with
it, and nothing global is touched. docs/metrics-prometheus.md lists every family.

- counters and histograms from ``Snapshot.totals`` (this worker's partitions, since the
  beginning): PromQL computes any window from them, summed across workers;
- gauges of the rolling KPIs and the live state, from the leader only (the leader's
  snapshot carries everyone's KPIs; other workers would repeat them);
- pipeline health from ``Snapshot.pipeline``, on every worker.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING, Any

from prometheus_client import CollectorRegistry
from prometheus_client import exposition as text_format
from prometheus_client.metrics_core import (
    CounterMetricFamily,
    GaugeMetricFamily,
    HistogramMetricFamily,
    Metric,
)
from prometheus_client.openmetrics import exposition as openmetrics_format
from prometheus_client.utils import floatToGoString

from stream.aggregates import COUNT_KPIS  # plain names; stream.aggregates imports no Faust

if TYPE_CHECKING:  # at runtime sinks stay free of stream's Faust imports
    from stream.snapshot import Snapshot

ALL = "_all"  # label value of "every queue" / "every channel"
LIVE_WINDOW = "15m"  # live values are the same in every window; read them from this one
CLASSIC_CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

# (metric name without prefix and _total, totals counter, help) per queue and channel.
CONTACT_COUNTERS = (
    ("contacts_offered", "offered", "Contacts offered to a queue (one per queue leg)."),
    ("contacts_answered", "answered", "Contacts connected to an agent."),
    ("contacts_abandoned", "abandoned", "Abandons after the short-abandon threshold."),
    ("contacts_short_abandoned", "short_abandoned", "Abandons before the short-abandon threshold."),
    ("contacts_transferred", "transferred", "Transfers out of a queue."),
    ("contacts_resolved", "resolved", "contact.resolved events."),
    ("contacts_reopened", "reopened", "contact.reopened events."),
    ("contacts_answered_within_sl", "sl_within", "Contacts answered within the SL threshold."),
    ("csat_responses", "csat_n", "CSAT survey responses."),
    ("csat_satisfied", "csat_good", "CSAT survey responses scoring 4 or 5."),
    ("nps_responses", "nps_n", "NPS survey responses."),
    ("nps_promoters", "nps_promoters", "NPS survey responses scoring 9 or 10."),
    ("nps_detractors", "nps_detractors", "NPS survey responses scoring 0 to 6."),
    ("ces_responses", "ces_n", "CES survey responses."),
    ("ces_easy", "ces_easy", "CES survey responses scoring 5 or more."),
    ("customer_messages", "sentiment_n", "Customer messages with a sentiment score."),
    ("fcr_resolved", "fcr_n", "Resolutions whose first-contact status is known."),
    ("fcr_first_contact", "fcr_first", "Resolutions on first contact."),
    ("conversions", "converted", "Resolutions with outcome converted."),
)
# Customer lifecycle counters live in the totals' "all" scope (no queue, no channel).
CUSTOMER_COUNTERS = (
    ("customers_joined", "joined", "customer.joined events."),
    ("customers_left", "left", "customer.left events."),
    ("purchases", "purchases", "purchase events."),
    ("purchase_amount", "purchase_amount", "Sum of purchase amounts, in their currency."),
)
# (metric name, bucket counter prefix, count key, sum key, help).
HISTOGRAMS = (
    ("wait_seconds", "hw", "wait_n", "wait_sum", "Offer to answer of answered contacts, s."),
    ("handle_seconds", "hh", "handle_n", "handle_sum", "Answer to wrap-up or transfer, s."),
    ("resolution_seconds", "hr", "resolution_n", "resolution_sum", "First offer to resolution, s."),
)
# (KPI name, metric name, help): rolling KPIs by queue, channel and window.
KPI_GAUGES = (
    ("service_level", "service_level_ratio", "Within threshold / (answered + abandoned)."),
    ("service_level_answered", "service_level_answered_ratio", "Within threshold / answered."),
    ("service_level_offered", "service_level_offered_ratio", "Within threshold / offered."),
    ("abandon_rate", "abandon_rate_ratio", "Abandoned / (offered - short abandoned)."),
    ("asa_seconds", "asa_seconds", "Average speed of answer, seconds."),
    ("wait_p50_seconds", "wait_p50_seconds", "Median wait (1% relative error), seconds."),
    ("wait_p90_seconds", "wait_p90_seconds", "90th percentile wait (1% relative error), seconds."),
    ("frt_seconds", "frt_seconds", "Average first response time, seconds."),
    ("aht_seconds", "aht_seconds", "Average handle time, seconds."),
    ("art_seconds", "art_seconds", "Average resolution time, seconds."),
    ("fcr_rate", "fcr_ratio", "First-contact resolutions / resolutions with a known status."),
    ("csat", "csat_ratio", "CSAT responses scoring 4 or 5 / CSAT responses."),
    ("nps", "nps_score", "Net promoter score, -100..100."),
    ("ces", "ces_score", "Mean customer effort score, 1..7."),
    ("ces_easy_ratio", "ces_easy_ratio", "CES responses scoring 5 or more / CES responses."),
    ("sentiment", "sentiment_score", "Mean customer message sentiment, -1..1."),
    ("conversion_rate", "conversion_ratio", "Converted resolutions / answered."),
    ("occupancy", "occupancy_ratio", "Busy + after-contact work / (that + available), time."),
    ("retention_rate", "retention_ratio", "Customer retention over the window."),
    ("churn_rate", "churn_ratio", "Customers lost / customers at the window's start."),
    ("clv", "customer_lifetime_value", "Customer lifetime value, in the purchases' currency."),
)
WINDOW_COUNTS = (*COUNT_KPIS, "reopened")
AGENT_STATES = ("available", "busy", "acw", "away", "stale")
# Pipeline counter name -> (metric name, label "reason" or None).
PIPELINE_COUNTERS: Mapping[str, tuple[str, str | None]] = {
    "processed": ("events_processed", None),
    "duplicates": ("events_duplicate", None),
    "late": ("events_late", None),
    "beyond_horizon": ("events_dropped", "beyond_horizon"),
    "lifecycle_truncated": ("events_dropped", "lifecycle_truncated"),
    "outside_rolling": ("facts_outside_rolling", None),
    "agent_out_of_order": ("agent_events_out_of_order", None),
}
REASONED = ("events_rejected", "events_dropped")  # families with a reason label
ALWAYS_PRESENT = ("events_processed", "events_duplicate", "events_late")
PIPELINE_HELP = {
    "events_processed": "Input events (stage contacts) or customer facts (stage customers).",
    "events_duplicate": "Events ignored as duplicates of an event_id already counted.",
    "events_late": "Events older than the watermark minus the allowed lateness.",
    "events_rejected": "Invalid events sent to the dead-letter topic, by reason.",
    "events_dropped": "Events that could not be counted, by reason.",
    "facts_outside_rolling": "Facts too old for the rolling windows (counted in today, interval).",
    "agent_events_out_of_order": "Agent state events older than the agent's newest state.",
}

STATE_HELP = {
    "watermark_timestamp_seconds": "Event time every window ends at, epoch seconds.",
    "watermark_lag_seconds": "Wall clock minus watermark when the snapshot was built, seconds.",
    "snapshot_timestamp_seconds": "Wall clock when the latest snapshot was built, epoch seconds.",
    "snapshot_partitions": "Stage partitions (contacts + customers) the KPIs include.",
    "leader": "1 if this worker publishes the KPIs for everyone, else 0.",
}


def scope_labels(scope: str) -> tuple[str, str] | None:
    """Return (queue, channel) labels of a scope; None for agent and unknown scopes.

    ``all`` -> (_all, _all); ``queue:q`` -> (q, _all); ``channel:c`` -> (_all, c).
    """
    if scope == "all":
        return ALL, ALL
    parts = dict(part.partition(":")[::2] for part in scope.split("|"))
    if not parts or set(parts) - {"queue", "channel"}:
        return None  # agent ids never become labels
    return parts.get("queue", ALL), parts.get("channel", ALL)


def _number(value: Any) -> float | None:
    """Return a KPI value as a float, or None when it has no number (null, text)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _nonempty(families: Iterable[Metric]) -> Iterator[Metric]:
    return (family for family in families if family.samples)


# -- counters and histograms (every worker) ---------------------------------------------------


def _pair_totals(
    totals: Mapping[str, Mapping[str, float]],
) -> Iterator[tuple[list[str], Mapping[str, float]]]:
    """Yield ([queue, channel], counters) of every queue×channel scope of the totals."""
    for scope, counters in sorted(totals.items()):
        labels = scope_labels(scope)
        if labels is not None and ALL not in labels:
            yield list(labels), counters


def counter_families(snapshot: Snapshot, prefix: str) -> Iterator[Metric]:
    """Yield the cumulative contact and customer counters of this worker's partitions."""
    pairs = list(_pair_totals(snapshot.totals))
    for name, key, doc in CONTACT_COUNTERS:
        family = CounterMetricFamily(f"{prefix}_{name}", doc, labels=["queue", "channel"])
        for labels, counters in pairs:
            family.add_metric(labels, counters.get(key, 0.0))
        yield family
    customers = snapshot.totals.get("all")
    if customers is None:
        return  # this worker owns no customer partition
    for name, key, doc in CUSTOMER_COUNTERS:
        yield CounterMetricFamily(f"{prefix}_{name}", doc, value=customers.get(key, 0.0))


def cumulative_buckets(
    counters: Mapping[str, float], kind: str, bounds: tuple[float, ...], count: float
) -> list[tuple[str, float]]:
    """Turn non-cumulative ``<kind>:<i>`` counters into cumulative (le, count) buckets.

    Example, bounds (5, 20): hw:0 = 2, hw:1 = 3, hw:inf = 1 -> le 5: 2, le 20: 5, +Inf: 6.
    """
    buckets: list[tuple[str, float]] = []
    running = 0.0
    for index, bound in enumerate(bounds):
        running += counters.get(f"{kind}:{index}", 0.0)
        le = floatToGoString(bound)  # type: ignore[no-untyped-call]  # unannotated upstream
        buckets.append((le, running))
    buckets.append(("+Inf", max(count, running)))  # +Inf is the count; never below a bucket
    return buckets


def histogram_families(snapshot: Snapshot, prefix: str) -> Iterator[Metric]:
    """Yield the wait, handle and resolution histograms by queue and channel."""
    pairs = list(_pair_totals(snapshot.totals))
    for name, kind, count_key, sum_key, doc in HISTOGRAMS:
        family = HistogramMetricFamily(f"{prefix}_{name}", doc, labels=["queue", "channel"])
        for labels, counters in pairs:
            buckets = cumulative_buckets(
                counters, kind, snapshot.histogram_bounds, counters.get(count_key, 0.0)
            )
            family.add_metric(labels, buckets, sum_value=counters.get(sum_key, 0.0))
        yield family


# -- KPI and live gauges (leader only) ----------------------------------------------------------


def _kpi_scopes(snapshot: Snapshot) -> Iterator[tuple[str, list[str], Mapping[str, Any]]]:
    """Yield (window, [queue, channel], KPIs) of every non-agent scope."""
    for window, scoped in snapshot.windows.items():
        for scope, kpis in sorted(scoped.items()):
            labels = scope_labels(scope)
            if labels is not None:
                yield window, list(labels), kpis


def kpi_families(snapshot: Snapshot, prefix: str) -> Iterator[Metric]:
    """Yield the rolling KPIs by queue, channel and window; a null KPI has no series."""
    scopes = list(_kpi_scopes(snapshot))
    for kpi, name, doc in KPI_GAUGES:
        family = _gauge(prefix, name, doc, "queue", "channel", "window")
        for window, labels, kpis in scopes:
            value = _number(kpis.get(kpi))
            if value is not None:
                family.add_metric([*labels, window], value)
        yield family
    counts = _gauge(
        prefix, "window_contacts", "Contacts in the window.", "queue", "channel", "window", "kind"
    )
    for window, labels, kpis in scopes:
        for kind in WINDOW_COUNTS:
            value = _number(kpis.get(kind))
            if value is not None:
                counts.add_metric([*labels, window, kind], value)
    yield counts


def _gauge(prefix: str, name: str, doc: str, *labels: str) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{prefix}_{name}", doc, labels=list(labels))


def live_families(snapshot: Snapshot, prefix: str) -> Iterator[Metric]:
    """Yield live gauges (no window label) and the service-level configuration."""
    scoped = snapshot.windows.get(LIVE_WINDOW) or next(iter(snapshot.windows.values()), {})
    waiting = _gauge(prefix, "waiting_contacts", "Contacts waiting now.", "queue", "channel")
    oldest = _gauge(
        prefix, "oldest_wait_seconds", "Oldest wait now (0: none), s.", "queue", "channel"
    )
    negative = _gauge(
        prefix,
        "negative_sentiment_ratio",
        "Open contacts with negative sentiment / with one.",
        "queue",
        "channel",
    )
    agents = _gauge(prefix, "agents", "Agents by live state.", "queue", "state")
    for scope, kpis in sorted(scoped.items()):
        labels = scope_labels(scope)
        if labels is None:
            continue
        _add(waiting, list(labels), kpis.get("waiting"))
        _add(oldest, list(labels), kpis.get("oldest_wait_seconds"))
        _add(negative, list(labels), kpis.get("negative_ratio"))
        if labels[1] == ALL:  # agents are counted per queue, not per channel
            for state in AGENT_STATES:
                _add(agents, [labels[0], state], kpis.get(f"agents_{state}"))
    yield from (waiting, oldest, negative, agents)
    yield from sl_config_families(snapshot, prefix)


def sl_config_families(snapshot: Snapshot, prefix: str) -> Iterator[Metric]:
    """Yield the service-level targets and thresholds the KPIs use."""
    targets = _gauge(prefix, "sl_target_ratio", "Service-level target (queue _default).", "queue")
    for queue, target in sorted(snapshot.sl_targets.items()):
        targets.add_metric(["_default" if queue == "default" else queue], target)
    thresholds = _gauge(
        prefix, "sl_threshold_seconds", "SL threshold T (wait <= T), s.", "queue", "channel"
    )
    for key, seconds in sorted(snapshot.sl_thresholds.items()):
        queue, _, channel = key.partition("|")
        thresholds.add_metric([queue, channel], seconds)
    yield from (targets, thresholds)


def _add(family: GaugeMetricFamily, labels: list[str], value: Any) -> None:
    number = _number(value)
    if number is not None:
        family.add_metric(labels, number)


# -- pipeline (every worker) ------------------------------------------------------------------


def _stage(key: str) -> tuple[str, str]:
    """Split ``customers:duplicates`` into (customers, duplicates); stage 1 keys have no prefix."""
    if key.startswith("customers:"):
        return "customers", key.removeprefix("customers:")
    return "contacts", key


def pipeline_counter_families(pipeline: Mapping[str, float], prefix: str) -> Iterator[Metric]:
    """Yield the event counters by stage; unknown keys are ignored."""
    families = {
        name: CounterMetricFamily(
            f"{prefix}_{name}", doc, labels=["stage", "reason"] if name in REASONED else ["stage"]
        )
        for name, doc in PIPELINE_HELP.items()
    }
    seen: set[tuple[str, str]] = set()
    for key, value in sorted(pipeline.items()):
        stage, name = _stage(key)
        if name.startswith("rejected:"):
            families["events_rejected"].add_metric([stage, name.removeprefix("rejected:")], value)
        elif name in PIPELINE_COUNTERS:
            metric, reason = PIPELINE_COUNTERS[name]
            families[metric].add_metric([stage] if reason is None else [stage, reason], value)
            seen.add((metric, stage))
    for stage in sorted({_stage(key)[0] for key in pipeline if not key.startswith("publish:")}):
        for name in ALWAYS_PRESENT:  # at 0 from the start, so rate() sees the first event
            if (name, stage) not in seen:
                families[name].add_metric([stage], 0.0)
    return iter(families.values())


def publish_families(pipeline: Mapping[str, float], prefix: str) -> Iterator[Metric]:
    """Yield sink health from the ``publish:<sink>:last_success|failures`` keys."""
    last = _gauge(
        prefix, "last_publish_timestamp_seconds", "Last publish of a sink, epoch s.", "sink"
    )
    failures = CounterMetricFamily(
        f"{prefix}_publish_failures", "Failed publish attempts of a sink.", labels=["sink"]
    )
    for key, value in sorted(pipeline.items()):
        kind, _, rest = key.partition(":")
        sink, _, what = rest.rpartition(":")
        if kind != "publish" or not sink:
            continue
        if what == "last_success":
            last.add_metric([sink], value)
        elif what == "failures":
            failures.add_metric([sink], value)
    yield from (last, failures)


def checkpoint_families(pipeline: Mapping[str, float], prefix: str) -> Iterator[Metric]:
    """Yield the background checkpoints' counts from the ``checkpoint:*`` keys, if any."""
    if "checkpoint:written" not in pipeline:
        return
    runs = CounterMetricFamily(
        f"{prefix}_checkpoints", "Background checkpoint runs of this worker, by result.", labels=["result"]
    )
    for result in ("written", "failed"):
        runs.add_metric([result], pipeline.get(f"checkpoint:{result}", 0.0))
    yield runs
    if "checkpoint:last_success" in pipeline:
        yield GaugeMetricFamily(
            f"{prefix}_last_checkpoint_timestamp_seconds",
            "Time of the state the last good background checkpoint holds, epoch s.",
            value=pipeline["checkpoint:last_success"],
        )


def offset_families(pipeline: Mapping[str, float], prefix: str) -> Iterator[Metric]:
    """Yield the offsets the worker went on from, from the ``offsets:<stage>:<reason>`` keys, if any."""
    keys = sorted(key for key in pipeline if key.startswith("offsets:"))
    if not keys:
        return
    skipped = CounterMetricFamily(
        f"{prefix}_offsets_skipped",
        "Input offsets a stage went on from without applying a message: absent (not in the topic), "
        "given_up (still missing after every re-read; events may be lost).",
        labels=["stage", "reason"],
    )
    for key in keys:
        _, stage, reason = key.split(":", 2)
        skipped.add_metric([stage, reason], pipeline[key])
    yield skipped


def state_families(snapshot: Snapshot, prefix: str) -> Iterator[Metric]:
    """Yield watermark, snapshot time, partitions and leadership of this worker."""
    values = {
        "watermark_timestamp_seconds": snapshot.watermark,
        "watermark_lag_seconds": snapshot.watermark_lag_seconds,
        "snapshot_timestamp_seconds": snapshot.generated_at,
        "snapshot_partitions": float(snapshot.partitions_seen),
        "leader": 1.0 if snapshot.leader else 0.0,
    }
    for name, value in values.items():
        yield GaugeMetricFamily(f"{prefix}_{name}", STATE_HELP[name], value=value)


def snapshot_families(snapshot: Snapshot, prefix: str) -> Iterator[Metric]:
    """Yield every family of one snapshot (the KPI gauges only from the leader)."""
    yield from _nonempty(counter_families(snapshot, prefix))
    yield from _nonempty(histogram_families(snapshot, prefix))
    if snapshot.leader:
        yield from _nonempty(kpi_families(snapshot, prefix))
        yield from _nonempty(live_families(snapshot, prefix))
    yield from _nonempty(pipeline_counter_families(snapshot.pipeline, prefix))
    yield from _nonempty(publish_families(snapshot.pipeline, prefix))
    yield from checkpoint_families(snapshot.pipeline, prefix)
    yield from offset_families(snapshot.pipeline, prefix)
    yield from state_families(snapshot, prefix)


class SnapshotCollector:
    """A Prometheus collector reading the latest snapshot at scrape time."""

    def __init__(self, prefix: str) -> None:
        self.prefix = prefix
        self.snapshot: Snapshot | None = None

    def collect(self) -> Iterable[Metric]:
        snapshot = self.snapshot  # one reference: a publish during a scrape cannot mix snapshots
        if snapshot is None:
            return []
        return list(snapshot_families(snapshot, self.prefix))


class PrometheusSink:
    """Expose the latest snapshot on an injected registry."""

    name = "prometheus"

    def __init__(
        self,
        registry: CollectorRegistry,
        prefix: str = "ccpulse",
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.registry = registry
        self.collector = SnapshotCollector(prefix)
        self.clock = clock
        self.last_success_at: float | None = None  # when the latest snapshot was stored
        self.failures = 0  # storing a snapshot cannot fail; kept for the publish metrics
        registry.register(self.collector)

    async def publish(self, snapshot: Snapshot) -> None:
        """Keep the snapshot for the next scrape."""
        self.collector.snapshot = snapshot
        self.last_success_at = self.clock()

    async def close(self) -> None:
        """Remove the collector from the registry."""
        self.registry.unregister(self.collector)


def wants_openmetrics(accept_header: str) -> bool:
    """Say whether an Accept header asks for OpenMetrics (with a non-zero quality)."""
    for item in accept_header.split(","):
        media, *params = (part.strip() for part in item.split(";"))
        quality = next((p.partition("=")[2] for p in params if p.startswith("q=")), "1")
        if media == "application/openmetrics-text" and _quality(quality) > 0:
            return True
    return False


def _quality(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return 0.0


def exposition(registry: CollectorRegistry, accept_header: str) -> tuple[bytes, str]:
    """Render a registry as OpenMetrics if the scraper asks for it, else classic text."""
    if wants_openmetrics(accept_header or ""):
        body = openmetrics_format.generate_latest(registry)  # type: ignore[no-untyped-call]  # as above
        return body, openmetrics_format.CONTENT_TYPE_LATEST
    return text_format.generate_latest(registry), CLASSIC_CONTENT_TYPE
