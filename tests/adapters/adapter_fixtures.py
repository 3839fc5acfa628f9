"""Helpers shared by the adapter tests: read fixtures, map them, compare compactly."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from ccpulse.adapters import Mapper, get_mapper

FIXTURES = Path(__file__).parent / "fixtures"

FIXTURE_FORMATS = {
    "asterisk_queue_log.log": "asterisk-queue-log",
    "asterisk_queue_log_db.jsonl": "asterisk-queue-log-db",
    "amazon_connect.jsonl": "amazon-connect",
    "twilio_taskrouter.txt": "twilio-taskrouter",
    "zendesk.jsonl": "zendesk",
}
"""Every fixture file and the format it is written in."""

Row = tuple[int, str, str, str | None, str | None, str | None, dict[str, Any]]


def records(name: str) -> list[str]:
    """Return a fixture's records, one per line."""
    return (FIXTURES / name).read_text(encoding="utf-8").splitlines()


def map_records(mapper: Mapper, lines: list[str]) -> list[tuple[int, dict[str, Any]]]:
    """Map lines in order, tagging each event with its 1-based line number."""
    return [(number, event) for number, line in enumerate(lines, 1) for event in mapper.map(line)]


def row(number: int, event: dict[str, Any]) -> Row:
    """Compact an event to (line, type, ts, contact_id, queue, channel, other fields).

    Everything but the event_id is compared: ids have tests of their own.
    """
    main = ("event_id", "type", "ts", "contact_id", "queue", "channel")
    rest = {key: value for key, value in event.items() if key not in main}
    return (
        number, event["type"], event["ts"], event.get("contact_id"), event.get("queue"),
        event.get("channel"), rest,
    )  # fmt: skip


def map_fixture(name: str, mapper: Mapper | None = None) -> list[Row]:
    """Map a fixture file (with a fresh mapper of its format, or the given one) to rows."""
    mapper = mapper or get_mapper(FIXTURE_FORMATS[name])
    return [row(number, event) for number, event in map_records(mapper, records(name))]
