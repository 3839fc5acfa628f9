"""dirty_fraction mixes redelivered duplicates and invalid events into the clean stream."""

from __future__ import annotations

from ccpulse.simulator import default_scenario, generate
from tests.simulator.checks import MONDAY_8AM


def _run(dirty_fraction):
    return list(
        generate(
            default_scenario(), seed=4, start=MONDAY_8AM, duration_seconds=2 * 3600,
            dirty_fraction=dirty_fraction,
        )
    )  # fmt: skip


def test_dirt_leaves_the_clean_stream_unchanged():
    clean = _run(0.0)
    dirty = _run(0.05)
    seen, kept = set(), []
    for event in dirty:
        if "-bad-" not in str(event.get("event_id")) and event["event_id"] not in seen:
            kept.append(event)
            seen.add(event["event_id"])
    assert kept == clean
    assert 0.03 < (len(dirty) - len(clean)) / len(clean) < 0.07


def test_duplicates_are_exact_copies(check_event):
    by_id = {}
    duplicates = 0
    for event in _run(0.05):
        if event.get("event_id") in by_id:
            duplicates += 1
            assert event == by_id[event["event_id"]]
            assert check_event(event) == []
        else:
            by_id[event.get("event_id")] = event
    assert duplicates > 20


def test_invalid_events_fail_the_contract(check_event):
    bad = [e for e in _run(0.05) if "-bad-" in str(e.get("event_id"))]
    assert len(bad) > 20
    assert all(check_event(event) for event in bad)
    reasons = {" ".join(check_event(event)) for event in bad}
    assert any("missing" in r for r in reasons)
    assert any("unknown type" in r for r in reasons)
    assert any(r in ("ts", "score", "amount", "hold_seconds", "queues", "first_contact") or
               "not a string" in r or r.startswith("ts") for r in reasons)  # fmt: skip
