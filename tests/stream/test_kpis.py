"""KPI formulas, scope by scope: exact values for exact inputs (docs/metrics.md)."""

from __future__ import annotations

import random

import pytest

from tests.stream.harness import T0, Events, run, settings


def test_seed_csat_111_of_146_is_0_760() -> None:
    ev = Events()
    for i in range(146):
        ev.call(f"c{i}", 0, answered=5)
        ev.add("survey.response", 100, contact_id=f"c{i}", survey="csat",
               score=5 if i < 80 else 4 if i < 111 else (i % 3) + 1)
    _, k = run(ev.items)
    assert round(k["15m"]["all"]["csat"], 3) == 0.760
    assert k["15m"]["queue:billing"]["csat"] == pytest.approx(111 / 146)


def test_seed_fcr_3296_of_4894_is_0_673() -> None:
    ev = Events()
    for i in range(4894):
        ev.call(f"c{i}", 0, answered=1)
        ev.add("contact.resolved", 60, contact_id=f"c{i}", first_contact=i < 3296)
    _, k = run(ev.items)
    assert round(k["5m"]["all"]["fcr_rate"], 3) == 0.673
    assert k["5m"]["all"]["resolved"] == 4894


def test_seed_ces_78_of_122_easy_is_0_639() -> None:
    ev = Events()
    scores = [5, 6, 7] * 26 + [1, 2, 3, 4] * 11
    assert len(scores) == 122
    for i, score in enumerate(scores):
        ev.call(f"c{i}", 0, answered=2)
        ev.add("survey.response", 50, contact_id=f"c{i}", survey="ces", score=score)
    _, k = run(ev.items)
    assert round(k["15m"]["all"]["ces_easy_ratio"], 3) == 0.639
    assert k["15m"]["all"]["ces"] == pytest.approx(sum(scores) / 122, abs=1e-6)


def test_seed_retention_1000_start_200_new_1100_end_is_0_90() -> None:
    ev = Events()
    for i in range(1000):  # customers present before the window
        ev.add("customer.joined", -7200, customer_id=f"u{i}")
    for i in range(200):
        ev.add("customer.joined", 30, customer_id=f"n{i}")
    for i in range(100):
        ev.add("customer.left", 60, customer_id=f"u{i}")
    ev.add("contact.offered", 120, contact_id="tick", queue="q", channel="voice")
    _, k = run(ev.items, partitions=3)
    assert k["15m"]["all"]["retention_rate"] == pytest.approx(0.90)
    assert k["15m"]["all"]["churn_rate"] == pytest.approx(0.10)


def test_nps_promoters_minus_detractors() -> None:
    ev = Events()
    for i, score in enumerate([10, 9, 9, 8, 7, 6, 0, 10, 3, 9]):  # 5 promoters, 3 detractors
        ev.call(f"c{i}", 0, answered=1)
        ev.add("survey.response", 30, contact_id=f"c{i}", survey="nps", score=score)
    _, k = run(ev.items)
    assert k["15m"]["all"]["nps"] == pytest.approx(20.0)


# (events, scope, expected KPIs) — one call center morning, in 15m window
CALLS = (
    Events()
    .call("c1", 0, answered=10, wrapped=310)          # wait 10 ≤ 20: within SL, handle 300
    .call("c2", 1, answered=41, wrapped=101)          # wait 40 > 20
    .call("c3", 2, abandoned=4)                       # waited 2 s < 5: short abandon
    .call("c4", 3, abandoned=63)                      # waited 60 s: abandon
    .call("c5", 5, queue="sales", channel="chat", answered=65, agent="a2")  # chat T=60: within
    .call("c6", 6, queue="sales", channel="chat")     # still waiting
)


@pytest.mark.parametrize(
    ("scope", "expected"),
    [
        ("all", {"offered": 6, "answered": 3, "abandoned": 1, "short_abandoned": 1, "waiting": 1,
                 "abandon_rate": 1 / 5, "service_level": 2 / 4, "service_level_answered": 2 / 3,
                 "service_level_offered": 2 / 6, "asa_seconds": (10 + 40 + 60) / 3, "aht_seconds": 180.0}),
        ("queue:billing", {"offered": 4, "answered": 2, "abandoned": 1, "short_abandoned": 1,
                           "abandon_rate": 1 / 3, "service_level": 1 / 3, "asa_seconds": 25.0, "waiting": 0}),
        ("channel:chat", {"offered": 2, "answered": 1, "service_level": 1.0, "asa_seconds": 60.0, "waiting": 1,
                          "aht_seconds": None, "abandon_rate": 0.0}),
        ("queue:sales|channel:chat", {"offered": 2, "answered": 1, "oldest_wait_seconds": 310 - 6}),
        ("agent:a1", {"answered": 2, "aht_seconds": 180.0}),
    ],
)
def test_contact_kpis_by_scope(scope: str, expected: dict[str, object]) -> None:
    _, k = run(CALLS.items, partitions=2)
    got = k["15m"][scope]
    for name, value in expected.items():
        assert got[name] == (pytest.approx(value, abs=1e-6) if isinstance(value, float) else value), name


def test_out_of_order_events_count_as_if_in_order() -> None:
    shuffled = list(CALLS.items)
    random.Random(7).shuffle(shuffled)
    _, in_order = run(CALLS.items)
    _, out_of_order = run(shuffled)
    assert out_of_order["15m"] == in_order["15m"]


def test_duplicates_count_once() -> None:
    doubled = [e for e in CALLS.items for _ in (0, 1)]
    pipeline, k = run(doubled)
    _, once = run(CALLS.items)
    assert k["15m"] == once["15m"]
    assert pipeline.contacts[0].meta["n"]["duplicates"] == len(CALLS.items)


def test_empty_window_gives_null_not_zero() -> None:
    ev = Events().call("c1", 0, answered=5)
    ev.add("contact.offered", 7200, contact_id="late", queue="billing", channel="voice")
    _, k = run(ev.items)
    five = k["5m"]["queue:billing"]
    assert five["answered"] == 0
    assert five["service_level"] is None and five["asa_seconds"] is None and five["csat"] is None
    assert k["1h"]["queue:billing"]["asa_seconds"] is None  # c1 answered 2 h ago


def test_transfer_counts_in_both_queues_and_resolution_spans_it() -> None:
    ev = Events()
    ev.call("c1", 0, queue="billing", answered=10)
    ev.add("contact.transferred", 70, contact_id="c1", to_queue="tech")
    ev.add("contact.offered", 71, contact_id="c1", queue="tech", channel="voice")  # same leg
    ev.add("contact.answered", 100, contact_id="c1", agent_id="a9", queue="tech")
    ev.add("contact.wrapped", 400, contact_id="c1")
    ev.add("contact.resolved", 400, contact_id="c1", first_contact=True)
    _, k = run(ev.items)
    w = k["15m"]
    assert w["queue:billing"]["transferred"] == 1 and w["queue:billing"]["offered"] == 1
    assert w["queue:tech"]["offered"] == 1 and w["queue:tech"]["answered"] == 1
    assert w["queue:tech"]["asa_seconds"] == pytest.approx(30.0)  # waits from the transfer at 70
    assert w["all"]["art_seconds"] == pytest.approx(400.0)
    assert w["agent:a1"]["aht_seconds"] == pytest.approx(60.0)  # answered 10 -> transferred 70
    assert w["agent:a9"]["aht_seconds"] == pytest.approx(300.0)


def test_fcr_by_repeat_contact_across_partitions() -> None:
    ev = Events()
    ev.call("c1", 0, answered=5, customer_id="u1")
    ev.add("contact.resolved", 60, contact_id="c1")
    ev.call("c2", 100, answered=105, customer_id="u2")
    ev.add("contact.resolved", 160, contact_id="c2")
    ev.call("c3", 300, answered=305, customer_id="u1")  # u1 is back: c1 was not resolved first time
    _, k = run(ev.items, partitions=4)
    assert k["15m"]["all"]["fcr_rate"] == pytest.approx(0.5)


def test_sentiment_from_text_and_given_scores() -> None:
    ev = Events().call("c1", 0, channel="chat", answered=5)
    ev.add("message", 10, contact_id="c1", speaker="customer", sentiment=-0.5)
    ev.add("message", 20, contact_id="c1", speaker="customer", text="This is awful, I am furious and disappointed")
    ev.add("message", 25, contact_id="c1", speaker="agent", text="Sorry to hear that")
    _, k = run(ev.items)
    from stream.sentiment import score_text

    expected = (-0.5 + score_text("This is awful, I am furious and disappointed")) / 2
    assert k["15m"]["all"]["sentiment"] == pytest.approx(expected, abs=1e-6)
    assert k["15m"]["all"]["negative_ratio"] == 1.0


def test_occupancy_and_live_agent_counts() -> None:
    ev = Events()
    ev.add("agent.state", 0, agent_id="a1", state="available", queues=["billing"])
    ev.add("agent.state", 60, agent_id="a1", state="busy", queues=["billing"])
    ev.add("agent.state", 180, agent_id="a1", state="after_contact_work", queues=["billing"])
    ev.add("agent.state", 240, agent_id="a1", state="available", queues=["billing"])
    ev.add("agent.state", 0, agent_id="a2", state="away", queues=["billing"])
    ev.add("contact.offered", 270, contact_id="tick", queue="billing", channel="voice")
    _, k = run(ev.items)
    w = k["15m"]["queue:billing"]
    # busy 120 + acw 60 over busy + acw + available (60 + 30 ongoing up to the watermark at 270)
    assert w["occupancy"] == pytest.approx(180 / 270)
    assert (w["agents_available"], w["agents_away"], w["agents_busy"]) == (1, 1, 0)


def test_today_window_in_a_non_utc_zone_with_reset_hour() -> None:
    cfg = settings(time_zone="America/New_York", day_reset_hour=6)
    # T0 is 03:00 in New York: before the 06:00 reset, so it belongs to "yesterday"
    ev = Events().call("early", 0, answered=5).call("after", 3 * 3600 + 60, answered=3 * 3600 + 65)
    _, k = run(ev.items, cfg)
    assert k["today"]["all"]["offered"] == 1
    assert k["today"]["all"]["answered"] == 1


def test_interval_window_is_the_current_fixed_interval() -> None:
    ev = (
        Events()
        .call("a", 0, answered=1)
        .call("b", 14 * 60, answered=14 * 60 + 1)
        .call("c", 16 * 60, answered=16 * 60 + 1)
    )
    _, k = run(ev.items)  # T0 is on a quarter hour; c is in the next interval
    assert k["interval"]["all"]["offered"] == 1
    assert k["1h"]["all"]["offered"] == 3


def test_conversion_rate_and_reopened() -> None:
    ev = Events().call("c1", 0, queue="sales", answered=5).call("c2", 0, queue="sales", answered=6)
    ev.add("contact.resolved", 60, contact_id="c1", outcome="converted")
    ev.add("contact.reopened", 90, contact_id="c1")
    _, k = run(ev.items)
    assert k["15m"]["queue:sales"]["conversion_rate"] == pytest.approx(0.5)
    assert k["15m"]["queue:sales"]["reopened"] == 1


def test_per_queue_thresholds_from_settings() -> None:
    cfg = settings(sl_thresholds="billing/voice=5", short_abandon_overrides="billing=1")
    ev = Events().call("c1", 0, answered=10).call("c2", 0, abandoned=2)
    _, k = run(ev.items, cfg)
    assert k["15m"]["all"]["service_level"] == 0.0
    assert k["15m"]["all"]["abandoned"] == 1 and k["15m"]["all"]["short_abandoned"] == 0


def test_window_ends_at_the_watermark_for_replayed_history() -> None:
    ev = Events().call("c1", 0, answered=5)
    pipeline, k = run(ev.items)
    assert pipeline.contacts[0].watermark == T0 + 5
    assert k["5m"]["all"]["offered"] == 1
