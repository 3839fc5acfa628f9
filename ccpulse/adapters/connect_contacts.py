"""Map Amazon Connect contact events (EventBridge "Amazon Connect Contact Event")."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from ccpulse.adapters.base import Event, UnmappableError, field, sort_by_time, text_or_none
from ccpulse.adapters.connect_legs import (
    IGNORED_METHODS,
    TRANSFER_METHODS,
    ContactLegs,
    Leg,
    NextLeg,
    arn_id,
    canonical_channel,
    leg_event,
    queue_name,
)
from ccpulse.adapters.timestamps import parse_time

MAPPED_EVENT_TYPES = frozenset({"QUEUED", "CONNECTED_TO_AGENT", "DISCONNECTED"})
"""The rest (INITIATED, CONNECTED_TO_SYSTEM, CONTACT_DATA_UPDATED, new ones) map to []."""


class ContactEventMapper:
    """Map contact events, remembering each queued leg for later events and transfers."""

    def __init__(
        self,
        legs: ContactLegs,
        queue_names: Mapping[str, str],
        channels: Mapping[str, str | None],
    ) -> None:
        self.legs = legs
        self.queue_names = queue_names
        self.channels = channels

    def map(self, envelope: dict[str, Any]) -> list[Event]:
        """Map one contact event, with or without its EventBridge envelope."""
        detail = envelope.get("detail") if "detail-type" in envelope else envelope
        if not isinstance(detail, dict):
            raise UnmappableError("contact event without a detail object")
        event_type = text_or_none(field(detail, "eventType"))
        leg_id = text_or_none(field(detail, "contactId"))
        if event_type is None or leg_id is None:
            raise UnmappableError("contact event needs eventType and contactId")
        if event_type not in MAPPED_EVENT_TYPES or self._ignored(detail):
            return []
        fallback = envelope.get("time")
        if event_type == "QUEUED":
            return self._queued(detail, leg_id, fallback)
        if event_type == "CONNECTED_TO_AGENT":
            return self._connected(detail, leg_id, fallback)
        return self._disconnected(detail, leg_id, fallback)

    def _ignored(self, detail: dict[str, Any]) -> bool:
        """Tell whether the contact's channel or initiation method is out of scope."""
        channel = canonical_channel(field(detail, "channel"), self.channels)
        return channel is None or field(detail, "initiationMethod") in IGNORED_METHODS

    def _queued(self, detail: dict[str, Any], leg_id: str, fallback: object) -> list[Event]:
        """QUEUED: the leg is offered; a transferred or callback leg is joined first."""
        leg = self._leg(detail, leg_id)
        if leg is None:
            raise UnmappableError(f"QUEUED event of {leg_id} without queueInfo")
        queued_at = _time(field(field(detail, "queueInfo"), "enqueueTimestamp"), fallback)
        events: list[Event] = []
        previous_id = text_or_none(field(detail, "previousContactId"))
        if previous_id and field(detail, "initiationMethod") in TRANSFER_METHODS:
            initiated = _time(field(detail, "initiationTimestamp"), queued_at)
            events += self.legs.transfer_into(previous_id, NextLeg(leg_id, leg.queue, initiated))
        events.append(leg_event(leg_id, leg, "contact.offered", queued_at))
        return sort_by_time(events)

    def _connected(self, detail: dict[str, Any], leg_id: str, fallback: object) -> list[Event]:
        """CONNECTED_TO_AGENT: the leg is answered by the agent in agentInfo."""
        leg = self._leg(detail, leg_id)
        if leg is None:
            return []  # connected without being queued: not a queue contact
        agent = field(detail, "agentInfo")
        leg.agent_id = arn_id(field(agent, "agentArn")) or leg.agent_id
        connected_at = _time(field(agent, "connectedToAgentTimestamp"), fallback)
        return [leg_event(leg_id, leg, "contact.answered", connected_at, agent_id=leg.agent_id)]

    def _disconnected(self, detail: dict[str, Any], leg_id: str, fallback: object) -> list[Event]:
        """DISCONNECTED: ended + wrapped after an agent, abandoned if it only waited."""
        leg = self._leg(detail, leg_id)
        if leg is None:
            return []
        agent = field(detail, "agentInfo")
        leg.agent_id = arn_id(field(agent, "agentArn")) or leg.agent_id
        ended = _time(field(detail, "disconnectTimestamp"), fallback)
        if leg.agent_id:
            return [
                leg_event(leg_id, leg, "contact.ended", ended, agent_id=leg.agent_id),
                leg_event(leg_id, leg, "contact.wrapped", ended, agent_id=leg.agent_id),
            ]
        if leg.transferred_out:
            return []  # moved on to another queue or a callback, not abandoned
        return [leg_event(leg_id, leg, "contact.abandoned", ended)]

    def _leg(self, detail: dict[str, Any], leg_id: str) -> Leg | None:
        """Return the remembered leg, or build one from the event's queueInfo."""
        known = self.legs.legs.get(leg_id)
        info = field(detail, "queueInfo")
        if known is not None or not field(info, "queueArn"):
            return known
        leg = Leg(
            contact_id=self.legs.canonical_id(
                leg_id, field(detail, "initialContactId"), field(detail, "previousContactId")
            ),
            queue=queue_name(field(info, "queueArn"), None, self.queue_names) or "unknown",
            channel=canonical_channel(field(detail, "channel"), self.channels) or "",
            customer_id=text_or_none(field(field(detail, "customerEndpoint"), "address")),
        )
        self.legs.legs.put(leg_id, leg)
        return leg


def _time(value: object, fallback: object) -> datetime:
    """Parse an event time, falling back to the envelope's time."""
    chosen = value or fallback
    if chosen is None:
        raise UnmappableError("contact event without any timestamp")
    return chosen if isinstance(chosen, datetime) else parse_time(chosen)
