"""Skills-based routing: one FIFO line per queue and channel, matched to agents with capacity."""

from __future__ import annotations

import heapq
import itertools
from collections.abc import Callable
from dataclasses import dataclass

from ccpulse.simulator.agents import CAPACITY_UNITS, Agent, Floor
from ccpulse.simulator.scenario import ChannelProfile


@dataclass(eq=False, slots=True)
class Contact:
    """One contact at run time; `queue` and `offered_at` are those of the current leg."""

    contact_id: str
    customer_id: str
    queue: str
    profile: ChannelProfile
    priority: int
    offered_at: float
    customer_number: int
    mood: float  # -1 (angry) .. 1 (happy), before the wait is felt
    repeat: bool  # the customer had a contact within fcr_repeat_days
    waiting: bool = False
    transferred: bool = False
    leg: int = 0  # 0 for the first queue, +1 per transfer
    agent: Agent | None = None
    resolved: bool = False  # decided when answered
    wait_ratio: float = 0.0  # last wait / the channel's service-level target

    @property
    def channel(self) -> str:
        """Return the contact's channel."""
        return self.profile.name

    @property
    def units(self) -> int:
        """Return the agent capacity units this contact takes."""
        return CAPACITY_UNITS // self.profile.concurrency


Line = list[tuple[int, float, int, Contact]]


class Router:
    """Match contacts to agents: best agent on arrival, best waiting contact when one frees up."""

    def __init__(self, floor: Floor, on_match: Callable[[Contact, Agent], None]) -> None:
        self.floor = floor
        self.on_match = on_match
        self.lines: dict[tuple[str, str], Line] = {}
        self._agent_lines: dict[str, list[tuple[float, Line]]] = {}
        self._order = itertools.count()
        floor.on_free = self.offer_work

    def enqueue(self, contact: Contact) -> None:
        """Give the contact to an agent now, or put it in line (priority first, then FIFO)."""
        agent = self.floor.best_agent(contact.queue, contact.channel, contact.units)
        if agent is not None:
            self.on_match(contact, agent)
            return
        contact.waiting = True
        line = self.lines.setdefault((contact.queue, contact.channel), [])
        heapq.heappush(line, (-contact.priority, contact.offered_at, next(self._order), contact))

    def offer_work(self, agent: Agent) -> None:
        """Hand the agent waiting contacts, most urgent channel first, while capacity lasts."""
        while agent.accepting:
            best: tuple[tuple[float, int, float], Line] | None = None
            for rank, line in self._lines_of(agent):
                head = _head(line)
                if head is None or agent.units_used + head.units > CAPACITY_UNITS:
                    continue
                key = (rank, -head.priority, head.offered_at)
                if best is None or key < best[0]:
                    best = (key, line)
            if best is None:
                return
            contact = heapq.heappop(best[1])[3]
            contact.waiting = False
            self.on_match(contact, agent)

    def _lines_of(self, agent: Agent) -> list[tuple[float, Line]]:
        """Return the agent's lines with their urgency (the channel's service-level target)."""
        lines = self._agent_lines.get(agent.plan.agent_id)
        if lines is None:
            scenario = self.floor.scenario
            targets = {c: p.service_level_seconds for c, p in scenario.channel_profiles.items()}
            lines = [
                (targets[c], self.lines.setdefault((q, c), []))
                for q in agent.plan.skills
                for c in sorted(agent.plan.channels)
                if c in scenario.queue(q).peak_arrivals_per_hour
            ]
            self._agent_lines[agent.plan.agent_id] = lines
        return lines


def _head(line: Line) -> Contact | None:
    """Return the first contact still waiting, dropping those who abandoned."""
    while line and not line[0][3].waiting:
        heapq.heappop(line)
    return line[0][3] if line else None
