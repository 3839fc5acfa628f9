"""Follow Redis for the wallboard: pub/sub on ``…:updates``, and a poll of ``…:meta``.

One ``Watcher`` per server fans notices out to every open event stream:

- ``changed``: a ``…:updates`` message named these ``window|scope`` labels;
- ``resync``: re-read everything — Redis came back, or ``…:meta`` advanced with no
  message heard since the last poll (a lost pub/sub message must not freeze a page);
- ``down``: Redis cannot be read; pages go stale until a ``resync``;
- ``close``: the server is shutting down.

It also keeps the newest ``updated_at`` and ``watermark`` for the heartbeats.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from dataclasses import dataclass
from typing import Any, Literal

import orjson
import redis.asyncio as aioredis

from sinks.redis import UNAVAILABLE, decode_hash

log = logging.getLogger(__name__)

POLL_SECONDS = 1.0
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 5.0


@dataclass(frozen=True)
class Notice:
    """What an event stream should do next."""

    kind: Literal["changed", "resync", "down", "close"]
    labels: frozenset[str] = frozenset()


class Watcher:
    """Watch one app's keys in Redis and tell every listener what changed."""

    def __init__(self, client: aioredis.Redis, base: str, poll_seconds: float = POLL_SECONDS):
        self.client = client
        self.base = base
        self.poll_seconds = poll_seconds
        self.available: bool | None = None  # None until the first poll
        self.updated_at: float | None = None
        self.watermark: float | None = None
        self._inboxes: set[asyncio.Queue[Notice]] = set()
        self._heard = False  # a pub/sub message arrived since the last poll
        self._polled: Any = None  # meta's updated_at at the last poll
        self._stopping = False

    def listen(self) -> asyncio.Queue[Notice]:
        """Return a new inbox that receives every notice from now on."""
        inbox: asyncio.Queue[Notice] = asyncio.Queue()
        self._inboxes.add(inbox)
        return inbox

    def forget(self, inbox: asyncio.Queue[Notice]) -> None:
        """Stop sending notices to an inbox."""
        self._inboxes.discard(inbox)

    def tell(self, notice: Notice) -> None:
        """Send a notice to every inbox."""
        for inbox in self._inboxes:
            inbox.put_nowait(notice)

    async def run(self) -> None:
        """Subscribe and poll until ``stop()``."""
        await asyncio.gather(self._subscribe_forever(), self._poll_forever())

    def stop(self) -> None:
        """Make ``run()`` return within about a second.

        A flag as well as cancellation: redis-py's reads with a timeout can swallow a
        ``CancelledError``, and a loop that missed its cancellation must still end.
        """
        self._stopping = True

    async def _subscribe_forever(self) -> None:
        backoff = 0.0
        while not self._stopping:
            try:
                await self._subscribe()
            except UNAVAILABLE as exc:
                backoff = min(BACKOFF_MAX_SECONDS, backoff * 2 or BACKOFF_FIRST_SECONDS)
                log.debug("wallboard: pub/sub lost (%s); again in %.1f s", exc, backoff)
                await asyncio.sleep(backoff)

    async def _subscribe(self) -> None:
        pubsub = self.client.pubsub(ignore_subscribe_messages=True)
        try:
            await pubsub.subscribe(self.base + "updates")
            while not self._stopping:
                message = await pubsub.get_message(timeout=1.0)
                if message is not None and message.get("type") == "message":
                    self._heard_message(message["data"])
        finally:
            with contextlib.suppress(*UNAVAILABLE):
                await pubsub.aclose()  # type: ignore[no-untyped-call,unused-ignore]  # untyped before redis-py 8

    def _heard_message(self, data: bytes | str) -> None:
        try:
            update = orjson.loads(data)
            labels = frozenset(str(label) for label in update.get("changed") or [])
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            log.warning("wallboard: ignoring a malformed …:updates message")
            return
        self._heard = True
        self._stamp(update)
        if labels:
            self.tell(Notice("changed", labels))

    async def _poll_forever(self) -> None:
        while not self._stopping:
            await self.poll()
            await asyncio.sleep(self.poll_seconds)

    async def poll(self) -> None:
        """Read meta once: notice Redis going down or coming back, and lost messages."""
        try:
            meta = decode_hash(await self.client.hgetall(self.base + "meta"))
        except UNAVAILABLE as exc:
            if self.available is not False:
                log.warning("wallboard: cannot read Redis (%s: %s)", type(exc).__name__, exc)
                self.available = False
                self.tell(Notice("down"))
            return
        came_back = self.available is False
        advanced = meta.get("updated_at") != self._polled
        self._polled = meta.get("updated_at")
        self.available = True
        self._stamp(meta)
        if came_back or (advanced and not self._heard):
            self.tell(Notice("resync"))
        self._heard = False

    def _stamp(self, source: dict[str, Any]) -> None:
        """Keep the newest ``updated_at`` and ``watermark`` seen."""
        updated_at = source.get("updated_at")
        if isinstance(updated_at, int | float) and updated_at >= (self.updated_at or 0.0):
            self.updated_at = float(updated_at)
            watermark = source.get("watermark")
            self.watermark = float(watermark) if isinstance(watermark, int | float) else None
