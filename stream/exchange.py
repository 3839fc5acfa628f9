"""Share per-partition partials between workers through Redis.

Each worker owns some partitions; every KPI needs all of them. So every publish tick a
worker writes the partials of the partitions it owns into one Redis hash (a field per
stage partition, absolute values) and reads everyone's back. A partition keeps its last
partial while it moves between workers, and its new owner overwrites it: nothing doubles.
When Redis is unreachable the worker carries on with its own partials.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.snapshot import Partial

log = logging.getLogger(__name__)


class PartialExchange:
    """Read and write the ``…:partials`` hash of docs/redis-keys.md."""

    def __init__(self, client: aioredis.Redis, prefix: str, app_id: str, partitions: int, ttl_seconds: int) -> None:
        self.client = client
        self.key = f"{prefix}:v1:{app_id}:partials"
        self.partitions = partitions
        self.ttl_seconds = ttl_seconds
        self.healthy = True

    async def swap(self, local: Iterable[Partial]) -> list[Partial] | None:
        """Write our partials and return everyone's, or None if Redis is unreachable."""
        local = list(local)
        mapping = {f"{p['stage']}:{p['partition']}": orjson.dumps(p) for p in local}
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                if mapping:
                    pipe.hset(self.key, mapping=mapping)  # type: ignore[arg-type]
                    pipe.expire(self.key, self.ttl_seconds)
                pipe.hgetall(self.key)
                replies: list[Any] = await pipe.execute()
        except (RedisError, OSError) as exc:
            if self.healthy:
                log.warning("partial exchange: Redis unreachable (%s); using local partitions only", type(exc).__name__)
            self.healthy = False
            return None
        if not self.healthy:
            log.info("partial exchange: Redis is back")
        self.healthy = True
        return self._decode(replies[-1], {f"{p['stage']}:{p['partition']}" for p in local}, local)

    def _decode(self, raw: dict[bytes, bytes], mine: set[str], local: list[Partial]) -> list[Partial]:
        out = list(local)
        for field, value in raw.items():
            name = field.decode()
            stage, _, partition = name.partition(":")
            if name in mine or not partition.isdigit() or int(partition) >= self.partitions:
                continue
            out.append(orjson.loads(value))
        return out
