"""Read the wallboard's tiles from Redis: the ``all`` scope and one tile per queue.

A tile is what one box on the page shows: the queue, its big numbers, and beside each the
level and target from ``colors``. Channel, queue×channel and agent scopes are not shown.
The layout read here is docs/redis-keys.md, through the helpers of ``sinks.redis``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

import redis.asyncio as aioredis

from ccpulse.wallboard.colors import Thresholds
from sinks.redis import decode_hash, kpi_key

# The numbers on a tile, in page order; the page knows their labels and units.
TILE_KPIS = (
    "waiting",
    "oldest_wait_seconds",
    "service_level",
    "abandon_rate",
    "asa_seconds",
    "agents_available",
    "csat",
    "sentiment",
    "offered",
    "answered",
)
SUMMARY_SCOPE = "all"

Tile = dict[str, Any]
TargetOf = Callable[[str | None], float]


@dataclass
class Board:
    """One window's tiles by scope, and the meta stamps they were read with."""

    window: str
    updated_at: float | None = None
    watermark: float | None = None
    tiles: dict[str, Tile] = field(default_factory=dict)


def shown(scope: str) -> bool:
    """Say whether a scope gets a tile: ``all`` and plain ``queue:<q>``."""
    return scope == SUMMARY_SCOPE or (scope.startswith("queue:") and "|" not in scope)


def queue_of(scope: str) -> str | None:
    """Return the queue of a tile's scope; None for the summary."""
    return None if scope == SUMMARY_SCOPE else scope.removeprefix("queue:")


def make_tile(
    scope: str, raw: Mapping[str, Any], thresholds: Thresholds, sl_target: float | None
) -> Tile:
    """Build one tile from a decoded KPI hash."""
    queue = queue_of(scope)
    return {
        "scope": scope,
        "queue": queue,
        "updated_at": raw.get("updated_at"),
        "kpis": {kpi: thresholds.judge(kpi, raw.get(kpi), queue, sl_target) for kpi in TILE_KPIS},
    }


def sl_target(meta: Mapping[str, Any], queue: str | None, fallback: TargetOf) -> float | None:
    """Return a queue's service-level target: meta's ``sl_targets``, else the settings'."""
    targets = meta.get("sl_targets") or {}
    value = targets.get(queue if queue is not None else "default", targets.get("default"))
    if value is None:
        value = fallback(queue)
    return float(value) if isinstance(value, int | float) else None


async def read_board(
    client: aioredis.Redis,
    base: str,
    window: str,
    thresholds: Thresholds,
    fallback_target: TargetOf,
    scopes: Iterable[str] | None = None,
) -> Board:
    """Read a window's tiles: every shown scope in meta, or only ``scopes`` when given.

    A scope whose hash is missing (expired, or left the window) has no tile.
    """
    if scopes is None:
        meta = decode_hash(await client.hgetall(base + "meta"))
        scopes = meta.get("scopes") or []
    wanted = sorted(filter(shown, scopes))
    # Meta and hashes in one MULTI: the stamps sent with the tiles are the ones they were
    # written with, even while a worker publishes between our reads.
    async with client.pipeline(transaction=True) as pipe:
        pipe.hgetall(base + "meta")
        for scope in wanted:
            pipe.hgetall(kpi_key(base, window, scope))
        raw_meta, *replies = await pipe.execute()
    meta = decode_hash(raw_meta)
    board = Board(window, meta.get("updated_at"), meta.get("watermark"))
    for scope, raw in zip(wanted, replies, strict=True):
        if raw:
            target = sl_target(meta, queue_of(scope), fallback_target)
            board.tiles[scope] = make_tile(scope, decode_hash(raw), thresholds, target)
    return board


def changed_scopes(labels: Iterable[str], window: str) -> set[str]:
    """Return the shown scopes of one window among ``…:updates`` labels (``15m|queue:x``)."""
    scopes = set()
    for label in labels:
        label_window, _, scope = label.partition("|")
        if label_window == window and shown(scope):
            scopes.add(scope)
    return scopes
