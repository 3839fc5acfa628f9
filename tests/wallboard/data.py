"""Realistic KPIs for four queues and their summary (the README screenshot shows these)."""

from __future__ import annotations

from typing import Any

SL_TARGETS = {"billing": 0.8, "tech_support": 0.8, "sales": 0.9, "retention": 0.8, "default": 0.8}

QUEUES: dict[str, dict[str, Any]] = {
    # on target everywhere
    "billing": {
        "waiting": 6,
        "oldest_wait_seconds": 41.0,
        "service_level": 0.86,
        "abandon_rate": 0.031,
        "asa_seconds": 14.2,
        "agents_available": 3,
        "csat": 0.88,
        "sentiment": 0.21,
        "offered": 148,
        "answered": 139,
    },
    # a bad afternoon: long waits, low service level, unhappy customers
    "tech_support": {
        "waiting": 23,
        "oldest_wait_seconds": 412.0,
        "service_level": 0.58,
        "abandon_rate": 0.134,
        "asa_seconds": 96.4,
        "agents_available": 0,
        "csat": 0.74,
        "sentiment": -0.12,
        "offered": 211,
        "answered": 176,
    },
    # quiet and fast
    "sales": {
        "waiting": 1,
        "oldest_wait_seconds": 7.0,
        "service_level": 0.95,
        "abandon_rate": 0.012,
        "asa_seconds": 6.8,
        "agents_available": 5,
        "csat": 0.91,
        "sentiment": 0.34,
        "offered": 83,
        "answered": 82,
    },
    # slipping: amber on several numbers, no survey answers yet
    "retention": {
        "waiting": 4,
        "oldest_wait_seconds": 97.0,
        "service_level": 0.74,
        "abandon_rate": 0.068,
        "asa_seconds": 31.5,
        "agents_available": 1,
        "csat": None,
        "sentiment": 0.02,
        "offered": 59,
        "answered": 53,
    },
}

ALL: dict[str, Any] = {
    "waiting": 34,
    "oldest_wait_seconds": 412.0,
    "service_level": 0.76,
    "abandon_rate": 0.069,
    "asa_seconds": 42.9,
    "agents_available": 9,
    "csat": 0.83,
    "sentiment": 0.09,
    "offered": 501,
    "answered": 450,
}


def windows(**changes: Any) -> dict[str, dict[str, dict[str, Any]]]:
    """Return every shown window's scopes; ``changes`` overrides billing's KPIs."""
    scoped = {"all": ALL} | {f"queue:{q}": kpis for q, kpis in QUEUES.items()}
    scoped["queue:billing"] = QUEUES["billing"] | changes
    # a channel scope the wallboard must not show
    scoped["queue:billing|channel:voice"] = {"waiting": 99}
    return {window: scoped for window in ("15m", "1h", "today")}
