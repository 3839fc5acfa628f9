"""Hand-made snapshots with known KPIs for the sink tests."""

from __future__ import annotations

import dataclasses
from typing import Any

from stream.aggregates import Agg
from stream.snapshot import Partial, Snapshot, kpis_by_window
from stream.windows import WINDOWS

WM = 1_800_000_900.0  # watermark: 2027-01-15T08:15:00Z
GENERATED = WM + 1.5
HISTOGRAM_BOUNDS = (5.0, 20.0, 60.0)

# billing/voice in the 15m window: 10 offered, 7 answered (5 within 20 s), 2 abandoned, 1 short.
BILLING_VOICE: Agg = {
    "offered": 10,
    "answered": 7,
    "abandoned": 2,
    "short_abandoned": 1,
    "transferred": 1,
    "resolved": 4,
    "sl_within": 5,
    "wait_n": 7,
    "wait_sum": 84.0,
    "csat_n": 4,
    "csat_good": 3,
    "sentiment_n": 4,
    "sentiment_sum": -0.4,
}
# sales/chat in the 15m window: every contact answered at once.
SALES_CHAT: Agg = {
    "offered": 4,
    "answered": 4,
    "sl_within": 4,
    "wait_n": 4,
    "wait_sum": 40.0,
    "nps_n": 4,
    "nps_promoters": 2,
    "nps_detractors": 1,
}
# billing/voice in the 5m window.
BILLING_VOICE_5M: Agg = {"offered": 2, "answered": 2, "sl_within": 2, "wait_n": 2, "wait_sum": 10.0}
AGENT_A1: Agg = {
    "answered": 3,
    "handle_n": 3,
    "handle_sum": 600.0,
    "busy_seconds": 600.0,
    "available_seconds": 300.0,
}

# Cumulative totals of this worker's partitions (for Prometheus counters and histograms).
TOTALS: dict[str, Agg] = {
    "queue:billing|channel:voice": {
        "offered": 120,
        "answered": 100,
        "abandoned": 12,
        "short_abandoned": 8,
        "sl_within": 80,
        "wait_n": 100,
        "wait_sum": 1500.0,
        "hw:0": 30,
        "hw:1": 50,
        "hw:2": 15,
        "hw:inf": 5,
        "handle_n": 90,
        "handle_sum": 27000.0,
        "hh:inf": 90,
        "csat_n": 20,
        "csat_good": 15,
        "sentiment_n": 40,
        "sentiment_sum": -3.5,
        "fcr_n": 10,
        "fcr_first": 7,
        "converted": 2,
    },
    "queue:sales|channel:chat": {
        "offered": 30,
        "answered": 30,
        "sl_within": 30,
        "wait_n": 30,
        "wait_sum": 300.0,
        "hw:1": 30,
        "nps_n": 5,
        "nps_promoters": 3,
        "nps_detractors": 1,
    },
    "all": {"joined": 200, "left": 100},
}
PIPELINE = {
    "processed": 5000.0,
    "duplicates": 12.0,
    "late": 3.0,
    "beyond_horizon": 1.0,
    "lifecycle_truncated": 2.0,
    "outside_rolling": 4.0,
    "agent_out_of_order": 6.0,
    "rejected:invalid_json": 7.0,
    "rejected:unknown_type": 2.0,
    "customers:processed": 300.0,
    "customers:duplicates": 1.0,
    "publish:redis:last_success": 1_800_000_899.0,
    "publish:redis:failures": 3.0,
    "something:new": 9.0,
}


def scoped(queue: str, channel: str, agg: Agg) -> dict[str, Agg]:
    """Return an aggregate under every scope it counts in."""
    return {
        scope: dict(agg)
        for scope in (
            "all",
            f"queue:{queue}",
            f"channel:{channel}",
            f"queue:{queue}|channel:{channel}",
        )
    }


def merged(*parts: dict[str, Agg]) -> dict[str, Agg]:
    out: dict[str, Agg] = {}
    for part in parts:
        for scope, agg in part.items():
            target = out.setdefault(scope, {})
            for key, value in agg.items():
                target[key] = target.get(key, 0.0) + value
    return out


def partials(billing_voice: Agg = BILLING_VOICE) -> list[Partial]:
    """One contacts partition and one customers partition."""
    m15 = merged(
        scoped("billing", "voice", billing_voice),
        scoped("sales", "chat", SALES_CHAT),
        {"agent:a1": AGENT_A1},
    )
    windows = {
        "5m": scoped("billing", "voice", BILLING_VOICE_5M),
        "15m": m15,
        "1h": m15,
        "today": m15,
        "interval": m15,
    }
    live = {
        "all": {"waiting": 2, "oldest_offered": WM - 42.5, "agents_available": 3, "agents_busy": 2},
        "queue:billing": {
            "waiting": 2,
            "oldest_offered": WM - 42.5,
            "agents_available": 2,
            "agents_busy": 1,
        },
        "channel:voice": {"waiting": 2, "oldest_offered": WM - 42.5},
        "queue:billing|channel:voice": {
            "waiting": 2,
            "oldest_offered": WM - 42.5,
            "sentiment_live": 4,
            "sentiment_negative": 1,
        },
        "agent:a1": {"agents_busy": 1},
    }
    contacts: Partial = {
        "stage": "contacts",
        "partition": 0,
        "wm": WM,
        "at": WM,
        "windows": windows,
        "live": live,
    }
    customer_windows = {w: {"all": {"joined": 200.0, "left": 100.0}} for w in WINDOWS}
    customers: Partial = {
        "stage": "customers",
        "partition": 0,
        "wm": WM,
        "at": WM,
        "windows": customer_windows,
        "customers_active": 1100.0,
    }
    return [contacts, customers]


def snapshot(**overrides: Any) -> Snapshot:
    """A leader snapshot of the partials above."""
    base = Snapshot(
        app_id="test",
        watermark=WM,
        generated_at=GENERATED,
        windows=kpis_by_window(partials(), WM),
        bounds={
            "5m": (WM - 300, WM),
            "15m": (WM - 900, WM),
            "1h": (WM - 3600, WM),
            "today": (WM - 29700, WM),
            "interval": (WM - 900, WM),
        },
        totals=TOTALS,
        histogram_bounds=HISTOGRAM_BOUNDS,
        pipeline=PIPELINE,
        sl_thresholds={"billing|voice": 20.0, "sales|chat": 60.0},
        sl_targets={"billing": 0.9, "sales": 0.8, "default": 0.8},
        leader=True,
        partitions_seen=2,
    )
    return dataclasses.replace(base, **overrides)


def with_billing_voice(agg: Agg, **overrides: Any) -> Snapshot:
    """The snapshot with other billing/voice numbers in 15m, 1h, today and interval."""
    return snapshot(windows=kpis_by_window(partials(agg), WM), **overrides)
