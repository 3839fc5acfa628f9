"""Fixtures for the simulator tests: the SPEC §1 checker and generated streams."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from ccpulse.simulator import default_scenario, generate
from tests.simulator.checks import MONDAY_8AM, SEED, spec_errors


@pytest.fixture(scope="session")
def check_event() -> Callable[[dict[str, Any]], list[str]]:
    """Return the SPEC §1 checker."""
    return spec_errors


@pytest.fixture(scope="session")
def workday() -> list[dict[str, Any]]:
    """Return 8 simulated hours (08:00-16:00, Monday) of the default scenario."""
    return list(
        generate(default_scenario(), seed=SEED, start=MONDAY_8AM, duration_seconds=8 * 3600)
    )


@pytest.fixture(scope="session")
def full_day() -> list[dict[str, Any]]:
    """Return 26 simulated hours of a five-channel scenario, through a night."""
    scenario = default_scenario(6, ("voice", "chat", "email", "sms", "social"), 40)
    return list(generate(scenario, seed=SEED, start=MONDAY_8AM, duration_seconds=26 * 3600))
