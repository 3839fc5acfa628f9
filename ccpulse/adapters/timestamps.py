"""Parse platform times and format canonical ones (RFC 3339, UTC, milliseconds)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal, InvalidOperation

from ccpulse.adapters.base import UnmappableError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
ONE_MS = timedelta(milliseconds=1)


def from_epoch(value: str | int | float | Decimal) -> datetime:
    """Turn epoch seconds (text or number, fractions allowed) into a UTC datetime."""
    try:
        seconds = Decimal(str(value).strip())
    except InvalidOperation:
        raise UnmappableError(f"not an epoch time: {value!r}") from None
    if not seconds.is_finite() or seconds < 0:
        raise UnmappableError(f"not an epoch time: {value!r}")
    micros = int(seconds * 1_000_000)
    return EPOCH + timedelta(microseconds=micros)


def parse_iso(value: str) -> datetime:
    """Parse an ISO 8601 / RFC 3339 time; a time without offset is taken as UTC."""
    try:
        parsed = datetime.fromisoformat(value.strip())
    except (ValueError, AttributeError):
        raise UnmappableError(f"not an ISO 8601 time: {value!r}") from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)


def parse_time(value: object) -> datetime:
    """Parse epoch seconds (number or digits) or an ISO 8601 time."""
    if isinstance(value, bool) or value is None:
        raise UnmappableError(f"not a time: {value!r}")
    if isinstance(value, int | float | Decimal):
        return from_epoch(value)
    text = str(value).strip()
    if text.replace(".", "", 1).isdigit():
        return from_epoch(text)
    return parse_iso(text)


def epoch_ms(moment: datetime) -> int:
    """Return whole milliseconds since the epoch (truncated), for stable event ids."""
    return (moment - EPOCH) // ONE_MS


def format_ts(moment: datetime) -> str:
    """Format a time as RFC 3339 UTC with milliseconds, e.g. 2026-11-23T09:15:02.125Z."""
    utc = moment.astimezone(UTC)
    return utc.strftime("%Y-%m-%dT%H:%M:%S.") + f"{utc.microsecond // 1000:03d}Z"
