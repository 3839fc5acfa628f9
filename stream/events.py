"""Turn raw input bytes into a typed ``Event`` or a ``Rejection`` with its reason.

Pure and Faust-free at the call site: the ingest agent calls ``parse_event`` once per
message and routes a rejection to the dead-letter topic. Reasons are a small closed set
(they label a Prometheus counter), the detail names the field.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime
from sys import intern
from typing import Any

import orjson

from stream.models import (
    AGENT_STATES,
    AGENT_TYPES,
    CHANNELS,
    CONTACT_TYPES,
    CUSTOMER_TYPES,
    EVENT_FIELDS,
    EVENT_TYPES,
    SURVEY_RANGES,
    Event,
)

# Reasons, the label values of ccpulse_events_rejected_total.
REASONS = (
    "oversized",
    "invalid_json",
    "not_an_object",
    "missing_field",
    "wrong_type",
    "unknown_type",
    "bad_timestamp",
    "out_of_range",
    "future_timestamp",
)

_STRING_FIELDS = (
    "event_id",
    "type",
    "contact_id",
    "queue",
    "channel",
    "agent_id",
    "customer_id",
    "to_queue",
    "to_agent_id",
    "outcome",
    "speaker",
    "text",
    "survey",
    "state",
    "currency",
)
_NUMBER_FIELDS = ("hold_seconds", "sentiment", "amount")
_MAX_ID_CHARS = 256
# Earliest accepted event time: 2000-01-01. Anything before is a unit mistake (ms vs s).
_EARLIEST_TS = 946684800.0


@dataclass(frozen=True, slots=True)
class Rejection:
    """Why a message was not accepted: one of REASONS, and a human detail."""

    reason: str
    detail: str


def parse_event(raw: bytes | str | None, max_bytes: int = 65536) -> Event | Rejection:
    """Decode and validate one input message."""
    if raw is None:
        return Rejection("invalid_json", "empty message (null value)")
    if len(raw) > max_bytes:
        return Rejection("oversized", f"{len(raw)} bytes > limit {max_bytes}")
    try:
        data = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        return Rejection("invalid_json", f"not valid JSON: {exc}"[:300])
    if not isinstance(data, dict):
        return Rejection("not_an_object", f"JSON {type(data).__name__}, expected an object")
    return validate(data)


# Values that repeat across events and are kept in state (compact lifecycle events, live
# indexes): one shared string each instead of a fresh one per decoded message (about 170
# bytes an open contact, measured with bench/memory.py's open contacts).
_SHARED_FIELDS = frozenset((
    "type", "queue", "channel", "agent_id", "to_queue", "to_agent_id",
    "speaker", "state", "outcome", "survey",
))


def validate(data: dict[str, Any]) -> Event | Rejection:
    """Check a decoded object against SPEC §1 and build the Event."""
    problem = _check_common(data) or _check_fields(data)
    if problem:
        return problem
    ts = parse_ts(data["ts"])
    if isinstance(ts, Rejection):
        return ts
    fields = {k: data[k] for k in EVENT_FIELDS if k in data and data[k] is not None}
    for name in _SHARED_FIELDS.intersection(fields):
        fields[name] = intern(fields[name])
    if "queues" in fields:
        fields["queues"] = [intern(queue) for queue in fields["queues"]]
    fields["ts"] = ts
    if "score" in fields:
        fields["score"] = int(fields["score"])
    return Event(**fields)


def _check_common(data: dict[str, Any]) -> Rejection | None:
    for name in ("event_id", "type", "ts"):
        if data.get(name) in (None, ""):
            return Rejection("missing_field", f"'{name}' is required")
    for name in _STRING_FIELDS:
        value = data.get(name)
        if value is not None and not isinstance(value, str):
            return Rejection("wrong_type", f"'{name}' must be a string")
    for name in _NUMBER_FIELDS:
        value = data.get(name)
        if value is not None and not _is_number(value):
            return Rejection("wrong_type", f"'{name}' must be a number")
    for name in ("event_id", "contact_id", "agent_id", "customer_id", "queue"):
        if len(data.get(name) or "") > _MAX_ID_CHARS:
            return Rejection("out_of_range", f"'{name}' longer than {_MAX_ID_CHARS} characters")
    if data["type"] not in EVENT_TYPES:
        return Rejection("unknown_type", f"unknown type {str(data['type'])[:80]!r}")
    return None


def _check_fields(data: dict[str, Any]) -> Rejection | None:
    kind = data["type"]
    required = _REQUIRED.get(kind, ())
    for name in required:
        if data.get(name) in (None, ""):
            return Rejection("missing_field", f"'{name}' is required for {kind}")
    channel = data.get("channel")
    if channel is not None and channel not in CHANNELS:
        return Rejection("out_of_range", f"channel {channel[:40]!r} is not one of {sorted(CHANNELS)}")
    if kind in CONTACT_TYPES:
        return _check_contact(kind, data)
    if kind in AGENT_TYPES:
        return _check_agent(data)
    if kind == "purchase" and data["amount"] < 0:
        return Rejection("out_of_range", "'amount' must be >= 0")
    return None


def _check_contact(kind: str, data: dict[str, Any]) -> Rejection | None:
    if kind == "message":
        if data.get("speaker") not in ("customer", "agent"):
            return Rejection("out_of_range", "'speaker' must be 'customer' or 'agent'")
        if data.get("text") is None and data.get("sentiment") is None:
            return Rejection("missing_field", "a message needs 'text' or 'sentiment'")
        sentiment = data.get("sentiment")
        if sentiment is not None and not -1.0 <= sentiment <= 1.0:
            return Rejection("out_of_range", "'sentiment' must be within -1..1")
    if kind == "survey.response":
        return _check_survey(data)
    if kind == "contact.transferred" and not (data.get("to_queue") or data.get("to_agent_id")):
        return Rejection("missing_field", "contact.transferred needs 'to_queue' or 'to_agent_id'")
    if data.get("first_contact") is not None and not isinstance(data["first_contact"], bool):
        return Rejection("wrong_type", "'first_contact' must be true or false")
    hold = data.get("hold_seconds")
    if hold is not None and hold < 0:
        return Rejection("out_of_range", "'hold_seconds' must be >= 0")
    priority = data.get("priority")
    if priority is not None and (not isinstance(priority, int) or isinstance(priority, bool)):
        return Rejection("wrong_type", "'priority' must be an integer")
    return None


def _check_survey(data: dict[str, Any]) -> Rejection | None:
    survey, score = data["survey"], data["score"]
    if survey not in SURVEY_RANGES:
        return Rejection("out_of_range", f"survey {survey[:20]!r} is not csat, nps or ces")
    if isinstance(score, bool) or not isinstance(score, int | float) or score != int(score):
        return Rejection("wrong_type", "'score' must be an integer")
    low, high = SURVEY_RANGES[survey]
    if not low <= score <= high:
        return Rejection("out_of_range", f"{survey} score {score} outside {low}..{high}")
    return None


def _check_agent(data: dict[str, Any]) -> Rejection | None:
    if data["state"] not in AGENT_STATES:
        return Rejection("out_of_range", f"state {data['state'][:40]!r} is not one of {sorted(AGENT_STATES)}")
    queues = data.get("queues")
    if queues is not None and (
        not isinstance(queues, list) or not all(isinstance(q, str) for q in queues)
    ):
        return Rejection("wrong_type", "'queues' must be a list of strings")
    return None


def parse_ts(value: Any) -> float | Rejection:
    """Return event time as epoch seconds from RFC 3339 text or a number."""
    if _is_number(value):
        ts = float(value)
    elif isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            return Rejection("bad_timestamp", f"'ts' {value[:40]!r} is not RFC 3339")
        if parsed.tzinfo is None:
            return Rejection("bad_timestamp", f"'ts' {value[:40]!r} has no UTC offset")
        ts = parsed.timestamp()
    else:
        return Rejection("wrong_type", "'ts' must be an RFC 3339 string or epoch seconds")
    if not math.isfinite(ts) or ts < _EARLIEST_TS or ts > 4102444800.0:
        return Rejection("bad_timestamp", f"'ts' {value!r} is outside 2000..2100 (epoch seconds?)")
    return ts


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


_REQUIRED: dict[str, tuple[str, ...]] = {
    "contact.offered": ("contact_id", "queue", "channel"),
    "contact.answered": ("contact_id", "agent_id"),
    "contact.first_response": ("contact_id", "agent_id"),
    "message": ("contact_id", "speaker"),
    "survey.response": ("contact_id", "survey", "score"),
    "agent.state": ("agent_id", "state"),
    "customer.joined": ("customer_id",),
    "customer.left": ("customer_id",),
    "purchase": ("customer_id", "amount"),
}
for _kind in CONTACT_TYPES:
    _REQUIRED.setdefault(_kind, ("contact_id",))
for _kind in CUSTOMER_TYPES:
    _REQUIRED.setdefault(_kind, ("customer_id",))
