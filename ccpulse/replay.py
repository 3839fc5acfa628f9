"""``ccpulse replay FILE``: produce a JSON-lines file (or a platform's export) to Kafka.

Each line is one event. Valid JSON objects are keyed as SPEC §1 says. A malformed line is
forwarded as it is, so it lands in the dead-letter topic with its reason, unless
``--strict`` asks to stop at the first one with its line number. With ``--format`` a
platform's records are mapped to canonical events first (ccpulse/adapters); records that
map to nothing go straight to the dead-letter topic with the reason.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from typing import IO, Any

import orjson
from tqdm import tqdm

from ccpulse.producer import EventProducer, event_key
from stream.settings import Settings


@dataclass
class ReplayCounts:
    lines: int = 0
    produced: int = 0
    malformed: int = 0
    unmappable: int = 0
    skipped: int = 0


class StrictError(Exception):
    """A malformed line under --strict."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("file", help="JSON-lines file, or - for standard input")
    parser.add_argument(
        "--format",
        default="canonical",
        help="canonical (default) or a platform format: "
        "asterisk-queue-log, asterisk-queue-log-db, amazon-connect, twilio-taskrouter, zendesk",
    )
    parser.add_argument("--strict", action="store_true", help="stop at the first malformed line")
    parser.add_argument("--topic", default=None, help="topic to produce to (default CCPULSE_INPUT_TOPIC)")
    parser.add_argument("--follow", action="store_true", help="keep reading a growing file (Asterisk queue_log)")
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")


def run(args: argparse.Namespace, settings: Settings) -> int:
    producer = EventProducer(settings, args.topic)
    counts = ReplayCounts()
    try:
        with _open(args.file) as handle:
            lines = _lines(handle, args)
            _replay(lines, args, settings, producer, counts)
    except StrictError as exc:
        print(f"ccpulse replay: {exc}", file=sys.stderr)
        return 2
    finally:
        producer.close()
    print(
        f"replayed {counts.lines} lines: {counts.produced} events produced, "
        f"{counts.malformed} malformed (forwarded to be dead-lettered), "
        f"{counts.unmappable} unmappable (dead-lettered), {counts.skipped} ignored",
        file=sys.stderr,
    )
    return 0


def _open(path: str) -> IO[bytes]:
    if path == "-":
        return os.fdopen(os.dup(sys.stdin.fileno()), "rb")
    return open(path, "rb")


def _lines(handle: IO[bytes], args: argparse.Namespace) -> Iterator[bytes]:
    total = None
    if args.file != "-" and not args.follow:
        total = os.fstat(handle.fileno()).st_size
    bar = tqdm(total=total, unit="B", unit_scale=True, desc="replay", disable=args.no_progress, file=sys.stderr)
    if args.follow:
        from ccpulse.adapters.queue_log import follow

        for text in follow(args.file):  # complete lines, decoded
            yield text.encode()
        return
    with bar:
        for line in handle:
            bar.update(len(line))
            yield line


def _replay(
    lines: Iterator[bytes], args: argparse.Namespace, settings: Settings, producer: EventProducer, counts: ReplayCounts
) -> None:
    mapper = None
    if args.format != "canonical":
        from ccpulse.adapters import get_mapper

        mapper = get_mapper(args.format)
    for number, line in enumerate(lines, start=1):
        counts.lines += 1
        stripped = line.rstrip(b"\r\n")  # only the line ending: a dead letter keeps every other byte
        if not stripped.strip():
            continue
        if mapper is not None:
            _replay_mapped(mapper, stripped, number, args, settings, producer, counts)
            continue
        event = _decode(stripped)
        if event is None:
            if args.strict:
                raise StrictError(f"line {number}: not a JSON object")
            counts.malformed += 1
            producer.send_raw(stripped)
            continue
        producer.send_raw(stripped, event_key(event))
        counts.produced += 1


def _replay_mapped(
    mapper: Any,
    line: bytes,
    number: int,
    args: argparse.Namespace,
    settings: Settings,
    producer: EventProducer,
    counts: ReplayCounts,
) -> None:
    from ccpulse.adapters import UnmappableError

    try:
        events = mapper.map(line)
    except UnmappableError as exc:
        if args.strict:
            raise StrictError(f"line {number}: {exc}") from exc
        counts.unmappable += 1
        headers = [("ccpulse-reason", b"unmappable"), ("ccpulse-detail", str(exc).encode()[:500])]
        producer.send_raw(line, None, headers, topic=settings.dead_letter_topic)
        return
    if not events:
        counts.skipped += 1
    for event in events:
        producer.send_event(event)
        counts.produced += 1


def _decode(line: bytes) -> dict[str, Any] | None:
    try:
        value = orjson.loads(line)
    except orjson.JSONDecodeError:
        return None
    return value if isinstance(value, dict) else None
