"""Each fixture's canonical events give the expected numbers in a tiny reference KPI."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from adapter_fixtures import FIXTURE_FORMATS, map_records, records

from ccpulse.adapters import get_mapper


def reference_kpis(events: list[dict[str, Any]]) -> dict[str, Any]:
    """Count offered/answered/abandoned and the mean wait of answered contacts.

    A wait runs from the contact's latest offer at or before the answer, so each leg
    of a transferred contact is measured from the queue it was answered in.
    """
    unique = sorted({e["event_id"]: e for e in events}.values(), key=lambda e: e["ts"])
    offered_at: dict[str, datetime] = {}
    waits: list[float] = []
    counts = {"offered": 0, "answered": 0, "abandoned": 0}
    for event in unique:
        kind = event["type"].removeprefix("contact.")
        when = datetime.fromisoformat(event["ts"])
        if kind == "offered":
            offered_at[event["contact_id"]] = when
        if kind == "answered":
            waits.append((when - offered_at[event["contact_id"]]).total_seconds())
        if kind in counts:
            counts[kind] += 1
    return {**counts, "mean_wait_seconds": round(sum(waits) / len(waits), 3) if waits else None}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        # A 12 s, B 8, F 10 (in support), G 4 (sales) and 15 (support), I 6, J 12
        (
            "asterisk_queue_log.log",
            {"offered": 14, "answered": 7, "abandoned": 7, "mean_wait_seconds": 9.571},
        ),
        (
            "asterisk_queue_log_db.jsonl",
            {"offered": 3, "answered": 1, "abandoned": 2, "mean_wait_seconds": 7.5},
        ),
        # c-0001 25 s, c-0003 10 (Billing) and 34 (Support), callback 840, c-0010 20
        (
            "amazon_connect.jsonl",
            {"offered": 8, "answered": 5, "abandoned": 2, "mean_wait_seconds": 185.8},
        ),
        # WT001 9 s, WT003 3 s in Sales and 20 s in Support after the transfer
        (
            "twilio_taskrouter.txt",
            {"offered": 4, "answered": 3, "abandoned": 1, "mean_wait_seconds": 10.667},
        ),
        # ticket 101 assigned after 30 min, 102 an hour after reaching its group
        (
            "zendesk.jsonl",
            {"offered": 4, "answered": 2, "abandoned": 0, "mean_wait_seconds": 2700.0},
        ),
    ],
)
def test_fixture_gives_expected_kpis(name: str, expected: dict[str, Any]) -> None:
    mapper = get_mapper(FIXTURE_FORMATS[name])
    events = [event for _, event in map_records(mapper, records(name))]
    assert reference_kpis(events) == expected


def test_replaying_a_fixture_twice_counts_once() -> None:
    name = "asterisk_queue_log.log"
    twice = [
        e
        for _ in range(2)
        for _, e in map_records(get_mapper(FIXTURE_FORMATS[name]), records(name))
    ]
    assert reference_kpis(twice)["offered"] == 14
