"""Redis sink: one hash per window and scope, written atomically with a TTL.

The key layout is docs/redis-keys.md; this module is its one writer (``RedisSink``) and its
one reader (``read_kpis``, used by ``ccpulse kpis`` and the wallboard).

A publish writes, in one ``MULTI``/``EXEC``: the changed fields of the hashes whose KPIs
changed since the last successful write (every field of every hash each
``heartbeat_seconds``, so ``updated_at`` stays honest and a wiped Redis is whole again),
the meta hash, and one message on ``…:updates``. Values are absolute, so replaying a write
is harmless. When Redis is unreachable the sink logs once, backs off, and after recovery
writes the full state again: it cannot know which of its writes landed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT, FieldT

if TYPE_CHECKING:  # at runtime sinks stay free of stream's Faust imports
    from stream.snapshot import Snapshot

log = logging.getLogger(__name__)

LAYOUT_VERSION = "v1"
# Fields of a KPI hash that are not KPIs.
STAMPS = ("updated_at", "watermark", "window_start", "window_end")
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 10.0
SOCKET_TIMEOUT_SECONDS = 2.0
# Connection trouble and server-side refusals (READONLY after a failover, OOM, auth) alike:
# the sink cannot write, so it backs off instead of raising into the publish loop.
UNAVAILABLE: tuple[type[BaseException], ...] = (RedisError, OSError)


def key_base(prefix: str, app_id: str) -> str:
    """Return the part every key of an app starts with: ``<prefix>:v1:<app_id>:``."""
    return f"{prefix}:{LAYOUT_VERSION}:{app_id}:"


def kpi_key(base: str, window: str, scope: str) -> str:
    """Return the key of one window's KPI hash for one scope."""
    return f"{base}kpi:{window}:{scope}"


def redacted(url: str) -> str:
    """Return a Redis URL without user name and password, fit for logs."""
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return f"{parts.scheme}://{host}{parts.path}"


def connect(url: str) -> aioredis.Redis:
    """Return an asyncio client for a URL (AUTH and ``rediss://`` TLS come from the URL).

    No client-side retries: the sink has its own backoff, and redis-py's default retries
    would stall the publish loop for seconds while Redis is down.
    """
    return aioredis.Redis.from_url(
        url,
        socket_timeout=SOCKET_TIMEOUT_SECONDS,
        socket_connect_timeout=SOCKET_TIMEOUT_SECONDS,
        retry=Retry(NoBackoff(), 0),
    )


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def _fields(*parts: Mapping[str, bytes]) -> dict[FieldT, EncodableT]:
    """Merge field mappings into the type redis-py's ``hset`` wants."""
    fields: dict[FieldT, EncodableT] = {}
    for part in parts:
        for name, value in part.items():
            fields[name] = value
    return fields


@dataclass(frozen=True)
class KpiHash:
    """The KPIs of one window and scope (``kpis``: name -> value, JSON-encoded on write)."""

    window: str
    scope: str
    key: str
    kpis: dict[str, Any]

    def fields(self, held: Mapping[str, Any] | None = None) -> dict[str, bytes]:
        """The KPIs JSON-encoded field by field, as the hash holds them.

        ``held``: the values Redis is known to hold; only the fields that differ are
        returned (all of them when ``held`` is None or names other fields).
        """
        if held is None or held.keys() != self.kpis.keys():
            return {name: _json(value) for name, value in self.kpis.items()}
        return {name: _json(value) for name, value in self.kpis.items() if held[name] != value}

    @property
    def label(self) -> str:
        """Return the name the ``…:updates`` message uses: ``15m|queue:billing``."""
        return f"{self.window}|{self.scope}"


def kpi_hashes(base: str, snapshot: Snapshot) -> list[KpiHash]:
    """Return one hash per window and scope of a snapshot."""
    return [
        KpiHash(window, scope, kpi_key(base, window, scope), kpis)
        for window, scoped in snapshot.windows.items()
        for scope, kpis in scoped.items()
    ]


def stamps(snapshot: Snapshot, window: str, now: float) -> dict[str, bytes]:
    """Return the non-KPI fields of a window's hashes."""
    start, end = snapshot.bounds.get(window, (None, None))
    return {
        "updated_at": _json(now),
        "watermark": _json(snapshot.watermark),
        "window_start": _json(start),
        "window_end": _json(end),
    }


def meta_fields(snapshot: Snapshot, now: float) -> dict[str, bytes]:
    """Return the fields of the ``…:meta`` hash."""
    scopes = sorted({scope for scoped in snapshot.windows.values() for scope in scoped})
    return {
        "watermark": _json(snapshot.watermark),
        "updated_at": _json(now),
        "windows": _json(list(snapshot.windows)),
        "scopes": _json(scopes),
        "sl_targets": _json(dict(snapshot.sl_targets)),
    }


class RedisSink:
    """Write KPI snapshots to Redis as docs/redis-keys.md lays them out."""

    name = "redis"

    def __init__(
        self,
        url: str,
        prefix: str,
        app_id: str,
        ttl_seconds: int,
        heartbeat_seconds: float,
        client: aioredis.Redis | None = None,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.client = client if client is not None else connect(url)
        self.target = redacted(url)  # the URL itself may hold a password: never kept, never logged
        self.base = key_base(prefix, app_id)
        self.ttl_seconds = ttl_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self.last_success_at: float | None = None
        self.failures = 0  # failed write attempts since start (a counter)
        # key -> KPIs Redis holds, as far as we know (cleared whenever we cannot know)
        self._written: dict[str, dict[str, bytes]] = {}
        self._keys: set[str] = set()  # keys we wrote and have not deleted, kept across failures
        self._last_full: float | None = None
        self._backoff = 0.0
        self._next_try = 0.0
        self._down = False

    def __repr__(self) -> str:
        return f"RedisSink({self.target!r}, base={self.base!r})"

    async def publish(self, snapshot: Snapshot) -> None:
        """Write a leader's snapshot; skip while backing off after a failure."""
        if not snapshot.leader:
            # Only the leader's snapshot carries everyone's KPIs. Another worker leads now and
            # writes its own values: if we lead again, our cache of Redis would be wrong.
            self._forget()
            return
        now = self.clock()
        if now < self._next_try:
            return
        hashes = kpi_hashes(self.base, snapshot)
        changed = [h for h in hashes if self._written.get(h.key) != h.kpis]
        full = self._last_full is None or now - self._last_full >= self.heartbeat_seconds
        vanished = self._keys - {h.key for h in hashes}
        try:
            if full:
                await self._write(snapshot, now, hashes, changed, vanished, held={})
            else:
                await self._write(snapshot, now, changed, changed, vanished, held=self._written)
        except UNAVAILABLE as exc:
            self._failed(exc, now)
            return
        self._succeeded(hashes, now, full)

    async def _write(
        self,
        snapshot: Snapshot,
        now: float,
        hashes: list[KpiHash],
        changed: list[KpiHash],
        vanished: set[str],
        held: Mapping[str, Mapping[str, Any]],
    ) -> None:
        """Write hashes, meta and the update message in one transaction.

        ``held``: what Redis holds of each hash; a hash found there gets only its changed
        fields (and its stamps). A heartbeat passes nothing, so every field is written and
        every TTL restarts; between heartbeats only hashes new to Redis get an ``EXPIRE``
        (half the commands of a publish during a replay, when every hash changes).
        """
        window_stamps = {window: stamps(snapshot, window, now) for window in snapshot.windows}
        message = {
            "watermark": snapshot.watermark,
            "updated_at": now,
            "changed": [h.label for h in changed] + sorted(self._labels(vanished)),
        }
        async with self.client.pipeline(transaction=True) as pipe:
            for h in hashes:
                fields = _fields(h.fields(held.get(h.key)), window_stamps[h.window])
                pipe.hset(h.key, mapping=fields)
                if h.key not in held:  # new to Redis, or a heartbeat: (re)start its TTL
                    pipe.expire(h.key, self.ttl_seconds)
            if vanished:
                pipe.delete(*sorted(vanished))  # a scope that left a window must not linger
            pipe.hset(self.base + "meta", mapping=_fields(meta_fields(snapshot, now)))
            pipe.expire(self.base + "meta", self.ttl_seconds)
            pipe.publish(self.base + "updates", _json(message))
            await pipe.execute()

    def _labels(self, keys: Iterable[str]) -> list[str]:
        prefix = self.base + "kpi:"
        return [key.removeprefix(prefix).replace(":", "|", 1) for key in keys]

    def _succeeded(self, hashes: list[KpiHash], now: float, full: bool) -> None:
        self._written = {h.key: h.kpis for h in hashes}
        self._keys = set(self._written)
        if full:
            self._last_full = now
        self.last_success_at = now
        self._backoff = 0.0
        if self._down:
            log.info("redis sink: %s reachable again; wrote the full state", self.target)
            self._down = False

    def _failed(self, exc: BaseException, now: float) -> None:
        """Count, log once, back off, and forget what Redis holds: it may be anything now."""
        self.failures += 1
        if not self._down:
            log.warning(
                "redis sink: cannot write to %s (%s: %s); retrying with backoff up to %.0f s",
                self.target,
                type(exc).__name__,
                exc,
                BACKOFF_MAX_SECONDS,
            )
            self._down = True
        self._forget()
        self._backoff = min(BACKOFF_MAX_SECONDS, self._backoff * 2 or BACKOFF_FIRST_SECONDS)
        self._next_try = now + self._backoff

    def _forget(self) -> None:
        """Forget what Redis holds, so the next write is a full one."""
        self._written.clear()
        self._last_full = None

    async def close(self) -> None:
        """Close the client and its connections (an injected client too: the sink owns it)."""
        await self.client.aclose()


# -- reading ---------------------------------------------------------------------------------


def scope_matches(scope: str, queue: str | None = None, channel: str | None = None) -> bool:
    """Say whether a scope passes a queue/channel filter.

    ``--queue billing`` keeps ``queue:billing`` and ``queue:billing|channel:*``; a channel
    filter likewise; both keep their ``queue|channel`` pair. No filter keeps every scope.
    """
    if queue is None and channel is None:
        return True
    parts = dict(part.partition(":")[::2] for part in scope.split("|"))
    if queue is not None and parts.get("queue") != queue:
        return False
    return channel is None or parts.get("channel") == channel


def _text(value: bytes | str) -> str:
    return value.decode() if isinstance(value, bytes) else value


def decode_hash(raw: Mapping[Any, Any]) -> dict[str, Any]:
    """Decode a hash of JSON values (bytes or str, whatever the client returns)."""
    return {_text(field): orjson.loads(value) for field, value in raw.items()}


async def read_kpis(
    client: aioredis.Redis,
    prefix: str,
    app_id: str,
    window: str | None = None,
    queue: str | None = None,
    channel: str | None = None,
) -> dict[str, Any]:
    """Read the published KPIs: ``{"watermark", "updated_at", "windows": {w: {scope: {kpi: v}}}}``.

    An app that never published (or whose keys expired) reads as
    ``{"watermark": None, "updated_at": None, "windows": {}}``.
    """
    base = key_base(prefix, app_id)
    meta = decode_hash(await client.hgetall(base + "meta"))
    windows = [w for w in meta.get("windows") or [] if window in (None, w)]
    scopes = [s for s in meta.get("scopes") or [] if scope_matches(s, queue, channel)]
    wanted = [(w, s) for w in windows for s in scopes]
    async with client.pipeline(transaction=False) as pipe:
        for w, s in wanted:
            pipe.hgetall(kpi_key(base, w, s))
        replies: list[Any] = await pipe.execute() if wanted else []
    out: dict[str, dict[str, dict[str, Any]]] = {}
    for (w, s), raw in zip(wanted, replies, strict=True):
        if raw:  # a scope can be missing from a window, or its hash expired
            kpis = {k: v for k, v in decode_hash(raw).items() if k not in STAMPS}
            out.setdefault(w, {})[s] = kpis
    return {
        "watermark": meta.get("watermark"),
        "updated_at": meta.get("updated_at"),
        "windows": out,
    }
