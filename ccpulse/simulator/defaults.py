"""Ready-made scenarios: sensible queues and channels sized to the number of agents."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from typing import Any

from ccpulse.simulator.profile import DAILY_PROFILE, daily_factor
from ccpulse.simulator.roster import plan_shift_starts
from ccpulse.simulator.scenario import CHANNEL_PROFILES, CHANNELS, QueueSpec, Scenario

PEAK_OCCUPANCY = 0.65  # target share of on-duty agent time busy at the daily peak
BREAK_SHARE = 0.1  # share of on-duty agents on a break at any time
SHIFT_HOURS = 8.5

# Share of the workload (agent time) per channel, before normalising over the channels used.
CHANNEL_WORKLOAD = {
    "voice": 0.55, "chat": 0.22, "email": 0.08, "sms": 0.05, "social": 0.04, "video": 0.06,
}  # fmt: skip

# (name, relative size, behaviour). Queues past this list are generic `queue_NN`.
QUEUE_CATALOG: tuple[tuple[str, float, dict[str, Any]], ...] = (
    ("billing", 0.32, {"mood": -0.15, "transfer_probability": 0.06, "resolve_probability": 0.85}),
    (
        "tech_support",
        0.30,
        {"mood": -0.25, "transfer_probability": 0.1, "resolve_probability": 0.7},
    ),
    ("sales", 0.22, {"mood": 0.3, "resolve_probability": 0.9, "conversion_probability": 0.3}),
    ("retention", 0.16, {"mood": -0.35, "resolve_probability": 0.8, "cancel_probability": 0.3}),
    ("orders", 0.14, {"mood": 0.0}),
    ("shipping", 0.12, {"mood": -0.1}),
    ("returns", 0.10, {"mood": -0.1}),
    ("accounts", 0.10, {"mood": 0.0}),
    ("claims", 0.08, {"mood": -0.3, "resolve_probability": 0.7}),
    ("loyalty", 0.06, {"mood": 0.3}),
    ("onboarding", 0.06, {"mood": 0.2}),
    ("fraud", 0.05, {"mood": -0.4, "transfer_probability": 0.03}),
)


def default_scenario(
    queues: int = 4,
    channels: tuple[str, ...] = ("voice", "chat", "email"),
    agents: int = 24,
) -> Scenario:
    """Return a realistic center of `queues` queues on `channels`, sized for `agents` agents.

    Traffic is derived from the staffing: at the daily peak the agents on duty are about
    65 % occupied, so any combination gives a busy but workable center.
    """
    if queues < 1 or agents < 1:
        raise ValueError("need at least one queue and one agent")
    unknown = set(channels) - set(CHANNELS)
    if unknown or not channels:
        raise ValueError(f"channels must be a non-empty subset of {CHANNELS}")
    catalog = [_catalog_entry(index) for index in range(queues)]
    weights = [weight / sum(w for _, w, _ in catalog) for _, weight, _ in catalog]
    erlangs = _peak_on_duty(agents) * (1 - BREAK_SHARE) * PEAK_OCCUPANCY
    mix = {c: CHANNEL_WORKLOAD[c] / sum(CHANNEL_WORKLOAD[x] for x in channels) for c in channels}
    hours = {c: CHANNEL_PROFILES[c].work_seconds / 3600.0 for c in channels}
    specs = []
    for (name, _, behaviour), weight, staff in zip(
        catalog, weights, _apportion(agents, weights), strict=True
    ):
        rates = {c: round(erlangs * weight * mix[c] / hours[c], 2) for c in channels}
        specs.append(QueueSpec(name=name, peak_arrivals_per_hour=rates, agents=staff, **behaviour))
    return Scenario(queues=tuple(specs), shift_hours=SHIFT_HOURS)


def _catalog_entry(index: int) -> tuple[str, float, dict[str, Any]]:
    if index < len(QUEUE_CATALOG):
        return QUEUE_CATALOG[index]
    return (f"queue_{index + 1:02d}", 0.5 / (index + 1) ** 0.5, {"mood": 0.0})


def _peak_on_duty(agents: int) -> int:
    """Return how many of `agents` the default shift plan has on duty at the busiest hour."""
    starts = plan_shift_starts(agents, DAILY_PROFILE, SHIFT_HOURS)
    peak = max(range(24), key=lambda hour: daily_factor(DAILY_PROFILE, hour * 3600.0 + 1800.0))
    at = peak * 3600.0 + 1800.0
    return sum(1 for start in starts if (at - start) % 86_400.0 < SHIFT_HOURS * 3600.0)


def _apportion(total: int, weights: Sequence[float]) -> list[int]:
    """Split `total` by `weights` (largest remainder), at least one each while they last."""
    shares = [total * weight for weight in weights]
    counts = [int(share) for share in shares]
    by_remainder = sorted(range(len(weights)), key=lambda i: counts[i] - shares[i])
    for index in by_remainder[: total - sum(counts)]:
        counts[index] += 1
    for index, count in enumerate(counts):
        donor = max(range(len(counts)), key=lambda i: counts[i])
        if count == 0 and counts[donor] > 1:
            counts[donor] -= 1
            counts[index] += 1
    return counts


def scenario_from_args(
    *,
    queues: int = 4,
    channels: str = "voice,chat,email",
    agents: int = 24,
    staff_drop: str | None = None,
    arrival_spike: str | None = None,
    utc_offset_hours: float = 0.0,
) -> Scenario:
    """Build a default scenario from command-line or environment strings.

    `staff_drop` is `AT:FRACTION[:DURATION][@QUEUE]` and `arrival_spike` is
    `AT:MULTIPLIER:DURATION[@QUEUE]`; times are seconds after the start, with an optional
    unit `s`, `m` or `h` (`1h:0.5:30m@billing`).
    """
    names = tuple(name.strip() for name in channels.split(",") if name.strip())
    scenario = default_scenario(queues, names, agents)
    scenario = dataclasses.replace(scenario, utc_offset_hours=utc_offset_hours)
    if staff_drop:
        parts, queue = _split_knob(staff_drop, 2, 3)
        duration = parse_seconds(parts[2]) if len(parts) == 3 else None
        scenario = scenario.staff_drop(parse_seconds(parts[0]), float(parts[1]), duration, queue)
    if arrival_spike:
        parts, queue = _split_knob(arrival_spike, 3, 3)
        at, multiplier, duration = parse_seconds(parts[0]), float(parts[1]), parse_seconds(parts[2])
        scenario = scenario.arrival_spike(at, multiplier, duration, queue)
    return scenario


def parse_seconds(text: str) -> float:
    """Parse `90`, `90s`, `15m` or `2h` into seconds."""
    units = {"s": 1.0, "m": 60.0, "h": 3600.0}
    text = text.strip()
    if text and text[-1] in units:
        return float(text[:-1]) * units[text[-1]]
    return float(text)


def _split_knob(text: str, least: int, most: int) -> tuple[list[str], str | None]:
    spec, _, queue = text.partition("@")
    parts = spec.split(":")
    if not least <= len(parts) <= most:
        raise ValueError(f"cannot read {text!r}: expected {least} to {most} ':'-separated values")
    return parts, queue.strip() or None
