"""Shared pieces of every adapter: the error, the event shape and record decoding."""

from __future__ import annotations

import json
from typing import Any

Event = dict[str, Any]
"""One canonical input event (SPEC §1) as a plain dict."""


class UnmappableError(ValueError):
    """A platform record that maps to no canonical event; str(err) is the reason."""


def canonical_event(event_id: str, type_: str, ts: str, **fields: Any) -> Event:
    """Build a canonical event, leaving out fields whose value is unknown (None)."""
    event: Event = {"event_id": event_id, "type": type_, "ts": ts}
    event.update((name, value) for name, value in fields.items() if value is not None)
    return event


def decode(record: bytes | str) -> str:
    """Return a record as text: UTF-8, falling back to Latin-1 for old PBX logs."""
    if isinstance(record, str):
        return record
    if not isinstance(record, bytes | bytearray):
        raise UnmappableError(f"expected bytes or str, got {type(record).__name__}")
    try:
        return bytes(record).decode("utf-8")
    except UnicodeDecodeError:
        return bytes(record).decode("latin-1")


def load_json_object(record: bytes | str) -> dict[str, Any]:
    """Parse a record as one JSON object or fail with the reason."""
    text = decode(record).strip()
    if not text:
        raise UnmappableError("empty record")
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise UnmappableError(f"not valid JSON: {err.msg} at char {err.pos}") from None
    if not isinstance(value, dict):
        raise UnmappableError(f"expected a JSON object, got {type(value).__name__}")
    return value


def field(obj: Any, *names: str) -> Any:
    """Return the first present, non-null value among names, matched case-insensitively.

    Platforms are inconsistent about case (Amazon Connect's samples mix `agentInfo` and
    `AgentInfo`), so `field(detail, "agentInfo")` finds either.
    """
    if not isinstance(obj, dict):
        return None
    for name in names:
        if obj.get(name) is not None:
            return obj[name]
    lowered = {key.lower(): value for key, value in obj.items() if isinstance(key, str)}
    for name in names:
        if lowered.get(name.lower()) is not None:
            return lowered[name.lower()]
    return None


def text_or_none(value: Any) -> str | None:
    """Return a value as a stripped string, or None when it is empty or absent."""
    if value is None:
        return None
    text = str(value).strip()
    return text or None


def sort_by_time(events: list[Event]) -> list[Event]:
    """Order one record's events by ts, keeping the given order for equal times."""
    return sorted(events, key=lambda event: event["ts"])
