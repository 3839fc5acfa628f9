"""BreachDetector (pure, tables of snapshots -> events) and BreachSink (real Redis, fake Kafka)."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator, Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis.asyncio as aioredis
from aiokafka.errors import KafkaConnectionError

from sinks.breaches import (
    DEFAULT_RULES,
    BreachDetector,
    BreachRule,
    BreachSink,
    alerts_channel,
    rules_with_overrides,
)
from stream.snapshot import Snapshot
from tests.sinks.redis_server import RedisServer, running_redis

RULES = {rule.name: rule for rule in DEFAULT_RULES}
BILLING = "queue:billing"
VOICE = "queue:billing|channel:voice"
CHAT = "queue:billing|channel:chat"
BUSY = {"answered": 40, "abandoned": 5, "offered": 50, "short_abandoned": 5}


def snap(
    at: float,
    scopes: dict[str, dict[str, Any]],
    targets: dict[str, float] | None = None,
    leader: bool = True,
) -> Snapshot:
    """A snapshot at wall clock ``at`` whose 15m window holds ``scopes``."""
    return Snapshot(
        app_id="app",
        watermark=at - 2.0,
        generated_at=at,
        windows={"15m": scopes, "5m": {}},
        bounds={},
        sl_targets=targets if targets is not None else {"default": 0.8},
        sl_thresholds={"billing|voice": 20.0, "billing|chat": 60.0},
        leader=leader,
    )


def run(
    rule: str, steps: list[tuple[float, dict[str, Any] | None]], scope: str = BILLING, **kw: Any
) -> list[tuple[float, str, str]]:
    """Feed (time, KPIs of the scope or None: scope absent) to a one-rule detector."""
    detector = BreachDetector((RULES[rule],), min_duration_seconds=kw.pop("min_duration", 60.0))
    events = []
    for at, kpis in steps:
        scopes = {} if kpis is None else {scope: {**BUSY, **kpis}}
        for event in detector.observe(snap(at, scopes, **kw)):
            events.append((at, event.type, event.reason))
    return events


def series(
    kpi: str, *points: tuple[float, Any], **extra: Any
) -> list[tuple[float, dict[str, Any]]]:
    return [(at, {kpi: value, **extra}) for at, value in points]


def every(
    seconds: float, start: float, end: float, kpi: str, value: Any, **extra: Any
) -> list[Any]:
    count = int((end - start) / seconds) + 1
    return series(kpi, *((start + i * seconds, value) for i in range(count)), **extra)


SL = "service_level"
CASES = [
    # (name, rule, steps, expected events (time, type, reason))
    (
        "breach once below target for the minimum duration",
        SL,
        series(SL, (0, 0.7), (30, 0.7), (59, 0.7), (60, 0.7), (90, 0.7)),
        [(60, "breach", "threshold")],
    ),
    (
        "a good reading restarts the clock",
        SL,
        series(SL, (0, 0.7), (50, 0.85), (60, 0.7), (110, 0.7), (120, 0.7)),
        [(120, "breach", "threshold")],
    ),
    ("exactly at the target is no breach", SL, every(10, 0, 600, SL, 0.8), []),
    (
        "between breach and clear thresholds a breach holds",
        SL,
        series(SL, (0, 0.7), (60, 0.7)) + every(10, 70, 900, SL, 0.81),
        [(60, "breach", "threshold")],
    ),
    (
        "clear only at the clear threshold for the minimum duration",
        SL,
        series(SL, (0, 0.7), (60, 0.7), (100, 0.82), (150, 0.82), (160, 0.82)),
        [(60, "breach", "threshold"), (160, "clear", "threshold")],
    ),
    (
        "no flicker around the target",
        SL,
        [(t, {SL: 0.79 if t % 20 else 0.81}) for t in range(0, 601, 10)],
        [],
    ),
    (
        "no flicker around the clear threshold once breached",
        SL,
        series(SL, (0, 0.5), (60, 0.5))
        + [(t, {SL: 0.83 if t % 20 else 0.81}) for t in range(70, 700, 10)],
        [(60, "breach", "threshold")],
    ),
    (
        "a window that empties clears, after the minimum duration",
        SL,
        series(SL, (0, 0.5), (60, 0.5), (70, None), (129, None), (130, None)),
        [(60, "breach", "threshold"), (130, "clear", "no_data")],
    ),
    (
        "a scope that leaves the window clears",
        SL,
        [*series(SL, (0, 0.5), (60, 0.5)), (70, None), (130, None)],
        [(60, "breach", "threshold"), (130, "clear", "no_data")],
    ),
    (
        "lower is better: above breaches, at the breach threshold does not",
        "abandon_rate",
        series("abandon_rate", (0, 0.10), (60, 0.10), (120, 0.11), (180, 0.11)),
        [(180, "breach", "threshold")],
    ),
    (
        "lower is better: 0.09 holds the breach, 0.08 clears",
        "abandon_rate",
        series(
            "abandon_rate", (0, 0.2), (60, 0.2), (70, 0.09), (200, 0.09), (210, 0.08), (270, 0.08)
        ),
        [(60, "breach", "threshold"), (270, "clear", "threshold")],
    ),
]


@pytest.mark.parametrize(
    ("rule", "steps", "expected"),
    [pytest.param(rule, steps, expected, id=name) for name, rule, steps, expected in CASES],
)
def test_hysteresis_and_minimum_duration(
    rule: str, steps: list[Any], expected: list[tuple[float, str, str]]
) -> None:
    assert run(rule, steps) == expected


def test_minimum_duration_zero_flips_at_once() -> None:
    steps = series(SL, (0, 0.7), (1, 0.9))
    assert run(SL, steps, min_duration=0.0) == [
        (0, "breach", "threshold"),
        (1, "clear", "threshold"),
    ]


@pytest.mark.parametrize(
    ("volume", "expected"),
    [
        ({"answered": 15, "abandoned": 4}, []),  # 19: too few to judge
        ({"answered": 16, "abandoned": 4}, [(60, "breach", "threshold")]),  # 20: enough
    ],
)
def test_service_level_volume_guard(volume: dict[str, int], expected: list[Any]) -> None:
    assert run(SL, series(SL, (0, 0.5), (60, 0.5), (120, 0.5), **volume)) == expected


def test_abandon_rate_guard_excludes_short_abandons() -> None:
    few = {"offered": 24, "short_abandoned": 5}  # 19 judged contacts
    enough = {"offered": 25, "short_abandoned": 5}
    assert run("abandon_rate", series("abandon_rate", (0, 0.5), (60, 0.5), **few)) == []
    assert run("abandon_rate", series("abandon_rate", (0, 0.5), (60, 0.5), **enough)) == [
        (60, "breach", "threshold")
    ]


def test_under_the_guard_a_breach_neither_clears_nor_repeats() -> None:
    steps = series(SL, (0, 0.5), (60, 0.5)) + every(10, 70, 600, SL, 0.95, answered=3, abandoned=0)
    assert run(SL, steps) == [(60, "breach", "threshold")]


def test_a_queue_target_of_its_own_and_the_default() -> None:
    targets = {"default": 0.8, "billing": 0.9}
    assert run(SL, series(SL, (0, 0.85), (60, 0.85)), targets=targets) == [
        (60, "breach", "threshold")
    ]
    assert run(SL, series(SL, (0, 0.85), (60, 0.85)), targets={"default": 0.8}) == []
    assert run(SL, series(SL, (0, 0.1), (60, 0.1)), targets={}) == []  # no target: no judgement


@pytest.mark.parametrize(
    ("scope", "asa", "expected"),
    [
        (VOICE, 25.0, [(60, "breach", "threshold")]),  # T 20 s
        (VOICE, 20.0, []),
        (CHAT, 25.0, []),  # T 60 s
        (CHAT, 61.0, [(60, "breach", "threshold")]),
        ("queue:billing|channel:email", 1e9, []),  # no threshold known for this pair
        (BILLING, 1e9, []),  # ASA is judged per channel, not per queue
    ],
)
def test_asa_against_the_channel_threshold(scope: str, asa: float, expected: list[Any]) -> None:
    steps = series("asa_seconds", (0, asa), (60, asa), answered=30)
    assert run("asa", steps, scope=scope) == expected


def test_oldest_wait_breaches_at_three_thresholds_and_clears_at_two() -> None:
    steps = series(
        "oldest_wait_seconds", (0, 61), (60, 121), (70, 50), (130, 40), (140, 30), (200, 0)
    )
    assert run("oldest_wait", steps, scope=VOICE) == [
        (60, "breach", "threshold"),
        (200, "clear", "threshold"),
    ]


def test_no_agents_available_with_contacts_waiting() -> None:
    steps = [
        (0, {"waiting": 3, "agents_available": 0}),
        (60, {"waiting": 3, "agents_available": 0}),
        (70, {"waiting": 3, "agents_available": 1}),
        (130, {"waiting": 5, "agents_available": 2}),
        (140, {"waiting": 0, "agents_available": 0}),  # nobody waits: nothing to alert on
        (300, {"waiting": 0, "agents_available": 0}),
    ]
    assert run("no_agents_available", steps) == [
        (60, "breach", "threshold"),
        (130, "clear", "threshold"),
    ]


def test_negative_sentiment_with_its_guard() -> None:
    steps = series("negative_ratio", (0, 0.31), (60, 0.31), (70, 0.25), (130, 0.25))
    assert run("negative_sentiment", steps) == [
        (60, "breach", "threshold"),
        (130, "clear", "threshold"),
    ]
    assert (
        run("negative_sentiment", series("negative_ratio", (0, 0.9), (60, 0.9), answered=19)) == []
    )


def test_the_event_says_what_when_and_how_bad() -> None:
    detector = BreachDetector(min_duration_seconds=30.0)
    kpis = {**BUSY, SL: 0.625, "waiting": 2, "agents_available": 1}
    detector.observe(snap(1000.0, {BILLING: kpis, "all": kpis, "channel:voice": kpis}))
    (event,) = detector.observe(snap(1030.0, {BILLING: kpis}))
    assert event.as_dict() == {
        "type": "breach",
        "id": "app|service_level|queue:billing|breach|1030.000",
        "rule": "service_level",
        "kpi": "service_level",
        "scope": "queue:billing",
        "queue": "billing",
        "channel": None,
        "window": "15m",
        "value": 0.625,
        "breach_threshold": 0.8,
        "clear_threshold": pytest.approx(0.82),
        "better": "higher",
        "severity": "critical",
        "reason": "threshold",
        "since": 1000.0,
        "at": 1030.0,
        "watermark": 1028.0,
        "app_id": "app",
        "volume": 45.0,
    }
    assert orjson.loads(orjson.dumps(event.as_dict()))["value"] == 0.625
    assert detector.active() == [("service_level", "queue:billing")]


def test_only_queue_scopes_are_judged() -> None:
    detector = BreachDetector(min_duration_seconds=0.0)
    bad = {**BUSY, SL: 0.1}
    scopes = {"all": bad, "channel:voice": bad, "agent:a1": bad, BILLING: bad, VOICE: bad}
    events = detector.observe(snap(0.0, scopes))
    assert [(e.rule, e.scope) for e in events] == [("service_level", BILLING)]


def test_reset_forgets_breaches() -> None:
    detector = BreachDetector(min_duration_seconds=0.0)
    detector.observe(snap(0.0, {BILLING: {**BUSY, SL: 0.1}}))
    detector.reset()
    assert detector.active() == []


def test_memory_holds_only_breaches_in_play() -> None:
    detector = BreachDetector(min_duration_seconds=60.0)
    for at in range(0, 100, 10):
        detector.observe(snap(at, {f"queue:q{i}": {**BUSY, SL: 0.95} for i in range(50)}))
    assert detector.tracks == {}


def test_threshold_overrides() -> None:
    rules = {
        r.name: r for r in rules_with_overrides("abandon_rate=0.2:0.15, negative_sentiment=off")
    }
    assert (rules["abandon_rate"].breach, rules["abandon_rate"].clear) == (0.2, 0.15)
    assert "negative_sentiment" not in rules
    assert rules["service_level"] == RULES["service_level"]
    single = {r.name: r for r in rules_with_overrides("asa=2")}
    assert (single["asa"].breach, single["asa"].clear) == (2.0, 2.0)
    with pytest.raises(ValueError, match="CCPULSE_BREACH_THRESHOLDS: unknown rule 'nope'"):
        rules_with_overrides("nope=1:2")
    with pytest.raises(ValueError, match="CCPULSE_BREACH_THRESHOLDS"):
        rules_with_overrides("asa=fast")
    with pytest.raises(ValueError, match="clear threshold"):
        rules_with_overrides("abandon_rate=0.1:0.2")  # clearing worse than breaching


def test_a_rule_refuses_a_clear_threshold_on_the_bad_side() -> None:
    with pytest.raises(ValueError, match="clear threshold 0.7"):
        BreachRule(name="x", kpi="service_level", better="higher", breach=0.8, clear=0.7)
    with pytest.raises(ValueError, match="better"):
        BreachRule(name="x", kpi="csat", better="up", breach=0.8, clear=0.9)  # type: ignore[arg-type]


# -- BreachSink: real Redis pub/sub, a fake Kafka producer --------------------------------------


class FakeProducer:
    """Records what aiokafka's producer would send; can be told to be unreachable."""

    def __init__(self, log: FakeKafka) -> None:
        self.kafka = log
        self.started = False
        self.stopped = False

    async def start(self) -> None:
        self.kafka.starts += 1
        if self.kafka.down:
            raise KafkaConnectionError("no broker")
        self.started = True

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> None:
        await self.kafka.answering.wait()
        if self.kafka.down:
            raise KafkaConnectionError("no broker")
        self.kafka.sent.append((topic, key, orjson.loads(value)))

    async def stop(self) -> None:
        self.stopped = True


class FakeKafka:
    def __init__(self) -> None:
        self.down = False
        self.answering = asyncio.Event()
        self.answering.set()
        self.starts = 0
        self.sent: list[tuple[str, bytes, dict[str, Any]]] = []
        self.producers: list[FakeProducer] = []

    def factory(self) -> FakeProducer:
        producer = FakeProducer(self)
        self.producers.append(producer)
        return producer


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


@pytest.fixture
async def subscriber(redis_server: RedisServer) -> AsyncIterator[Any]:
    client = aioredis.Redis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe(alerts_channel("t", "app"))
    await pubsub.get_message(timeout=1.0)  # the subscribe confirmation
    yield pubsub
    await pubsub.aclose()
    await client.aclose()


async def received(pubsub: Any, count: int) -> list[dict[str, Any]]:
    messages = []
    for _ in range(50):
        message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.1)
        if message:
            messages.append(orjson.loads(message["data"]))
        if len(messages) == count:
            break
    return messages


def make_sink(redis_server: RedisServer, kafka: FakeKafka, clock: Clock) -> BreachSink:
    return BreachSink(
        BreachDetector(min_duration_seconds=0.0),
        aioredis.Redis.from_url(redis_server.url, socket_timeout=1, socket_connect_timeout=1),
        alerts_channel("t", "app"),
        "alerts",
        kafka.factory,
        clock=clock,
    )


BAD = {BILLING: {**BUSY, SL: 0.5}}
GOOD = {BILLING: {**BUSY, SL: 0.95}}


async def test_events_go_to_the_redis_channel_and_the_kafka_topic(
    redis_server: RedisServer, subscriber: Any
) -> None:
    kafka, clock = FakeKafka(), Clock()
    sink = make_sink(redis_server, kafka, clock)
    assert sink.name == "breaches"
    await sink.publish(snap(clock.now, GOOD))
    assert kafka.producers == []  # nothing to send yet: no producer started
    assert sink.last_success_at == clock.now
    await sink.publish(snap(clock.now, BAD))
    await sink.flush()
    await sink.publish(snap(clock.now, GOOD))
    await sink.flush()
    messages = await received(subscriber, 2)
    assert [(m["type"], m["scope"], m["value"]) for m in messages] == [
        ("breach", BILLING, 0.5),
        ("clear", BILLING, 0.95),
    ]
    assert [(topic, key, m["type"]) for topic, key, m in kafka.sent] == [
        ("alerts", b"service_level|queue:billing", "breach"),
        ("alerts", b"service_level|queue:billing", "clear"),
    ]
    assert kafka.starts == 1
    await sink.close()
    assert kafka.producers[0].stopped


async def test_kafka_down_logs_once_keeps_events_and_retries_later(
    redis_server: RedisServer, subscriber: Any, caplog: pytest.LogCaptureFixture
) -> None:
    kafka, clock = FakeKafka(), Clock()
    kafka.down = True
    sink = make_sink(redis_server, kafka, clock)
    with caplog.at_level(logging.WARNING, logger="sinks.breaches"):
        await sink.publish(snap(clock.now, BAD))  # never raises
        await sink.flush()
        for _ in range(5):
            clock.now += 60
            await sink.publish(snap(clock.now, BAD))
            await sink.flush()
    assert len([r for r in caplog.records if "cannot send alerts to kafka" in r.message]) == 1
    assert sink.failures == 6
    assert sink.last_success_at is None
    assert len(await received(subscriber, 1)) == 1  # Redis got it meanwhile
    clock.now += 0.1
    await sink.publish(snap(clock.now, GOOD))  # backing off: not even tried
    await sink.flush()
    assert kafka.starts == 6
    kafka.down = False
    clock.now += 60
    await sink.publish(snap(clock.now, GOOD))
    await sink.flush()
    assert sink.last_success_at is None  # the Kafka send finished after that publish
    await sink.publish(snap(clock.now, GOOD))
    assert [m["type"] for _, _, m in kafka.sent] == ["breach", "clear"]  # in order, none lost
    assert sink.last_success_at == clock.now
    await sink.close()


async def test_a_kafka_that_does_not_answer_does_not_hold_up_publishing(
    redis_server: RedisServer, subscriber: Any
) -> None:
    kafka, clock = FakeKafka(), Clock()
    kafka.answering.clear()
    sink = make_sink(redis_server, kafka, clock)
    await asyncio.wait_for(sink.publish(snap(clock.now, BAD)), 1.0)
    await asyncio.wait_for(sink.publish(snap(clock.now, GOOD)), 1.0)
    assert [m["type"] for m in await received(subscriber, 2)] == ["breach", "clear"]
    assert kafka.sent == [] and sink.last_success_at is None
    kafka.answering.set()
    await sink.flush()
    await sink.publish(snap(clock.now, GOOD))  # the clear is still pending: sent now
    await sink.flush()
    assert [m["type"] for _, _, m in kafka.sent] == ["breach", "clear"]
    await sink.close()


async def test_redis_down_keeps_events_until_it_is_back(
    redis_server: RedisServer, caplog: pytest.LogCaptureFixture
) -> None:
    kafka, clock = FakeKafka(), Clock()
    sink = make_sink(redis_server, kafka, clock)
    redis_server.stop()
    with caplog.at_level(logging.WARNING, logger="sinks.breaches"):
        await sink.publish(snap(clock.now, BAD))
        clock.now += 60
        await sink.publish(snap(clock.now, BAD))
        await sink.flush()
    assert len([r for r in caplog.records if "cannot send alerts to redis" in r.message]) == 1
    assert [m["type"] for _, _, m in kafka.sent] == ["breach"]  # Kafka is not held back
    redis_server.start()
    client = aioredis.Redis.from_url(redis_server.url)
    pubsub = client.pubsub()
    await pubsub.subscribe(alerts_channel("t", "app"))
    await pubsub.get_message(timeout=1.0)
    clock.now += 60
    await sink.publish(snap(clock.now, BAD))
    assert [m["type"] for m in await received(pubsub, 1)] == ["breach"]
    assert sink.last_success_at == clock.now
    await pubsub.aclose()
    await client.aclose()
    await sink.close()


async def test_a_follower_judges_nothing(redis_server: RedisServer) -> None:
    kafka, clock = FakeKafka(), Clock()
    sink = make_sink(redis_server, kafka, clock)
    await sink.publish(snap(clock.now, BAD))
    await sink.publish(snap(clock.now, BAD, leader=False))
    assert sink.detector.active() == []
    await sink.publish(snap(clock.now, BAD, leader=False))
    await sink.flush()
    assert len(kafka.sent) == 1
    await sink.close()


def test_from_settings_uses_the_app_prefix_and_topic() -> None:
    from stream.settings import Settings

    settings = Settings(redis_prefix="pre", app_id="shop", alerts_topic="shop-alerts")
    sink = BreachSink.from_settings(settings, 15.0, "abandon_rate=0.2:0.1")
    assert sink.channel == "pre:v1:shop:alerts"
    assert sink.topic == "shop-alerts"
    assert sink.detector.min_duration_seconds == 15.0
    assert {r.name: r for r in sink.detector.rules}["abandon_rate"].breach == 0.2
    asyncio.run(sink.close())


def test_default_rules_match_the_prometheus_alerts() -> None:
    """The in-app thresholds are the Prometheus alert thresholds (docs/alerts.md)."""
    assert (RULES["abandon_rate"].breach, RULES["abandon_rate"].min_volume) == (0.10, 20)
    assert (RULES["negative_sentiment"].breach, RULES["negative_sentiment"].min_volume) == (
        0.30,
        20,
    )
    assert (RULES["service_level"].breach, RULES["service_level"].relative_to) == (1.0, "sl_target")
    assert (RULES["asa"].breach, RULES["asa"].relative_to) == (1.0, "sl_threshold")
    assert (RULES["oldest_wait"].breach, RULES["oldest_wait"].relative_to) == (3.0, "sl_threshold")
    assert replace(RULES["asa"], clear=1.0).clear == 1.0
