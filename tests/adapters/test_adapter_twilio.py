"""Twilio TaskRouter adapter: form-encoded and JSON callbacks, Event Streams."""

from __future__ import annotations

import json
from urllib.parse import parse_qsl

import pytest
from adapter_fixtures import map_fixture, records

from ccpulse.adapters import TwilioTaskRouterMapper, UnmappableError

# The fixture (epochs from 1764003600 = 2025-11-24T17:00:00Z):
#   1-6   WT001 voice: created before routing (nothing), enters Sales, accepted after 9 s,
#         wrap-up, completed; a reservation.created in between maps to nothing
#   7-8   WT002 WhatsApp (JSON body): enters Support, canceled after 45 s
#   9-17  WT003 voice: created in Sales (task-queue.entered repeats it: one offer),
#         accepted, cold transfer to the Support queue; Flex's new task WT004 carries
#         conversation_id WT003, so the contact stays WT003 across both tasks
#   18-21 worker activities (a worker.attributes.update maps to nothing; 21 is an
#         Event Streams CloudEvent)
EXPECTED = [
    (
        2,
        "contact.offered",
        "2025-11-24T17:00:00.500Z",
        "WT001",
        "Sales",
        "voice",
        {"customer_id": "+15550301"},
    ),
    (
        4,
        "contact.answered",
        "2025-11-24T17:00:09.500Z",
        "WT001",
        "Sales",
        "voice",
        {"customer_id": "+15550301", "agent_id": "WK001"},
    ),
    (
        5,
        "contact.ended",
        "2025-11-24T17:03:10.000Z",
        "WT001",
        "Sales",
        "voice",
        {"customer_id": "+15550301", "agent_id": "WK001"},
    ),
    (
        6,
        "contact.wrapped",
        "2025-11-24T17:03:40.000Z",
        "WT001",
        "Sales",
        "voice",
        {"customer_id": "+15550301", "agent_id": "WK001"},
    ),
    (
        7,
        "contact.offered",
        "2025-11-24T17:00:30.000Z",
        "WT002",
        "Support",
        "social",
        {"customer_id": "cust-77"},
    ),
    (
        8,
        "contact.abandoned",
        "2025-11-24T17:01:15.000Z",
        "WT002",
        "Support",
        "social",
        {"customer_id": "cust-77"},
    ),
    (
        9,
        "contact.offered",
        "2025-11-24T17:01:40.000Z",
        "WT003",
        "Sales",
        "voice",
        {"customer_id": "+15550303"},
    ),
    (
        11,
        "contact.answered",
        "2025-11-24T17:01:43.000Z",
        "WT003",
        "Sales",
        "voice",
        {"customer_id": "+15550303", "agent_id": "WK002"},
    ),
    (
        12,
        "contact.transferred",
        "2025-11-24T17:02:40.000Z",
        "WT003",
        "Sales",
        "voice",
        {
            "customer_id": "+15550303",
            "agent_id": "WK002",
            "to_queue": "WQsupport0000000000000000000000000",
        },
    ),
    (
        13,
        "contact.offered",
        "2025-11-24T17:02:41.000Z",
        "WT003",
        "Support",
        "voice",
        {"customer_id": "+15550303"},
    ),
    (
        14,
        "contact.ended",
        "2025-11-24T17:02:42.000Z",
        "WT003",
        "Sales",
        "voice",
        {"customer_id": "+15550303", "agent_id": "WK002"},
    ),
    (
        14,
        "contact.wrapped",
        "2025-11-24T17:02:42.000Z",
        "WT003",
        "Sales",
        "voice",
        {"customer_id": "+15550303", "agent_id": "WK002"},
    ),
    (
        15,
        "contact.answered",
        "2025-11-24T17:03:01.000Z",
        "WT003",
        "Support",
        "voice",
        {"customer_id": "+15550303", "agent_id": "WK003"},
    ),
    (
        16,
        "contact.ended",
        "2025-11-24T17:06:40.000Z",
        "WT003",
        "Support",
        "voice",
        {"customer_id": "+15550303", "agent_id": "WK003"},
    ),
    (
        17,
        "contact.wrapped",
        "2025-11-24T17:07:10.000Z",
        "WT003",
        "Support",
        "voice",
        {"customer_id": "+15550303", "agent_id": "WK003"},
    ),
    (
        18,
        "agent.state",
        "2025-11-24T17:08:20.000Z",
        None,
        None,
        None,
        {"agent_id": "WK001", "state": "available"},
    ),
    (
        19,
        "agent.state",
        "2025-11-24T17:10:00.000Z",
        None,
        None,
        None,
        {"agent_id": "WK001", "state": "away"},
    ),
    (
        21,
        "agent.state",
        "2025-11-24T17:11:40.000Z",
        None,
        None,
        None,
        {"agent_id": "WK002", "state": "offline"},
    ),
]


def test_fixture_maps_to_exact_events() -> None:
    assert map_fixture("twilio_taskrouter.txt") == EXPECTED


def test_form_and_json_bodies_map_alike() -> None:
    form = records("twilio_taskrouter.txt")[1]
    as_json = json.dumps(dict(parse_qsl(form)))
    assert TwilioTaskRouterMapper().map(form) == TwilioTaskRouterMapper().map(as_json)


def test_answered_task_maps_to_full_canonical_event() -> None:
    mapper = TwilioTaskRouterMapper()
    lines = records("twilio_taskrouter.txt")
    mapper.map(lines[1])
    assert mapper.map(lines[3]) == [
        {
            "event_id": "tw-WT001-reservation.accepted-1764003609500:contact.answered",
            "type": "contact.answered",
            "ts": "2025-11-24T17:00:09.500Z",
            "contact_id": "WT001",
            "queue": "Sales",
            "channel": "voice",
            "customer_id": "+15550301",
            "agent_id": "WK001",
        }
    ]


def test_transfer_to_a_worker_names_the_worker() -> None:
    body = "EventType=task.transfer-initiated&TaskSid=WT9&Timestamp=1764003600&TransferTo=WK42"
    assert TwilioTaskRouterMapper().map(body)[0]["to_agent_id"] == "WK42"


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        ("", "empty TaskRouter callback"),
        ("hello=world", "no EventType field"),
        ("{oops", "not valid JSON"),
        ("EventType=task.canceled&Timestamp=1764003600", "task.canceled without TaskSid"),
        ("EventType=task.canceled&TaskSid=WT1", "without a timestamp"),
        ("EventType=worker.activity.update&Timestamp=1", "needs WorkerSid"),
        ("EventType=task.transfer-initiated&TaskSid=WT1&Timestamp=1", "without a TransferTo"),
    ],
)
def test_garbage_raises_unmappable_with_reason(body: str, reason: str) -> None:
    with pytest.raises(UnmappableError, match=reason):
        TwilioTaskRouterMapper().map(body)


@pytest.mark.parametrize(
    "event_type",
    ["reservation.created", "reservation.rejected", "task.updated", "workflow.timeout"],
)
def test_other_event_types_map_to_nothing(event_type: str) -> None:
    body = f"EventType={event_type}&TaskSid=WT1&Timestamp=1764003600"
    assert TwilioTaskRouterMapper().map(body) == []
