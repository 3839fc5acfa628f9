"""Share per-partition partials between workers through Redis.

Each worker owns some partitions; every KPI needs all of them. So every publish tick a
worker writes the partials of the partitions it owns into one Redis hash (a field per
stage partition, absolute values) and reads everyone's back. A partition keeps its last
partial while it moves between workers, and its new owner overwrites it: nothing doubles.
When Redis is unreachable the worker carries on with its own partials.

Partials are per lane (stream/lanes.py): the main lane's field is ``<stage>:<partition>``,
an agent lane's ``<stage>:<partition>:<lane>``. A publish writes and reads only the lanes it
recomputes, so it decodes the main lane and one agent slice, not every agent.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.lanes import LANES, MAIN
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

    async def swap(self, local: Iterable[Partial], lanes: Sequence[str] = LANES) -> list[Partial] | None:
        """Write our partials and return everyone's of ``lanes``, or None if Redis is unreachable."""
        local = list(local)
        mapping = {field_name(p): orjson.dumps(p) for p in local}
        wanted = [
            field_name({"stage": stage, "partition": partition, "lane": lane})
            for lane in lanes
            for stage in ("contacts", "customers")
            for partition in range(self.partitions)
        ]
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                if mapping:
                    pipe.hset(self.key, mapping=mapping)  # type: ignore[arg-type]
                    pipe.expire(self.key, self.ttl_seconds)
                pipe.hmget(self.key, wanted)
                replies: list[Any] = await pipe.execute()
        except (RedisError, OSError) as exc:
            if self.healthy:
                log.warning("partial exchange: Redis unreachable (%s); using local partitions only", type(exc).__name__)
            self.healthy = False
            return None
        if not self.healthy:
            log.info("partial exchange: Redis is back")
        self.healthy = True
        out = list(local)
        for name, value in zip(wanted, replies[-1], strict=True):
            if value is not None and name not in mapping:
                out.append(orjson.loads(value))
        return out


def field_name(partial: Partial) -> str:
    """The exchange hash's field of a partial: ``contacts:3``, ``contacts:3:a5``."""
    lane = partial.get("lane", MAIN)
    base = f"{partial['stage']}:{partial['partition']}"
    return base if lane == MAIN else f"{base}:{lane}"
