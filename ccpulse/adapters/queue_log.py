"""Read Asterisk queue_log records: text lines, database rows, and a growing file."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO

from ccpulse.adapters.base import UnmappableError, decode, load_json_object
from ccpulse.adapters.timestamps import from_epoch, parse_time

DATA_COLUMNS = ("data1", "data2", "data3", "data4", "data5")


@dataclass(frozen=True)
class QueueLogRecord:
    """One queue_log row: `time|callid|queuename|agent|event|data1|data2|...`."""

    time: datetime
    callid: str
    queue: str
    agent: str
    event: str
    data: tuple[str, ...]

    def datum(self, number: int) -> str:
        """Return data field `number` (1-based, as in data1), or "" when absent."""
        return self.data[number - 1].strip() if 0 < number <= len(self.data) else ""

    def seconds(self, number: int) -> int | None:
        """Return data field `number` as whole seconds, or None when it is not a number."""
        value = self.datum(number)
        return int(value) if value.isdigit() else None


def parse_line(line: bytes | str) -> QueueLogRecord:
    """Parse one pipe-separated queue_log line (the classic /var/log/asterisk/queue_log)."""
    text = decode(line).rstrip("\r\n")
    parts = text.split("|")
    if len(parts) < 5:
        raise UnmappableError(
            f"not a queue_log line (want epoch|callid|queue|agent|event|data...): {text[:80]!r}"
        )
    epoch, callid, queue, agent, event = (part.strip() for part in parts[:5])
    if not event:
        raise UnmappableError("queue_log line without an event name")
    return QueueLogRecord(from_epoch(epoch), callid, queue, agent, event.upper(), tuple(parts[5:]))


def parse_row(record: bytes | str) -> QueueLogRecord:
    """Parse one row of the realtime queue_log table, given as a JSON object."""
    row = load_json_object(record)
    if row.get("time") is None or not row.get("event"):
        raise UnmappableError("queue_log row needs at least 'time' and 'event'")
    return QueueLogRecord(
        time=parse_time(row["time"]),
        callid=_column(row, "callid"),
        queue=_column(row, "queuename"),
        agent=_column(row, "agent"),
        event=_column(row, "event").upper(),
        data=_data_columns(row),
    )


def _column(row: dict[str, Any], name: str) -> str:
    """Return a text column, with SQL NULL read as "NONE" like Asterisk writes it."""
    value = row.get(name)
    return "NONE" if value is None else str(value).strip()


def _data_columns(row: dict[str, Any]) -> tuple[str, ...]:
    """Return data1..data5, or split the single `data` column older schemas use."""
    if any(name in row for name in DATA_COLUMNS):
        return tuple("" if row.get(name) is None else str(row[name]) for name in DATA_COLUMNS)
    combined = row.get("data")
    return tuple(str(combined).split("|")) if combined else ()


def follow(
    path: str | os.PathLike[str],
    poll_seconds: float = 0.5,
    stop: threading.Event | None = None,
) -> Iterator[str]:
    """Yield complete lines (without the newline) from a file that keeps growing.

    Like `tail -F`: a partial last line is held back until its newline arrives, a file
    that is truncated or replaced (log rotation) is read again from its start, and a
    missing file is waited for. Returns once `stop` is set and no complete line is left;
    a partial line still pending then is dropped, as it was never finished.
    """
    pending = b""
    handle: BinaryIO | None = None
    try:
        while True:
            handle = handle or _open_if_present(Path(path))
            chunk = handle.read() if handle else b""
            if chunk:
                pending += chunk
                *lines, pending = pending.split(b"\n")
                yield from (decode(line).rstrip("\r") for line in lines)
                continue
            if handle and _was_rotated(Path(path), handle):
                handle.close()
                handle, pending = None, b""
                continue
            if stop is not None and stop.is_set():
                return
            time.sleep(poll_seconds)
    finally:
        if handle:
            handle.close()


def _open_if_present(path: Path) -> BinaryIO | None:
    """Open path for binary reading, or return None while it does not exist."""
    try:
        return open(path, "rb")  # noqa: SIM115 - follow() closes it
    except FileNotFoundError:
        return None


def _was_rotated(path: Path, handle: BinaryIO) -> bool:
    """Tell whether path now names another file, or the file shrank under the reader."""
    try:
        status = path.stat()
    except FileNotFoundError:
        return False
    same_file = os.fstat(handle.fileno()).st_ino == status.st_ino
    return not same_file or status.st_size < handle.tell()
