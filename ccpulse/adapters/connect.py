"""Map Amazon Connect records: contact events, agent events and contact trace records."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from ccpulse.adapters.base import Event, UnmappableError, load_json_object
from ccpulse.adapters.bounded import DEFAULT_MAX_OPEN, BoundedMap
from ccpulse.adapters.connect_agents import AgentEventMapper, AgentState
from ccpulse.adapters.connect_contacts import ContactEventMapper
from ccpulse.adapters.connect_ctr import map_ctr
from ccpulse.adapters.connect_legs import CHANNELS, ContactLegs

CONTACT_EVENT = "Amazon Connect Contact Event"
AGENT_EVENT_TYPES = frozenset({"STATE_CHANGE", "LOGIN", "LOGOUT", "HEART_BEAT"})


def record_kind(record: dict[str, Any]) -> str:
    """Tell which Connect record this is: contact-event, agent-event, ctr or other."""
    if record.get("detail-type") == CONTACT_EVENT or {"eventType", "contactId"} <= record.keys():
        return "contact-event"
    if record.get("EventType") in AGENT_EVENT_TYPES and "AgentARN" in record:
        return "agent-event"
    if "ContactId" in record and (
        "InitiationTimestamp" in record or "AWSContactTraceRecordFormatVersion" in record
    ):
        return "ctr"
    if record.get("source") == "aws.connect":
        return "other"  # another EventBridge event from Connect (Contact Lens, rules...)
    raise UnmappableError(
        "not an Amazon Connect contact event, agent event or contact trace record"
    )


class AmazonConnectMapper:
    """Map any of Connect's three record kinds; one instance per stream or file.

    `queue_names` maps queue ARNs (or queue ids) to names: contact events carry only the
    queue ARN, so without it their queue is the queue id while CTRs carry the name.
    `channels` overrides the channel mapping, e.g. `{"TASK": "email"}` to count tasks.
    """

    def __init__(
        self,
        queue_names: Mapping[str, str] | None = None,
        channels: Mapping[str, str | None] | None = None,
        max_open_contacts: int = DEFAULT_MAX_OPEN,
    ) -> None:
        self.queue_names: Mapping[str, str] = dict(queue_names or {})
        self.channels: Mapping[str, str | None] = {**CHANNELS, **(channels or {})}
        self.legs = ContactLegs(max_open_contacts)
        self.agent_states: BoundedMap[str, AgentState] = BoundedMap(max_open_contacts)
        self._contacts = ContactEventMapper(self.legs, self.queue_names, self.channels)
        self._agents = AgentEventMapper(self.agent_states)

    def map(self, record: bytes | str) -> list[Event]:
        """Map one JSON record of any Connect kind."""
        obj = load_json_object(record)
        kind = record_kind(obj)
        if kind == "contact-event":
            return self._contacts.map(obj)
        if kind == "agent-event":
            return self._agents.map(obj)
        if kind == "ctr":
            return map_ctr(obj, self.legs, self.queue_names, self.channels)
        return []
