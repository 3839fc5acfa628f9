"""RedisSink and read_kpis against a real redis-server."""

from __future__ import annotations

import dataclasses
import logging
import re
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from hypothesis import given
from hypothesis import strategies as st

from sinks.redis import AS_TEXTS, RedisSink, hash_argument, read_kpis, redacted, scope_matches
from stream.aggregates import KPI_NAMES
from tests.sinks import snapshots
from tests.sinks.redis_server import RedisServer, free_port, running_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


BASE = "t:v1:app:"
WINDOWS = ("5m", "15m", "1h", "today", "interval")
SCOPES_15M = (
    "agent:a1",
    "all",
    "channel:chat",
    "channel:voice",
    "queue:billing",
    "queue:billing|channel:voice",
    "queue:sales",
    "queue:sales|channel:chat",
)
SCOPES_5M = ("agent:a1", "all", "channel:voice", "queue:billing", "queue:billing|channel:voice")
ALL_LABELS = {f"5m|{s}" for s in SCOPES_5M} | {f"{w}|{s}" for w in WINDOWS[1:] for s in SCOPES_15M}


class Clock:
    """A wall clock the test moves by hand."""

    def __init__(self, now: float = 1000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
async def client(redis_server: RedisServer) -> AsyncIterator[aioredis.Redis]:
    reader = aioredis.Redis.from_url(redis_server.url)
    yield reader
    await reader.aclose()


def make_sink(server: RedisServer, clock: Clock, heartbeat: float = 5.0) -> RedisSink:
    return RedisSink(server.url, "t", "app", 3600, heartbeat, clock=clock)


async def updated_at(client: aioredis.Redis) -> dict[str, bytes]:
    """Return updated_at of every KPI hash, by ``window|scope`` label."""
    out = {}
    for key in await client.keys(BASE + "kpi:*"):
        label = key.decode().removeprefix(BASE + "kpi:").replace(":", "|", 1)
        out[label] = await client.hget(key, "updated_at")
    return out


def with_windows(snapshot: Any, drop_scope: str) -> Any:
    windows = {
        w: {s: k for s, k in scoped.items() if s != drop_scope}
        for w, scoped in snapshot.windows.items()
    }
    return dataclasses.replace(snapshot, windows=windows)


async def test_publish_writes_every_window_and_scope(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    sink = make_sink(redis_server, Clock(1000.0))
    await sink.publish(snapshots.snapshot())
    await sink.close()

    keys = {k.decode() for k in await client.keys(BASE + "*")}
    assert keys == {BASE + "meta"} | {
        BASE + "kpi:" + label.replace("|", ":", 1) for label in ALL_LABELS
    }
    pair = await client.hgetall(BASE + "kpi:15m:queue:billing|channel:voice")
    expected = {
        k.encode(): orjson.dumps(v)
        for k, v in snapshots.snapshot().windows["15m"]["queue:billing|channel:voice"].items()
    }
    expected |= {
        b"updated_at": b"1000.0",
        b"watermark": b"1800000900.0",
        b"window_start": b"1800000000.0",
        b"window_end": b"1800000900.0",
    }
    assert pair == expected
    assert (pair[b"offered"], pair[b"abandoned"], pair[b"short_abandoned"]) == (b"10", b"2", b"1")
    assert (pair[b"service_level"], pair[b"abandon_rate"], pair[b"asa_seconds"]) == (
        b"0.555556",
        b"0.222222",
        b"12.0",
    )
    assert (pair[b"csat"], pair[b"nps"], pair[b"waiting"], pair[b"oldest_wait_seconds"]) == (
        b"0.75",
        b"null",
        b"2",
        b"42.5",
    )
    assert {f.decode() for f in pair} == {
        *KPI_NAMES,
        "updated_at",
        "watermark",
        "window_start",
        "window_end",
    }
    agent = await client.hgetall(BASE + "kpi:5m:agent:a1")
    assert (agent[b"state"], agent[b"answered"], agent[b"window_start"]) == (
        b'"busy"',
        b"0",
        b"1800000600.0",
    )
    assert 3_599_000 < await client.pttl(BASE + "kpi:today:all") <= 3_600_000
    assert 3_599_000 < await client.pttl(BASE + "meta") <= 3_600_000


async def test_meta_hash(redis_server: RedisServer, client: aioredis.Redis) -> None:
    sink = make_sink(redis_server, Clock(1000.0))
    await sink.publish(snapshots.snapshot())
    await sink.close()

    assert await client.hgetall(BASE + "meta") == {
        b"watermark": b"1800000900.0",
        b"updated_at": b"1000.0",
        b"windows": b'["5m","15m","1h","today","interval"]',
        b"scopes": orjson.dumps(list(SCOPES_15M)),
        b"sl_targets": b'{"billing":0.9,"default":0.8,"sales":0.8}',
    }


async def test_one_message_per_publish_listing_changed_hashes(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    clock = Clock(1000.0)
    sink = make_sink(redis_server, clock)
    pubsub = client.pubsub()
    await pubsub.subscribe(BASE + "updates")
    assert (await pubsub.get_message(timeout=1.0))["type"] == "subscribe"

    await sink.publish(snapshots.snapshot())
    clock.now = 1001.0
    await sink.publish(snapshots.snapshot())
    clock.now = 1002.0
    await sink.publish(_eleven_offered())
    await sink.close()

    messages = []
    while (
        message := await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
    ) is not None:
        messages.append(orjson.loads(message["data"]))
    await pubsub.aclose()
    assert len(messages) == 3
    assert (messages[0]["watermark"], messages[0]["updated_at"]) == (snapshots.WM, 1000.0)
    assert sorted(messages[0]["changed"]) == sorted(ALL_LABELS)
    assert messages[1] == {"watermark": snapshots.WM, "updated_at": 1001.0, "changed": []}
    changed = {
        f"{w}|{s}"
        for w in ("15m", "1h", "today", "interval")
        for s in ("all", "queue:billing", "channel:voice", "queue:billing|channel:voice")
    }
    assert set(messages[2]["changed"]) == changed and len(messages[2]["changed"]) == 16


async def test_only_changed_hashes_are_rewritten(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    clock = Clock(1000.0)
    sink = make_sink(redis_server, clock, heartbeat=3000.0)  # no hash's refresh comes up in 1 s
    await sink.publish(snapshots.snapshot())
    clock.now = 1001.0
    await sink.publish(_eleven_offered())
    await sink.close()

    stamps = await updated_at(client)
    rewritten = {label for label, stamp in stamps.items() if stamp == b"1001.0"}
    assert rewritten == {
        f"{w}|{s}"
        for w in ("15m", "1h", "today", "interval")
        for s in ("all", "queue:billing", "channel:voice", "queue:billing|channel:voice")
    }
    assert {stamps[label] for label in ALL_LABELS - rewritten} == {b"1000.0"}
    assert await client.hget(BASE + "kpi:1h:queue:billing", "offered") == b"11"
    assert await client.hget(BASE + "kpi:1h:queue:sales", "offered") == b"4"
    assert await client.hget(BASE + "meta", "updated_at") == b"1001.0"


BILLING_1H = BASE + "kpi:1h:queue:billing"


async def _published(server: RedisServer) -> tuple[Clock, RedisSink]:
    """A sink (heartbeat 5 s) that made its first, full publish at 1000."""
    clock = Clock(1000.0)
    sink = make_sink(server, clock, heartbeat=5.0)
    await sink.publish(snapshots.snapshot())
    return clock, sink


def _eleven_offered() -> Any:
    """The snapshot again with billing/voice offered 11: billing's hashes change."""
    return snapshots.with_billing_voice({**snapshots.BILLING_VOICE, "offered": 11})


async def test_a_changed_hash_gets_only_its_changed_fields_until_the_heartbeat(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    clock, sink = await _published(redis_server)
    key = BILLING_1H
    await client.hdel(key, "answered")  # a field the next publish must not need to write
    clock.now = 1001.0
    changed = _eleven_offered()
    await sink.publish(changed)
    assert await client.hget(key, "offered") == b"11"
    assert await client.hget(key, "updated_at") == b"1001.0"
    assert await client.hget(key, "answered") is None  # unchanged: not rewritten
    clock.now = 1005.0
    await sink.publish(changed)  # heartbeat: every field of every hash
    await sink.close()
    assert await client.hget(key, "answered") is not None


async def test_ttls_restart_on_heartbeats_and_for_new_hashes_only(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    clock, sink = await _published(redis_server)
    key = BILLING_1H
    await client.pexpire(key, 1_000_000)  # a TTL no write of the sink sets
    clock.now = 1001.0
    changed = _eleven_offered()
    fifteen = changed.windows["15m"]
    windows = {**changed.windows, "15m": {**fifteen, "queue:new": fifteen["queue:sales"]}}
    grown = dataclasses.replace(changed, windows=windows)
    await sink.publish(grown)
    assert await client.hget(key, "offered") == b"11"  # rewritten ...
    assert await client.pttl(key) <= 1_000_000  # ... but its TTL left running
    new_ttl = await client.pttl(BASE + "kpi:15m:queue:new")
    assert 3_599_000 < new_ttl <= 3_600_000  # new to Redis: its TTL set
    clock.now = 1005.0
    await sink.publish(grown)  # heartbeat: every TTL restarts
    await sink.close()
    assert 3_599_000 < await client.pttl(key) <= 3_600_000


async def test_heartbeat_rewrites_every_hash(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    clock = Clock(1000.0)
    sink = make_sink(redis_server, clock, heartbeat=5.0)
    await sink.publish(snapshots.snapshot())
    clock.now = 1005.0  # the first publish since: every hash is due
    await sink.publish(snapshots.snapshot())
    await sink.close()
    assert set((await updated_at(client)).values()) == {b"1005.0"}
    assert len(await updated_at(client)) == len(ALL_LABELS)


async def test_refreshes_are_spread_over_the_publishes_of_a_heartbeat(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    """Nothing changes; a publish every 0.5 s with a 5 s heartbeat rewrites a tenth of the
    hashes each time, and no hash goes unwritten for longer than the heartbeat."""
    clock = Clock(1000.0)
    sink = make_sink(redis_server, clock, heartbeat=5.0)
    await sink.publish(snapshots.snapshot())
    await client.pexpire(BILLING_1H, 1_000_000)  # a TTL no write of the sink sets
    rewritten, ages = [], []
    for step in range(1, 31):
        clock.now = 1000.0 + 0.5 * step
        await sink.publish(snapshots.snapshot())
        stamps = {label: float(stamp) for label, stamp in (await updated_at(client)).items()}
        rewritten.append(sum(1 for stamp in stamps.values() if stamp == clock.now))
        ages.append(max(clock.now - stamp for stamp in stamps.values()))
    ttl = await client.pttl(BILLING_1H)
    await sink.close()
    share = len(ALL_LABELS) / 10
    assert all(int(share) <= n <= int(share) + 1 for n in rewritten), rewritten
    assert sum(rewritten[:10]) == len(ALL_LABELS)  # each hash once in the first 5 s
    assert max(ages) <= 5.0
    assert 3_590_000 < ttl <= 3_600_000  # its refresh restarted the TTL


async def test_non_leader_writes_nothing(redis_server: RedisServer, client: aioredis.Redis) -> None:
    sink = make_sink(redis_server, Clock(1000.0))
    await sink.publish(snapshots.snapshot(leader=False))
    await sink.close()
    assert await client.keys("*") == []
    assert (sink.last_success_at, sink.failures) == (None, 0)


async def test_leading_again_rewrites_everything(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    clock = Clock(1000.0)
    sink = make_sink(redis_server, clock)
    await sink.publish(snapshots.snapshot())
    clock.now = 1001.0
    await sink.publish(snapshots.snapshot(leader=False))  # another worker leads and writes
    clock.now = 1002.0
    await sink.publish(snapshots.snapshot())
    await sink.close()
    assert set((await updated_at(client)).values()) == {b"1002.0"}


async def test_a_scope_that_left_is_deleted(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    clock = Clock(1000.0)
    sink = make_sink(redis_server, clock)
    pubsub = client.pubsub()
    await pubsub.subscribe(BASE + "updates")
    await pubsub.get_message(timeout=1.0)
    await sink.publish(snapshots.snapshot())
    clock.now = 1001.0
    await sink.publish(with_windows(snapshots.snapshot(), "agent:a1"))
    await sink.close()

    assert await client.keys(BASE + "kpi:*:agent:*") == []
    assert b"agent:a1" not in (await client.hget(BASE + "meta", "scopes") or b"")
    await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
    second = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
    await pubsub.aclose()
    assert second is not None
    assert sorted(orjson.loads(second["data"])["changed"]) == sorted(
        f"{w}|agent:a1" for w in WINDOWS
    )


async def test_redis_down_logs_once_backs_off_then_writes_full_state(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path, password="s3cret-pw").start()  # AUTH through the URL
    clock = Clock(1000.0)
    sink = RedisSink(server.url, "t", "app", 3600, 5.0, clock=clock)
    caplog.set_level(logging.INFO, logger="sinks.redis")
    try:
        await sink.publish(snapshots.snapshot())
        assert sink.last_success_at == 1000.0
        server.stop()

        failures = []
        for now in (1001.0, 1001.2, 1001.5, 1002.4, 1002.5, 1004.4):
            clock.now = now
            await sink.publish(snapshots.snapshot())  # never raises
            failures.append(sink.failures)
        assert failures == [1, 1, 2, 2, 3, 3]  # retries after 0.5 s, then 1 s, then 2 s
        warnings = [r for r in caplog.records if r.levelno == logging.WARNING]
        assert len(warnings) == 1
        assert "redis://127.0.0.1:" in warnings[0].getMessage()
        assert "s3cret-pw" not in caplog.text
        assert sink.last_success_at == 1000.0

        server.start()  # an empty Redis: nothing of the earlier writes survived
        clock.now = 1004.5  # before the next heartbeat: only a forgotten cache rewrites everything
        await sink.publish(snapshots.snapshot())
        check = aioredis.Redis.from_url(server.url)
        stamps = await updated_at(check)
        meta = await check.hget(BASE + "meta", "updated_at")
        await check.aclose()
    finally:
        await sink.close()
        server.stop()
    assert set(stamps) == ALL_LABELS and set(stamps.values()) == {b"1004.5"}
    assert meta == b"1004.5"
    assert sink.last_success_at == 1004.5 and sink.failures == 3
    infos = [r for r in caplog.records if r.levelno == logging.INFO]
    assert len(infos) == 1 and "reachable again" in infos[0].getMessage()
    assert len([r for r in caplog.records if r.levelno == logging.WARNING]) == 1


async def test_backoff_doubles_up_to_ten_seconds() -> None:
    clock = Clock(0.0)
    sink = RedisSink(f"redis://127.0.0.1:{free_port()}/0", "t", "app", 3600, 5.0, clock=clock)
    attempts = []
    for step in range(int(60 / 0.25)):
        clock.now = step * 0.25
        before = sink.failures
        await sink.publish(snapshots.snapshot())
        if sink.failures > before:
            attempts.append(clock.now)
    await sink.close()
    assert attempts == [0.0, 0.5, 1.5, 3.5, 7.5, 15.5, 25.5, 35.5, 45.5, 55.5]


async def _publish_once(url: str) -> RedisSink:
    """Publish one snapshot through a new sink on ``url``; return the closed sink."""
    sink = RedisSink(url, "t", "app", 3600, 5.0, clock=Clock(1000.0))
    try:
        await sink.publish(snapshots.snapshot())
    finally:
        await sink.close()
    return sink


async def test_wrong_password_is_a_logged_failure_not_an_exception(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    server = RedisServer(tmp_path, password="right-pw").start()
    try:
        sink = await _publish_once(f"redis://:not-the-password@127.0.0.1:{server.port}/0")
    finally:
        server.stop()
    assert (sink.failures, sink.last_success_at) == (1, None)
    assert len(caplog.records) == 1 and caplog.records[0].levelno == logging.WARNING
    assert "not-the-password" not in caplog.text
    assert "not-the-password" not in repr(sink)


async def test_a_redis_refusing_scripts_is_a_logged_failure_not_an_exception(
    redis_server: RedisServer, client: aioredis.Redis, caplog: pytest.LogCaptureFixture
) -> None:
    await client.acl_setuser("noscripts", enabled=True, passwords=["+pw"], keys=["*"],
                             channels=["*"], commands=["+@all", "-@scripting"])
    sink = await _publish_once(f"redis://noscripts:pw@127.0.0.1:{redis_server.port}/0")
    assert (sink.failures, sink.last_success_at) == (1, None)
    assert "cannot write" in caplog.text
    assert await client.keys("t:*") == []


def test_redacted_url_hides_credentials() -> None:
    assert redacted("rediss://user:pw@cache.example:6380/2") == "rediss://cache.example:6380/2"
    assert redacted("redis://127.0.0.1:6379/0") == "redis://127.0.0.1:6379/0"


@pytest.mark.parametrize(
    ("scope", "queue", "channel", "kept"),
    [
        ("all", None, None, True),
        ("agent:a1", None, None, True),
        ("all", "billing", None, False),
        ("queue:billing", "billing", None, True),
        ("queue:billing|channel:voice", "billing", None, True),
        ("queue:billing2", "billing", None, False),
        ("channel:voice", "billing", None, False),
        ("channel:voice", None, "voice", True),
        ("queue:sales|channel:voice", None, "voice", True),
        ("queue:voice", None, "voice", False),
        ("queue:billing|channel:voice", "billing", "voice", True),
        ("queue:billing", "billing", "voice", False),
        ("agent:billing", "billing", None, False),
    ],
)
def test_scope_filter(scope: str, queue: str | None, channel: str | None, kept: bool) -> None:
    assert scope_matches(scope, queue, channel) is kept


async def test_read_kpis_returns_what_was_published(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    snapshot = snapshots.snapshot()
    sink = make_sink(redis_server, Clock(1000.0))
    await sink.publish(snapshot)
    await sink.close()

    kpis = await read_kpis(client, "t", "app")
    assert (kpis["watermark"], kpis["updated_at"]) == (snapshots.WM, 1000.0)
    assert kpis["windows"] == {
        w: {s: dict(k) for s, k in scoped.items()} for w, scoped in snapshot.windows.items()
    }
    assert kpis["windows"]["15m"]["queue:billing"]["service_level"] == 0.555556


@pytest.mark.parametrize(
    ("filters", "expected"),
    [
        (
            {"queue": "billing"},
            {w: ["queue:billing", "queue:billing|channel:voice"] for w in WINDOWS},
        ),
        (
            {"channel": "chat"},
            {w: ["channel:chat", "queue:sales|channel:chat"] for w in WINDOWS[1:]},
        ),
        (
            {"queue": "sales", "channel": "chat"},
            {w: ["queue:sales|channel:chat"] for w in WINDOWS[1:]},
        ),
        ({"window": "5m"}, {"5m": list(SCOPES_5M)}),
        ({"window": "5m", "queue": "sales"}, {}),
        ({"queue": "nope"}, {}),
    ],
)
async def test_read_kpis_filters(
    redis_server: RedisServer,
    client: aioredis.Redis,
    filters: dict[str, str],
    expected: dict[str, list[str]],
) -> None:
    sink = make_sink(redis_server, Clock(1000.0))
    await sink.publish(snapshots.snapshot())
    await sink.close()

    kpis = await read_kpis(client, "t", "app", **filters)
    assert {w: sorted(scoped) for w, scoped in kpis["windows"].items()} == expected


async def test_read_kpis_of_an_app_that_never_published(client: aioredis.Redis) -> None:
    assert await read_kpis(client, "t", "nobody") == {
        "watermark": None,
        "updated_at": None,
        "windows": {},
    }


async def test_read_kpis_skips_expired_hashes_and_decodes_str_replies(
    redis_server: RedisServer,
) -> None:
    sink = make_sink(redis_server, Clock(1000.0))
    await sink.publish(snapshots.snapshot())
    await sink.close()
    reader = aioredis.Redis.from_url(redis_server.url, decode_responses=True)
    await reader.delete(BASE + "kpi:15m:queue:sales")
    kpis = await read_kpis(reader, "t", "app", window="15m", queue="sales")
    await reader.aclose()
    assert list(kpis["windows"]["15m"]) == ["queue:sales|channel:chat"]
    assert kpis["windows"]["15m"]["queue:sales|channel:chat"]["nps"] == 25.0


# Values a KPI hash may hold, and strings that a pattern cutting JSON apart could trip on.
TRICKY = {
    "offered": 12,
    "asa_seconds": 12.0,
    "tiny": 1e-07,
    "negative": -0.000123,
    "big": 2**53 + 1,
    "nothing": None,
    "state": "busy",
    "comma": "a,b",
    "brace": "x}y",
    "quote": 'say "hi"',
    "backslash": "back\\slash",
    "colon": "a:b",
    "unicode": "Zoë → ✓",
    "nested": [1, {"a": 2}],
}


async def test_every_field_holds_its_values_json_whatever_the_value(
    redis_server: RedisServer, client: aioredis.Redis
) -> None:
    sink = make_sink(redis_server, Clock(1000.0))
    snap = snapshots.snapshot()
    # one hash of everything, and one hash per value beside plain numbers
    tricky = {"all": dict(TRICKY)}
    tricky |= {f"queue:t{i}": {"offered": 3, "value": v} for i, v in enumerate(TRICKY.values())}
    await sink.publish(dataclasses.replace(snap, windows={**snap.windows, "1h": tricky}))
    await sink.close()
    for scope, kpis in tricky.items():
        held = await client.hgetall(BASE + f"kpi:1h:{scope}")
        fields = {k.decode(): v for k, v in held.items()}
        assert {k: fields[k] for k in kpis} == {k: orjson.dumps(v) for k, v in kpis.items()}
        assert fields["updated_at"] == b"1000.0"


scalars = st.one_of(
    st.none(),
    st.integers(min_value=-(2**63), max_value=2**63 - 1),
    st.floats(allow_nan=False, allow_infinity=False),
    st.text(),
)


@given(st.dictionaries(st.from_regex(r"[a-z_]{1,20}", fullmatch=True), scalars, max_size=40))
def test_a_flat_object_cuts_apart_into_each_values_own_json(fields: dict[str, Any]) -> None:
    """What the publish script's pattern cuts out is exactly ``orjson.dumps`` of each value."""
    flags, payload = hash_argument(fields)
    if flags & AS_TEXTS:
        cut = {name: text.encode() for name, text in orjson.loads(payload).items()}
    else:
        cut = {m[1]: m[2].encode() for m in re.finditer(r'"([^"]*)":([^,}]*)', payload.decode())}
    assert cut == {name: orjson.dumps(value) for name, value in fields.items()}
