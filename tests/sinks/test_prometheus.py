"""PrometheusSink: exact samples from a fresh registry per test, promtool, negotiation."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from prometheus_client import CollectorRegistry

from sinks.prometheus import (
    PrometheusSink,
    cumulative_buckets,
    exposition,
    scope_labels,
    wants_openmetrics,
)
from stream.snapshot import Snapshot
from tests.sinks import snapshots

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"


async def registry_with(snapshot: Snapshot) -> CollectorRegistry:
    registry = CollectorRegistry()
    await PrometheusSink(registry, clock=lambda: 1234.0).publish(snapshot)
    return registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float | None:
    return registry.get_sample_value(name, labels)


def names(registry: CollectorRegistry) -> set[str]:
    return {sample.name for family in registry.collect() for sample in family.samples}


BV = {"queue": "billing", "channel": "voice"}
SC = {"queue": "sales", "channel": "chat"}


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("ccpulse_contacts_offered_total", BV, 120.0),
        ("ccpulse_contacts_answered_total", BV, 100.0),
        ("ccpulse_contacts_abandoned_total", BV, 12.0),
        ("ccpulse_contacts_short_abandoned_total", BV, 8.0),
        ("ccpulse_contacts_transferred_total", BV, 0.0),
        ("ccpulse_contacts_resolved_total", BV, 0.0),
        ("ccpulse_contacts_answered_within_sl_total", BV, 80.0),
        ("ccpulse_csat_responses_total", BV, 20.0),
        ("ccpulse_csat_satisfied_total", BV, 15.0),
        ("ccpulse_nps_responses_total", SC, 5.0),
        ("ccpulse_nps_promoters_total", SC, 3.0),
        ("ccpulse_nps_detractors_total", SC, 1.0),
        ("ccpulse_ces_responses_total", SC, 0.0),
        ("ccpulse_customer_messages_total", BV, 40.0),
        ("ccpulse_fcr_resolved_total", BV, 10.0),
        ("ccpulse_fcr_first_contact_total", BV, 7.0),
        ("ccpulse_conversions_total", BV, 2.0),
        ("ccpulse_contacts_offered_total", SC, 30.0),
        ("ccpulse_customers_joined_total", {}, 200.0),
        ("ccpulse_customers_left_total", {}, 100.0),
    ],
)
async def test_counters_from_totals(name: str, labels: dict[str, str], expected: float) -> None:
    registry = await registry_with(snapshots.snapshot())
    assert value(registry, name, **labels) == expected


async def test_wait_histogram_has_cumulative_buckets() -> None:
    registry = await registry_with(snapshots.snapshot())
    bucket = "ccpulse_wait_seconds_bucket"
    # hw:0 = 30, hw:1 = 50, hw:2 = 15, hw:inf = 5 over bounds (5, 20, 60)
    assert value(registry, bucket, le="5.0", **BV) == 30.0
    assert value(registry, bucket, le="20.0", **BV) == 80.0  # a bucket at the voice SL threshold
    assert value(registry, bucket, le="60.0", **BV) == 95.0
    assert value(registry, bucket, le="+Inf", **BV) == 100.0
    assert value(registry, "ccpulse_wait_seconds_count", **BV) == 100.0
    assert value(registry, "ccpulse_wait_seconds_sum", **BV) == 1500.0
    assert value(registry, bucket, le="5.0", **SC) == 0.0
    assert value(registry, bucket, le="20.0", **SC) == 30.0


async def test_handle_and_resolution_histograms() -> None:
    registry = await registry_with(snapshots.snapshot())
    assert value(registry, "ccpulse_handle_seconds_bucket", le="60.0", **BV) == 0.0
    assert value(registry, "ccpulse_handle_seconds_bucket", le="+Inf", **BV) == 90.0
    assert value(registry, "ccpulse_handle_seconds_sum", **BV) == 27000.0
    assert value(registry, "ccpulse_resolution_seconds_count", **SC) == 0.0


def test_cumulative_buckets_never_fall_below_a_bucket() -> None:
    counters = {"hw:0": 2.0, "hw:1": 3.0, "hw:inf": 1.0}
    assert cumulative_buckets(counters, "hw", (5.0, 20.0), 6.0) == [
        ("5.0", 2.0),
        ("20.0", 5.0),
        ("+Inf", 6.0),
    ]
    assert cumulative_buckets(counters, "hw", (5.0, 20.0), 4.0)[-1] == ("+Inf", 5.0)


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        (
            "ccpulse_service_level_ratio",
            {"queue": "billing", "channel": "voice", "window": "15m"},
            0.555556,
        ),
        (
            "ccpulse_service_level_ratio",
            {"queue": "_all", "channel": "_all", "window": "15m"},
            0.692308,
        ),
        (
            "ccpulse_service_level_ratio",
            {"queue": "billing", "channel": "_all", "window": "5m"},
            1.0,
        ),
        (
            "ccpulse_service_level_answered_ratio",
            {"queue": "billing", "channel": "voice", "window": "1h"},
            0.714286,
        ),
        (
            "ccpulse_service_level_offered_ratio",
            {"queue": "billing", "channel": "voice", "window": "today"},
            0.5,
        ),
        (
            "ccpulse_abandon_rate_ratio",
            {"queue": "_all", "channel": "voice", "window": "interval"},
            0.222222,
        ),
        ("ccpulse_asa_seconds", {"queue": "_all", "channel": "_all", "window": "15m"}, 11.272727),
        ("ccpulse_csat_ratio", {"queue": "billing", "channel": "_all", "window": "15m"}, 0.75),
        ("ccpulse_nps_score", {"queue": "sales", "channel": "chat", "window": "15m"}, 25.0),
        (
            "ccpulse_sentiment_score",
            {"queue": "billing", "channel": "voice", "window": "15m"},
            -0.1,
        ),
        ("ccpulse_conversion_ratio", {"queue": "sales", "channel": "chat", "window": "15m"}, 0.0),
        ("ccpulse_retention_ratio", {"queue": "_all", "channel": "_all", "window": "15m"}, 0.9),
        ("ccpulse_churn_ratio", {"queue": "_all", "channel": "_all", "window": "15m"}, 0.1),
        (
            "ccpulse_window_contacts",
            {"queue": "billing", "channel": "voice", "window": "15m", "kind": "offered"},
            10.0,
        ),
        (
            "ccpulse_window_contacts",
            {"queue": "_all", "channel": "_all", "window": "5m", "kind": "answered"},
            2.0,
        ),
        (
            "ccpulse_window_contacts",
            {"queue": "sales", "channel": "_all", "window": "1h", "kind": "short_abandoned"},
            0.0,
        ),
    ],
)
async def test_kpi_gauges(name: str, labels: dict[str, str], expected: float) -> None:
    registry = await registry_with(snapshots.snapshot())
    assert value(registry, name, **labels) == expected


@pytest.mark.parametrize(
    ("name", "labels"),
    [
        (
            "ccpulse_csat_ratio",
            {"queue": "sales", "channel": "chat", "window": "15m"},
        ),  # no responses
        ("ccpulse_nps_score", {"queue": "billing", "channel": "voice", "window": "15m"}),
        ("ccpulse_wait_p50_seconds", {"queue": "_all", "channel": "_all", "window": "15m"}),
        ("ccpulse_customer_lifetime_value", {"queue": "_all", "channel": "_all", "window": "15m"}),
        ("ccpulse_occupancy_ratio", {"queue": "_all", "channel": "_all", "window": "15m"}),
        ("ccpulse_negative_sentiment_ratio", {"queue": "_all", "channel": "_all"}),
    ],
)
async def test_null_kpis_have_no_series(name: str, labels: dict[str, str]) -> None:
    registry = await registry_with(snapshots.snapshot())
    assert value(registry, name, **labels) is None


async def test_families_without_any_value_are_left_out() -> None:
    registry = await registry_with(snapshots.snapshot())
    assert not {"ccpulse_ces_score", "ccpulse_wait_p90_seconds", "ccpulse_art_seconds"} & names(
        registry
    )


async def test_agent_scopes_never_become_labels() -> None:
    registry = await registry_with(snapshots.snapshot())
    body, _ = exposition(registry, "")
    assert b"a1" not in body
    assert not [s for f in registry.collect() for s in f.samples if "agent" in s.labels]
    # agent a1's occupancy (0.666667) is the only occupancy in the snapshot: nothing exported
    assert "ccpulse_occupancy_ratio" not in names(registry)


async def test_live_gauges_have_no_window_label() -> None:
    registry = await registry_with(snapshots.snapshot())
    assert value(registry, "ccpulse_waiting_contacts", queue="billing", channel="voice") == 2.0
    assert value(registry, "ccpulse_waiting_contacts", queue="sales", channel="_all") == 0.0
    assert value(registry, "ccpulse_oldest_wait_seconds", queue="_all", channel="_all") == 42.5
    assert (
        value(registry, "ccpulse_negative_sentiment_ratio", queue="billing", channel="voice")
        == 0.25
    )
    assert value(registry, "ccpulse_agents", queue="_all", state="available") == 3.0
    assert value(registry, "ccpulse_agents", queue="billing", state="busy") == 1.0
    assert value(registry, "ccpulse_agents", queue="billing", state="stale") == 0.0
    assert value(registry, "ccpulse_agents", queue="billing", state="offline") is None
    assert not [
        s
        for f in registry.collect()
        if f.name == "ccpulse_agents"
        for s in f.samples
        if s.labels["queue"] == "_all" and s.labels["state"] == "busy" and s.value != 2.0
    ]
    assert value(registry, "ccpulse_sl_target_ratio", queue="billing") == 0.9
    assert value(registry, "ccpulse_sl_target_ratio", queue="_default") == 0.8
    assert value(registry, "ccpulse_sl_threshold_seconds", queue="sales", channel="chat") == 60.0


async def test_a_follower_exports_counters_but_no_kpi_gauges() -> None:
    registry = await registry_with(snapshots.snapshot(leader=False))
    assert value(registry, "ccpulse_contacts_offered_total", **BV) == 120.0
    assert value(registry, "ccpulse_wait_seconds_bucket", le="20.0", **BV) == 80.0
    assert value(registry, "ccpulse_events_processed_total", stage="contacts") == 5000.0
    assert value(registry, "ccpulse_leader") == 0.0
    exported = names(registry)
    for family in (
        "ccpulse_service_level_ratio",
        "ccpulse_window_contacts",
        "ccpulse_waiting_contacts",
        "ccpulse_agents",
        "ccpulse_sl_target_ratio",
        "ccpulse_sl_threshold_seconds",
    ):
        assert family not in exported


@pytest.mark.parametrize(
    ("name", "labels", "expected"),
    [
        ("ccpulse_events_processed_total", {"stage": "contacts"}, 5000.0),
        ("ccpulse_events_processed_total", {"stage": "customers"}, 300.0),
        ("ccpulse_events_duplicate_total", {"stage": "contacts"}, 12.0),
        ("ccpulse_events_duplicate_total", {"stage": "customers"}, 1.0),
        ("ccpulse_events_late_total", {"stage": "contacts"}, 3.0),
        ("ccpulse_events_late_total", {"stage": "customers"}, 0.0),
        ("ccpulse_events_rejected_total", {"stage": "contacts", "reason": "invalid_json"}, 7.0),
        ("ccpulse_events_rejected_total", {"stage": "contacts", "reason": "unknown_type"}, 2.0),
        ("ccpulse_events_dropped_total", {"stage": "contacts", "reason": "beyond_horizon"}, 1.0),
        (
            "ccpulse_events_dropped_total",
            {"stage": "contacts", "reason": "lifecycle_truncated"},
            2.0,
        ),
        ("ccpulse_facts_outside_rolling_total", {"stage": "contacts"}, 4.0),
        ("ccpulse_agent_events_out_of_order_total", {"stage": "contacts"}, 6.0),
        ("ccpulse_last_publish_timestamp_seconds", {"sink": "redis"}, 1_800_000_899.0),
        ("ccpulse_publish_failures_total", {"sink": "redis"}, 3.0),
        ("ccpulse_watermark_timestamp_seconds", {}, snapshots.WM),
        ("ccpulse_watermark_lag_seconds", {}, 1.5),
        ("ccpulse_snapshot_timestamp_seconds", {}, snapshots.GENERATED),
        ("ccpulse_snapshot_partitions", {}, 2.0),
        ("ccpulse_leader", {}, 1.0),
    ],
)
async def test_pipeline_metrics(name: str, labels: dict[str, str], expected: float) -> None:
    registry = await registry_with(snapshots.snapshot())
    assert value(registry, name, **labels) == expected


async def test_background_checkpoints_are_counted_once_a_worker_writes_them() -> None:
    quiet = await registry_with(snapshots.snapshot())
    assert not {"ccpulse_checkpoints_total", "ccpulse_last_checkpoint_timestamp_seconds"} & names(quiet)
    counted = await registry_with(snapshots.snapshot(pipeline={"checkpoint:written": 0.0, "checkpoint:failed": 0.0}))
    assert value(counted, "ccpulse_checkpoints_total", result="written") == 0.0
    assert "ccpulse_last_checkpoint_timestamp_seconds" not in names(counted), "none written yet"
    registry = await registry_with(snapshots.snapshot(pipeline={
        "checkpoint:written": 4.0, "checkpoint:failed": 1.0, "checkpoint:last_success": 1_800_000_840.0,
    }))
    assert value(registry, "ccpulse_checkpoints_total", result="written") == 4.0
    assert value(registry, "ccpulse_checkpoints_total", result="failed") == 1.0
    assert value(registry, "ccpulse_last_checkpoint_timestamp_seconds") == 1_800_000_840.0
    assert value(registry, "ccpulse_events_processed_total", stage="contacts") is not None


async def test_unknown_pipeline_keys_are_ignored() -> None:
    registry = await registry_with(
        snapshots.snapshot(pipeline={"x": 1.0, "publish:": 2.0, "rejected:": 3.0})
    )
    assert value(registry, "ccpulse_events_processed_total", stage="contacts") == 0.0
    assert value(registry, "ccpulse_events_rejected_total", stage="contacts", reason="") == 3.0
    assert "ccpulse_publish_failures_total" not in names(registry)


async def test_a_queue_that_left_this_worker_disappears() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry)
    await sink.publish(snapshots.snapshot())
    only_billing = {k: v for k, v in snapshots.TOTALS.items() if "sales" not in k}
    await sink.publish(snapshots.snapshot(totals=only_billing))
    assert value(registry, "ccpulse_contacts_offered_total", **SC) is None
    assert value(registry, "ccpulse_contacts_offered_total", **BV) == 120.0


async def test_nothing_before_the_first_snapshot_and_after_close() -> None:
    registry = CollectorRegistry()
    sink = PrometheusSink(registry, clock=lambda: 1234.0)
    assert names(registry) == set()
    await sink.publish(snapshots.snapshot())
    assert sink.last_success_at == 1234.0
    assert "ccpulse_leader" in names(registry)
    await sink.close()
    assert names(registry) == set()


async def test_prefix_is_configurable() -> None:
    registry = CollectorRegistry()
    await PrometheusSink(registry, prefix="cc2").publish(snapshots.snapshot())
    assert value(registry, "cc2_contacts_offered_total", **BV) == 120.0
    assert value(registry, "ccpulse_contacts_offered_total", **BV) is None


def promtool(body: bytes) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [PROMTOOL, "check", "metrics"],
        input=body.decode(),
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("leader", [True, False])
async def test_promtool_check_metrics_is_clean(leader: bool) -> None:
    registry = await registry_with(snapshots.snapshot(leader=leader))
    body, content_type = exposition(registry, "text/plain;version=0.0.4")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    checked = promtool(body)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    assert (checked.stdout + checked.stderr).strip().splitlines() == []


async def test_promtool_rejects_what_it_should() -> None:
    """The check is real: a gauge named like a histogram part fails it."""
    checked = promtool(b"# HELP bad_sum x\n# TYPE bad_sum gauge\nbad_sum 1\n")
    assert checked.returncode != 0


async def test_openmetrics_when_asked() -> None:
    registry = await registry_with(snapshots.snapshot())
    accept = (
        "application/openmetrics-text;version=1.0.0;q=0.5,text/plain;version=0.0.4;q=0.3,*/*;q=0.2"
    )
    body, content_type = exposition(registry, accept)
    assert content_type.startswith("application/openmetrics-text; version=1.0.0")
    assert body.endswith(b"# EOF\n")
    assert b"# TYPE ccpulse_contacts_offered counter\n" in body
    assert b'ccpulse_contacts_offered_total{channel="voice",queue="billing"} 120.0\n' in body


@pytest.mark.parametrize(
    ("accept", "openmetrics"),
    [
        ("", False),
        ("*/*", False),
        ("text/plain", False),
        ("application/openmetrics-text", True),
        ("text/plain;q=0.9, application/openmetrics-text; version=1.0.0; q=0.5", True),
        ("application/openmetrics-text;q=0", False),
    ],
)
def test_accept_header_negotiation(accept: str, openmetrics: bool) -> None:
    assert wants_openmetrics(accept) is openmetrics


async def test_classic_text_by_default() -> None:
    registry = await registry_with(snapshots.snapshot())
    body, content_type = exposition(registry, "")
    assert content_type == "text/plain; version=0.0.4; charset=utf-8"
    assert b"# EOF" not in body
    assert b"# TYPE ccpulse_contacts_offered_total counter\n" in body


@pytest.mark.parametrize(
    ("scope", "labels"),
    [
        ("all", ("_all", "_all")),
        ("queue:billing", ("billing", "_all")),
        ("channel:voice", ("_all", "voice")),
        ("queue:billing|channel:voice", ("billing", "voice")),
        ("queue:a:b|channel:c", ("a:b", "c")),
        ("agent:a1", None),
        ("weird", None),
    ],
)
def test_scope_labels(scope: str, labels: tuple[str, str] | None) -> None:
    assert scope_labels(scope) == labels
