"""Typed records of the event contract (SPEC §1) and of ccpulse's internal messages.

``Event`` is one validated input event, with ``ts`` normalised to epoch seconds. The JSON
Schema of the raw input is ``stream/event.schema.json``; docs/events.md shows every type.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from typing import Any

import faust

CHANNELS = frozenset({"voice", "chat", "email", "sms", "social", "video"})
AGENT_STATES = frozenset({"available", "busy", "after_contact_work", "away", "offline"})
SURVEY_RANGES = {"csat": (1, 5), "nps": (0, 10), "ces": (1, 7)}
CONTACT_TYPES = frozenset(
    {
        "contact.offered",
        "contact.answered",
        "contact.first_response",
        "contact.abandoned",
        "contact.transferred",
        "contact.ended",
        "contact.wrapped",
        "contact.resolved",
        "contact.reopened",
        "message",
        "survey.response",
    }
)
AGENT_TYPES = frozenset({"agent.state"})
CUSTOMER_TYPES = frozenset({"customer.joined", "customer.left", "purchase"})
EVENT_TYPES = CONTACT_TYPES | AGENT_TYPES | CUSTOMER_TYPES


@dataclass(slots=True)
class Event:
    """One valid contact-center event; ``ts`` is event time in epoch seconds (UTC).

    A plain slotted dataclass, not a ``faust.Record``: one is built for every input message,
    and a Record's field descriptors cost about 10 % of the ingest path (measured with
    py-spy on the benchmarks' throughput topic). Nothing serialises it; the agents read raw
    bytes and validate them here.
    """

    event_id: str
    type: str
    ts: float
    contact_id: str | None = None
    queue: str | None = None
    channel: str | None = None
    agent_id: str | None = None
    customer_id: str | None = None
    priority: int | None = None
    to_queue: str | None = None
    to_agent_id: str | None = None
    hold_seconds: float | None = None
    first_contact: bool | None = None
    outcome: str | None = None
    speaker: str | None = None
    text: str | None = None
    sentiment: float | None = None
    survey: str | None = None
    score: int | None = None
    state: str | None = None
    queues: list[str] | None = None
    amount: float | None = None
    currency: str | None = None

    @property
    def key(self) -> str:
        """The partition key of SPEC §1: contact, agent or customer id."""
        return partition_key(self.type, self.contact_id, self.agent_id, self.customer_id)


EVENT_FIELDS = tuple(f.name for f in fields(Event))


class DeadLetter(faust.Record, serializer="json", include_metadata=False):
    """A rejected input message: its reason and original bytes (latin-1 text, lossless)."""

    reason: str
    detail: str
    topic: str
    partition: int
    offset: int
    original: str
    rejected_at: float


class CustomerFact(faust.Record, serializer="json", include_metadata=False):
    """A fact stage 1 hands to the customer stage (FCR repeats, retention, CLV).

    ``kind`` is ``contact`` (a contact offered by the customer), ``resolved`` (a contact
    resolved without a first_contact flag), or the customer event types themselves.
    """

    kind: str
    fact_id: str
    customer_id: str
    ts: float
    contact_id: str | None = None
    queue: str | None = None
    channel: str | None = None
    agent_id: str | None = None
    amount: float | None = None
    retract: bool = False


def partition_key(
    event_type: str, contact_id: str | None, agent_id: str | None, customer_id: str | None
) -> str:
    """Return the Kafka key SPEC §1 assigns an event of this type."""
    if event_type in AGENT_TYPES:
        return agent_id or ""
    if event_type in CUSTOMER_TYPES:
        return customer_id or ""
    return contact_id or ""


def event_as_dict(event: Event) -> dict[str, Any]:
    """Return the event's non-empty fields as a plain dict."""
    return {name: getattr(event, name) for name in EVENT_FIELDS if getattr(event, name) is not None}
