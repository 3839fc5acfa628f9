"""Share per-partition partials between workers through Redis.

Each worker owns some partitions; every KPI needs all of them. So every publish tick a
worker writes the partials of the partitions it owns into one Redis hash (a field per
stage partition, absolute values) and reads everyone's back. A partition keeps its last
partial while it moves between workers, and its new owner overwrites it: nothing doubles.
When Redis is unreachable the worker carries on with its own partials.

Partials are per lane (stream/lanes.py): the main lane's field is ``<stage>:<partition>``,
an agent lane's ``<stage>:<partition>:<lane>``. A publish writes and reads only the lanes it
recomputes, so it decodes the main lane and one agent slice, not every agent.

A partial's remembered sums of older buckets (``layers.older``, stream/buckets.py) are most
of its size (3.2 MB a publish for the benchmarks' four partitions, 40 ms of JSON) and change
only when their tokens do, so they go in a field of their own, ``<field>#older``, written when
a token changed (and every OLDER_REFRESH_SECONDS, should Redis have lost it); the partial's
own field names the tokens. A reader decodes an older field only for tokens it has not seen.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Sequence
from typing import Any

import orjson
import redis.asyncio as aioredis
from redis.exceptions import RedisError

from stream.lanes import LANES, MAIN
from stream.snapshot import Partial

log = logging.getLogger(__name__)
OLDER = "#older"  # suffix of the field holding a partial's older layers
OLDER_REFRESH_SECONDS = 5.0


class PartialExchange:
    """Read and write the ``…:partials`` hash of docs/redis-keys.md."""

    def __init__(self, client: aioredis.Redis, prefix: str, app_id: str, partitions: int, ttl_seconds: int) -> None:
        self.client = client
        self.key = f"{prefix}:v1:{app_id}:partials"
        self.partitions = partitions
        self.ttl_seconds = ttl_seconds
        self.healthy = True
        self._sent: dict[str, tuple[Any, float]] = {}  # field -> (older tokens written, when)
        self._seen: dict[str, tuple[Any, Any]] = {}  # others' field -> (older tokens, older layers)

    async def swap(self, local: Iterable[Partial], lanes: Sequence[str] = LANES) -> list[Partial] | None:
        """Write our partials and return everyone's of ``lanes``, or None if Redis is unreachable."""
        local = list(local)
        mapping = self._mapping(local)
        mine = {field_name(p) for p in local}
        wanted = [
            name
            for lane in lanes
            for stage in ("contacts", "customers")
            for partition in range(self.partitions)
            if (name := field_name({"stage": stage, "partition": partition, "lane": lane})) not in mine
        ]
        try:
            async with self.client.pipeline(transaction=True) as pipe:
                if mapping:
                    pipe.hset(self.key, mapping=mapping)  # type: ignore[arg-type]
                    pipe.expire(self.key, self.ttl_seconds)
                if wanted:
                    pipe.hmget(self.key, wanted)
                replies: list[Any] = await pipe.execute()
            others = await self._others(wanted, replies[-1] if wanted else [])
        except (RedisError, OSError) as exc:
            self._sent.clear()  # what landed is unknown: write every older field again
            if self.healthy:
                log.warning("partial exchange: Redis unreachable (%s); using local partitions only", type(exc).__name__)
            self.healthy = False
            return None
        if not self.healthy:
            log.info("partial exchange: Redis is back")
        self.healthy = True
        return local + others

    def _mapping(self, local: list[Partial]) -> dict[str, bytes]:
        now = time.monotonic()
        mapping: dict[str, bytes] = {}
        for partial in local:
            name = field_name(partial)
            head, older = _split(partial)
            mapping[name] = orjson.dumps(head)
            if older is None:
                continue
            tokens = head["older_tokens"]
            sent = self._sent.get(name)
            if sent is None or sent[0] != tokens or now - sent[1] >= OLDER_REFRESH_SECONDS:
                mapping[name + OLDER] = orjson.dumps(older)
                self._sent[name] = (tokens, now)
        return mapping

    async def _others(self, wanted: list[str], raws: list[Any]) -> list[Partial]:
        out: list[Partial] = []
        need: list[tuple[str, Partial]] = []
        for name, raw in zip(wanted, raws, strict=True):
            if raw is None:
                continue
            head = orjson.loads(raw)
            tokens = head.get("older_tokens")
            if tokens is None:  # no layers (a partial written before them)
                out.append(head)
                continue
            seen = self._seen.get(name)
            if seen is not None and seen[0] == tokens:
                out.append(_joined(head, seen[1]))
            else:
                need.append((name, head))
        if need:
            blobs = await self.client.hmget(self.key, [name + OLDER for name, _ in need])
            for (name, head), blob in zip(need, blobs, strict=True):
                if blob is None:
                    continue  # its older layers are not there (yet): the partition sits out this once
                older = orjson.loads(blob)
                self._seen[name] = (_older_tokens(older), older)
                out.append(_joined(head, older))  # the blob's tokens travel with its sums
        return out


def _split(partial: Partial) -> tuple[Partial, Any]:
    """A partial without its older layers (their tokens instead), and those layers."""
    layers = partial.get("layers")
    if layers is None:
        return partial, None
    older = layers["older"]
    head = {
        **partial,
        "layers": {name: value for name, value in layers.items() if name != "older"},
        "older_tokens": _older_tokens(older),
    }
    return head, older


def _older_tokens(older: dict[str, Any]) -> dict[str, str]:
    return {window: token for window, (token, _) in older.items()}


def _joined(head: Partial, older: dict[str, Any]) -> Partial:
    partial = {name: value for name, value in head.items() if name != "older_tokens"}
    partial["layers"] = {**head["layers"], "older": older}
    return partial


def field_name(partial: Partial) -> str:
    """The exchange hash's field of a partial: ``contacts:3``, ``contacts:3:a5``."""
    lane = partial.get("lane", MAIN)
    base = f"{partial['stage']}:{partial['partition']}"
    return base if lane == MAIN else f"{base}:{lane}"
