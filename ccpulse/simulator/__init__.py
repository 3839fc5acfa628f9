"""A seeded, reproducible contact-center simulation that produces SPEC §1 events.

    scenario = default_scenario().arrival_spike(at_seconds=1800, multiplier=3, duration_seconds=900)
    for event in pace(generate(scenario, seed=7, start=time.time(), duration_seconds=None), 1.0):
        ...

The model is described in docs/simulator.md.
"""

from ccpulse.simulator.defaults import default_scenario, parse_seconds, scenario_from_args
from ccpulse.simulator.engine import generate
from ccpulse.simulator.pacing import pace, retime_to_now
from ccpulse.simulator.scenario import (
    CHANNEL_PROFILES,
    CHANNELS,
    ArrivalSpike,
    ChannelProfile,
    QueueSpec,
    Scenario,
    StaffDrop,
)

__all__ = [
    "CHANNELS",
    "CHANNEL_PROFILES",
    "ArrivalSpike",
    "ChannelProfile",
    "QueueSpec",
    "Scenario",
    "StaffDrop",
    "default_scenario",
    "generate",
    "pace",
    "parse_seconds",
    "retime_to_now",
    "scenario_from_args",
]
