"""Map Amazon Connect agent event stream records (Kinesis) to agent.state."""

from __future__ import annotations

from typing import Any

from ccpulse.adapters.base import Event, UnmappableError, canonical_event, field, text_or_none
from ccpulse.adapters.bounded import BoundedMap
from ccpulse.adapters.connect_legs import arn_id
from ccpulse.adapters.timestamps import format_ts, parse_time

AgentState = tuple[str, tuple[str, ...]]

ON_CONTACT = frozenset({"CONNECTED", "CONNECTED_ONHOLD"})
STATUS_TYPES = {"ROUTABLE": "available", "OFFLINE": "offline", "CUSTOM": "away"}


class AgentEventMapper:
    """Emit agent.state when an agent's derived state or queues change."""

    def __init__(self, last_states: BoundedMap[str, AgentState]) -> None:
        self.last_states = last_states

    def map(self, record: dict[str, Any]) -> list[Event]:
        """Map one agent event (STATE_CHANGE, LOGIN, LOGOUT or HEART_BEAT)."""
        agent_id = arn_id(field(record, "AgentARN"))
        when = field(record, "EventTimestamp")
        if agent_id is None or when is None:
            raise UnmappableError("agent event needs AgentARN and EventTimestamp")
        state = self._state(record)
        if state == self.last_states.get(agent_id):
            return []  # a heartbeat or a change that does not move the agent's state
        self.last_states.put(agent_id, state)
        name, queues = state
        event_id = text_or_none(field(record, "EventId")) or f"{agent_id}-{when}"
        return [
            canonical_event(
                f"connect-agent-{event_id}",
                "agent.state",
                format_ts(parse_time(when)),
                agent_id=agent_id,
                state=name,
                queues=list(queues) if queues else None,
            )
        ]

    def _state(self, record: dict[str, Any]) -> AgentState:
        """Derive the state from the current snapshot (LOGOUT is always offline)."""
        if field(record, "EventType") == "LOGOUT":
            return ("offline", ())
        snapshot = field(record, "CurrentAgentSnapshot")
        if not isinstance(snapshot, dict):
            raise UnmappableError("agent event without CurrentAgentSnapshot")
        state = snapshot_state(snapshot)
        return (state, () if state == "offline" else inbound_queues(snapshot))


def snapshot_state(snapshot: dict[str, Any]) -> str:
    """Return busy / after_contact_work from the agent's contacts, else its status.

    An agent in after-contact work keeps the contact in state ENDED until it is cleared,
    whatever status it set; a contact CONNECTED or on hold makes the agent busy.
    """
    states = {field(contact, "State") for contact in field(snapshot, "Contacts") or []}
    if states & ON_CONTACT:
        return "busy"
    if "ENDED" in states:
        return "after_contact_work"
    status = field(snapshot, "AgentStatus") or {}
    by_type = STATUS_TYPES.get(str(field(status, "Type") or "").upper())
    if by_type:
        return by_type
    name = str(field(status, "Name") or "").lower()
    return {"available": "available", "offline": "offline"}.get(name, "away")


def inbound_queues(snapshot: dict[str, Any]) -> tuple[str, ...]:
    """Return the named inbound queues of the agent's routing profile, sorted."""
    profile = field(field(snapshot, "Configuration"), "RoutingProfile")
    queues = field(profile, "InboundQueues") or []
    return tuple(sorted({str(q["Name"]) for q in queues if isinstance(q, dict) and q.get("Name")}))
