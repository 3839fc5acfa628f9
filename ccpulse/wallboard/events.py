"""One page's Server-Sent Events stream: a snapshot, then changes, status and heartbeats.

Events (``data`` is one JSON object, times are epoch seconds):

- ``snapshot``: every tile of the window, on connect and after data comes back;
- ``change``: the tiles whose numbers changed, and the scopes that left (``removed``);
- ``status``: ``{"available": false, "reason": …}`` while Redis cannot be read;
- ``heartbeat``: every ``heartbeat_seconds``, the server time and the data's
  ``updated_at``, so a page can tell that data stopped arriving even when it stays connected.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import orjson
import redis.asyncio as aioredis
from aiohttp import web

from ccpulse.wallboard.board import Board, TargetOf, Tile, changed_scopes, read_board
from ccpulse.wallboard.colors import Thresholds
from ccpulse.wallboard.watcher import Notice, Watcher
from sinks.redis import UNAVAILABLE

HEARTBEAT_SECONDS = 2.0
RETRY_MILLISECONDS = 2000  # EventSource's own reconnect delay after a dropped connection


@dataclass(frozen=True)
class Source:
    """What every stream of one server reads from."""

    client: aioredis.Redis
    base: str
    watcher: Watcher
    thresholds: Thresholds
    fallback_target: TargetOf
    heartbeat_seconds: float = HEARTBEAT_SECONDS
    clock: Callable[[], float] = time.time


class EventStream:
    """Feed one page one window's tiles until it goes away or the server stops."""

    def __init__(self, source: Source, window: str, response: web.StreamResponse) -> None:
        self.source = source
        self.window = window
        self.response = response
        self.sent: dict[str, Tile] | None = None  # None: the page needs a full snapshot

    async def run(self) -> None:
        """Send a snapshot, then follow the watcher's notices; beat between them."""
        await self.response.write(f"retry: {RETRY_MILLISECONDS}\n\n".encode())
        inbox = self.source.watcher.listen()
        loop = asyncio.get_running_loop()
        try:
            await self.refresh(resync=True)
            beat_at = loop.time() + self.source.heartbeat_seconds
            while True:
                # By deadline, not by silence: a worker publishing every 0.5 s with nothing
                # changed sends us notices but no events, and the page still needs its beats.
                notices = await self._next(inbox, beat_at - loop.time())
                if notices is None:
                    await self.heartbeat()
                    beat_at = loop.time() + self.source.heartbeat_seconds
                elif any(n.kind == "close" for n in notices):
                    return
                elif notices[-1].kind == "down":
                    await self.unavailable("Redis cannot be read")
                else:
                    await self.refresh(any(n.kind == "resync" for n in notices), notices)
        finally:
            self.source.watcher.forget(inbox)

    async def _next(self, inbox: asyncio.Queue[Notice], timeout: float) -> list[Notice] | None:
        """Wait for notices (all that queued up, merged); None when it is time to beat."""
        if timeout <= 0:
            return None
        try:
            first = await asyncio.wait_for(inbox.get(), timeout)
        except TimeoutError:
            return None
        notices = [first]
        while not inbox.empty():
            notices.append(inbox.get_nowait())
        return notices

    async def refresh(self, resync: bool, notices: Iterable[Notice] = ()) -> None:
        """Read what changed and send it: everything after a resync, else the named scopes."""
        full = resync or self.sent is None
        scopes = None if full else changed_scopes(_labels(notices), self.window)
        if scopes is not None and not scopes:
            return
        try:
            board = await read_board(
                self.source.client,
                self.source.base,
                self.window,
                self.source.thresholds,
                self.source.fallback_target,
                scopes,
            )
        except UNAVAILABLE:
            await self.unavailable("Redis cannot be read")
            return
        if self.sent is None:
            await self.snapshot(board)
        else:
            await self.change(board, set(self.sent) if scopes is None else scopes)

    async def snapshot(self, board: Board) -> None:
        """Send every tile of the window."""
        self.sent = dict(board.tiles)
        await self.send(
            "snapshot",
            self._stamps(board)
            | {
                "available": True,
                "stale_after_seconds": self.source.thresholds.stale_after_seconds,
                "heartbeat_seconds": self.source.heartbeat_seconds,
                "tiles": list(board.tiles.values()),
            },
        )

    async def change(self, board: Board, asked: set[str]) -> None:
        """Send the tiles whose numbers changed and the asked-for scopes that are gone."""
        assert self.sent is not None
        tiles = [t for s, t in board.tiles.items() if _numbers(self.sent.get(s)) != _numbers(t)]
        removed = sorted(s for s in asked if s in self.sent and s not in board.tiles)
        for scope in removed:
            del self.sent[scope]
        self.sent.update({tile["scope"]: tile for tile in tiles})
        if tiles or removed:
            await self.send("change", self._stamps(board) | {"tiles": tiles, "removed": removed})

    async def unavailable(self, reason: str) -> None:
        """Say the data cannot be read; the next successful read sends a full snapshot."""
        self.sent = None
        await self.send(
            "status",
            {
                "available": False,
                "reason": reason,
                "server_time": self.source.clock(),
            },
        )

    async def heartbeat(self) -> None:
        """Send the server time and the newest data stamps; retry a snapshot that failed."""
        watcher = self.source.watcher
        await self.send(
            "heartbeat",
            {
                "server_time": self.source.clock(),
                "updated_at": watcher.updated_at,
                "watermark": watcher.watermark,
                "available": watcher.available is not False and self.sent is not None,
            },
        )
        if self.sent is None and watcher.available:
            await self.refresh(resync=True)

    async def send(self, event: str, data: dict[str, Any]) -> None:
        """Write one event (orjson never emits a newline, so one ``data:`` line is enough)."""
        await self.response.write(b"event: %s\ndata: %s\n\n" % (event.encode(), orjson.dumps(data)))

    def _stamps(self, board: Board) -> dict[str, Any]:
        return {
            "window": self.window,
            "server_time": self.source.clock(),
            "updated_at": board.updated_at,
            "watermark": board.watermark,
        }


def _labels(notices: Iterable[Notice]) -> set[str]:
    return {label for notice in notices for label in notice.labels}


def _numbers(tile: Tile | None) -> Any:
    """Return what a page shows of a tile (its per-hash ``updated_at`` changes every write)."""
    return None if tile is None else tile["kpis"]
