"""Map Twilio TaskRouter event callbacks (form-encoded or JSON) to canonical events."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from urllib.parse import parse_qsl

from ccpulse.adapters.base import Event, UnmappableError, canonical_event, decode, text_or_none
from ccpulse.adapters.bounded import DEFAULT_MAX_OPEN, BoundedMap
from ccpulse.adapters.timestamps import epoch_ms, format_ts, from_epoch, parse_time

CLOUDEVENT_PREFIX = "com.twilio.taskrouter."
CHANNELS = {
    "voice": "voice", "chat": "chat", "web": "chat", "sms": "sms", "email": "email",
    "video": "video", "whatsapp": "social", "messenger": "social", "facebook": "social",
    "instagram": "social", "twitter": "social", "social": "social",
}  # fmt: skip
"""TaskRouter task channel or Flex `channelType` → canonical channel."""

ACTIVITY_STATES = {
    "available": "available", "idle": "available", "ready": "available",
    "offline": "offline", "busy": "busy", "on a task": "busy",
    "wrapup": "after_contact_work", "wrap up": "after_contact_work",
    "wrap-up": "after_contact_work", "after contact work": "after_contact_work",
}  # fmt: skip
"""Worker activity names with a SPEC state of their own; any other activity is away."""


@dataclass
class TaskState:
    """What the mapper remembers about one live task."""

    queue: str | None = None
    offered_in: set[str] = field(default_factory=set)
    agent_id: str | None = None
    wrapping: bool = False


Fields = dict[str, str]


class TwilioTaskRouterMapper:
    """Map TaskRouter events; one instance per callback endpoint or file."""

    def __init__(self, default_channel: str = "voice", max_open_tasks: int = DEFAULT_MAX_OPEN):
        self.default_channel = default_channel
        self.tasks: BoundedMap[str, TaskState] = BoundedMap(max_open_tasks)
        self._handlers: dict[str, Callable[[Fields], list[Event]]] = {
            "task.created": self._offered,
            "task-queue.entered": self._offered,
            "reservation.accepted": self._accepted,
            "task.canceled": self._canceled,
            "task.wrapup": self._wrapup,
            "task.completed": self._completed,
            "task.transfer-initiated": self._transfer,
            "worker.activity.update": self._activity,
        }

    def map(self, record: bytes | str) -> list[Event]:
        """Map one callback body; every event type not in the table maps to []."""
        events: list[Event] = []
        for fields in parse_callback(record):
            event_type = fields.get("eventtype")
            if not event_type:
                raise UnmappableError("TaskRouter event without EventType")
            handler = self._handlers.get(event_type)
            events += handler(fields) if handler else []
        return events

    def _offered(self, fields: Fields) -> list[Event]:
        """task.created / task-queue.entered: offered once per task and queue."""
        task = self._task(fields)
        queue = fields.get("taskqueuename") or attribute(fields, "queue")
        if not queue or queue in task.offered_in:
            return []  # created before routing, or the second notice of the same queue
        task.queue = queue
        task.offered_in.add(queue)
        event_id = f"tw-{fields['tasksid']}-{queue}:contact.offered"
        return [self._contact(fields, "contact.offered", event_id=event_id)]

    def _accepted(self, fields: Fields) -> list[Event]:
        """reservation.accepted: the worker accepted the task."""
        task = self._task(fields)
        task.agent_id = worker_id(fields) or task.agent_id
        return [self._contact(fields, "contact.answered", agent_id=task.agent_id)]

    def _canceled(self, fields: Fields) -> list[Event]:
        """task.canceled: the task left before any worker took it."""
        event = self._contact(fields, "contact.abandoned")
        self.tasks.pop(fields["tasksid"])
        return [event]

    def _wrapup(self, fields: Fields) -> list[Event]:
        """task.wrapup: the conversation ended; the worker is wrapping up."""
        task = self._task(fields)
        task.wrapping = True
        return [self._contact(fields, "contact.ended", agent_id=task.agent_id)]

    def _completed(self, fields: Fields) -> list[Event]:
        """task.completed: wrap-up done (ended first if the task skipped wrap-up)."""
        task = self._task(fields)
        ended = self._contact(fields, "contact.ended", agent_id=task.agent_id)
        wrapped = self._contact(fields, "contact.wrapped", agent_id=task.agent_id)
        events = [wrapped] if task.wrapping else [ended, wrapped]
        self.tasks.pop(fields["tasksid"])
        return events

    def _transfer(self, fields: Fields) -> list[Event]:
        """task.transfer-initiated: to a queue (WQ… sid) or a worker (WK… sid)."""
        task = self._task(fields)
        target = transfer_target(fields)
        if not target:
            raise UnmappableError("task.transfer-initiated without a TransferTo target")
        agent = fields.get("transferinitiatingworkersid") or task.agent_id
        return [self._contact(fields, "contact.transferred", agent_id=agent, **target)]

    def _activity(self, fields: Fields) -> list[Event]:
        """worker.activity.update: the worker's activity maps to a SPEC state."""
        agent = worker_id(fields)
        activity = (fields.get("workeractivityname") or "").strip().lower()
        if not agent or not activity:
            raise UnmappableError("worker.activity.update needs WorkerSid and WorkerActivityName")
        return [
            canonical_event(
                f"tw-{agent}-{epoch_ms(event_time(fields))}:agent.state",
                "agent.state",
                format_ts(event_time(fields)),
                agent_id=agent,
                state=ACTIVITY_STATES.get(activity, "away"),
            )
        ]

    def _task(self, fields: Fields) -> TaskState:
        """Return the remembered state of the event's task."""
        if not fields.get("tasksid"):
            raise UnmappableError(f"{fields['eventtype']} without TaskSid")
        return self.tasks.setdefault(fields["tasksid"], TaskState)

    def _contact(
        self, fields: Fields, type_: str, event_id: str | None = None, **extra: str | None
    ) -> Event:
        """Build a contact event for the event's task."""
        task = self._task(fields)
        moment = event_time(fields)
        subject = f"{fields['tasksid']}-{fields['eventtype']}-{epoch_ms(moment)}"
        return canonical_event(
            event_id or f"tw-{subject}:{type_}",
            type_,
            format_ts(moment),
            contact_id=contact_id(fields),
            queue=fields.get("taskqueuename") or task.queue or attribute(fields, "queue"),
            channel=self._channel(fields),
            customer_id=customer_id(fields),
            **extra,
        )

    def _channel(self, fields: Fields) -> str:
        """Pick the channel: Flex channelType, then the task channel, then the default."""
        for hint in (
            attribute(fields, "channelType"),
            fields.get("taskchanneluniquename"),
            attribute(fields, "channel"),
        ):
            if hint and hint.lower() in CHANNELS:
                return CHANNELS[hint.lower()]
        return self.default_channel


def parse_callback(record: bytes | str) -> list[Fields]:
    """Parse a callback body into field maps with normalised keys (TaskSid → tasksid).

    Accepts the classic form-encoded callback, the same fields as a JSON object, and
    Event Streams CloudEvents (one or a list) whose snake_case payload normalises alike.
    """
    text = decode(record).strip()
    if not text:
        raise UnmappableError("empty TaskRouter callback")
    if text[0] in "[{":
        try:
            parsed = json.loads(text)
        except json.JSONDecodeError as err:
            raise UnmappableError(f"not valid JSON: {err.msg} at char {err.pos}") from None
        items = parsed if isinstance(parsed, list) else [parsed]
        return [normalise(unwrap_cloudevent(item)) for item in items]
    pairs = parse_qsl(text, keep_blank_values=True)
    if not pairs or not any(key.replace("_", "").lower() == "eventtype" for key, _ in pairs):
        raise UnmappableError("not a TaskRouter callback: no EventType field")
    return [normalise(dict(pairs))]


def unwrap_cloudevent(item: Any) -> dict[str, Any]:
    """Return an Event Streams CloudEvent's payload with its event type, or the item."""
    if not isinstance(item, dict):
        raise UnmappableError(f"expected a JSON object, got {type(item).__name__}")
    if "specversion" not in item:
        return item
    data = item.get("data")
    data = data if isinstance(data, dict) else {}
    payload = data.get("payload")
    payload = payload if isinstance(payload, dict) else data
    event_type = str(item.get("type", "")).removeprefix(CLOUDEVENT_PREFIX)
    return {**payload, "eventtype": event_type, "timestamp": data.get("timestamp")}


def normalise(raw: dict[str, Any]) -> Fields:
    """Lower-case keys without underscores, values as text (dicts kept as JSON)."""
    fields: Fields = {}
    for key, value in raw.items():
        if value is None:
            continue
        text = json.dumps(value) if isinstance(value, dict | list) else str(value)
        fields[str(key).replace("_", "").lower()] = text
    return fields


def event_time(fields: Fields) -> datetime:
    """Return the event time: TimestampMs, else Timestamp (epoch or ISO), else EventDate."""
    if fields.get("timestampms"):
        return from_epoch(int(fields["timestampms"]) / 1000)
    for key in ("timestamp", "eventdatems", "eventdate"):
        if fields.get(key):
            value = fields[key]
            return from_epoch(int(value) / 1000) if key == "eventdatems" else parse_time(value)
    raise UnmappableError("TaskRouter event without a timestamp")


def attributes(fields: Fields) -> dict[str, Any]:
    """Return the task's TaskAttributes JSON as a dict ({} when absent or not JSON)."""
    try:
        parsed = json.loads(fields.get("taskattributes") or "{}")
    except json.JSONDecodeError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def attribute(fields: Fields, name: str) -> str | None:
    """Return one top-level task attribute as text."""
    return text_or_none(attributes(fields).get(name))


def contact_id(fields: Fields) -> str:
    """Return the conversation id Flex links transfers by, else the TaskSid."""
    conversations = attributes(fields).get("conversations")
    linked = conversations.get("conversation_id") if isinstance(conversations, dict) else None
    return text_or_none(linked) or fields["tasksid"]


def customer_id(fields: Fields) -> str | None:
    """Return the customer from task attributes: customer_id, customer, customers, from."""
    attrs = attributes(fields)
    customers = attrs.get("customers")
    nested = customers.get("external_id") if isinstance(customers, dict) else None
    for value in (attrs.get("customer_id"), attrs.get("customer"), nested, attrs.get("from")):
        if isinstance(value, str | int) and text_or_none(value):
            return str(value).strip()
    return None


def worker_id(fields: Fields) -> str | None:
    """Return the worker's sid (stable), else its name."""
    return fields.get("workersid") or fields.get("workername") or None


def transfer_target(fields: Fields) -> dict[str, str | None]:
    """Return to_queue or to_agent_id from TransferTo (and TransferType when present)."""
    target = fields.get("transferto", "")
    kind = fields.get("transfertype", "").upper()
    if not target:
        return {}
    if kind == "QUEUE" or (not kind and target.startswith("WQ")):
        return {"to_queue": fields.get("transfertoname") or target}
    return {"to_agent_id": target}
