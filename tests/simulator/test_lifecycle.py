"""Each contact and agent tells a consistent story."""

from __future__ import annotations

from collections import defaultdict

ANSWERS = {"contact.answered", "contact.first_response"}


def _contacts(events):
    by_contact = defaultdict(list)
    for event in events:
        if "contact_id" in event:
            by_contact[event["contact_id"]].append(event)
    return by_contact


def _legs(history):
    """Split a contact's lifecycle events at each contact.offered (a transfer starts a leg)."""
    legs = []
    for event in history:
        if event["type"] == "contact.offered":
            legs.append([])
        legs[-1].append(event)
    return legs


def test_contacts_start_with_offered(workday, full_day):
    for events in (workday, full_day):
        for history in _contacts(events).values():
            assert history[0]["type"] == "contact.offered"


def test_each_leg_runs_offered_answered_ended_wrapped(workday, full_day):
    order = ["contact.offered", "answer", "contact.ended", "contact.wrapped"]
    for events in (workday, full_day):
        for history in _contacts(events).values():
            for leg in _legs(history):
                steps = [
                    "answer" if e["type"] in ANSWERS and e["channel"] != "email" else e["type"]
                    for e in leg
                    if e["type"] in ANSWERS or e["type"] in order
                ]
                if leg[0]["channel"] == "email":  # email: first_response is the reply itself
                    steps = [s if s != "contact.first_response" else "answer" for s in steps]
                assert steps == order[: len(steps)], steps


def test_abandoned_legs_are_never_answered(full_day):
    abandoned = 0
    for history in _contacts(full_day).values():
        for leg in _legs(history):
            types = [e["type"] for e in leg]
            if "contact.abandoned" in types:
                abandoned += 1
                assert types[-1] == "contact.abandoned" or all(
                    t in ("message", "contact.abandoned") for t in types[1:]
                )
                assert not ANSWERS & set(types)
    assert abandoned > 10


def test_transfers_are_offered_again_in_the_target_queue(full_day):
    transfers = 0
    for history in _contacts(full_day).values():
        lifecycle = [e for e in history if e["type"].startswith("contact.")]
        for event, following in zip(lifecycle, lifecycle[1:], strict=False):
            if event["type"] == "contact.transferred":
                transfers += 1
                assert following["type"] == "contact.offered"
                assert following["queue"] == event["to_queue"] != event["queue"]
                assert following["ts"] == event["ts"]
    assert transfers > 5


def test_one_agent_per_leg_and_queue_per_leg(full_day):
    for history in _contacts(full_day).values():
        for leg in _legs(history):
            queues = {e["queue"] for e in leg if e["type"] != "contact.reopened"}
            agents = {
                e["agent_id"] for e in leg if e["type"].startswith("contact.") and "agent_id" in e
            }
            assert len(agents) <= 1
            if not any(e["type"] == "contact.resolved" for e in leg):
                assert len(queues) == 1


def test_resolutions_and_surveys_follow_the_wrap_up(full_day):
    for history in _contacts(full_day).values():
        types = [e["type"] for e in history]
        for kind in ("contact.resolved", "survey.response", "contact.reopened"):
            if kind in types:
                assert "contact.wrapped" in types[: types.index(kind)]
        if "contact.reopened" in types:
            assert "contact.resolved" in types[: types.index("contact.reopened")]


def test_agents_only_answer_when_logged_in_and_present(full_day):
    state = {}
    for event in full_day:
        if event["type"] == "agent.state":
            state[event["agent_id"]] = event["state"]
        elif event["type"] in ANSWERS or event["type"] == "contact.transferred":
            assert state[event["agent_id"]] not in ("offline", "away")


def test_agent_states_change_on_every_event(full_day):
    last = {}
    for event in full_day:
        if event["type"] == "agent.state":
            assert last.get(event["agent_id"]) != event["state"]
            last[event["agent_id"]] = event["state"]
    seen = {e["state"] for e in full_day if e["type"] == "agent.state"}
    assert seen == {"available", "busy", "after_contact_work", "away", "offline"}


def test_customers_come_back(full_day):
    contacts_per_customer = defaultdict(set)
    for event in full_day:
        if event["type"] == "contact.offered":
            contacts_per_customer[event["customer_id"]].add(event["contact_id"])
    repeaters = [c for c, contacts in contacts_per_customer.items() if len(contacts) > 1]
    assert len(repeaters) > 20
    flags = [e["first_contact"] for e in full_day if "first_contact" in e]
    assert True in flags and False in flags


def test_customers_write_first_on_digital_channels(full_day):
    for history in _contacts(full_day).values():
        messages = [e for e in history if e["type"] == "message"]
        if messages:
            assert messages[0]["speaker"] == "customer"
            assert "agent_id" not in messages[0]
            assert messages[0]["ts"] == history[0]["ts"]


def test_first_response_is_the_agents_first_message(full_day):
    checked = 0
    for history in _contacts(full_day).values():
        for leg in _legs(history):
            responses = [e for e in leg if e["type"] == "contact.first_response"]
            agent_messages = [e for e in leg if e["type"] == "message" and e["speaker"] == "agent"]
            if responses:
                assert agent_messages[0]["ts"] == responses[0]["ts"]
                checked += 1
            else:  # live channels answer instead; async agents never write unannounced
                assert not agent_messages or leg[0]["channel"] == "chat"
    assert checked > 50
