"""Zendesk adapter: ticket event webhooks and satisfaction ratings."""

from __future__ import annotations

import json

import pytest
from adapter_fixtures import map_fixture, records

from ccpulse.adapters import UnmappableError, ZendeskMapper

# The fixture:
#   1-10  ticket 101 (email, group 360001): created, the customer's description, assigned
#         (answered), an internal note (nothing), the first public agent reply
#         (first_response), a customer reply, solved, rated good (CSAT 5), reopened,
#         solved again
#   11-17 ticket 102 (web form): created without a group, routed to group 360002
#         (a transfer out of `unassigned`), assigned, reassigned (transfer to the new
#         agent), solved, rated bad (CSAT 1); a rating still `offered` maps to nothing
#   18-19 ticket 103 (messaging): created; a priority change maps to nothing
EXPECTED = [
    (
        1,
        "contact.offered",
        "2025-11-24T08:00:00.000Z",
        "101",
        "360001",
        "email",
        {"customer_id": "7001"},
    ),
    (
        2,
        "message",
        "2025-11-24T08:00:00.000Z",
        "101",
        "360001",
        "email",
        {"customer_id": "7001", "speaker": "customer", "text": "My invoice looks wrong"},
    ),
    (
        3,
        "contact.answered",
        "2025-11-24T08:30:00.000Z",
        "101",
        "360001",
        "email",
        {"agent_id": "9001", "customer_id": "7001"},
    ),
    (
        5,
        "contact.first_response",
        "2025-11-24T09:00:00.000Z",
        "101",
        "360001",
        "email",
        {"agent_id": "9001", "customer_id": "7001"},
    ),
    (
        5,
        "message",
        "2025-11-24T09:00:00.000Z",
        "101",
        "360001",
        "email",
        {
            "agent_id": "9001",
            "customer_id": "7001",
            "speaker": "agent",
            "text": "Refund issued, sorry!",
        },
    ),
    (
        6,
        "message",
        "2025-11-24T09:20:00.000Z",
        "101",
        "360001",
        "email",
        {"customer_id": "7001", "speaker": "customer", "text": "Thanks, that's great"},
    ),
    (
        7,
        "contact.resolved",
        "2025-11-24T09:30:00.000Z",
        "101",
        "360001",
        "email",
        {"agent_id": "9001", "customer_id": "7001"},
    ),
    (
        8,
        "survey.response",
        "2025-11-24T10:00:00.000Z",
        "101",
        "360001",
        "email",
        {"agent_id": "9001", "customer_id": "7001", "survey": "csat", "score": 5},
    ),
    (
        9,
        "contact.reopened",
        "2025-11-25T08:00:00.000Z",
        "101",
        "360001",
        "email",
        {"customer_id": "7001"},
    ),
    (
        10,
        "contact.resolved",
        "2025-11-25T09:00:00.000Z",
        "101",
        "360001",
        "email",
        {"agent_id": "9001", "customer_id": "7001"},
    ),
    (
        11,
        "contact.offered",
        "2025-11-24T11:00:00.000Z",
        "102",
        "unassigned",
        "email",
        {"customer_id": "7002"},
    ),
    (
        12,
        "contact.transferred",
        "2025-11-24T11:05:00.000Z",
        "102",
        "unassigned",
        "email",
        {"customer_id": "7002", "to_queue": "360002"},
    ),
    (
        12,
        "contact.offered",
        "2025-11-24T11:05:00.000Z",
        "102",
        "360002",
        "email",
        {"customer_id": "7002"},
    ),
    (
        13,
        "contact.answered",
        "2025-11-24T12:05:00.000Z",
        "102",
        "360002",
        "email",
        {"agent_id": "9002", "customer_id": "7002"},
    ),
    (
        14,
        "contact.transferred",
        "2025-11-24T12:30:00.000Z",
        "102",
        "360002",
        "email",
        {"agent_id": "9002", "customer_id": "7002", "to_agent_id": "9003"},
    ),
    (
        15,
        "contact.resolved",
        "2025-11-24T13:00:00.000Z",
        "102",
        "360002",
        "email",
        {"agent_id": "9003", "customer_id": "7002"},
    ),
    (
        16,
        "survey.response",
        "2025-11-24T14:00:00.000Z",
        "102",
        "360002",
        "email",
        {"agent_id": "9003", "customer_id": "7002", "survey": "csat", "score": 1},
    ),
    (
        18,
        "contact.offered",
        "2025-11-24T15:00:00.000Z",
        "103",
        "360001",
        "chat",
        {"customer_id": "7003"},
    ),
]


def test_fixture_maps_to_exact_events() -> None:
    assert map_fixture("zendesk.jsonl") == EXPECTED


def test_first_response_is_emitted_once_per_ticket_with_a_ticket_id() -> None:
    mapper = ZendeskMapper()
    lines = records("zendesk.jsonl")
    emitted = [e for line in lines[:6] for e in mapper.map(line)]
    firsts = [e["event_id"] for e in emitted if e["type"] == "contact.first_response"]
    assert firsts == ["zd-101:contact.first_response"]


def test_rating_maps_to_full_canonical_event() -> None:
    assert ZendeskMapper().map(records("zendesk.jsonl")[15]) == [
        {
            "event_id": "zd-rating-555002:survey.response",
            "type": "survey.response",
            "ts": "2025-11-24T14:00:00.000Z",
            "contact_id": "102",
            "queue": "360002",
            "channel": "email",
            "agent_id": "9003",
            "customer_id": "7002",
            "survey": "csat",
            "score": 1,
        }
    ]


def test_group_names_name_the_queue() -> None:
    mapper = ZendeskMapper(group_names={"360001": "Billing"})
    assert mapper.map(records("zendesk.jsonl")[0])[0]["queue"] == "Billing"


def test_other_zendesk_events_map_to_nothing() -> None:
    event = {"type": "zen:event-type:user.active_changed", "id": "x", "detail": {"id": "5"}}
    assert ZendeskMapper().map(json.dumps(event)) == []


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "empty record"),
        ("<html>", "not valid JSON"),
        ('{"type": "ticket.created"}', "not a Zendesk event webhook"),
        ('{"type": "zen:event-type:ticket.created", "time": "2025-11-24T08:00:00Z"}', "ticket id"),
        ('{"type": "zen:event-type:ticket.created", "subject": "zen:ticket:9"}', "without time"),
        ('{"satisfaction_rating": {"score": "good"}}', "needs ticket_id"),
    ],
)
def test_garbage_raises_unmappable_with_reason(body: str, reason: str) -> None:
    with pytest.raises(UnmappableError, match=reason):
        ZendeskMapper().map(body)
