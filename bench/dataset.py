"""The events every benchmark reads: a simulated center, and synthetic state-heavy loads.

The throughput topic holds the first ``n`` events of one simulated day (50 queues, 5
channels, 600 agents, seed 1, starting 2025-10-09 00:00 UTC), keyed as SPEC §1 says. Same
arguments, same bytes: every contender in a run reads the same topic contents.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterable, Iterator
from typing import Any

import orjson

from ccpulse.producer import event_key
from ccpulse.simulator import default_scenario, generate
from ccpulse.simulator.timestamps import format_ts

START = 1_759_968_000  # 2025-10-09T00:00:00Z, a fixed past day
CHANNELS = ("voice", "chat", "email", "sms", "social")
QUEUES = 50
AGENTS = 600
SEED = 1
DAY_SECONDS = 86_400

Event = dict[str, Any]


def simulated_day(
    duration_seconds: float = DAY_SECONDS, rate_multiplier: float = 1.0, start: float = START
) -> Iterator[Event]:
    """Yield the events of the benchmark center over ``duration_seconds`` from ``start``."""
    scenario = default_scenario(queues=QUEUES, channels=CHANNELS, agents=AGENTS)
    return generate(
        scenario,
        seed=SEED,
        start=start,
        duration_seconds=duration_seconds,
        rate_multiplier=rate_multiplier,
    )


def first_events(count: int) -> list[Event]:
    """Return the first ``count`` events of the simulated day."""
    return list(itertools.islice(simulated_day(), count))


def keyed(events: Iterable[Event]) -> Iterator[tuple[bytes | None, bytes]]:
    """Yield (key, JSON bytes) as ccpulse's producer would send them."""
    for event in events:
        yield event_key(event), orjson.dumps(event)


def open_contacts(
    count: int, first: int = 0, start: float = START, span_seconds: float = 3600.0
) -> Iterator[Event]:
    """Yield ``count`` contacts offered and never answered, spread over ``span_seconds``."""
    step = span_seconds / max(count, 1)
    for n in range(first, first + count):
        yield {
            "event_id": f"open-{n}",
            "type": "contact.offered",
            "ts": format_ts(start + (n - first) * step),
            "contact_id": f"open-c{n}",
            "queue": f"queue_{n % QUEUES:02d}",
            "channel": CHANNELS[n % 5],
            "customer_id": f"open-u{n}",
        }


def resolved_customers(
    count: int, first: int = 0, start: float = START, span_seconds: float = 3600.0
) -> Iterator[Event]:
    """Yield, for ``count`` customers, one contact offered, answered and resolved (FCR state)."""
    step = span_seconds / max(count, 1)
    for n in range(first, first + count):
        ts = start + (n - first) * step
        common = {
            "contact_id": f"fcr-c{n}",
            "queue": f"queue_{n % QUEUES:02d}",
            "channel": "voice",
            "customer_id": f"fcr-u{n}",
        }
        yield {"event_id": f"fcr-o{n}", "type": "contact.offered", "ts": format_ts(ts), **common}
        yield {
            "event_id": f"fcr-a{n}",
            "type": "contact.answered",
            "ts": format_ts(ts + 5),
            "agent_id": f"a{n % 600}",
            **common,
        }
        yield {
            "event_id": f"fcr-r{n}",
            "type": "contact.resolved",
            "ts": format_ts(ts + 60),
            "agent_id": f"a{n % 600}",
            **common,
        }
