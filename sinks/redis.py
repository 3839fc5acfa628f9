"""Redis sink: one hash per window and scope, written atomically with a TTL.

The key layout is docs/redis-keys.md; this module is its one writer (``RedisSink``) and its
one reader (``read_kpis``, used by ``ccpulse kpis`` and the wallboard).

A publish writes, in one call of a Lua script (atomic, as ``MULTI``/``EXEC`` would be): the
changed fields of the hashes whose KPIs changed since the last successful write, every
field of the hashes due for a refresh, the meta hash, and one message on ``…:updates``.
Every hash is refreshed (all its fields, its TTL restarted) at least every
``heartbeat_seconds``, so ``updated_at`` stays honest and a wiped Redis is whole again; the
refreshes are spread over the publishes in between (``RedisSink._due``), never all in one.
Values are absolute, so replaying a write is harmless. When Redis is unreachable the sink
logs once, backs off, and after recovery writes the full state again: it cannot know which
of its writes landed.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterable, Mapping
from typing import TYPE_CHECKING, Any, NamedTuple
from urllib.parse import urlsplit

import orjson
import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError
from redis.typing import EncodableT

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


# One publish is one call of this script. A transaction of ``HSET`` + ``EXPIRE`` per hash cost
# the worker two commands to pack and two replies to read per hash, a field at a time in
# redis-py's Python (over 0.3 s a publish for the 3,500 hashes of the benchmarks' replay);
# here a hash is one argument, a JSON object its fields are cut from in Redis.
#
# ARGV: ttl, updates channel, message, hash count n, then per hash: key, flags, fields
# (flags: 1 = restart its TTL; 2 = the fields are {name: JSON text}, else a flat JSON object
# of scalars cut apart with a pattern), then the count of keys to delete and those keys, then
# the meta key and its (name, value) pairs.
PUBLISH_SCRIPT = """
local ttl = ARGV[1]
local i = 5
for _ = 1, tonumber(ARGV[4]) do
  local key, flags, payload = ARGV[i], tonumber(ARGV[i + 1]), ARGV[i + 2]
  i = i + 3
  local args = {}
  if flags >= 2 then
    for name, text in pairs(cjson.decode(payload)) do
      args[#args + 1] = name
      args[#args + 1] = text
    end
  else
    for name, text in string.gmatch(payload, '"([^"]*)":([^,}]*)') do
      args[#args + 1] = name
      args[#args + 1] = text
    end
  end
  if #args > 0 then redis.call('HSET', key, unpack(args)) end
  if flags % 2 == 1 then redis.call('EXPIRE', key, ttl) end
end
local gone = tonumber(ARGV[i])
for j = i + 1, i + gone do redis.call('DEL', ARGV[j]) end
i = i + gone + 1
local meta = {}
for j = i + 1, #ARGV do meta[#meta + 1] = ARGV[j] end
redis.call('HSET', ARGV[i], unpack(meta))
redis.call('EXPIRE', ARGV[i], ttl)
redis.call('PUBLISH', ARGV[2], ARGV[3])
return 1
"""
RESTART_TTL, AS_TEXTS = 1, 2


def hash_argument(fields: Mapping[str, Any]) -> tuple[int, bytes]:
    """One hash's fields as the script takes them: (flags, JSON object).

    The script's pattern cuts ``"name":value`` pairs at the next ``,`` or ``}``, which gives
    each value's own JSON text exactly when no value's JSON holds a comma, a brace or an
    escape (a quote inside a string is escaped): one comma between each two fields, one
    closing brace, no backslash. Anything else goes as {name: JSON text}.
    """
    flat = orjson.dumps(fields)
    if b"\\" not in flat and flat.count(b",") == len(fields) - 1 and flat.count(b"}") == 1:
        return 0, flat
    return AS_TEXTS, orjson.dumps({name: _json(value).decode() for name, value in fields.items()})


class KpiHash(NamedTuple):
    """The KPIs of one window and scope (``kpis``: name -> value, JSON-encoded on write)."""

    window: str
    scope: str
    key: str
    kpis: Mapping[str, Any]

    def fields(self, held: Mapping[str, Any] | None = None) -> dict[str, Any]:
        """The KPIs to write (values as they are; each field holds its value's JSON).

        ``held``: the values Redis is known to hold; only the fields that differ are
        returned (all of them when ``held`` is None or names other fields).
        """
        if held is None or held.keys() != self.kpis.keys():
            return dict(self.kpis)
        return {name: value for name, value in self.kpis.items() if held[name] != value}

    @property
    def label(self) -> str:
        """Return the name the ``…:updates`` message uses: ``15m|queue:billing``."""
        return f"{self.window}|{self.scope}"


def kpi_hashes(
    base: str, snapshot: Snapshot, keys: dict[tuple[str, str], KpiHash] | None = None
) -> list[KpiHash]:
    """Return one hash per window and scope of a snapshot.

    ``keys``: a cache of the hashes made before; a scope whose KPI dict is the very one it
    had (stream/snapshot.py keeps unchanged KPIs by identity, most agent and drill-down
    scopes between their turns) gets its old hash back instead of a new one.
    """
    keys = {} if keys is None else keys
    out = []
    for window, scoped in snapshot.windows.items():
        for scope, kpis in scoped.items():
            made = keys.get((window, scope))
            if made is None or made.kpis is not kpis:
                key = made.key if made is not None else kpi_key(base, window, scope)
                made = keys[(window, scope)] = KpiHash(window, scope, key, kpis)
            out.append(made)
    return out


def stamps(snapshot: Snapshot, window: str, now: float) -> dict[str, Any]:
    """Return the non-KPI fields of a window's hashes."""
    start, end = snapshot.bounds.get(window, (None, None))
    return {
        "updated_at": now,
        "watermark": snapshot.watermark,
        "window_start": start,
        "window_end": end,
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
        self._script = self.client.register_script(PUBLISH_SCRIPT)  # EVALSHA, loaded when missing
        self.target = redacted(url)  # the URL itself may hold a password: never kept, never logged
        self.base = key_base(prefix, app_id)
        self.ttl_seconds = ttl_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.clock = clock
        self.last_success_at: float | None = None
        self.failures = 0  # failed write attempts since start (a counter)
        # key -> KPIs Redis holds, as far as we know (cleared whenever we cannot know)
        self._written: dict[str, Mapping[str, Any]] = {}
        self._keys: set[str] = set()  # keys we wrote and have not deleted, kept across failures
        self._key_names: dict[tuple[str, str], KpiHash] = {}  # (window, scope) -> its last hash
        # key -> when it was last written whole, oldest first (re-inserted at each refresh)
        self._refreshed: dict[str, float] = {}
        self._last_publish: float | None = None
        self._credit = 0.0  # the part of a hash owed a refresh, carried between publishes
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
        if len(self._key_names) > 2 * sum(map(len, snapshot.windows.values())) + 1000:
            self._key_names.clear()  # scopes come and go (agents): keep the cache near their count
        hashes = kpi_hashes(self.base, snapshot, self._key_names)
        written = self._written
        # ``is``: a scope whose KPIs did not change keeps its dict (stream/snapshot.py)
        changed = [h for h in hashes if (was := written.get(h.key)) is not h.kpis and was != h.kpis]
        present = {h.key for h in hashes}
        due, credit = self._due(present, now)
        vanished = self._keys - present
        sent = [h for h in hashes if h.key in due] + [h for h in changed if h.key not in due]
        try:
            await self._write(snapshot, now, sent, changed, vanished, due)
        except UNAVAILABLE as exc:
            self._failed(exc, now)
            return
        self._succeeded(hashes, now, due, vanished, credit)

    def _due(self, present: set[str], now: float) -> tuple[set[str], float]:
        """The keys to write whole this publish: new to Redis, not written whole for
        ``heartbeat_seconds``, and the oldest others, as many as this publish's share; and
        the fraction of a hash left over, owed at the next publish.

        The share is the hashes' count times the time since the last publish over
        ``heartbeat_seconds``: at 0.15 s a publish and 5 s, 3 % of the hashes each time, so
        the state is rewritten once per heartbeat period a little at a time. Written all at
        once, the 3,500 hashes of the benchmarks' replay held Redis for 50-80 ms every 5 s,
        and nobody else (a wallboard, ``ccpulse kpis``) was served meanwhile. Whether a hash
        is written whole never changes what Redis holds.
        """
        due = present - self._refreshed.keys()
        period, last = self.heartbeat_seconds, self._last_publish
        elapsed = period if last is None else min(max(now - last, 0.0), period)
        share = self._credit + (len(present) * elapsed / period if period > 0 else len(present))
        for key, at in self._refreshed.items():  # oldest first
            if share < 1.0 and now - at < period:
                break
            if key in present:
                due.add(key)
                share -= 1.0
        return due, share % 1.0 if share > 0 else 0.0

    async def _write(
        self,
        snapshot: Snapshot,
        now: float,
        hashes: list[KpiHash],
        changed: list[KpiHash],
        vanished: set[str],
        whole: set[str],
    ) -> None:
        """Write hashes, meta and the update message in one transaction.

        A hash in ``whole`` gets every field and its TTL restarted; any other gets only the
        fields that differ from what Redis holds (and its stamps), and no ``EXPIRE`` (half
        the commands of a publish during a replay, when every hash changes).
        """
        window_stamps = {window: stamps(snapshot, window, now) for window in snapshot.windows}
        message = {
            "watermark": snapshot.watermark,
            "updated_at": now,
            "changed": [h.label for h in changed] + sorted(self._labels(vanished)),
        }
        args: list[EncodableT] = [self.ttl_seconds, self.base + "updates", _json(message)]
        args.append(len(hashes))
        held = self._written
        for h in hashes:
            refresh = h.key in whole
            fields = h.fields(None if refresh else held.get(h.key))
            fields.update(window_stamps[h.window])
            flags, payload = hash_argument(fields)
            if refresh:  # new to Redis, or its turn: (re)start its TTL
                flags |= RESTART_TTL
            args += (h.key, flags, payload)
        args.append(len(vanished))
        args += sorted(vanished)  # a scope that left a window must not linger
        args.append(self.base + "meta")
        for name, value in meta_fields(snapshot, now).items():
            args += (name, value)
        await self._script(keys=[], args=args)

    def _labels(self, keys: Iterable[str]) -> list[str]:
        prefix = self.base + "kpi:"
        return [key.removeprefix(prefix).replace(":", "|", 1) for key in keys]

    def _succeeded(
        self, hashes: list[KpiHash], now: float, whole: set[str], vanished: set[str], credit: float
    ) -> None:
        self._written = {h.key: h.kpis for h in hashes}
        self._keys = set(self._written)
        refreshed = self._refreshed
        for key in whole | vanished:
            refreshed.pop(key, None)
        for key in sorted(whole):
            refreshed[key] = now  # to the end: the dict stays oldest first
        self._last_publish, self._credit = now, credit
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
        self._refreshed.clear()
        self._credit = 0.0

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
