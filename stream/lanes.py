"""Publish lanes: which scopes a publish recomputes.

A live center has a few hundred queue, channel and ``all`` scopes and thousands of agent
scopes (600 agents are 3,000 hashes over five windows, 85 % of a publish). Recomputing them
all every publish made a publish cost 0.4-0.7 s at 1,000 events/s, and the next one wait
three times as long (the publish duty cap of the time, ``stream/runtime.py``): KPIs reached
Redis 3 s after their events.

So scopes are split into lanes. The ``main`` lane (``all``, every queue and every channel:
what a wallboard shows) is recomputed at every publish. Agent scopes are spread over
``AGENT_SLICES`` lanes by a hash of the agent id, queue×channel scopes (the drill-down,
four in five of the rest in the benchmarks' center) over ``CROSS_SLICES`` lanes, and each
publish recomputes one lane of each in turn: an agent's hashes are recomputed every
``AGENT_SLICES``-th publish (every 1.2 s at the default 0.15 s interval), a queue×channel's
every ``CROSS_SLICES``-th (0.6 s), and in between keep their last values. The queue-level agent
KPIs (``agents_busy`` of a queue, its occupancy) are in the main lane.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterable, Mapping
from typing import Any

MAIN = "main"
AGENT_SLICES = 8
AGENT_LANES = tuple(f"a{n}" for n in range(AGENT_SLICES))
CROSS_SLICES = 4
CROSS_LANES = tuple(f"x{n}" for n in range(CROSS_SLICES))
LANES = (MAIN, *AGENT_LANES, *CROSS_LANES)
_CACHE_LIMIT = 200_000

_lanes: dict[str, str] = {}


def lane(scope: str) -> str:
    """Return the lane of a scope: ``main``, ``a<n>`` for an agent's, ``x<n>`` for a
    queue×channel scope."""
    found = _lanes.get(scope)
    if found is None:
        if scope.startswith("agent:"):
            found = AGENT_LANES[zlib.crc32(scope.encode()) % AGENT_SLICES]
        elif scope.startswith("queue:") and "|channel:" in scope:
            found = CROSS_LANES[zlib.crc32(scope.encode()) % CROSS_SLICES]
        else:
            found = MAIN
        if len(_lanes) < _CACHE_LIMIT:
            _lanes[scope] = found
    return found


def agent_lane(agent: str) -> str:
    """Return the lane of an agent's scope."""
    return lane(f"agent:{agent}")


def split(scoped: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    """Return ``{lane: {scope: value}}`` of a ``{scope: value}`` mapping (values shared)."""
    out: dict[str, dict[str, Any]] = {}
    for scope, value in scoped.items():
        found = lane(scope)
        part = out.get(found)
        if part is None:
            out[found] = part = {}
        part[scope] = value
    return out


def wanted(lanes: Iterable[str] | None) -> tuple[str, ...]:
    """Return the lanes asked for (None: every lane)."""
    return LANES if lanes is None else tuple(lanes)


def rotation(publishes: int) -> tuple[str, str, str]:
    """Return the lanes a publish recomputes: main, and the agent and queue×channel slices
    whose turn it is."""
    return MAIN, AGENT_LANES[publishes % AGENT_SLICES], CROSS_LANES[publishes % CROSS_SLICES]
