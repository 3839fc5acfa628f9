"""Every adapter: the registry, SPEC §1 conformance and deterministic event ids."""

from __future__ import annotations

import re
from typing import Any

import pytest
from adapter_fixtures import FIXTURE_FORMATS, map_records, records

from ccpulse.adapters import FORMATS, UnmappableError, get_mapper

CONTACT_TYPES = {
    "contact.offered", "contact.answered", "contact.first_response", "contact.abandoned",
    "contact.transferred", "contact.ended", "contact.wrapped", "contact.resolved",
    "contact.reopened", "message", "survey.response",
}  # fmt: skip
CHANNELS = {"voice", "chat", "email", "sms", "social", "video"}
AGENT_STATES = {"available", "busy", "after_contact_work", "away", "offline"}
RFC3339_MS_UTC = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def mapped(name: str) -> list[dict[str, Any]]:
    """Map a whole fixture with a fresh mapper of its format."""
    return [event for _, event in map_records(get_mapper(FIXTURE_FORMATS[name]), records(name))]


def test_formats_are_the_five_documented_ones() -> None:
    assert sorted(FORMATS) == [
        "amazon-connect", "asterisk-queue-log", "asterisk-queue-log-db",
        "twilio-taskrouter", "zendesk",
    ]  # fmt: skip


def test_get_mapper_returns_a_fresh_mapper_each_time() -> None:
    assert get_mapper("zendesk") is not get_mapper("zendesk")


def test_unknown_format_raises_value_error_listing_formats() -> None:
    with pytest.raises(ValueError, match="unknown format 'genesys'; known formats: amazon-connect"):
        get_mapper("genesys")


def test_unmappable_error_is_a_value_error() -> None:
    assert issubclass(UnmappableError, ValueError)


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_mapping_a_fixture_twice_gives_the_same_events(name: str) -> None:
    assert mapped(name) == mapped(name)


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_event_ids_are_unique_within_a_fixture(name: str) -> None:
    ids = [event["event_id"] for event in mapped(name)]
    assert len(ids) == len(set(ids))


@pytest.mark.parametrize("name", sorted(FIXTURE_FORMATS))
def test_every_event_follows_spec_section_1(name: str) -> None:
    for event in mapped(name):
        assert spec_problems(event) == [], event


def spec_problems(event: dict[str, Any]) -> list[str]:
    """Return what in an event breaks SPEC §1 (empty when it conforms)."""
    problems = []
    if not isinstance(event.get("event_id"), str) or not event["event_id"]:
        problems.append("event_id")
    if not RFC3339_MS_UTC.match(str(event.get("ts"))):
        problems.append("ts")
    if event["type"] == "agent.state":
        problems += (
            [] if event.get("state") in AGENT_STATES and event.get("agent_id") else ["state"]
        )
        return problems
    if event["type"] not in CONTACT_TYPES:
        return [*problems, "type"]
    if not (event.get("contact_id") and event.get("queue")) or event.get("channel") not in CHANNELS:
        problems.append("contact fields")
    problems += type_problems(event)
    return problems


def type_problems(event: dict[str, Any]) -> list[str]:
    """Return missing extra fields of the event's type."""
    kind = event["type"]
    if kind in ("contact.answered", "contact.first_response") and not event.get("agent_id"):
        return ["agent_id"]
    if kind == "contact.transferred" and not (event.get("to_queue") or event.get("to_agent_id")):
        return ["to_queue/to_agent_id"]
    if kind == "survey.response" and not (event["survey"] == "csat" and 1 <= event["score"] <= 5):
        return ["survey"]
    if kind == "message" and event.get("speaker") not in ("customer", "agent"):
        return ["speaker"]
    return []
