"""The ``ccpulse kpis`` command: print the current KPIs from Redis (SPEC §3).

``--json`` prints one JSON object, ``{"watermark", "updated_at", "windows": {window:
{scope: {kpi: value}}}}``, every KPI under its canonical name; without it, one fixed-width
table per window with the main KPIs (agent scopes only in the JSON).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Mapping
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import orjson
from redis.exceptions import RedisError

from sinks.redis import connect, key_base, read_kpis, redacted
from stream.settings import Settings
from stream.windows import WINDOWS

NULL = "—"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the command's options."""
    parser.add_argument("--window", choices=WINDOWS, default=None, help="only this window")
    parser.add_argument("--queue", default=None, help="only this queue (and its channels)")
    parser.add_argument("--channel", default=None, help="only this channel (in every queue)")
    parser.add_argument("--json", action="store_true", help="one JSON object instead of tables")


async def run(args: argparse.Namespace, settings: Settings) -> int:
    """Read the KPIs a worker published and print them; 1 when there is nothing to show."""
    client = connect(settings.redis_url)
    try:
        kpis = await read_kpis(
            client, settings.redis_prefix, settings.app_id, args.window, args.queue, args.channel
        )
    except (RedisError, OSError) as exc:
        return _fail(
            f"cannot reach Redis at {redacted(settings.redis_url)} ({type(exc).__name__}: {exc})"
        )
    finally:
        await client.aclose()
    where = key_base(settings.redis_prefix, settings.app_id).rstrip(":")
    filters = _filters(args)
    if kpis["watermark"] is None or not (kpis["windows"] or filters):
        return _fail(f"no KPIs in Redis under {where}: is a worker running?")
    if not kpis["windows"]:
        return _fail(f"no KPIs match {filters} under {where}")
    if args.json:
        print(orjson.dumps(kpis).decode())
    else:
        print(render(kpis, settings.zone, where))
    return 0


def _fail(message: str) -> int:
    print(f"ccpulse kpis: {message}", file=sys.stderr)
    return 1


def _filters(args: argparse.Namespace) -> str:
    chosen = {"--window": args.window, "--queue": args.queue, "--channel": args.channel}
    return " ".join(f"{flag} {value}" for flag, value in chosen.items() if value is not None)


# -- the table --------------------------------------------------------------------------------


def _count(value: Any) -> str:
    return f"{value:.0f}"


def _percent(value: Any) -> str:
    return f"{100 * value:.1f}%"


def _seconds(value: Any) -> str:
    return f"{value:.1f}"


def _ratio(value: Any) -> str:
    return f"{value:.3f}"


def _signed(value: Any) -> str:
    return f"{value:+.2f}"


# (header, KPI name, format) of every column after the scope.
COLUMNS: tuple[tuple[str, str, Callable[[Any], str]], ...] = (
    ("offered", "offered", _count),
    ("answered", "answered", _count),
    ("abandoned", "abandoned", _count),
    ("SL", "service_level", _percent),
    ("abandon", "abandon_rate", _percent),
    ("ASA s", "asa_seconds", _seconds),
    ("waiting", "waiting", _count),
    ("oldest s", "oldest_wait_seconds", _seconds),
    ("available", "agents_available", _count),
    ("CSAT", "csat", _ratio),
    ("sentiment", "sentiment", _signed),
)


def cell(scope: str, kpis: Mapping[str, Any], name: str, fmt: Callable[[Any], str]) -> str:
    """Format one KPI; null (or missing) shows as a dash.

    Agents belong to queues, not channels: a channel scope's agent counts are always 0 in the
    snapshot, so they show as a dash rather than as "nobody available".
    """
    value = kpis.get(name)
    if name.startswith("agents_") and "channel:" in scope:
        return NULL
    if value is None or isinstance(value, bool) or not isinstance(value, int | float):
        return NULL
    return fmt(value)


def scope_order(scope: str) -> tuple[int, str, str]:
    """Sort ``all`` first, then channels, then each queue followed by its channels."""
    parts = dict(part.partition(":")[::2] for part in scope.split("|"))
    if scope == "all":
        return (0, "", "")
    if "queue" not in parts:
        return (1, "", parts.get("channel", scope))
    return (2, parts["queue"], parts.get("channel", ""))


def table(scoped: Mapping[str, Mapping[str, Any]]) -> list[str]:
    """Return the lines of one window's table (agent scopes left out)."""
    scopes = sorted((s for s in scoped if not s.startswith("agent:")), key=scope_order)
    rows = [
        [scope, *(cell(scope, scoped[scope], name, fmt) for _, name, fmt in COLUMNS)]
        for scope in scopes
    ]
    header = ["scope", *(title for title, _, _ in COLUMNS)]
    widths = [max(len(row[i]) for row in [header, *rows]) for i in range(len(header))]
    return [
        "  ".join(
            [
                row[0].ljust(widths[0]),
                *(text.rjust(w) for text, w in zip(row[1:], widths[1:], strict=True)),
            ]
        )
        for row in [header, *rows]
    ]


def _when(epoch: Any, zone: ZoneInfo) -> str:
    if not isinstance(epoch, int | float):
        return NULL
    return datetime.fromtimestamp(epoch, zone).isoformat(timespec="seconds")


def render(kpis: Mapping[str, Any], zone: ZoneInfo, where: str) -> str:
    """Return the human-readable tables of a ``read_kpis`` result."""
    watermark, updated = _when(kpis["watermark"], zone), _when(kpis["updated_at"], zone)
    lines = [f"{where}: watermark {watermark}, updated {updated}"]
    agents = set()
    for window, scoped in kpis["windows"].items():
        lines += ["", f"[{window}]", *table(scoped)]
        agents |= {scope for scope in scoped if scope.startswith("agent:")}
    if agents:
        lines += ["", f"{len(agents)} agent scope(s) not shown: use --json"]
    return "\n".join(lines)
