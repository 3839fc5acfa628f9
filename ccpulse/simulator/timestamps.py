"""Event-time formatting (RFC 3339, millisecond precision, UTC 'Z') and parsing."""

from __future__ import annotations

import time
from datetime import datetime
from functools import lru_cache


@lru_cache(maxsize=4096)
def _second_prefix(epoch_second: int) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(epoch_second))


def format_ts(epoch_seconds: float) -> str:
    """Format epoch seconds as RFC 3339 with milliseconds, e.g. `2026-11-23T09:15:02.125Z`.

    Truncates to the millisecond, so formatting never reorders two increasing times.
    """
    second, millis = divmod(int(epoch_seconds * 1000), 1000)
    return f"{_second_prefix(second)}.{millis:03d}Z"


def parse_ts(value: object) -> float | None:
    """Return epoch seconds for an RFC 3339 string or a number; None when it is neither."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            return None
        if parsed.tzinfo is None:
            return None
        return parsed.timestamp()
    return None
