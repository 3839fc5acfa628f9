"""Write KPI hashes and ``…:updates`` messages the way the worker's Redis sink does.

The layout is docs/redis-keys.md: one hash per window and scope with JSON-text values and
stamps, the ``…:meta`` hash, and one message per publish, all in one MULTI/EXEC. Tests use
this instead of a worker so that they choose every number (and every queue name).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from sinks.redis import key_base, kpi_key

Windows = Mapping[str, Mapping[str, Mapping[str, Any]]]  # window -> scope -> kpi -> value


def _json(value: Any) -> bytes:
    return orjson.dumps(value)


class Feed:
    """A hand-driven stand-in for the worker's Redis sink."""

    def __init__(self, url: str, prefix: str = "t", app_id: str = "wb") -> None:
        self.client = aioredis.Redis.from_url(url, socket_timeout=1.0, socket_connect_timeout=1.0)
        self.base = key_base(prefix, app_id)
        self.scopes: set[str] = set()

    async def publish(
        self,
        windows: Windows,
        sl_targets: Mapping[str, float] | None = None,
        now: float | None = None,
        announce: bool = True,
    ) -> float:
        """Write hashes, meta and (unless ``announce`` is false) the update message."""
        now = time.time() if now is None else now
        watermark = now - 1.0
        labels = []
        async with self.client.pipeline(transaction=True) as pipe:
            for window, scoped in windows.items():
                for scope, kpis in scoped.items():
                    fields = {k: _json(v) for k, v in kpis.items()}
                    fields |= {"updated_at": _json(now), "watermark": _json(watermark)}
                    pipe.hset(kpi_key(self.base, window, scope), mapping=fields)
                    pipe.expire(kpi_key(self.base, window, scope), 3600)
                    labels.append(f"{window}|{scope}")
                    self.scopes.add(scope)
            pipe.hset(self.base + "meta", mapping=self._meta(windows, sl_targets, now, watermark))
            if announce:
                message = {"watermark": watermark, "updated_at": now, "changed": labels}
                pipe.publish(self.base + "updates", _json(message))
            await pipe.execute()
        return now

    def _meta(
        self, windows: Windows, sl_targets: Mapping[str, float] | None, now: float, watermark: float
    ) -> dict[str, bytes]:
        meta = {
            "watermark": _json(watermark),
            "updated_at": _json(now),
            "windows": _json(["5m", "15m", "1h", "today", "interval"]),
            "scopes": _json(sorted(self.scopes)),
        }
        if sl_targets is not None:
            meta["sl_targets"] = _json(dict(sl_targets))
        return meta

    async def remove(self, window: str, scope: str) -> None:
        """Delete one hash and announce it, as the sink does when a scope leaves a window."""
        now = time.time()
        async with self.client.pipeline(transaction=True) as pipe:
            pipe.delete(kpi_key(self.base, window, scope))
            pipe.hset(self.base + "meta", mapping={"updated_at": _json(now)})
            message = {"watermark": now - 1.0, "updated_at": now, "changed": [f"{window}|{scope}"]}
            pipe.publish(self.base + "updates", _json(message))
            await pipe.execute()

    async def close(self) -> None:
        await self.client.aclose()


class Feeder:
    """Publish the same windows every ``interval`` seconds, like a running worker."""

    def __init__(
        self, feed: Feed, windows: Windows, sl_targets: Mapping[str, float], interval: float = 0.5
    ):
        self.feed = feed
        self.windows = windows
        self.sl_targets = sl_targets
        self.interval = interval
        self._task: asyncio.Task[None] | None = None

    def start(self) -> None:
        self._task = asyncio.create_task(self._run())

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None

    async def _run(self) -> None:
        while True:
            with contextlib.suppress(OSError, RedisError):
                await self.feed.publish(self.windows, self.sl_targets)
            await asyncio.sleep(self.interval)
