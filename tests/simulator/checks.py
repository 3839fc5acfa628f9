"""A SPEC §1 event checker and the constants the simulator tests share."""

from __future__ import annotations

from typing import Any

from ccpulse.simulator.timestamps import parse_ts

MONDAY_8AM = 1_795_420_800.0  # 2026-11-23T08:00:00Z, a Monday
SEED = 11

CHANNELS = {"voice", "chat", "email", "sms", "social", "video"}
AGENT_STATES = {"available", "busy", "after_contact_work", "away", "offline"}
SURVEY_RANGES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
COMMON = {"event_id", "type", "ts"}
CONTACT = COMMON | {"contact_id", "queue", "channel", "customer_id", "agent_id"}
# type -> (required fields, allowed fields)
SCHEMA: dict[str, tuple[set[str], set[str]]] = {
    "contact.offered": ({"contact_id", "queue", "channel"}, CONTACT | {"priority"}),
    "contact.answered": ({"contact_id", "queue", "channel", "agent_id"}, CONTACT),
    "contact.first_response": ({"contact_id", "queue", "channel", "agent_id"}, CONTACT),
    "contact.abandoned": ({"contact_id", "queue", "channel"}, CONTACT),
    "contact.transferred": ({"contact_id", "queue", "channel"}, CONTACT | {"to_queue"}),
    "contact.ended": ({"contact_id", "queue", "channel"}, CONTACT | {"hold_seconds"}),
    "contact.wrapped": ({"contact_id", "queue", "channel"}, CONTACT),
    "contact.resolved": (
        {"contact_id", "queue", "channel"},
        CONTACT | {"first_contact", "outcome"},
    ),
    "contact.reopened": ({"contact_id", "queue", "channel"}, CONTACT),
    "message": (
        {"contact_id", "queue", "channel", "speaker"},
        CONTACT | {"speaker", "text", "sentiment"},
    ),
    "survey.response": ({"contact_id", "survey", "score"}, CONTACT | {"survey", "score"}),
    "agent.state": ({"agent_id", "state"}, COMMON | {"agent_id", "state", "queues"}),
    "customer.joined": ({"customer_id"}, COMMON | {"customer_id"}),
    "customer.left": ({"customer_id"}, COMMON | {"customer_id"}),
    "purchase": ({"customer_id", "amount"}, COMMON | {"customer_id", "amount", "currency"}),
}


def spec_errors(event: dict[str, Any]) -> list[str]:
    """Return what makes `event` invalid under SPEC §1 (empty when it is valid)."""
    errors = []
    if not isinstance(event.get("event_id"), str) or not event["event_id"]:
        errors.append("event_id")
    if event.get("type") not in SCHEMA:
        return [*errors, f"unknown type {event.get('type')!r}"]
    if not isinstance(event.get("ts"), str) or parse_ts(event["ts"]) is None:
        errors.append("ts")
    required, allowed = SCHEMA[event["type"]]
    errors += [f"missing {name}" for name in sorted(required - set(event))]
    errors += [f"unexpected {name}" for name in sorted(set(event) - allowed)]
    for name in ("contact_id", "queue", "agent_id", "customer_id", "to_queue", "text", "outcome"):
        if name in event and (not isinstance(event[name], str) or not event[name]):
            errors.append(f"{name} not a string")
    if "channel" in event and event["channel"] not in CHANNELS:
        errors.append("channel")
    return errors or _type_errors(event)


def _type_errors(event: dict[str, Any]) -> list[str]:
    kind = event["type"]
    errors = []
    if kind == "contact.transferred" and "to_queue" not in event:
        errors.append("transfer without to_queue")
    if kind == "contact.ended" and "hold_seconds" in event:
        if not _number(event["hold_seconds"]) or event["hold_seconds"] < 0:
            errors.append("hold_seconds")
    if kind == "contact.resolved" and not isinstance(event.get("first_contact", True), bool):
        errors.append("first_contact")
    if kind == "message":
        if event["speaker"] not in ("customer", "agent"):
            errors.append("speaker")
        if "text" not in event and "sentiment" not in event:
            errors.append("message without text or sentiment")
        if "sentiment" in event and not (
            _number(event["sentiment"]) and -1 <= event["sentiment"] <= 1
        ):
            errors.append("sentiment")
    if kind == "survey.response":
        low, high = SURVEY_RANGES.get(event["survey"], (1, 0))
        score = event["score"]
        if not (isinstance(score, int) and not isinstance(score, bool) and low <= score <= high):
            errors.append("score")
    if kind == "agent.state":
        if event["state"] not in AGENT_STATES:
            errors.append("state")
        queues = event.get("queues", [])
        if not isinstance(queues, list) or not all(isinstance(q, str) for q in queues):
            errors.append("queues")
    if kind == "purchase" and not (_number(event["amount"]) and event["amount"] > 0):
        errors.append("amount")
    if kind == "contact.offered" and "priority" in event and not isinstance(event["priority"], int):
        errors.append("priority")
    return errors


def _number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
