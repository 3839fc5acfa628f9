"""The agent floor: capacity, states, shifts, breaks and staff drops."""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

from ccpulse.simulator.profile import DAY_SECONDS
from ccpulse.simulator.roster import AgentPlan
from ccpulse.simulator.scenario import VOICE_CHANNELS, Scenario, StaffDrop
from ccpulse.simulator.timeline import Fields, Timeline

CAPACITY_UNITS = 12  # an agent's capacity; a contact takes 12 // channel concurrency units

# (hours into an 8.5-hour shift, minutes of break): two short breaks and lunch.
BREAKS = ((2.0, 15.0), (4.25, 30.0), (6.5, 15.0))


@dataclass(eq=False, slots=True)
class Agent:
    """One agent at run time."""

    plan: AgentPlan
    units_used: int = 0
    talking: int = 0  # contacts in conversation
    wrapping: int = 0  # contacts in after-contact work
    on_duty: bool = False
    away: bool = False  # on a break
    absent: bool = False  # taken out by a staff drop
    break_pending_seconds: float = 0.0
    off_pending: bool = False
    idle_since: float = 0.0
    state: str = ""  # the last state emitted
    takes_calls: bool = False  # serves voice or video

    def __post_init__(self) -> None:
        self.takes_calls = bool(self.plan.channels & VOICE_CHANNELS)

    @property
    def accepting(self) -> bool:
        """Say whether the agent takes new contacts."""
        return (
            self.on_duty
            and not (self.away or self.absent or self.off_pending)
            and not self.break_pending_seconds
        )

    def current_state(self) -> str:
        """Derive the SPEC §1 agent state."""
        if self.talking:
            return "busy"
        if self.wrapping:
            return "after_contact_work"
        if not self.on_duty or self.absent:
            return "offline"
        return "away" if self.away else "available"


class Floor:
    """Own the agents: who can take what, and every agent.state change."""

    def __init__(
        self, scenario: Scenario, plans: list[AgentPlan], timeline: Timeline, rng: random.Random
    ) -> None:
        self.scenario = scenario
        self.timeline = timeline
        self.rng = rng
        self.agents = [Agent(plan) for plan in plans]
        self.by_line: dict[tuple[str, str], list[Agent]] = {}
        for agent in self.agents:
            for queue in agent.plan.skills:
                for channel in agent.plan.channels:
                    self.by_line.setdefault((queue, channel), []).append(agent)
        self.on_free: Callable[[Agent], None] = lambda agent: None
        self._offset = scenario.utc_offset_hours * 3600.0
        self._shift_seconds = scenario.shift_hours * 3600.0

    def best_agent(self, queue: str, channel: str, units: int) -> Agent | None:
        """Return the agent who takes a new contact now, if any.

        Digital work goes to agents without a phone first, so chats do not tie up the agents
        a ringing call needs; then the least loaded, longest idle agent wins.
        """
        best: Agent | None = None
        best_key = (True, 0, 0.0)
        digital = channel not in VOICE_CHANNELS
        for agent in self.by_line.get((queue, channel), ()):
            if agent.accepting and agent.units_used + units <= CAPACITY_UNITS:
                key = (digital and agent.takes_calls, agent.units_used, agent.idle_since)
                if best is None or key < best_key:
                    best, best_key = agent, key
        return best

    def occupy(self, agent: Agent, units: int) -> None:
        """Start a conversation."""
        agent.units_used += units
        agent.talking += 1
        self.refresh(agent)

    def start_wrap(self, agent: Agent) -> None:
        """Move one conversation into after-contact work."""
        agent.talking -= 1
        agent.wrapping += 1
        self.refresh(agent)

    def release(self, agent: Agent, units: int) -> None:
        """Finish after-contact work; the freed capacity goes to waiting contacts first."""
        agent.wrapping -= 1
        agent.units_used -= units
        if agent.units_used == 0:
            agent.idle_since = self.timeline.now
        if agent.accepting:
            self.on_free(agent)
        self._settle(agent)

    def refresh(self, agent: Agent) -> None:
        """Emit agent.state if the agent's state changed."""
        state = agent.current_state()
        if state != agent.state:
            agent.state = state
            fields: Fields = {"agent_id": agent.plan.agent_id, "state": state}
            fields["queues"] = list(agent.plan.skills)
            self.timeline.emit(self.timeline.now, "agent.state", fields)

    def start(self) -> None:
        """Emit every agent's state at the start and schedule shifts and staff drops."""
        now = self.timeline.now
        for agent in self.agents:
            local_start = self._local_shift_start(agent, now)
            if local_start - self._offset <= now:
                self._begin_shift(agent, local_start - self._offset)
            else:
                self.refresh(agent)
                self.timeline.at(local_start - self._offset, self._shift_action(agent))
        for drop in self.scenario.staff_drops:
            self.timeline.at(now + drop.at_seconds, partial(self._drop_staff, drop))

    def _local_shift_start(self, agent: Agent, now: float) -> float:
        """Return the local start of the shift in progress at `now`, or else the next one."""
        local = now + self._offset
        start = local - local % DAY_SECONDS + agent.plan.shift_start_seconds
        if start - DAY_SECONDS + self._shift_seconds > local:
            return start - DAY_SECONDS
        return start if start + self._shift_seconds > local else start + DAY_SECONDS

    def _shift_action(self, agent: Agent) -> Callable[[], None]:
        return lambda: self._begin_shift(agent, self.timeline.now)

    def _begin_shift(self, agent: Agent, shift_start: float) -> None:
        """Log the agent on and schedule breaks, the shift's end and tomorrow's shift."""
        now = self.timeline.now
        agent.on_duty, agent.away, agent.absent, agent.off_pending = True, False, False, False
        agent.idle_since = now
        scale = self.scenario.shift_hours / 8.5
        for hours, minutes in BREAKS:
            when = shift_start + hours * 3600.0 * scale + self.rng.uniform(-900.0, 900.0)
            if when > now:
                seconds = minutes * 60.0 * self.rng.uniform(0.85, 1.25)
                self.timeline.at(when, self._break_action(agent, seconds))
        self.timeline.at(shift_start + self._shift_seconds, lambda: self._end_shift(agent))
        self.timeline.at(shift_start + DAY_SECONDS, self._shift_action(agent))
        self.refresh(agent)
        self.on_free(agent)

    def _break_action(self, agent: Agent, seconds: float) -> Callable[[], None]:
        return lambda: self._request_break(agent, seconds)

    def _request_break(self, agent: Agent, seconds: float) -> None:
        if agent.on_duty and not (agent.absent or agent.off_pending or agent.away):
            agent.break_pending_seconds = seconds
            self._settle(agent)

    def _end_shift(self, agent: Agent) -> None:
        agent.off_pending = True
        self._settle(agent)

    def _settle(self, agent: Agent) -> None:
        """Once an agent has no work left, go offline or on the break that was asked for."""
        if agent.units_used == 0:
            if agent.off_pending:
                agent.on_duty, agent.off_pending, agent.break_pending_seconds = False, False, 0.0
            elif agent.break_pending_seconds and not agent.away:
                agent.away = True
                end = self.timeline.now + agent.break_pending_seconds
                agent.break_pending_seconds = 0.0
                self.timeline.at(end, lambda: self._end_break(agent))
        self.refresh(agent)

    def _end_break(self, agent: Agent) -> None:
        if agent.away:
            agent.away = False
            agent.idle_since = self.timeline.now
            self.refresh(agent)
            if agent.accepting:
                self.on_free(agent)

    def _drop_staff(self, drop: StaffDrop) -> None:
        """Take `drop.fraction` of the agents on duty off the floor (sickness, an outage)."""
        present = [
            agent
            for agent in self.agents
            if agent.on_duty and not agent.absent and drop.queue in (None, agent.plan.primary_queue)
        ]
        for agent in self.rng.sample(present, math.floor(drop.fraction * len(present) + 0.5)):
            agent.absent = True
            self.refresh(agent)
            if drop.duration_seconds is not None:
                self.timeline.at(self.timeline.now + drop.duration_seconds, self._return(agent))

    def _return(self, agent: Agent) -> Callable[[], None]:
        def back() -> None:
            if agent.absent:
                agent.absent = False
                agent.idle_since = self.timeline.now
                self.refresh(agent)
                if agent.accepting:
                    self.on_free(agent)

        return back
