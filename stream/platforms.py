"""Map raw platform messages onto the input topic: the work of the ``platform-<format>`` agents.

Faust-free. Each configured ``format=topic`` pair (CCPULSE_PLATFORM_TOPICS) gets one
``PlatformFeed``: a mapper from ccpulse/adapters that turns one Kafka message into its
canonical events, or into the reason it cannot (docs/adapters.md, "From a raw topic").
``forward`` sends a batch's events, keyed as SPEC §1 says, and its dead letters, and
returns once Kafka has acknowledged every one, so the agent acknowledges the batch only
after that (at-least-once; the mappers' stable event ids make a re-read count once).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from ccpulse.adapters import UnmappableError, get_mapper
from ccpulse.producer import event_key
from stream.runtime import Sender
from stream.runtime import dead_letter_headers as runtime_headers

log = logging.getLogger(__name__)

LINE_FORMATS = frozenset({"asterisk-queue-log"})
"""Formats whose record is one text line: a message must hold exactly one."""

DETAIL_CHARS = 500
"""Longest ccpulse-detail header of a dead letter, characters (`ccpulse replay` cuts at 500)."""

Event = dict[str, Any]


@dataclass(frozen=True, slots=True)
class Unmapped:
    """A raw message that gives no canonical event, and why (the dead letter's detail)."""

    detail: str
    reason: str = "unmappable"


class PlatformFeed:
    """One platform topic's stateful mapper: a raw message in, events or ``Unmapped`` out.

    Mappers keep per-call state (Asterisk needs a call's ENTERQUEUE), so one feed reads its
    topic in order, in one agent with concurrency 1.
    """

    def __init__(self, fmt: str) -> None:
        self.format = fmt
        self.mapper = get_mapper(fmt)

    def map(self, raw: bytes | None) -> list[Event] | Unmapped:
        """Return the message's canonical events ([] when deliberately ignored) or why not."""
        record = _record(self.format, raw)
        if isinstance(record, Unmapped):
            return record
        try:
            return self.mapper.map(record)
        except UnmappableError as exc:
            return Unmapped(str(exc))
        except Exception as exc:  # a mapper bug must not wedge the partition: dead-letter it
            log.warning("%s mapper failed on a record", self.format, exc_info=True)
            return Unmapped(f"{self.format} mapper failed: {type(exc).__name__}: {exc}")


def _record(fmt: str, raw: bytes | None) -> bytes | Unmapped:
    """Return a message's record without its line ending, or why it holds none."""
    if raw is None or not raw.strip():
        return Unmapped("empty message")
    record = raw.rstrip(b"\r\n")  # only the line ending, as `ccpulse replay` strips a file's
    lines = record.splitlines()
    if fmt in LINE_FORMATS and len(lines) > 1:
        # e.g. b"1764000000|c1|sales|NONE|ENTERQUEUE|...\n1764000005|c1|..." would map as one
        # line whose last data field swallows the others
        return Unmapped(f"{len(lines)} lines in one message; send one {fmt} line per message")
    return record


def canonical_message(event: Event) -> tuple[bytes | None, bytes]:
    """Return the Kafka key and value of a canonical event on the input topic."""
    return event_key(event), orjson.dumps(event)


def dead_letter_headers(
    letter: Unmapped, topic: str, partition: int, offset: int
) -> list[tuple[str, bytes]]:
    """Return a dead letter's headers, in the scheme of stream/runtime.py's dead letters."""
    return runtime_headers(letter.reason, letter.detail[:DETAIL_CHARS], topic, partition, offset)


async def forward(
    feed: PlatformFeed,
    topic: str,
    batch: Sequence[tuple[int, int, bytes | None]],
    canonical: Sender,
    dead_letters: Sender,
) -> None:
    """Map a batch of (partition, offset, value) from ``topic``; send and await every result."""
    pending = []
    for partition, offset, raw in batch:
        mapped = feed.map(raw)
        if isinstance(mapped, Unmapped):
            headers = dead_letter_headers(mapped, topic, partition, offset)
            pending.append(await dead_letters.send(key=None, value=raw or b"", headers=headers))
            continue
        for event in mapped:
            key, value = canonical_message(event)
            pending.append(await canonical.send(key=key, value=value))
    if pending:
        await asyncio.gather(*pending)
