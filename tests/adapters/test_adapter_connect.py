"""Amazon Connect adapter: contact trace records, contact events, agent events."""

from __future__ import annotations

import json

import pytest
from adapter_fixtures import map_fixture, map_records, records

from ccpulse.adapters import AmazonConnectMapper, UnmappableError
from ccpulse.adapters.connect import record_kind

# The fixture, record by record:
#   1     CTR: voice answered after 25 s, 40 s on hold, 30 s of after-contact work
#   2     CTR: chat abandoned after 50 s
#   3-4   CTRs of one transfer, the second leg (c-0004, Support) first: one contact c-0003
#   5-6   CTRs of a queued callback: the inbound leg leaves for the callback, not abandoned
#   7-8   CTRs of a task and of an agent-dialled outbound call: ignored
#   9-13  EventBridge contact events of c-0010: INITIATED, QUEUED, CONNECTED_TO_AGENT,
#         CONTACT_DATA_UPDATED, DISCONNECTED (queue named by its id: no queue_names given)
#   14-15 bare contact event details of an abandoned chat c-0011
#   16-22 agent events: LOGIN offline, available, heartbeat, busy, ACW, break, LOGOUT
EXPECTED = [
    (
        1,
        "contact.offered",
        "2025-11-24T10:00:05.000Z",
        "c-0001",
        "Billing",
        "voice",
        {"customer_id": "+442071230001"},
    ),
    (
        1,
        "contact.answered",
        "2025-11-24T10:00:30.000Z",
        "c-0001",
        "Billing",
        "voice",
        {"agent_id": "agent-aaaa", "customer_id": "+442071230001"},
    ),
    (
        1,
        "contact.ended",
        "2025-11-24T10:05:00.000Z",
        "c-0001",
        "Billing",
        "voice",
        {"agent_id": "agent-aaaa", "customer_id": "+442071230001", "hold_seconds": 40},
    ),
    (
        1,
        "contact.wrapped",
        "2025-11-24T10:05:30.000Z",
        "c-0001",
        "Billing",
        "voice",
        {"agent_id": "agent-aaaa", "customer_id": "+442071230001"},
    ),
    (2, "contact.offered", "2025-11-24T10:01:00.000Z", "c-0002", "Support", "chat", {}),
    (2, "contact.abandoned", "2025-11-24T10:01:50.000Z", "c-0002", "Support", "chat", {}),
    (
        3,
        "contact.offered",
        "2025-11-24T10:03:56.000Z",
        "c-0003",
        "Support",
        "voice",
        {"customer_id": "+442071230003"},
    ),
    (
        3,
        "contact.answered",
        "2025-11-24T10:04:30.000Z",
        "c-0003",
        "Support",
        "voice",
        {"agent_id": "agent-bbbb", "customer_id": "+442071230003"},
    ),
    (
        3,
        "contact.ended",
        "2025-11-24T10:10:00.000Z",
        "c-0003",
        "Support",
        "voice",
        {"agent_id": "agent-bbbb", "customer_id": "+442071230003", "hold_seconds": 0},
    ),
    (
        3,
        "contact.wrapped",
        "2025-11-24T10:10:45.000Z",
        "c-0003",
        "Support",
        "voice",
        {"agent_id": "agent-bbbb", "customer_id": "+442071230003"},
    ),
    (
        4,
        "contact.offered",
        "2025-11-24T10:02:00.000Z",
        "c-0003",
        "Billing",
        "voice",
        {"customer_id": "+442071230003"},
    ),
    (
        4,
        "contact.answered",
        "2025-11-24T10:02:10.000Z",
        "c-0003",
        "Billing",
        "voice",
        {"agent_id": "agent-aaaa", "customer_id": "+442071230003"},
    ),
    (
        4,
        "contact.transferred",
        "2025-11-24T10:03:55.000Z",
        "c-0003",
        "Billing",
        "voice",
        {"agent_id": "agent-aaaa", "customer_id": "+442071230003", "to_queue": "Support"},
    ),
    (
        4,
        "contact.ended",
        "2025-11-24T10:04:00.000Z",
        "c-0003",
        "Billing",
        "voice",
        {"agent_id": "agent-aaaa", "customer_id": "+442071230003", "hold_seconds": 15},
    ),
    (
        4,
        "contact.wrapped",
        "2025-11-24T10:04:20.000Z",
        "c-0003",
        "Billing",
        "voice",
        {"agent_id": "agent-aaaa", "customer_id": "+442071230003"},
    ),
    (
        5,
        "contact.offered",
        "2025-11-24T10:20:00.000Z",
        "c-0005",
        "Support",
        "voice",
        {"customer_id": "+442071230005"},
    ),
    (
        6,
        "contact.transferred",
        "2025-11-24T10:21:00.000Z",
        "c-0005",
        "Support",
        "voice",
        {"customer_id": "+442071230005", "to_queue": "Support"},
    ),
    (
        6,
        "contact.offered",
        "2025-11-24T10:21:00.000Z",
        "c-0005",
        "Support",
        "voice",
        {"customer_id": "+442071230005"},
    ),
    (
        6,
        "contact.answered",
        "2025-11-24T10:35:00.000Z",
        "c-0005",
        "Support",
        "voice",
        {"agent_id": "agent-bbbb", "customer_id": "+442071230005"},
    ),
    (
        6,
        "contact.ended",
        "2025-11-24T10:40:00.000Z",
        "c-0005",
        "Support",
        "voice",
        {"agent_id": "agent-bbbb", "customer_id": "+442071230005"},
    ),
    (
        6,
        "contact.wrapped",
        "2025-11-24T10:40:00.000Z",
        "c-0005",
        "Support",
        "voice",
        {"agent_id": "agent-bbbb", "customer_id": "+442071230005"},
    ),
    (10, "contact.offered", "2025-11-24T11:00:04.250Z", "c-0010", "q-billing", "voice", {}),
    (
        11,
        "contact.answered",
        "2025-11-24T11:00:24.250Z",
        "c-0010",
        "q-billing",
        "voice",
        {"agent_id": "agent-aaaa"},
    ),
    (
        13,
        "contact.ended",
        "2025-11-24T11:04:00.500Z",
        "c-0010",
        "q-billing",
        "voice",
        {"agent_id": "agent-aaaa"},
    ),
    (
        13,
        "contact.wrapped",
        "2025-11-24T11:04:00.500Z",
        "c-0010",
        "q-billing",
        "voice",
        {"agent_id": "agent-aaaa"},
    ),
    (14, "contact.offered", "2025-11-24T11:10:01.000Z", "c-0011", "q-support", "chat", {}),
    (15, "contact.abandoned", "2025-11-24T11:12:01.000Z", "c-0011", "q-support", "chat", {}),
    (
        16,
        "agent.state",
        "2025-11-24T09:00:00.000Z",
        None,
        None,
        None,
        {"agent_id": "agent-aaaa", "state": "offline"},
    ),
    (
        17,
        "agent.state",
        "2025-11-24T09:00:05.500Z",
        None,
        None,
        None,
        {"agent_id": "agent-aaaa", "state": "available", "queues": ["Billing", "Support"]},
    ),
    (
        19,
        "agent.state",
        "2025-11-24T09:30:00.000Z",
        None,
        None,
        None,
        {"agent_id": "agent-aaaa", "state": "busy", "queues": ["Billing", "Support"]},
    ),
    (
        20,
        "agent.state",
        "2025-11-24T09:34:00.000Z",
        None,
        None,
        None,
        {"agent_id": "agent-aaaa", "state": "after_contact_work", "queues": ["Billing", "Support"]},
    ),
    (
        21,
        "agent.state",
        "2025-11-24T09:35:00.000Z",
        None,
        None,
        None,
        {"agent_id": "agent-aaaa", "state": "away", "queues": ["Billing", "Support"]},
    ),
    (
        22,
        "agent.state",
        "2025-11-24T12:00:00.000Z",
        None,
        None,
        None,
        {"agent_id": "agent-aaaa", "state": "offline"},
    ),
]


def test_fixture_maps_to_exact_events() -> None:
    assert map_fixture("amazon_connect.jsonl") == EXPECTED


def test_transfer_legs_join_in_either_order() -> None:
    lines = records("amazon_connect.jsonl")
    in_order = map_records(AmazonConnectMapper(), [lines[3], lines[2]])
    reversed_ = map_records(AmazonConnectMapper(), [lines[2], lines[3]])
    by_id = lambda mapped: sorted((e["event_id"], e["ts"]) for _, e in mapped)  # noqa: E731
    assert by_id(in_order) == by_id(reversed_)
    transfers = [e for _, e in in_order if e["type"] == "contact.transferred"]
    assert transfers == [
        {
            "event_id": "connect-c-0003:contact.transferred",
            "type": "contact.transferred",
            "ts": "2025-11-24T10:03:55.000Z",
            "contact_id": "c-0003",
            "queue": "Billing",
            "channel": "voice",
            "agent_id": "agent-aaaa",
            "customer_id": "+442071230003",
            "to_queue": "Support",
        }
    ]


def test_callback_leg_counts_as_transfer_not_abandon() -> None:
    lines = records("amazon_connect.jsonl")
    types = [e["type"] for _, e in map_records(AmazonConnectMapper(), lines[4:6])]
    assert "contact.abandoned" not in types
    assert types.count("contact.transferred") == 1


def test_event_stream_and_ctr_share_ids_so_they_dedupe() -> None:
    ctr = json.loads(records("amazon_connect.jsonl")[0])
    ctr["ContactId"] = "c-0010"
    from_ctr = {e["event_id"] for e in AmazonConnectMapper().map(json.dumps(ctr))}
    lines = records("amazon_connect.jsonl")[8:13]
    from_events = {e["event_id"] for _, e in map_records(AmazonConnectMapper(), lines)}
    assert from_events == from_ctr


def test_queue_names_name_queues_of_contact_events() -> None:
    arn = "arn:aws:connect:eu-west-2:210987654321:instance/5f0c6d1e-2b7a-4c11-9e3d-7a8b9c0d1e2f"
    mapper = AmazonConnectMapper(queue_names={f"{arn}/queue/q-billing": "Billing"})
    line = records("amazon_connect.jsonl")[9]
    assert mapper.map(line)[0]["queue"] == "Billing"


def test_tasks_can_be_counted_as_email_when_asked() -> None:
    line = records("amazon_connect.jsonl")[6]
    assert AmazonConnectMapper().map(line) == []
    events = AmazonConnectMapper(channels={"TASK": "email"}).map(line)
    assert [(e["type"], e["channel"]) for e in events] == [
        ("contact.offered", "email"),
        ("contact.abandoned", "email"),
    ]


def test_repeated_heartbeats_emit_nothing_new() -> None:
    lines = records("amazon_connect.jsonl")
    mapper = AmazonConnectMapper()
    assert len(mapper.map(lines[17])) == 1  # first sight of the agent: its state
    assert mapper.map(lines[17]) == []


@pytest.mark.parametrize(
    ("index", "kind"),
    [(0, "ctr"), (8, "contact-event"), (13, "contact-event"), (15, "agent-event")],
)
def test_record_kind_is_detected(index: int, kind: str) -> None:
    assert record_kind(json.loads(records("amazon_connect.jsonl")[index])) == kind


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ("{not json", "not valid JSON"),
        ('"QUEUED"', "expected a JSON object"),
        ('{"hello": "world"}', "not an Amazon Connect contact event"),
        ('{"eventType": "QUEUED", "contactId": "x", "channel": "FAX"}', "unknown Amazon"),
        (
            '{"eventType": "QUEUED", "contactId": "x", "channel": "VOICE"}',
            "QUEUED event of x without queueInfo",
        ),
        (
            '{"EventType": "STATE_CHANGE", "AgentARN": "arn:a/agent/z", "EventTimestamp": "x"}',
            "without CurrentAgentSnapshot",
        ),
        (
            '{"ContactId": "c", "InitiationTimestamp": "2025-11-24T10:00:00Z", "Channel": "VOICE",'
            ' "Queue": {"Name": "Q", "EnqueueTimestamp": "2025-11-24T10:00:00Z"}}',
            "has no dequeue or disconnect time",
        ),
    ],
)
def test_garbage_raises_unmappable_with_reason(record: str, reason: str) -> None:
    with pytest.raises(UnmappableError, match=reason):
        AmazonConnectMapper().map(record)


def test_other_connect_eventbridge_events_are_ignored() -> None:
    record = {"source": "aws.connect", "detail-type": "Contact Lens Analysis State Change"}
    assert AmazonConnectMapper().map(json.dumps(record)) == []
