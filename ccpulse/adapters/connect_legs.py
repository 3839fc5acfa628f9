"""Amazon Connect contact legs: one customer contact across transfers and callbacks.

Connect creates a new contact id for every transfer or callback (a *leg*), linked by
PreviousContactId / NextContactId and InitialContactId. ccpulse keeps one contact_id
per customer contact (the initial contact id) so resolution time spans every leg, and
joins the two legs of a transfer, in whichever order they arrive, into one
contact.transferred from the old leg's queue to the new leg's queue.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

from ccpulse.adapters.base import Event, UnmappableError, canonical_event, text_or_none
from ccpulse.adapters.bounded import DEFAULT_MAX_OPEN, BoundedMap
from ccpulse.adapters.timestamps import format_ts

CHANNELS: Mapping[str, str | None] = {
    "VOICE": "voice",
    "CHAT": "chat",
    "EMAIL": "email",
    "TASK": None,
}
"""Connect channel → canonical channel; None ignores the channel (SPEC has no tasks)."""

TRANSFER_METHODS = frozenset({"TRANSFER", "QUEUE_TRANSFER", "CALLBACK"})
"""Initiation methods whose contact continues the previous contact's customer contact."""

IGNORED_METHODS = frozenset({"OUTBOUND", "MONITOR", "AGENT_REPLY", "EXTERNAL_OUTBOUND"})
"""Agent-made calls and supervisor monitoring are not offered to a queue."""


@dataclass
class Leg:
    """What is known about one Connect contact id that was queued."""

    contact_id: str
    queue: str
    channel: str
    customer_id: str | None = None
    agent_id: str | None = None
    transferred_out: bool = False


@dataclass(frozen=True)
class NextLeg:
    """The leg a contact was transferred (or called back) into."""

    leg_id: str
    queue: str
    initiated: datetime


class ContactLegs:
    """Remember queued legs (bounded) and join transfers across them."""

    def __init__(self, capacity: int = DEFAULT_MAX_OPEN) -> None:
        self.legs: BoundedMap[str, Leg] = BoundedMap(capacity)
        self.waiting_for_previous: BoundedMap[str, NextLeg] = BoundedMap(capacity)

    def canonical_id(self, leg_id: str, initial_id: str | None, previous_id: str | None) -> str:
        """Return the customer contact's id: the initial contact id, however found."""
        if initial_id:
            return initial_id
        previous = self.legs.get(previous_id) if previous_id else None
        return previous.contact_id if previous else previous_id or leg_id

    def transfer_into(self, previous_id: str, nxt: NextLeg) -> list[Event]:
        """Join a new leg to its previous one, or wait for the previous leg to arrive."""
        previous = self.legs.get(previous_id)
        if previous is None:
            self.waiting_for_previous.put(previous_id, nxt)
            return []
        return [transferred(previous_id, previous, nxt)]

    def transfer_out_of(self, leg_id: str) -> list[Event]:
        """Emit the transfer out of leg_id if its next leg arrived first."""
        nxt = self.waiting_for_previous.pop(leg_id)
        previous = self.legs.get(leg_id)
        return [transferred(leg_id, previous, nxt)] if nxt and previous else []


def transferred(previous_id: str, previous: Leg, nxt: NextLeg) -> Event:
    """Build contact.transferred from the previous leg's queue to the next leg's."""
    previous.transferred_out = True
    return canonical_event(
        leg_event_id(previous_id, "contact.transferred"),
        "contact.transferred",
        format_ts(nxt.initiated),
        contact_id=previous.contact_id,
        queue=previous.queue,
        channel=previous.channel,
        agent_id=previous.agent_id,
        customer_id=previous.customer_id,
        to_queue=nxt.queue,
    )


def leg_event(leg_id: str, leg: Leg, type_: str, moment: datetime, **extra: object) -> Event:
    """Build a contact event of one leg."""
    return canonical_event(
        leg_event_id(leg_id, type_),
        type_,
        format_ts(moment),
        contact_id=leg.contact_id,
        queue=leg.queue,
        channel=leg.channel,
        agent_id=extra.pop("agent_id", None),
        customer_id=leg.customer_id,
        **extra,
    )


def leg_event_id(leg_id: str, type_: str) -> str:
    """Return the id of a leg's event; the event stream and CTRs share it, so they dedupe."""
    return f"connect-{leg_id}:{type_}"


def arn_id(arn: object) -> str | None:
    """Return the last path segment of an ARN (a queue or agent id), or None."""
    text = text_or_none(arn)
    return text.rsplit("/", 1)[-1] if text else None


def canonical_channel(value: object, channels: Mapping[str, str | None]) -> str | None:
    """Map a Connect channel name; None means the channel is deliberately ignored."""
    name = (text_or_none(value) or "").upper()
    if name not in channels:
        raise UnmappableError(f"unknown Amazon Connect channel {value!r}")
    return channels[name]


def queue_name(arn: object, name: object, queue_names: Mapping[str, str]) -> str | None:
    """Name a queue: a configured name for its ARN or id, else its own name, else its id."""
    for key in (text_or_none(arn), arn_id(arn)):
        if key and key in queue_names:
            return queue_names[key]
    return text_or_none(name) or arn_id(arn)
