"""Validation: every message becomes an Event or a Rejection with a reason (SPEC §1)."""

from __future__ import annotations

import json
import math
from pathlib import Path

import jsonschema
import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stream.events import REASONS, Rejection, parse_event
from stream.models import Event

SCHEMA = json.loads((Path(__file__).parents[2] / "stream" / "event.schema.json").read_text())
BASE = {"event_id": "e1", "ts": "2026-11-23T09:15:02.125Z"}

VALID = [
    {"type": "contact.offered", "contact_id": "c1", "queue": "billing", "channel": "voice", "priority": 2},
    {"type": "contact.answered", "contact_id": "c1", "agent_id": "a1"},
    {"type": "contact.first_response", "contact_id": "c1", "agent_id": "a1", "channel": "email"},
    {"type": "contact.abandoned", "contact_id": "c1"},
    {"type": "contact.transferred", "contact_id": "c1", "to_queue": "tech"},
    {"type": "contact.ended", "contact_id": "c1", "hold_seconds": 12.5},
    {"type": "contact.wrapped", "contact_id": "c1"},
    {"type": "contact.resolved", "contact_id": "c1", "first_contact": True, "outcome": "converted"},
    {"type": "contact.reopened", "contact_id": "c1"},
    {"type": "message", "contact_id": "c1", "speaker": "customer", "text": "hi ☺"},
    {"type": "message", "contact_id": "c1", "speaker": "agent", "sentiment": -0.25},
    {"type": "survey.response", "contact_id": "c1", "survey": "csat", "score": 4},
    {"type": "survey.response", "contact_id": "c1", "survey": "nps", "score": 0},
    {"type": "agent.state", "agent_id": "a1", "state": "after_contact_work", "queues": ["billing"]},
    {"type": "customer.joined", "customer_id": "u1"},
    {"type": "customer.left", "customer_id": "u1"},
    {"type": "purchase", "customer_id": "u1", "amount": 19.99, "currency": "EUR"},
]

INVALID = [
    (b"{not json", "invalid_json"),
    (b"[1, 2]", "not_an_object"),
    (b'"just a string"', "not_an_object"),
    (orjson.dumps({"type": "contact.offered", "ts": 1.8e9}), "missing_field"),
    (orjson.dumps({**BASE, "type": "contact.offered", "contact_id": "c1", "queue": "q"}), "missing_field"),
    (orjson.dumps({**BASE, "type": "contact.offered", "contact_id": 5, "queue": "q", "channel": "voice"}),
     "wrong_type"),
    (orjson.dumps({**BASE, "type": "contact.teleported", "contact_id": "c1"}), "unknown_type"),
    (orjson.dumps({**BASE, "type": "contact.offered", "contact_id": "c", "queue": "q", "channel": "fax"}),
     "out_of_range"),
    (orjson.dumps({**BASE, "ts": "yesterday", "type": "contact.abandoned", "contact_id": "c"}), "bad_timestamp"),
    (orjson.dumps({**BASE, "ts": "2026-11-23T09:15:02", "type": "contact.abandoned", "contact_id": "c"}),
     "bad_timestamp"),
    (orjson.dumps({**BASE, "ts": 1.8e12, "type": "contact.abandoned", "contact_id": "c"}), "bad_timestamp"),
    (orjson.dumps({**BASE, "ts": True, "type": "contact.abandoned", "contact_id": "c"}), "wrong_type"),
    (orjson.dumps({**BASE, "type": "survey.response", "contact_id": "c", "survey": "csat", "score": 6}),
     "out_of_range"),
    (orjson.dumps({**BASE, "type": "survey.response", "contact_id": "c", "survey": "csat", "score": 4.5}),
     "wrong_type"),
    (orjson.dumps({**BASE, "type": "message", "contact_id": "c", "speaker": "customer"}), "missing_field"),
    (orjson.dumps({**BASE, "type": "message", "contact_id": "c", "speaker": "bot", "text": "x"}), "out_of_range"),
    (orjson.dumps({**BASE, "type": "agent.state", "agent_id": "a", "state": "napping"}), "out_of_range"),
    (orjson.dumps({**BASE, "type": "agent.state", "agent_id": "a", "state": "busy", "queues": "billing"}),
     "wrong_type"),
    (orjson.dumps({**BASE, "type": "purchase", "customer_id": "u", "amount": "12"}), "wrong_type"),
    (orjson.dumps({**BASE, "type": "contact.transferred", "contact_id": "c"}), "missing_field"),
    (b"x" * 70000, "oversized"),
]


@pytest.mark.parametrize("fields", VALID, ids=lambda f: f["type"])
def test_valid_events_parse_and_match_the_schema(fields: dict[str, object]) -> None:
    document = {**BASE, **fields}
    jsonschema.validate(document, SCHEMA)
    event = parse_event(orjson.dumps(document))
    assert isinstance(event, Event), event
    assert event.ts == pytest.approx(1795425302.125)
    assert event.type == fields["type"]


@pytest.mark.parametrize(("raw", "reason"), INVALID)
def test_invalid_messages_are_rejected_with_their_reason(raw: bytes, reason: str) -> None:
    result = parse_event(raw)
    assert isinstance(result, Rejection)
    assert result.reason == reason, result.detail
    assert reason in REASONS
    if raw.startswith(b"{") and reason not in ("invalid_json", "oversized"):
        with pytest.raises(jsonschema.ValidationError):
            jsonschema.validate(orjson.loads(raw), SCHEMA)


def test_epoch_seconds_and_offsets_mean_the_same_instant() -> None:
    a = parse_event(
        orjson.dumps({**BASE, "type": "contact.wrapped", "contact_id": "c", "ts": "2026-11-23T10:15:02.125+01:00"})
    )
    b = parse_event(orjson.dumps({**BASE, "type": "contact.wrapped", "contact_id": "c", "ts": 1795425302.125}))
    assert isinstance(a, Event) and isinstance(b, Event)
    assert a.ts == b.ts


def test_event_key_follows_the_spec() -> None:
    offered = parse_event(orjson.dumps({**BASE, **VALID[0]}))
    agent = parse_event(orjson.dumps({**BASE, **VALID[13]}))
    purchase = parse_event(orjson.dumps({**BASE, **VALID[16]}))
    assert isinstance(offered, Event) and isinstance(agent, Event) and isinstance(purchase, Event)
    assert (offered.key, agent.key, purchase.key) == ("c1", "a1", "u1")


@settings(max_examples=400, deadline=None)
@given(raw=st.one_of(st.binary(max_size=300), st.text(max_size=300).map(str.encode),
                     st.dictionaries(st.sampled_from(["event_id", "type", "ts", "contact_id", "queue", "channel",
                                                      "agent_id", "customer_id", "score", "survey", "sentiment"]),
                                     st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10)
                                     | st.lists(st.integers(), max_size=2)).map(json.dumps).map(str.encode)))
def test_any_bytes_give_an_event_or_a_known_reason(raw: bytes) -> None:
    """The parser never raises: every input is an Event or a Rejection with a documented reason."""
    result = parse_event(raw, 65536)
    if isinstance(result, Rejection):
        assert result.reason in REASONS and result.detail
    else:
        assert result.event_id and result.type and math.isfinite(result.ts)
