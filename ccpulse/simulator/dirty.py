"""Messy input for demos of the dead-letter path: redelivered duplicates and invalid events."""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Iterator
from typing import Any

Event = dict[str, Any]

RECENT_EVENTS = 200  # duplicates repeat one of the last this many events

# A field each type cannot do without (besides event_id, type and ts).
REQUIRED_FIELD = {
    "message": "speaker",
    "survey.response": "score",
    "agent.state": "state",
    "customer.joined": "customer_id",
    "customer.left": "customer_id",
    "purchase": "amount",
}
UNKNOWN_TYPES = ("contact.teleported", "agent.vanished", "CONTACT_OFFERED", "survey")
WRONG_TYPES = {
    "ts": "next tuesday",
    "score": "five",
    "amount": "ten dollars",
    "hold_seconds": "a while",
    "queues": "billing",
    "first_contact": "maybe",
}


def add_dirt(events: Iterator[Event], fraction: float, seed: int) -> Iterator[Event]:
    """Yield `events`, and after each one, with probability `fraction`, a messy event.

    Half the messy events are exact duplicates (same `event_id`) of one of the last 200
    events, like an at-least-once redelivery, so they can be slightly out of order. The other
    half are invalid: a required field missing, an unknown `type` or a field of the wrong JSON
    type; they get their own ids `sim-{seed}-bad-{n}`. The dirt has its own random stream, so
    the clean events are the same as without dirt.
    """
    rng = random.Random(f"dirt-{seed}")
    recent: deque[Event] = deque(maxlen=RECENT_EVENTS)
    invalid = 0
    for event in events:
        yield event
        recent.append(event)
        if rng.random() >= fraction:
            continue
        if rng.random() < 0.5:
            yield dict(rng.choice(recent))
        else:
            invalid += 1
            yield invalid_event(event, rng, f"sim-{seed}-bad-{invalid}")


def invalid_event(event: Event, rng: random.Random, event_id: str) -> Event:
    """Return a broken copy of `event` that SPEC §1 says must go to the dead-letter topic."""
    broken = {**event, "event_id": event_id}
    flaw = rng.randrange(3)
    if flaw == 0:
        field = REQUIRED_FIELD.get(event["type"], "contact_id")
        broken.pop(rng.choice(("ts", "type", field)), None)
    elif flaw == 1:
        broken["type"] = rng.choice(UNKNOWN_TYPES)
    else:
        fields = [name for name in WRONG_TYPES if name in broken]
        name = rng.choice(fields)
        broken[name] = WRONG_TYPES[name]
    return broken
