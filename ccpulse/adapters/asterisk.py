"""Map Asterisk queue_log records (file lines or database rows) to canonical events.

The mapping table and its reasons are in docs/adapters.md; in short: a call is a contact
whose id is the caller channel's uniqueid (`callid`), so a call that visits several queues
keeps one contact_id and each queue it enters gets its own `contact.offered`.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ccpulse.adapters.base import Event, UnmappableError, canonical_event, decode
from ccpulse.adapters.bounded import DEFAULT_MAX_OPEN, BoundedMap
from ccpulse.adapters.queue_log import QueueLogRecord, parse_line, parse_row
from ccpulse.adapters.timestamps import epoch_ms, format_ts

HOLDTIME_TOLERANCE_SECONDS = 1.0
"""CONNECT's holdtime may differ from line times by rounding to whole seconds."""

LEFT_QUEUE_WAIT_FIELD = {"ABANDON": 3, "EXITWITHTIMEOUT": 3, "EXITEMPTY": 3, "EXITWITHKEY": 4}
"""Events where the caller left unanswered, and which data field holds the wait."""

NOT_ADMITTED = frozenset(
    {"FULL", "JOINEMPTY", "JOINUNAVAIL", "CLOSED", "DIVERT_CA_RATIO", "DIVERT_HOLDTIME"}
)
"""The caller reached the queue but was turned away at once (Wazo adds the last three)."""

TRANSFERS = frozenset({"TRANSFER", "BLINDTRANSFER", "ATTENDEDTRANSFER"})
COMPLETIONS = frozenset({"COMPLETECALLER", "COMPLETEAGENT"})
AGENT_EVENTS = frozenset(
    {
        "ADDMEMBER", "REMOVEMEMBER", "AGENTLOGIN", "AGENTLOGOFF", "AGENTCALLBACKLOGIN",
        "AGENTCALLBACKLOGOFF", "PAUSE", "UNPAUSE", "PAUSEALL", "UNPAUSEALL",
    }
)  # fmt: skip

IGNORED = {
    "QUEUESTART": "housekeeping: the queue application started",
    "CONFIGRELOAD": "housekeeping: queues.conf was reloaded",
    "RINGNOANSWER": "one agent's phone rang out; the caller is still waiting in the queue",
    "RINGCANCELED": "the ring to one agent was cancelled; the caller is still waiting",
    "AGENTDUMP": "the agent rejected a ring; the caller is still waiting",
    "SYSCOMPAT": "a call could not be bridged; the caller is still waiting",
    "PENALTY": "a member's penalty changed; no state change",
    "INFO": "free-text information line",
    "DID": "records the dialled number; the ENTERQUEUE that follows is the offer",
    "AGENTCALLED": "an agent is being rung; the caller is still waiting",
}
"""Known queue_log events that deliberately map to nothing, with the reason."""

NO_CALLER_ID = frozenset({"", "unknown", "anonymous", "<unknown>", "restricted", "private"})
VOICE = "voice"


@dataclass
class CallState:
    """What the mapper remembers about one live call: who calls and where it waits."""

    customer_id: str | None = None
    entered: dict[str, datetime] = field(default_factory=dict)


@dataclass
class AgentState:
    """What the mapper remembers about one queue member, to derive its agent.state."""

    queues: set[str] = field(default_factory=set)
    paused: set[str] = field(default_factory=set)
    paused_all: bool = False
    present: bool = True
    last: tuple[str, tuple[str, ...]] | None = None


class QueueLogMapper:
    """Map queue_log lines to canonical events; one instance per file or stream."""

    prefix = "ast"

    def __init__(self, max_open_calls: int = DEFAULT_MAX_OPEN) -> None:
        self.calls: BoundedMap[str, CallState] = BoundedMap(max_open_calls)
        self.agents: BoundedMap[str, AgentState] = BoundedMap(max_open_calls)
        self.anomalies: Counter[str] = Counter()
        self._handlers = self._handler_table()

    def map(self, record: bytes | str) -> list[Event]:
        """Map one queue_log line; a blank line maps to nothing."""
        if not decode(record).strip():
            return []
        return self.map_record(self.parse(record))

    def parse(self, record: bytes | str) -> QueueLogRecord:
        """Parse one raw record of this mapper's form."""
        return parse_line(record)

    def map_record(self, rec: QueueLogRecord) -> list[Event]:
        """Map one parsed queue_log record."""
        if rec.event in IGNORED:
            return []
        handler = self._handlers.get(rec.event)
        if handler is None:
            raise UnmappableError(f"unknown queue_log event {rec.event!r}")
        return handler(rec)

    def _handler_table(self) -> dict[str, Callable[[QueueLogRecord], list[Event]]]:
        """Return the event name → handler table."""
        table: dict[str, Callable[[QueueLogRecord], list[Event]]] = {
            "ENTERQUEUE": self._entered,
            "CONNECT": self._connected,
        }
        table.update(dict.fromkeys(LEFT_QUEUE_WAIT_FIELD, self._left_unanswered))
        table.update(dict.fromkeys(NOT_ADMITTED, self._not_admitted))
        table.update(dict.fromkeys(COMPLETIONS, self._completed))
        table.update(dict.fromkeys(TRANSFERS, self._transferred))
        table.update(dict.fromkeys(AGENT_EVENTS, self._agent_changed))
        return table

    # -- caller side -------------------------------------------------------------------

    def _entered(self, rec: QueueLogRecord) -> list[Event]:
        """ENTERQUEUE: the call starts waiting in a queue (data2 is the caller id)."""
        call = self.calls.setdefault(rec.callid, CallState)
        call.customer_id = caller_id(rec.datum(2)) or call.customer_id
        call.entered[rec.queue] = rec.time
        return [self._contact(rec, "contact.offered")]

    def _connected(self, rec: QueueLogRecord) -> list[Event]:
        """CONNECT: an agent answered; data1 is the holdtime Asterisk measured."""
        events = self._offer_if_unseen(rec, rec.seconds(1))
        self._check_holdtime(rec)
        self._stop_waiting(rec)
        events.append(self._contact(rec, "contact.answered", agent_id=agent_id(rec)))
        return events

    def _left_unanswered(self, rec: QueueLogRecord) -> list[Event]:
        """ABANDON and EXITWITH*: the caller left the queue before an agent answered."""
        events = self._offer_if_unseen(rec, rec.seconds(LEFT_QUEUE_WAIT_FIELD[rec.event]))
        events.append(self._contact(rec, "contact.abandoned"))
        self._stop_waiting(rec)
        if rec.event == "ABANDON":  # the caller hung up; EXITWITH* may go on elsewhere
            self.calls.pop(rec.callid)
        return events

    def _not_admitted(self, rec: QueueLogRecord) -> list[Event]:
        """FULL, JOINEMPTY, JOINUNAVAIL...: offered and turned away at the same instant."""
        return [self._contact(rec, "contact.offered"), self._contact(rec, "contact.abandoned")]

    def _completed(self, rec: QueueLogRecord) -> list[Event]:
        """COMPLETECALLER/COMPLETEAGENT: the conversation ended; no ACW is logged."""
        events = self._leg_closed(rec)
        self.calls.pop(rec.callid)
        return events

    def _transferred(self, rec: QueueLogRecord) -> list[Event]:
        """(BLIND|ATTENDED)TRANSFER: the agent handed the call on, closing its leg."""
        moved = self._contact(rec, "contact.transferred", agent_id=agent_id(rec))
        moved.update(transfer_target(rec))
        self._stop_waiting(rec)
        return [moved, *self._leg_closed(rec)]

    def _leg_closed(self, rec: QueueLogRecord) -> list[Event]:
        """Return contact.ended then contact.wrapped for the agent's leg, at one time."""
        agent = agent_id(rec)
        return [
            self._contact(rec, "contact.ended", agent_id=agent),
            self._contact(rec, "contact.wrapped", agent_id=agent),
        ]

    def _offer_if_unseen(self, rec: QueueLogRecord, wait_seconds: int | None) -> list[Event]:
        """Recover the offer of a call whose ENTERQUEUE came before this log started.

        Without it the answer or abandon would have no wait: the offer is put back at
        `line time - wait`, the wait Asterisk itself logged on this line.
        """
        call = self.calls.get(rec.callid)
        if (call and rec.queue in call.entered) or wait_seconds is None:
            return []
        self.anomalies["offer_recovered_from_wait"] += 1
        offered_at = rec.time - timedelta(seconds=wait_seconds)
        return [self._contact(rec, "contact.offered", ts=offered_at)]

    def _check_holdtime(self, rec: QueueLogRecord) -> None:
        """Count CONNECTs whose logged holdtime disagrees with the line times."""
        call = self.calls.get(rec.callid)
        entered = call.entered.get(rec.queue) if call else None
        holdtime = rec.seconds(1)
        if entered is None or holdtime is None:
            return
        measured = (rec.time - entered).total_seconds()
        if abs(measured - holdtime) > HOLDTIME_TOLERANCE_SECONDS:
            self.anomalies["holdtime_mismatch"] += 1

    def _stop_waiting(self, rec: QueueLogRecord) -> None:
        """Forget the call's wait in this queue (it was answered or left)."""
        call = self.calls.get(rec.callid)
        if call:
            call.entered.pop(rec.queue, None)

    def _contact(
        self, rec: QueueLogRecord, type_: str, ts: datetime | None = None, **extra: str | None
    ) -> Event:
        """Build a contact event for this record's call."""
        call = self.calls.get(rec.callid)
        return canonical_event(
            self._event_id(rec, rec.callid, type_),
            type_,
            format_ts(ts or rec.time),
            contact_id=rec.callid,
            queue=rec.queue,
            channel=VOICE,
            customer_id=call.customer_id if call else None,
            **extra,
        )

    def _event_id(self, rec: QueueLogRecord, subject: str, type_: str) -> str:
        """Derive a stable id from the record: same file, same ids."""
        return f"{self.prefix}-{subject}-{rec.queue}-{rec.event}-{epoch_ms(rec.time)}:{type_}"

    # -- agent side --------------------------------------------------------------------

    def _agent_changed(self, rec: QueueLogRecord) -> list[Event]:
        """Membership, login and pause lines: emit agent.state when the state changes."""
        agent = self.agents.setdefault(rec.agent, AgentState)
        apply_agent_line(agent, rec)
        state = agent_state(agent)
        if state == agent.last:
            return []
        agent.last = state
        name, queues = state
        return [
            canonical_event(
                self._event_id(rec, rec.agent, "agent.state"),
                "agent.state",
                format_ts(rec.time),
                agent_id=rec.agent,
                state=name,
                queues=list(queues) if queues else None,
            )
        ]


class QueueLogDbMapper(QueueLogMapper):
    """Map rows of the realtime queue_log table (one JSON object each)."""

    prefix = "astdb"

    def map(self, record: bytes | str) -> list[Event]:
        """Map one queue_log table row."""
        return self.map_record(self.parse(record))

    def parse(self, record: bytes | str) -> QueueLogRecord:
        """Parse one JSON row of the queue_log table."""
        return parse_row(record)


def apply_agent_line(agent: AgentState, rec: QueueLogRecord) -> None:
    """Update a member's queues, pauses and presence from one agent line."""
    in_queue = rec.queue not in ("", "NONE")
    if rec.event == "ADDMEMBER" and in_queue:
        agent.queues.add(rec.queue)
        agent.present = True
    elif rec.event == "REMOVEMEMBER":
        agent.queues.discard(rec.queue)
        agent.paused.discard(rec.queue)
        agent.present = bool(agent.queues)
    elif rec.event in ("AGENTLOGIN", "AGENTCALLBACKLOGIN"):
        agent.present = True
    elif rec.event in ("AGENTLOGOFF", "AGENTCALLBACKLOGOFF"):
        agent.present = False
    else:
        apply_pause_line(agent, rec.event, rec.queue if in_queue else None)


def apply_pause_line(agent: AgentState, event: str, queue: str | None) -> None:
    """Update pauses: PAUSE/UNPAUSE in one queue (or all, when the queue is NONE)."""
    pausing = event in ("PAUSE", "PAUSEALL")
    if queue is None or event.endswith("ALL"):
        agent.paused_all = pausing
        if not pausing:
            agent.paused.clear()
        return
    agent.queues.add(queue)  # a pause in a queue tells us the agent is a member of it
    if pausing:
        agent.paused.add(queue)
    else:
        agent.paused.discard(queue)
        agent.paused_all = False


def agent_state(agent: AgentState) -> tuple[str, tuple[str, ...]]:
    """Derive (state, queues): away when paused everywhere it works, else available."""
    if not agent.present:
        return ("offline", ())
    queues = tuple(sorted(agent.queues))
    everywhere = agent.paused_all or bool(agent.queues) and agent.queues <= agent.paused
    return ("away" if everywhere else "available", queues)


def caller_id(value: str) -> str | None:
    """Return the caller id as customer_id, or None when withheld or unknown."""
    return None if value.strip().lower() in NO_CALLER_ID else value.strip()


def agent_id(rec: QueueLogRecord) -> str | None:
    """Return the member name on the line, or None where Asterisk wrote NONE."""
    return None if rec.agent in ("", "NONE") else rec.agent


def transfer_target(rec: QueueLogRecord) -> dict[str, str]:
    """Return to_queue / to_agent_id for a transfer line, as far as Asterisk tells.

    TRANSFER and BLINDTRANSFER log the dialled `extension|context`: the extension is
    used as to_queue (queues are reached at their own number on most dialplans).
    ATTENDEDTRANSFER logs how the bridge was joined, not where to: with `LINK|chan1|chan2`
    the target channel's device (PJSIP/2002-0000001a → PJSIP/2002) is to_agent_id;
    otherwise the target is "unknown".
    """
    if rec.event != "ATTENDEDTRANSFER":
        return {"to_queue": rec.datum(1) or "unknown"}
    if rec.datum(1) == "LINK" and rec.datum(3):
        return {"to_agent_id": rec.datum(3).rsplit("-", 1)[0]}
    return {"to_agent_id": "unknown"}
