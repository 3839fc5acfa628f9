"""Wide-band realism checks, and the knobs that break the service level on demand."""

from __future__ import annotations

import dataclasses
import statistics
from collections import Counter

from ccpulse.simulator import default_scenario, generate
from ccpulse.simulator.timestamps import parse_ts
from tests.simulator.checks import MONDAY_8AM


def _waits(events, after=0.0, channels=("voice", "chat")):
    """Return the waits (s) of contacts answered or abandoned, offered `after` s into the run."""
    offered, waits = {}, []
    for event in events:
        if event.get("channel") not in channels:
            continue
        key = (event.get("contact_id"), event.get("queue"))
        if event["type"] == "contact.offered":
            offered[key] = parse_ts(event["ts"])
        elif event["type"] in ("contact.answered", "contact.abandoned") and key in offered:
            if offered[key] - MONDAY_8AM >= after:
                waits.append(parse_ts(event["ts"]) - offered.pop(key))
    return waits


def test_abandon_share_is_plausible(workday):
    types = Counter(e["type"] for e in workday)
    share = types["contact.abandoned"] / types["contact.offered"]
    assert 0.01 <= share <= 0.30


def test_some_abandons_are_short(full_day):
    offered = {}
    short = 0
    for event in full_day:
        if event["type"] == "contact.offered":
            offered[event["contact_id"]] = parse_ts(event["ts"])
        if event["type"] == "contact.abandoned":
            short += parse_ts(event["ts"]) - offered[event["contact_id"]] < 5
    assert short >= 3


def test_csat_is_mostly_satisfied(full_day):
    csat = [e["score"] for e in full_day if e.get("survey") == "csat"]
    assert len(csat) > 100
    assert 0.55 <= sum(score >= 4 for score in csat) / len(csat) <= 0.90
    nps = [e["score"] for e in full_day if e.get("survey") == "nps"]
    promoters = sum(s >= 9 for s in nps) - sum(s <= 6 for s in nps)
    assert -30 <= 100 * promoters / len(nps) <= 60
    ces = [e["score"] for e in full_day if e.get("survey") == "ces"]
    assert 4.0 <= statistics.mean(ces) <= 6.0


def test_voice_handle_time_is_plausible(workday):
    answered, handle = {}, []
    for event in workday:
        if event.get("channel") != "voice":
            continue
        if event["type"] == "contact.answered":
            answered[event["contact_id"]] = parse_ts(event["ts"])
        elif event["type"] == "contact.wrapped" and event["contact_id"] in answered:
            handle.append(parse_ts(event["ts"]) - answered[event["contact_id"]])
    assert 200 <= statistics.mean(handle) <= 900
    holds = [e for e in workday if e["type"] == "contact.ended" and e.get("hold_seconds")]
    assert holds


def test_email_first_responses_take_hours(full_day):
    waits = _waits(
        [{**e, "type": "contact.answered"} if e["type"] == "contact.first_response" else e
         for e in full_day],
        channels=("email",),
    )  # fmt: skip
    assert 3600 <= statistics.mean(waits) <= 6 * 3600
    assert not any(e["type"] == "contact.answered" and e["channel"] == "email" for e in full_day)


def test_messages_are_real_text_with_occasional_scores(full_day):
    messages = [e for e in full_day if e["type"] == "message"]
    customer = [m for m in messages if m["speaker"] == "customer"]
    assert all(len(m["text"].split()) >= 2 for m in messages)
    scored = [m for m in customer if "sentiment" in m]
    assert 0.05 <= len(scored) / len(customer) <= 0.3
    assert min(m["sentiment"] for m in scored) < -0.2 < 0.2 < max(m["sentiment"] for m in scored)
    assert {m["channel"] for m in messages} == {"chat", "email", "sms", "social"}


def test_sales_convert_and_customers_buy(full_day):
    converted = [e for e in full_day if e.get("outcome") == "converted"]
    assert converted and all(e["queue"] == "sales" for e in converted)
    purchases = [e for e in full_day if e["type"] == "purchase"]
    assert len(purchases) > len(converted)
    assert 5 <= statistics.median(p["amount"] for p in purchases) <= 500


def test_night_is_quiet_and_still_served(full_day):
    offered_by_hour = Counter(
        int(e["ts"][11:13]) for e in full_day if e["type"] == "contact.offered"
    )
    assert offered_by_hour[3] * 5 < offered_by_hour[10]
    night_answers = [
        e for e in full_day if e["type"] == "contact.answered" and e["ts"][11:13] in ("02", "03")
    ]
    assert night_answers


def _mean_wait(scenario, after):
    events = generate(scenario, seed=3, start=MONDAY_8AM, duration_seconds=3 * 3600)
    return statistics.mean(_waits(events, after=after))


def test_staff_drop_raises_the_wait():
    baseline = default_scenario()
    dropped = baseline.staff_drop(at_seconds=3600, fraction=0.5)
    assert _mean_wait(dropped, after=3600) > 2 * _mean_wait(baseline, after=3600)


def test_arrival_spike_raises_the_wait():
    baseline = default_scenario()
    spiked = baseline.arrival_spike(at_seconds=3600, multiplier=3.0, duration_seconds=3600)
    assert _mean_wait(spiked, after=3600) > 2 * _mean_wait(baseline, after=3600)


def test_knobs_can_target_one_queue():
    scenario = default_scenario().arrival_spike(3600, 4.0, 1800, queue="billing")
    events = list(generate(scenario, seed=3, start=MONDAY_8AM, duration_seconds=5400))
    base = list(generate(default_scenario(), seed=3, start=MONDAY_8AM, duration_seconds=5400))

    def offered(stream, queue):
        return sum(
            e["type"] == "contact.offered" and e["queue"] == queue and e["ts"] >= "2026-11-23T09"
            for e in stream
        )

    assert offered(events, "billing") > 2 * offered(base, "billing")
    assert offered(events, "sales") < 1.5 * offered(base, "sales") + 5


def test_utc_offset_moves_the_daily_profile():
    def first_hour_offered(offset_hours):
        scenario = dataclasses.replace(default_scenario(), utc_offset_hours=offset_hours)
        events = generate(scenario, seed=5, start=MONDAY_8AM, duration_seconds=3600)
        return sum(e["type"] == "contact.offered" for e in events)

    assert first_hour_offered(-5.0) * 3 < first_hour_offered(2.0)  # 03:00 versus 10:00 local
