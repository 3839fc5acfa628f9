"""The stream itself: valid SPEC §1 events, in time order, unique ids, reproducible."""

from __future__ import annotations

import itertools
from collections import Counter

from ccpulse.simulator import default_scenario, generate
from ccpulse.simulator.timestamps import parse_ts
from tests.simulator.checks import MONDAY_8AM, SEED


def test_every_event_is_valid(workday, full_day, check_event):
    invalid = [(event, check_event(event)) for event in workday + full_day if check_event(event)]
    assert invalid == []


def test_events_are_in_time_order(workday, full_day):
    for events in (workday, full_day):
        times = [parse_ts(event["ts"]) for event in events]
        assert times == sorted(times)


def test_timestamps_are_rfc3339_utc_with_milliseconds(workday):
    assert workday[0]["ts"] == "2026-11-23T08:00:00.000Z"
    assert all(len(event["ts"]) == 24 and event["ts"].endswith("Z") for event in workday)


def test_event_ids_are_unique_and_follow_the_seed(workday):
    ids = [event["event_id"] for event in workday]
    assert len(set(ids)) == len(ids)
    assert ids[:3] == [f"sim-{SEED}-1", f"sim-{SEED}-2", f"sim-{SEED}-3"]


def test_same_seed_gives_the_same_stream():
    def run(seed):
        return list(
            generate(default_scenario(), seed=seed, start=MONDAY_8AM, duration_seconds=3600)
        )

    assert run(5) == run(5)
    assert run(5) != run(6)


def test_stream_stays_within_the_duration(workday):
    assert parse_ts(workday[-1]["ts"]) < MONDAY_8AM + 8 * 3600


def test_open_ended_stream_keeps_going():
    stream = generate(default_scenario(), seed=1, start=MONDAY_8AM, duration_seconds=None)
    events = list(itertools.islice(stream, 5000))
    assert len(events) == 5000
    assert parse_ts(events[-1]["ts"]) > MONDAY_8AM


def test_every_type_appears_over_a_day(full_day):
    types = Counter(event["type"] for event in full_day)
    expected = {
        "contact.offered", "contact.answered", "contact.first_response", "contact.abandoned",
        "contact.transferred", "contact.ended", "contact.wrapped", "contact.resolved",
        "contact.reopened", "message", "survey.response", "agent.state", "customer.joined",
        "customer.left", "purchase",
    }  # fmt: skip
    assert set(types) == expected


def test_contact_events_carry_customer_and_agent(workday):
    contact_events = [e for e in workday if e["type"].startswith("contact.")]
    assert all("customer_id" in e for e in contact_events)
    for kind in ("contact.answered", "contact.first_response", "contact.ended", "contact.wrapped"):
        assert all("agent_id" in e for e in contact_events if e["type"] == kind)
    assert not any("agent_id" in e for e in contact_events if e["type"] == "contact.abandoned")


def test_agents_report_their_queues(workday):
    states = [e for e in workday if e["type"] == "agent.state"]
    assert all(e["queues"] for e in states)
    first = {}
    for e in states:
        first.setdefault(e["agent_id"], e)
    assert len(first) == default_scenario().agents
    assert all(e["ts"] == workday[0]["ts"] for e in first.values())


def test_rate_multiplier_scales_the_traffic():
    def offered(multiplier):
        events = generate(
            default_scenario(), seed=2, start=MONDAY_8AM, duration_seconds=4 * 3600,
            rate_multiplier=multiplier,
        )  # fmt: skip
        return sum(e["type"] == "contact.offered" and "priority" not in e for e in events)

    assert 1.6 < offered(2.0) / offered(1.0) < 2.5
    assert offered(0.0) == 0
