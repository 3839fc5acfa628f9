"""Map Amazon Connect contact trace records (CTRs) to a contact's whole lifecycle."""

from __future__ import annotations

from collections.abc import Mapping
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


def map_ctr(
    ctr: dict[str, Any],
    legs: ContactLegs,
    queue_names: Mapping[str, str],
    channels: Mapping[str, str | None],
) -> list[Event]:
    """Map one CTR: offered, then answered/ended/wrapped or abandoned, plus transfers."""
    leg_id = text_or_none(field(ctr, "ContactId"))
    if leg_id is None:
        raise UnmappableError("contact record without ContactId")
    channel = canonical_channel(field(ctr, "Channel"), channels)
    queue = field(ctr, "Queue") or {}
    if channel is None or field(ctr, "InitiationMethod") in IGNORED_METHODS:
        return []
    if not field(queue, "EnqueueTimestamp"):
        return []  # never queued (IVR-only, outbound): not a queue contact
    leg = _leg(ctr, leg_id, channel, queue, legs, queue_names)
    offered = leg_event(leg_id, leg, "contact.offered", parse_time(queue["EnqueueTimestamp"]))
    events = [*_joined_transfers(ctr, leg_id, leg, legs), offered, *_outcome(ctr, leg_id, leg)]
    return sort_by_time(events)


def _leg(
    ctr: dict[str, Any],
    leg_id: str,
    channel: str,
    queue: dict[str, Any],
    legs: ContactLegs,
    queue_names: Mapping[str, str],
) -> Leg:
    """Build and remember the leg this CTR describes."""
    agent = field(ctr, "Agent") or {}
    connected = field(agent, "ConnectedToAgentTimestamp")
    leg = Leg(
        contact_id=legs.canonical_id(
            leg_id, field(ctr, "InitialContactId"), field(ctr, "PreviousContactId")
        ),
        queue=queue_name(field(queue, "ARN"), field(queue, "Name"), queue_names) or "unknown",
        channel=channel,
        customer_id=text_or_none(field(field(ctr, "CustomerEndpoint"), "Address")),
        agent_id=arn_id(field(agent, "ARN")) or text_or_none(field(agent, "Username"))
        if connected
        else None,
    )
    legs.legs.put(leg_id, leg)
    return leg


def _joined_transfers(ctr: dict[str, Any], leg_id: str, leg: Leg, legs: ContactLegs) -> list[Event]:
    """Return transfers into this leg (from PreviousContactId) and out of it, once joined."""
    events: list[Event] = []
    previous_id = text_or_none(field(ctr, "PreviousContactId"))
    if previous_id and field(ctr, "InitiationMethod") in TRANSFER_METHODS:
        initiated = parse_time(field(ctr, "InitiationTimestamp"))
        events += legs.transfer_into(previous_id, NextLeg(leg_id, leg.queue, initiated))
    if field(ctr, "NextContactId"):
        events += legs.transfer_out_of(leg_id)
    return events


def _outcome(ctr: dict[str, Any], leg_id: str, leg: Leg) -> list[Event]:
    """Return answered/ended/wrapped for a connected leg, or abandoned for a lost one."""
    agent = field(ctr, "Agent") or {}
    connected = field(agent, "ConnectedToAgentTimestamp")
    if connected:
        return _handled(ctr, agent, leg_id, leg)
    if field(ctr, "NextContactId"):
        return []  # left this queue by a transfer or callback, not by hanging up
    left = field(field(ctr, "Queue"), "DequeueTimestamp") or field(ctr, "DisconnectTimestamp")
    if not left:
        raise UnmappableError(f"contact record {leg_id} has no dequeue or disconnect time")
    return [leg_event(leg_id, leg, "contact.abandoned", parse_time(left))]


def _handled(ctr: dict[str, Any], agent: dict[str, Any], leg_id: str, leg: Leg) -> list[Event]:
    """Return answered, ended (with hold) and wrapped (at the end of ACW) for a leg."""
    answered = parse_time(field(agent, "ConnectedToAgentTimestamp"))
    ended_at = field(agent, "AfterContactWorkStartTimestamp") or field(ctr, "DisconnectTimestamp")
    ended = parse_time(ended_at) if ended_at else answered
    wrapped_at = field(agent, "AfterContactWorkEndTimestamp")
    hold = field(agent, "CustomerHoldDuration", "HoldDuration")
    return [
        leg_event(leg_id, leg, "contact.answered", answered, agent_id=leg.agent_id),
        leg_event(
            leg_id, leg, "contact.ended", ended, agent_id=leg.agent_id,
            hold_seconds=hold if isinstance(hold, int) else None,
        ),
        leg_event(
            leg_id, leg, "contact.wrapped", parse_time(wrapped_at) if wrapped_at else ended,
            agent_id=leg.agent_id,
        ),
    ]  # fmt: skip
