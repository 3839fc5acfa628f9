"""Wire the simulation together and turn it into a stream of SPEC §1 events."""

from __future__ import annotations

import math
import random
from collections.abc import Iterator
from typing import Any

from ccpulse.simulator.agents import Floor
from ccpulse.simulator.contacts import ContactFlow
from ccpulse.simulator.customers import Customers
from ccpulse.simulator.dirty import add_dirt
from ccpulse.simulator.profile import (
    daily_factor,
    next_arrival,
    profile_area_hours,
    weekday_factor,
)
from ccpulse.simulator.roster import build_roster
from ccpulse.simulator.scenario import ChannelProfile, QueueSpec, Scenario
from ccpulse.simulator.timeline import Emitted, Timeline
from ccpulse.simulator.timestamps import format_ts

CUSTOMERS_PER_DAILY_CONTACT = 25  # population size when the scenario leaves it at 0
MIN_CUSTOMERS = 500


class Simulation:
    """One seeded run of a scenario from `start` (epoch seconds)."""

    def __init__(
        self, scenario: Scenario, *, seed: int, start: float, rate_multiplier: float
    ) -> None:
        self.scenario = scenario
        self.start = start
        self.rate_multiplier = rate_multiplier
        self.rng = random.Random(seed)
        self.timeline = Timeline(start)
        self.floor = Floor(scenario, build_roster(scenario, self.rng), self.timeline, self.rng)
        population = scenario.customers or self._population()
        self.customers = Customers(scenario, self.timeline, self.rng, population)
        self.flow = ContactFlow(
            scenario, self.timeline, self.rng, self.floor, self.customers, f"c-{seed}-"
        )

    def run(self, end: float) -> Iterator[Emitted]:
        """Yield (time, type, fields) for every event before `end`, in time order."""
        self.floor.start()
        self.customers.start()
        for queue in self.scenario.queues:
            for channel in queue.channels:
                self._arrivals(queue, self.scenario.channel_profiles[channel], end)
        return self.timeline.run(end)

    def _population(self) -> int:
        per_peak_hour = sum(sum(q.peak_arrivals_per_hour.values()) for q in self.scenario.queues)
        daily = (
            per_peak_hour * self.rate_multiplier * profile_area_hours(self.scenario.daily_profile)
        )
        return max(MIN_CUSTOMERS, round(daily * CUSTOMERS_PER_DAILY_CONTACT))

    def _arrivals(self, queue: QueueSpec, profile: ChannelProfile, horizon: float) -> None:
        """Run the Poisson arrival process of one queue and channel."""
        per_second = queue.peak_arrivals_per_hour[profile.name] / 3600.0 * self.rate_multiplier
        if per_second <= 0:
            return
        scenario, offset = self.scenario, self.scenario.utc_offset_hours * 3600.0
        spikes = [
            (
                self.start + s.at_seconds,
                self.start + s.at_seconds + s.duration_seconds,
                s.multiplier,
            )
            for s in scenario.arrival_spikes
            if s.queue in (None, queue.name)
        ]
        boundaries = sorted({edge for spike in spikes for edge in spike[:2]})

        def rate(t: float) -> float:
            local = t + offset
            value = per_second * daily_factor(scenario.daily_profile, local)
            value *= weekday_factor(scenario.weekday_factors, local)
            for begin, stop, multiplier in spikes:
                if begin <= t < stop:
                    value *= multiplier
            return value

        def arrive() -> None:
            self.flow.arrive(queue, profile)
            schedule()

        def schedule() -> None:
            now = self.timeline.now
            when = next_arrival(now, rate, boundaries, self.rng, horizon)
            if when != math.inf:
                self.timeline.at(when, arrive)

        schedule()


def generate(
    scenario: Scenario,
    *,
    seed: int,
    start: float,
    duration_seconds: float | None,
    rate_multiplier: float = 1.0,
    dirty_fraction: float = 0.0,
) -> Iterator[dict[str, Any]]:
    """Yield SPEC §1 events of a simulated contact center, in non-decreasing `ts` order.

    `start` is epoch seconds; `duration_seconds=None` runs forever. The same arguments give the
    same events. `ts` is RFC 3339 UTC with milliseconds and `event_id` is `sim-{seed}-{n}`.
    With `dirty_fraction` > 0, about that share of extra messy events is mixed in: exact
    duplicates of recent events and invalid ones (see `dirty.add_dirt`).
    """
    if rate_multiplier < 0 or not math.isfinite(rate_multiplier):
        raise ValueError("rate_multiplier must be a finite number >= 0")
    if duration_seconds is not None and duration_seconds < 0:
        raise ValueError("duration_seconds must be >= 0 or None")
    if not 0.0 <= dirty_fraction <= 1.0:
        raise ValueError("dirty_fraction must be within 0..1")
    simulation = Simulation(scenario, seed=seed, start=start, rate_multiplier=rate_multiplier)
    end = math.inf if duration_seconds is None else start + duration_seconds
    events = _numbered(simulation.run(end), seed)
    return add_dirt(events, dirty_fraction, seed) if dirty_fraction else events


def _numbered(emitted: Iterator[Emitted], seed: int) -> Iterator[dict[str, Any]]:
    """Give each event its id and formatted time, common fields first."""
    for number, (when, event_type, fields) in enumerate(emitted, 1):
        yield {
            "event_id": f"sim-{seed}-{number}",
            "type": event_type,
            "ts": format_ts(when),
            **fields,
        }
