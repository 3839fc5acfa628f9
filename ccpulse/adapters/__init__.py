"""Platform adapters: turn Asterisk, Amazon Connect, Twilio and Zendesk records into
ccpulse's canonical input events (SPEC §1). The mapping tables are in docs/adapters.md.

    mapper = get_mapper("asterisk-queue-log")     # one mapper per file or stream
    for line in follow("/var/log/asterisk/queue_log"):
        for event in mapper.map(line):            # [] for records deliberately ignored
            produce(event)                        # UnmappableError for garbage
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Protocol

from ccpulse.adapters.asterisk import QueueLogDbMapper, QueueLogMapper
from ccpulse.adapters.base import UnmappableError
from ccpulse.adapters.connect import AmazonConnectMapper
from ccpulse.adapters.queue_log import follow
from ccpulse.adapters.twilio import TwilioTaskRouterMapper
from ccpulse.adapters.zendesk import ZendeskMapper


class Mapper(Protocol):
    """Map one platform record to canonical events (maybe none)."""

    def map(self, record: bytes | str) -> list[dict[str, Any]]:
        """Return the record's canonical events; raise UnmappableError for garbage."""
        ...


FORMATS: dict[str, Callable[[], Mapper]] = {
    "asterisk-queue-log": QueueLogMapper,
    "asterisk-queue-log-db": QueueLogDbMapper,
    "amazon-connect": AmazonConnectMapper,
    "twilio-taskrouter": TwilioTaskRouterMapper,
    "zendesk": ZendeskMapper,
}
"""Format name → factory of a fresh (stateful) mapper."""


def get_mapper(fmt: str) -> Mapper:
    """Return a new mapper for a format name, or raise ValueError listing the formats."""
    factory = FORMATS.get(fmt)
    if factory is None:
        raise ValueError(f"unknown format {fmt!r}; known formats: {', '.join(sorted(FORMATS))}")
    return factory()


__all__ = [
    "FORMATS",
    "AmazonConnectMapper",
    "Mapper",
    "QueueLogDbMapper",
    "QueueLogMapper",
    "TwilioTaskRouterMapper",
    "UnmappableError",
    "ZendeskMapper",
    "follow",
    "get_mapper",
]
