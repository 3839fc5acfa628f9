"""Scenarios: the defaults, validation, the knobs and the shift plan."""

from __future__ import annotations

import random

import pytest

from ccpulse.simulator import (
    ArrivalSpike,
    QueueSpec,
    Scenario,
    StaffDrop,
    default_scenario,
    parse_seconds,
    scenario_from_args,
)
from ccpulse.simulator.profile import DAILY_PROFILE, daily_factor
from ccpulse.simulator.roster import build_roster, plan_shift_starts


def test_default_scenario_has_the_classic_queues():
    scenario = default_scenario()
    assert [q.name for q in scenario.queues] == ["billing", "tech_support", "sales", "retention"]
    assert scenario.agents == 24
    assert all(q.channels == ("voice", "chat", "email") for q in scenario.queues)
    voice = [q.peak_arrivals_per_hour["voice"] for q in scenario.queues]
    assert voice == sorted(voice, reverse=True) and voice[-1] > 0


def test_default_scenario_scales_to_many_queues_and_channels():
    channels = ("voice", "chat", "email", "sms", "social")
    scenario = default_scenario(50, channels, 600)
    assert len({q.name for q in scenario.queues}) == 50
    assert scenario.agents == 600
    assert all(q.agents >= 1 for q in scenario.queues)
    small = default_scenario(4, channels, 24)
    big_rate = sum(sum(q.peak_arrivals_per_hour.values()) for q in scenario.queues)
    small_rate = sum(sum(q.peak_arrivals_per_hour.values()) for q in small.queues)
    assert 15 < big_rate / small_rate < 35  # traffic follows staffing


@pytest.mark.parametrize(
    ("build", "message"),
    [
        (lambda: default_scenario(channels=("fax",)), "channels"),
        (lambda: default_scenario(queues=0), "queue"),
        (lambda: QueueSpec("q", {"pigeon": 1.0}, 1), "unknown channels"),
        (lambda: QueueSpec("q", {"voice": -1.0}, 1), ">= 0"),
        (lambda: Scenario(queues=()), "at least one queue"),
        (lambda: default_scenario().staff_drop(60, 1.5), "fraction"),
        (lambda: default_scenario().arrival_spike(60, 2.0, 0), "duration"),
        (lambda: default_scenario().arrival_spike(60, 2.0, 60, queue="nope"), "unknown queue"),
    ],
)
def test_bad_scenarios_fail_loudly(build, message):
    with pytest.raises(ValueError, match=message):
        build()


def test_knobs_return_a_new_scenario():
    base = default_scenario()
    changed = base.staff_drop(3600, 0.5).arrival_spike(1800, 3.0, 900, queue="billing")
    assert base.staff_drops == () and base.arrival_spikes == ()
    assert changed.staff_drops == (StaffDrop(3600, 0.5),)
    assert changed.arrival_spikes == (ArrivalSpike(1800, 3.0, 900, "billing"),)


@pytest.mark.parametrize(
    ("text", "seconds"), [("90", 90.0), ("90s", 90.0), ("15m", 900.0), ("1.5h", 5400.0)]
)
def test_parse_seconds(text, seconds):
    assert parse_seconds(text) == seconds


def test_scenario_from_args_reads_cli_strings():
    scenario = scenario_from_args(
        queues=3,
        channels="voice, sms",
        agents=12,
        staff_drop="1h:0.5:30m@billing",
        arrival_spike="10m:3:15m",
        utc_offset_hours=1.0,
    )
    assert [q.channels for q in scenario.queues] == [("voice", "sms")] * 3
    assert scenario.staff_drops == (StaffDrop(3600.0, 0.5, 1800.0, "billing"),)
    assert scenario.arrival_spikes == (ArrivalSpike(600.0, 3.0, 900.0, None),)
    assert scenario.utc_offset_hours == 1.0
    with pytest.raises(ValueError, match="expected"):
        scenario_from_args(arrival_spike="10m:3")


def test_shift_plan_follows_the_profile_and_never_goes_dark():
    starts = plan_shift_starts(24, DAILY_PROFILE, 8.5)
    on_duty = [
        sum((half_hour * 1800.0 - start) % 86_400 < 8.5 * 3600 for start in starts)
        for half_hour in range(48)
    ]
    assert min(on_duty) >= 1
    assert on_duty[21] > 3 * on_duty[7]  # 10:30 versus 03:30
    assert daily_factor(DAILY_PROFILE, 10.5 * 3600) == max(DAILY_PROFILE)


def test_roster_covers_every_queue_and_channel():
    scenario = default_scenario(6, ("voice", "chat", "email", "sms"), 30)
    plans = build_roster(scenario, random.Random(1))
    assert len({p.agent_id for p in plans}) == 30
    for queue in scenario.queues:
        for channel in queue.channels:
            assert any(queue.name in p.skills and channel in p.channels for p in plans)
    voice_only = [p for p in plans if p.channels == {"voice"}]
    assert voice_only  # phone agents are not tied up by chats
