"""The scenario: queues, channels, staffing and the knobs that cause an SLA breach on demand."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field

from ccpulse.simulator.profile import DAILY_PROFILE, WEEKDAY_FACTORS

CHANNELS = ("voice", "chat", "email", "sms", "social", "video")
ASYNC_CHANNELS = frozenset({"email", "sms", "social"})  # agents reply rather than connect
VOICE_CHANNELS = frozenset({"voice", "video"})  # one live call at a time


@dataclass(frozen=True)
class ChannelProfile:
    """How contacts behave on one channel; every duration is in seconds."""

    name: str
    concurrency: int  # contacts of this channel one agent handles at once
    talk_mean_seconds: float  # mean conversation length (async: agent work span), log-normal
    talk_sigma: float  # shape of the log-normal conversation length
    acw_mean_seconds: float  # mean after-contact work, exponential
    hold_probability: float = 0.0  # share of conversations with the customer put on hold
    hold_mean_seconds: float = 0.0  # mean hold time when there is a hold, exponential
    patience_mean_seconds: float | None = None  # mean customer patience; None = never abandons
    short_abandon_share: float = 0.0  # share of customers who give up within 5 s if not answered
    inbox_delay_mean_seconds: float = 0.0  # async only: mean delay before an item is workable
    service_level_seconds: float = 20.0  # answer-time target; longer waits anger customers
    survey_probability: float = 0.2  # share of handled contacts that get a survey
    message_turns_mean: float = 0.0  # mean number of message turns per conversation

    @property
    def work_seconds(self) -> float:
        """Return the mean agent-seconds one contact costs (talk, hold, wrap-up / concurrency)."""
        work = self.talk_mean_seconds + self.hold_probability * self.hold_mean_seconds
        return (work + self.acw_mean_seconds) / self.concurrency

    @property
    def synchronous(self) -> bool:
        """Say whether the agent connects live (answered) rather than replies (first_response)."""
        return self.name not in ASYNC_CHANNELS


CHANNEL_PROFILES: Mapping[str, ChannelProfile] = {
    "voice": ChannelProfile(
        "voice",
        concurrency=1,
        talk_mean_seconds=330.0,
        talk_sigma=0.6,
        acw_mean_seconds=45.0,
        hold_probability=0.25,
        hold_mean_seconds=50.0,
        patience_mean_seconds=420.0,
        short_abandon_share=0.04,
        service_level_seconds=20.0,
        survey_probability=0.2,
    ),
    "video": ChannelProfile(
        "video",
        concurrency=1,
        talk_mean_seconds=420.0,
        talk_sigma=0.55,
        acw_mean_seconds=60.0,
        hold_probability=0.1,
        hold_mean_seconds=40.0,
        patience_mean_seconds=360.0,
        short_abandon_share=0.03,
        service_level_seconds=20.0,
        survey_probability=0.25,
    ),
    "chat": ChannelProfile(
        "chat",
        concurrency=3,
        talk_mean_seconds=540.0,
        talk_sigma=0.5,
        acw_mean_seconds=25.0,
        patience_mean_seconds=600.0,
        short_abandon_share=0.02,
        service_level_seconds=60.0,
        survey_probability=0.3,
        message_turns_mean=8.0,
    ),
    # Async channels: agents work an inbox in batches, modelled as an exponential delay before an
    # item becomes workable; that is what makes email first responses take hours.
    "email": ChannelProfile(
        "email",
        concurrency=1,
        talk_mean_seconds=300.0,
        talk_sigma=0.6,
        acw_mean_seconds=30.0,
        inbox_delay_mean_seconds=5400.0,
        service_level_seconds=14_400.0,
        survey_probability=0.12,
        message_turns_mean=2.0,
    ),
    "sms": ChannelProfile(
        "sms",
        concurrency=4,
        talk_mean_seconds=900.0,
        talk_sigma=0.5,
        acw_mean_seconds=20.0,
        inbox_delay_mean_seconds=600.0,
        service_level_seconds=900.0,
        survey_probability=0.15,
        message_turns_mean=6.0,
    ),
    "social": ChannelProfile(
        "social",
        concurrency=4,
        talk_mean_seconds=900.0,
        talk_sigma=0.5,
        acw_mean_seconds=20.0,
        inbox_delay_mean_seconds=1800.0,
        service_level_seconds=3600.0,
        survey_probability=0.1,
        message_turns_mean=4.0,
    ),
}


@dataclass(frozen=True)
class QueueSpec:
    """One queue: its traffic per channel, its agents and how its contacts tend to end."""

    name: str
    peak_arrivals_per_hour: Mapping[str, float]  # channel -> arrivals per hour at the daily peak
    agents: int  # agents whose primary skill is this queue
    transfer_probability: float = 0.06  # share of answered contacts moved to another queue
    resolve_probability: float = 0.82  # share of handled contacts resolved
    conversion_probability: float = 0.0  # share of resolved contacts with outcome "converted"
    cancel_probability: float = 0.0  # share of resolved contacts where the customer cancels
    mood: float = 0.0  # baseline customer mood, -1 (angry) .. 1 (happy)

    @property
    def channels(self) -> tuple[str, ...]:
        """Return the channels this queue serves."""
        return tuple(self.peak_arrivals_per_hour)

    def __post_init__(self) -> None:
        unknown = set(self.peak_arrivals_per_hour) - set(CHANNELS)
        if unknown:
            raise ValueError(f"queue {self.name!r}: unknown channels {sorted(unknown)}")
        if any(rate < 0 for rate in self.peak_arrivals_per_hour.values()) or self.agents < 0:
            raise ValueError(f"queue {self.name!r}: rates and agents must be >= 0")


@dataclass(frozen=True)
class StaffDrop:
    """At `at_seconds` after the start, `fraction` of the agents on duty log off."""

    at_seconds: float
    fraction: float  # 0..1 of the agents on duty (of `queue`'s agents when given)
    duration_seconds: float | None = None  # None: gone until their next shift
    queue: str | None = None  # primary queue of the agents dropped; None = any


@dataclass(frozen=True)
class ArrivalSpike:
    """From `at_seconds` after the start, arrivals are `multiplier` times the usual rate."""

    at_seconds: float
    multiplier: float
    duration_seconds: float
    queue: str | None = None  # None = every queue


@dataclass(frozen=True)
class Scenario:
    """A contact center to simulate; times are seconds, rates per hour, shares 0..1."""

    queues: tuple[QueueSpec, ...]
    channel_profiles: Mapping[str, ChannelProfile] = field(
        default_factory=lambda: dict(CHANNEL_PROFILES)
    )
    daily_profile: tuple[float, ...] = DAILY_PROFILE  # 24 relative hourly rates, peak 1.0
    weekday_factors: tuple[float, ...] = WEEKDAY_FACTORS  # 7 relative daily volumes, Monday first
    utc_offset_hours: float = 0.0  # local time of the daily profile and the shifts
    shift_hours: float = 8.5  # length of one agent shift, breaks included
    secondary_skill_probability: float = 0.5  # chance an agent also serves another queue
    customers: int = 0  # initial customer population; 0 = sized from the traffic
    repeat_share: float = 0.15  # share of contacts from a customer seen in the last days
    fcr_repeat_days: float = 7.0  # a contact within this many days makes first_contact false
    joins_per_customer_per_day: float = 0.003  # customer.joined rate per existing customer
    churn_per_customer_per_day: float = 0.002  # customer.left rate per existing customer
    purchases_per_customer_per_day: float = 0.002  # purchase rate per existing customer
    currency: str = "USD"  # main currency of purchases
    sentiment_field_share: float = 0.15  # share of customer messages carrying a sentiment score
    staff_drops: tuple[StaffDrop, ...] = ()
    arrival_spikes: tuple[ArrivalSpike, ...] = ()

    def __post_init__(self) -> None:
        names = [queue.name for queue in self.queues]
        if not names or len(set(names)) != len(names):
            raise ValueError("a scenario needs at least one queue and unique queue names")
        missing = {c for q in self.queues for c in q.channels} - set(self.channel_profiles)
        if missing:
            raise ValueError(f"no channel profile for {sorted(missing)}")
        if len(self.daily_profile) != 24 or len(self.weekday_factors) != 7:
            raise ValueError("daily_profile needs 24 values and weekday_factors 7")
        knobs: tuple[StaffDrop | ArrivalSpike, ...] = (*self.staff_drops, *self.arrival_spikes)
        for knob in knobs:
            if knob.queue is not None and knob.queue not in names:
                raise ValueError(f"{type(knob).__name__}: unknown queue {knob.queue!r}")

    @property
    def agents(self) -> int:
        """Return the total number of agents."""
        return sum(queue.agents for queue in self.queues)

    def staff_drop(
        self,
        at_seconds: float,
        fraction: float,
        duration_seconds: float | None = None,
        queue: str | None = None,
    ) -> Scenario:
        """Return this scenario with `fraction` of the agents on duty leaving at `at_seconds`."""
        if not 0.0 <= fraction <= 1.0:
            raise ValueError("staff_drop fraction must be within 0..1")
        drop = StaffDrop(at_seconds, fraction, duration_seconds, queue)
        return dataclasses.replace(self, staff_drops=(*self.staff_drops, drop))

    def arrival_spike(
        self,
        at_seconds: float,
        multiplier: float,
        duration_seconds: float,
        queue: str | None = None,
    ) -> Scenario:
        """Return this scenario with arrivals `multiplier` times higher for a while."""
        if multiplier < 0 or duration_seconds <= 0:
            raise ValueError("arrival_spike needs multiplier >= 0 and duration_seconds > 0")
        spike = ArrivalSpike(at_seconds, multiplier, duration_seconds, queue)
        return dataclasses.replace(self, arrival_spikes=(*self.arrival_spikes, spike))

    def queue(self, name: str) -> QueueSpec:
        """Return the queue called `name`."""
        for queue in self.queues:
            if queue.name == name:
                return queue
        raise KeyError(name)
