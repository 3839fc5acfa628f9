"""Build the agents: skills, channels and shift start times that follow the daily profile."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from ccpulse.simulator.profile import daily_factor
from ccpulse.simulator.scenario import VOICE_CHANNELS, QueueSpec, Scenario

SLOT_SECONDS = 1800.0
SLOTS = 48
VOICE_SLACK = 1.15  # weight of voice workload when splitting a queue's agents
SMALL_TEAM = 3  # with this few on duty, agents serve every channel


@dataclass(frozen=True)
class AgentPlan:
    """One agent as planned: who, which queues and channels, when the shift starts (local)."""

    agent_id: str
    primary_queue: str
    skills: tuple[str, ...]
    channels: frozenset[str]
    shift_start_seconds: float  # seconds after local midnight


def plan_shift_starts(
    count: int, profile: Sequence[float], shift_hours: float, around_the_clock: bool = True
) -> list[float]:
    """Pick `count` shift starts (seconds after local midnight) so coverage follows `profile`.

    Greedy: each shift goes where it covers the most unmet need, the need being the profile
    scaled to the agent-hours available. `around_the_clock` first makes sure no half hour is
    left without anyone, so the center never goes dark at night.
    """
    length = max(1, round(shift_hours * 3600.0 / SLOT_SECONDS))
    raw = [daily_factor(profile, (slot + 0.5) * SLOT_SECONDS) for slot in range(SLOTS)]
    scale = count * length / sum(raw)
    dark_bonus = float(count) if around_the_clock else 0.0
    cover = [0] * SLOTS
    starts: list[float] = []
    for _ in range(count):
        gaps = [
            max(0.0, raw[slot] * scale - cover[slot]) + (dark_bonus if not cover[slot] else 0.0)
            for slot in range(SLOTS)
        ]
        best = max(range(SLOTS), key=lambda s: sum(gaps[(s + k) % SLOTS] for k in range(length)))
        for k in range(length):
            cover[(best + k) % SLOTS] += 1
        starts.append(best * SLOT_SECONDS)
    return sorted(starts)


def build_roster(scenario: Scenario, rng: random.Random) -> list[AgentPlan]:
    """Plan every agent: queue, channel group, skills and shift.

    One shift plan for the whole center is dealt out so that every queue and channel group
    gets early, day and late shifts. Agents whose shift at some point has fewer colleagues on
    duty than there are queue and channel groups (evenings, nights) serve every queue; with
    three or fewer colleagues on average, every channel too, so nothing waits for the morning.
    """
    groups = [group for queue in scenario.queues for group in _channel_groups(scenario, queue)]
    total = sum(size for _, _, size in groups)
    starts = plan_shift_starts(total, scenario.daily_profile, scenario.shift_hours)
    dealt: list[list[float]] = [[] for _ in groups]
    for start, index in zip(starts, _deal([size for _, _, size in groups]), strict=True):
        dealt[index].append(start)
    cover = _cover_during(starts, scenario.shift_hours)
    all_queues = tuple(queue.name for queue in scenario.queues)
    all_channels = frozenset(c for queue in scenario.queues for c in queue.channels)
    plans: list[AgentPlan] = []
    for (queue, channels, _), group_starts in zip(groups, dealt, strict=True):
        for start in group_starts:
            fewest, mean = cover[start]
            skills = _skills(scenario, queue, channels, rng)
            if fewest < len(groups):
                skills = (queue.name, *(name for name in all_queues if name != queue.name))
            if mean <= SMALL_TEAM:
                channels = all_channels
            agent_id = f"agent-{len(plans) + 1:03d}"
            plans.append(AgentPlan(agent_id, queue.name, skills, channels, start))
    return plans


def _cover_during(starts: list[float], shift_hours: float) -> dict[float, tuple[int, float]]:
    """Return, per shift start, the fewest and the mean number of agents on duty in that shift."""
    length = max(1, round(shift_hours * 3600.0 / SLOT_SECONDS))
    cover = [0] * SLOTS
    for start in starts:
        for k in range(length):
            cover[(int(start // SLOT_SECONDS) + k) % SLOTS] += 1
    during = {}
    for start in set(starts):
        counts = [cover[(int(start // SLOT_SECONDS) + k) % SLOTS] for k in range(length)]
        during[start] = (min(counts), sum(counts) / length)
    return during


def _deal(sizes: list[int]) -> list[int]:
    """Return, for each of sum(sizes) turns, the group whose turn it is (smooth round robin)."""
    total = sum(sizes)
    credit = [0] * len(sizes)
    turns = []
    for _ in range(total):
        for index, size in enumerate(sizes):
            credit[index] += size
        chosen = max(range(len(sizes)), key=lambda i: credit[i])
        credit[chosen] -= total
        turns.append(chosen)
    return turns


def _channel_groups(
    scenario: Scenario, queue: QueueSpec
) -> list[tuple[QueueSpec, frozenset[str], int]]:
    """Split a queue's agents into voice and digital agents in proportion to their workload.

    Voice agents take one live call at a time; digital agents juggle chats, messages and
    email, so email never keeps a phone agent from a ringing call.
    """
    channels = frozenset(queue.channels)
    voice, digital = channels & VOICE_CHANNELS, channels - VOICE_CHANNELS
    if not voice or not digital or queue.agents < 2:
        return [(queue, channels, queue.agents)]
    workload = {"voice": 0.0, "digital": 0.0}
    for channel, rate in queue.peak_arrivals_per_hour.items():
        group = "voice" if channel in VOICE_CHANNELS else "digital"
        workload[group] += rate * scenario.channel_profiles[channel].work_seconds
    # Live calls queue one per agent while digital agents multitask; calls need more slack.
    workload["voice"] *= VOICE_SLACK
    total = workload["voice"] + workload["digital"]
    share = workload["voice"] / total if total else 0.5
    voice_agents = min(max(round(queue.agents * share), 1), queue.agents - 1)
    return [(queue, voice, voice_agents), (queue, digital, queue.agents - voice_agents)]


def _skills(
    scenario: Scenario, queue: QueueSpec, channels: frozenset[str], rng: random.Random
) -> tuple[str, ...]:
    """Return the primary queue plus zero to two secondary queues sharing a channel."""
    others = [q.name for q in scenario.queues if q is not queue and channels & set(q.channels)]
    skills = [queue.name]
    chance = scenario.secondary_skill_probability
    while others and rng.random() < chance:
        skills.append(others.pop(rng.randrange(len(others))))
        chance *= chance
    return tuple(skills)
