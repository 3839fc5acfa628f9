"""Map Zendesk ticket event webhooks and satisfaction ratings to canonical events.

A ticket is a contact (contact_id = ticket id); its group is the queue. The event
webhook shape (`type: zen:event-type:ticket.*`, `detail` = the ticket, `event` = the
change) follows Zendesk's public webhook reference; docs/adapters.md lists the
assumptions made where that reference leaves details open.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from ccpulse.adapters.base import (
    Event,
    UnmappableError,
    canonical_event,
    field,
    load_json_object,
    text_or_none,
)
from ccpulse.adapters.bounded import DEFAULT_MAX_OPEN, BoundedMap
from ccpulse.adapters.timestamps import epoch_ms, format_ts, parse_time

EVENT_PREFIX = "zen:event-type:"
UNASSIGNED = "unassigned"
CHANNELS = {
    "email": "email", "web": "email", "web_form": "email", "web_service": "email",
    "api": "email", "mobile_sdk": "email", "help_center": "email", "mobile": "email",
    "chat": "chat", "chat_transcript": "chat", "native_messaging": "chat",
    "messaging": "chat", "voice": "voice", "phone": "voice", "sms": "sms", "text": "sms",
    "twitter": "social", "facebook": "social", "instagram": "social", "whatsapp": "social",
    "line": "social", "wechat": "social", "any_channel": "social",
}  # fmt: skip
"""Zendesk `via.channel` → canonical channel; anything else is treated as email."""

SOLVED = frozenset({"solved", "closed"})
OPEN = frozenset({"new", "open", "pending", "hold", "on-hold"})
CSAT_SCORES = {"good": 5, "bad": 1}
"""Zendesk's two-point rating on the 1–5 CSAT scale; the csat KPI (share of 4–5) is exact."""


@dataclass
class TicketState:
    """What the mapper remembers about one open ticket."""

    channel: str = "email"
    queue: str = UNASSIGNED
    agent_id: str | None = None
    first_response_sent: bool = False


class ZendeskMapper:
    """Map Zendesk webhooks; one instance per webhook endpoint or file.

    `group_names` maps group ids to names: the webhook carries only the group id, which
    is the queue otherwise.
    """

    def __init__(
        self,
        group_names: Mapping[str, str] | None = None,
        max_open_tickets: int = DEFAULT_MAX_OPEN,
    ) -> None:
        self.group_names = dict(group_names or {})
        self.tickets: BoundedMap[str, TicketState] = BoundedMap(max_open_tickets)
        self._handlers: dict[str, Callable[[dict[str, Any], str], list[Event]]] = {
            "ticket.created": self._created,
            "ticket.agent_assignment_changed": self._assigned,
            "ticket.group_assignment_changed": self._regrouped,
            "ticket.comment_added": self._commented,
            "ticket.status_changed": self._status_changed,
        }

    def map(self, record: bytes | str) -> list[Event]:
        """Map one webhook body: a ticket event or a satisfaction rating."""
        payload = load_json_object(record)
        if "satisfaction_rating" in payload or {"score", "ticket_id"} <= payload.keys():
            return self._rated(payload.get("satisfaction_rating") or payload)
        kind = str(payload.get("type") or "")
        if not kind.startswith(EVENT_PREFIX):
            raise UnmappableError("not a Zendesk event webhook (type zen:event-type:...)")
        handler = self._handlers.get(kind.removeprefix(EVENT_PREFIX))
        return handler(payload, ticket_id(payload)) if handler else []

    def _created(self, payload: dict[str, Any], ticket: str) -> list[Event]:
        """ticket.created: the ticket is offered to its group (or `unassigned`)."""
        state = self._ticket(payload, ticket)
        state.queue = self._queue(field(payload.get("detail"), "group_id"))
        return [self._event(payload, ticket, "contact.offered")]

    def _assigned(self, payload: dict[str, Any], ticket: str) -> list[Event]:
        """Agent assignment: the first assignee answers; a later one is a transfer."""
        state = self._ticket(payload, ticket)
        current, previous = change(payload)
        if current is None:
            return []  # unassigned: the ticket waits for the next assignee
        if state.agent_id is None and previous is None:
            state.agent_id = current
            event_id = f"zd-{ticket}:contact.answered"  # one answer per ticket, however seen
            return [self._event(payload, ticket, "contact.answered", current, event_id=event_id)]
        state.agent_id = current
        return [self._event(payload, ticket, "contact.transferred", previous, to_agent_id=current)]

    def _regrouped(self, payload: dict[str, Any], ticket: str) -> list[Event]:
        """Group change: transferred out of the old group, offered to the new one."""
        state = self._ticket(payload, ticket)
        current, previous = change(payload)
        old_queue, new_queue = self._queue(previous), self._queue(current)
        if old_queue == new_queue:
            return []
        moved = self._event(payload, ticket, "contact.transferred", to_queue=new_queue)
        moved["queue"] = old_queue
        state.queue = new_queue
        return [moved, self._event(payload, ticket, "contact.offered")]

    def _commented(self, payload: dict[str, Any], ticket: str) -> list[Event]:
        """Public comment: a message; the first public agent comment is the first response."""
        comment = field(payload.get("event"), "comment") or {}
        if not field(comment, "is_public"):
            return []  # internal notes are not part of the conversation
        author = field(comment, "author") or {}
        is_agent = bool(field(author, "is_staff"))
        author_id = text_or_none(field(author, "id"))
        state = self._ticket(payload, ticket)
        events: list[Event] = []
        if is_agent and not state.first_response_sent:
            state.first_response_sent = True
            first_id = f"zd-{ticket}:contact.first_response"
            events.append(
                self._event(payload, ticket, "contact.first_response", author_id, first_id)
            )
        speaker = "agent" if is_agent else "customer"
        message = self._event(payload, ticket, "message", author_id if is_agent else None)
        message.update(speaker=speaker, text=str(field(comment, "body") or ""))
        return [*events, message]

    def _status_changed(self, payload: dict[str, Any], ticket: str) -> list[Event]:
        """Status change: to solved/closed resolves, from solved back to open reopens."""
        current, previous = (str(value or "").lower() for value in change(payload))
        if current in SOLVED and previous not in SOLVED:
            state = self._ticket(payload, ticket)
            return [self._event(payload, ticket, "contact.resolved", state.agent_id)]
        if previous == "solved" and current in OPEN:
            return [self._event(payload, ticket, "contact.reopened")]
        return []

    def _rated(self, rating: dict[str, Any]) -> list[Event]:
        """Satisfaction rating: good → CSAT 5, bad → CSAT 1, offered/unoffered → nothing."""
        score = CSAT_SCORES.get(str(field(rating, "score") or "").lower())
        ticket = text_or_none(field(rating, "ticket_id"))
        when = field(rating, "updated_at", "created_at")
        if score is None:
            return []
        if ticket is None or when is None:
            raise UnmappableError("satisfaction rating needs ticket_id and updated_at")
        state = self.tickets.get(ticket) or TicketState()
        rating_id = text_or_none(field(rating, "id")) or ticket
        return [
            canonical_event(
                f"zd-rating-{rating_id}:survey.response",
                "survey.response",
                format_ts(parse_time(when)),
                contact_id=ticket,
                queue=self._queue(field(rating, "group_id")) if field(rating, "group_id")
                else state.queue,
                channel=state.channel,
                agent_id=text_or_none(field(rating, "assignee_id")) or state.agent_id,
                customer_id=text_or_none(field(rating, "requester_id")),
                survey="csat",
                score=score,
            )
        ]  # fmt: skip

    def _ticket(self, payload: dict[str, Any], ticket: str) -> TicketState:
        """Return the ticket's state, refreshed from the ticket snapshot in `detail`."""
        state = self.tickets.setdefault(ticket, TicketState)
        detail = payload.get("detail") or {}
        via = text_or_none(field(field(detail, "via"), "channel"))
        if via:
            state.channel = CHANNELS.get(via.lower(), "email")
        return state

    def _queue(self, group_id: object) -> str:
        """Name a group's queue: its configured name, else its id, else `unassigned`."""
        group = text_or_none(group_id)
        if group is None or group == "0":
            return UNASSIGNED
        return self.group_names.get(group, group)

    def _event(
        self,
        payload: dict[str, Any],
        ticket: str,
        type_: str,
        agent_id: str | None = None,
        event_id: str | None = None,
        **extra: Any,
    ) -> Event:
        """Build a contact event of the ticket at the webhook's time."""
        state = self._ticket(payload, ticket)
        moment = event_time(payload)
        detail = payload.get("detail") or {}
        return canonical_event(
            event_id or f"zd-{payload.get('id') or epoch_ms(moment)}:{type_}",
            type_,
            format_ts(moment),
            contact_id=ticket,
            queue=state.queue,
            channel=state.channel,
            agent_id=agent_id,
            customer_id=text_or_none(field(detail, "requester_id")),
            **extra,
        )


def ticket_id(payload: dict[str, Any]) -> str:
    """Return the ticket id from `detail.id`, else from `subject` (zen:ticket:35)."""
    found = text_or_none(field(payload.get("detail"), "id"))
    subject = str(payload.get("subject") or "")
    if found is None and subject.startswith("zen:ticket:"):
        found = subject.removeprefix("zen:ticket:")
    if not found:
        raise UnmappableError("Zendesk ticket event without a ticket id")
    return found


def change(payload: dict[str, Any]) -> tuple[str | None, str | None]:
    """Return (current, previous) of a *_changed event, ids or values as text."""
    event = payload.get("event") or {}
    return (_value(field(event, "current")), _value(field(event, "previous")))


def _value(value: Any) -> str | None:
    """Return a changed value as text; an object's `id` (or `status`) stands for it."""
    if isinstance(value, dict):
        value = field(value, "id", "status")
    text = text_or_none(value)
    return None if text in (None, "0", "null") else text


def event_time(payload: dict[str, Any]) -> datetime:
    """Return the webhook's `time`, else the ticket's `updated_at`."""
    when = payload.get("time") or field(payload.get("detail"), "updated_at")
    if when is None:
        raise UnmappableError("Zendesk event without time")
    return parse_time(when)
