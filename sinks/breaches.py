"""In-app SLA breach events: breach/clear with hysteresis and a minimum duration.

``BreachDetector`` is pure: it takes successive snapshots and returns the breach and clear
events they cause. A KPI breaches when it is worse than its *breach* threshold, and clears
only when it is back at or better than a separate *clear* threshold, each for at least
``min_duration_seconds`` of wall clock (``Snapshot.generated_at``). So a service level
wobbling around its target neither flickers a wallboard tile nor floods a topic.

``BreachSink`` sends every event as JSON to the Redis pub/sub channel
``<prefix>:v1:<app_id>:alerts`` and to the Kafka alerts topic. The rules, thresholds and the
event format are in docs/alerts.md; they mirror the Prometheus alerts of ops/prometheus.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Callable, Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import TYPE_CHECKING, Any, Literal, Protocol

import orjson
import redis.asyncio as aioredis
from aiokafka.errors import KafkaError

from sinks.redis import UNAVAILABLE, connect, key_base, redacted

if TYPE_CHECKING:  # at runtime sinks stay free of stream's Faust imports
    from stream.settings import Settings
    from stream.snapshot import Snapshot

log = logging.getLogger(__name__)

Better = Literal["higher", "lower"]
Reference = Literal["sl_target", "sl_threshold"]
Level = Literal["queue", "queue_channel"]

DEFAULT_MIN_DURATION_SECONDS = 60.0
BACKOFF_FIRST_SECONDS = 0.5
BACKOFF_MAX_SECONDS = 30.0
KAFKA_TIMEOUT_SECONDS = 5.0
MAX_PENDING_EVENTS = 10_000  # per destination while it is down; the oldest go first
KAFKA_UNAVAILABLE: tuple[type[BaseException], ...] = (KafkaError, OSError, asyncio.TimeoutError)
STOP_ERRORS: tuple[type[BaseException], ...] = (*KAFKA_UNAVAILABLE, RuntimeError)


@dataclass(frozen=True)
class BreachRule:
    """When one KPI of a queue (or queue x channel) is in breach, and when it is clear.

    Higher is better: breach below ``breach``, clear at or above ``clear``. Lower is better:
    breach above ``breach``, clear at or below ``clear``. With ``relative_to`` both are
    multiples of the queue's service-level target or of the queue x channel's threshold T
    (service level 1.0 x target, clear 1.025 x target: 0.8 breaches below 0.8, clears at 0.82).
    """

    name: str
    kpi: str  # a canonical KPI name of the snapshot, or a name in DERIVED
    better: Better
    breach: float
    clear: float
    relative_to: Reference | None = None
    level: Level = "queue"
    window: str = "15m"
    volume: tuple[str, ...] = ()  # KPIs added up for the volume guard; "-name" subtracts
    min_volume: float = 0.0
    severity: str = "warning"

    def __post_init__(self) -> None:
        if self.better not in ("higher", "lower"):
            raise ValueError(f"breach rule {self.name}: better must be 'higher' or 'lower'")
        wrong_side = (
            self.clear < self.breach if self.better == "higher" else self.clear > self.breach
        )
        if wrong_side:
            raise ValueError(
                f"breach rule {self.name}: the clear threshold {self.clear} must be at least as "
                f"good as the breach threshold {self.breach} ({self.better} is better)"
            )

    def worse(self, value: float, threshold: float) -> bool:
        """Say whether a value is strictly worse than a threshold."""
        return value < threshold if self.better == "higher" else value > threshold


def _waiting_unattended(kpis: Mapping[str, Any]) -> float | None:
    """Contacts waiting on a queue none of whose agents is available (0 otherwise)."""
    waiting, available = kpis.get("waiting"), kpis.get("agents_available")
    if waiting is None:
        return None
    return float(waiting) if not available else 0.0


# KPIs computed from others, for conditions that are not one KPI against a number.
DERIVED: Mapping[str, Callable[[Mapping[str, Any]], float | None]] = {
    "waiting_unattended": _waiting_unattended,
}

# The Prometheus alerts of ops/prometheus/rules/ccpulse-alerts.yml, with a clear threshold.
DEFAULT_RULES: tuple[BreachRule, ...] = (
    BreachRule(
        name="service_level",
        kpi="service_level",
        better="higher",
        breach=1.0,
        clear=1.025,
        relative_to="sl_target",
        volume=("answered", "abandoned"),
        min_volume=20,
        severity="critical",
    ),
    BreachRule(
        name="abandon_rate",
        kpi="abandon_rate",
        better="lower",
        breach=0.10,
        clear=0.08,
        volume=("offered", "-short_abandoned"),
        min_volume=20,
    ),
    BreachRule(
        name="asa",
        kpi="asa_seconds",
        better="lower",
        breach=1.0,
        clear=0.8,
        relative_to="sl_threshold",
        level="queue_channel",
        volume=("answered",),
        min_volume=20,
    ),
    BreachRule(
        name="oldest_wait",
        kpi="oldest_wait_seconds",
        better="lower",
        breach=3.0,
        clear=2.0,
        relative_to="sl_threshold",
        level="queue_channel",
    ),
    BreachRule(
        name="negative_sentiment",
        kpi="negative_ratio",
        better="lower",
        breach=0.30,
        clear=0.25,
        volume=("answered",),
        min_volume=20,
    ),
    BreachRule(
        name="no_agents_available",
        kpi="waiting_unattended",
        better="lower",
        breach=0.0,
        clear=0.0,
    ),
)


def rules_with_overrides(
    text: str,
    rules: Iterable[BreachRule] = DEFAULT_RULES,
    variable: str = "CCPULSE_BREACH_THRESHOLDS",
) -> tuple[BreachRule, ...]:
    """Apply ``name=breach:clear`` (or ``name=off``) items, comma-separated, to rules.

    Example: ``abandon_rate=0.12:0.09,negative_sentiment=off``. Relative rules take
    multiples: ``service_level=0.95:1.0`` breaches below 95 % of the target.
    """
    by_name = {rule.name: rule for rule in rules}
    for item in filter(None, (part.strip() for part in text.split(","))):
        name, _, value = (part.strip() for part in item.partition("="))
        if name not in by_name:
            raise ValueError(f"{variable}: unknown rule {name!r} (one of {', '.join(by_name)})")
        if value == "off":
            del by_name[name]
            continue
        breach, _, clear = value.partition(":")
        try:
            rule = replace(by_name[name], breach=float(breach), clear=float(clear or breach))
        except ValueError as exc:
            raise ValueError(f"{variable}: {item!r}: {exc} (want name=breach:clear)") from exc
        by_name[name] = rule
    return tuple(by_name.values())


@dataclass(frozen=True)
class BreachEvent:
    """One breach or clear of a rule for a scope."""

    type: Literal["breach", "clear"]
    rule: str
    kpi: str
    scope: str  # "queue:billing" or "queue:billing|channel:voice"
    queue: str
    channel: str | None
    window: str
    value: float | None  # the KPI when the event fired (None: the window is empty)
    breach_threshold: float | None  # None: the reference (target, threshold) is gone
    clear_threshold: float | None
    better: Better
    severity: str
    reason: Literal["threshold", "no_data"]
    since: float  # wall clock (epoch s) the condition began holding
    at: float  # wall clock (epoch s) of the snapshot that fired it
    watermark: float  # event time the KPIs end at
    app_id: str
    volume: float | None = None

    @property
    def key(self) -> str:
        """Return the Kafka key: events of one rule and scope stay in order."""
        return f"{self.rule}|{self.scope}"

    def as_dict(self) -> dict[str, Any]:
        """Return the event as the JSON object docs/alerts.md describes."""
        event_id = f"{self.app_id}|{self.key}|{self.type}|{self.at:.3f}"
        return {"type": self.type, "id": event_id, **asdict(self)}


@dataclass(frozen=True)
class Reading:
    """One rule's view of one scope in one snapshot."""

    value: float | None
    breach_at: float | None  # None: the reference (target, threshold) is unknown
    clear_at: float | None
    volume: float | None

    def verdict(self, rule: BreachRule) -> Literal["bad", "good", "hold"]:
        """Bad: judge a breach. Good: judge a clear. Hold: too little to judge either way."""
        if self.value is None:
            return "good"  # an empty window breaches nothing
        if self.breach_at is None or self.clear_at is None:
            return "hold"
        if self.volume is not None and self.volume < rule.min_volume:
            return "hold"
        if rule.worse(self.value, self.breach_at):
            return "bad"
        return "hold" if rule.worse(self.value, self.clear_at) else "good"


def scope_parts(scope: str) -> tuple[str, str | None] | None:
    """Return (queue, channel) of a queue or queue x channel scope, else None."""
    parts = dict(part.partition(":")[::2] for part in scope.split("|"))
    if "queue" not in parts or set(parts) - {"queue", "channel"}:
        return None
    return parts["queue"], parts.get("channel")


def read(rule: BreachRule, scope: str, kpis: Mapping[str, Any], snapshot: Snapshot) -> Reading:
    """Return a rule's value, thresholds and volume for one scope."""
    queue, channel = scope_parts(scope) or ("", None)
    derive = DERIVED.get(rule.kpi)
    raw = derive(kpis) if derive else kpis.get(rule.kpi)
    value = float(raw) if isinstance(raw, int | float) and not isinstance(raw, bool) else None
    scale = _reference(rule, snapshot, queue, channel)
    volume = _volume(rule.volume, kpis) if rule.volume else None
    if scale is None:
        return Reading(value, None, None, volume)
    return Reading(value, rule.breach * scale, rule.clear * scale, volume)


def _reference(
    rule: BreachRule, snapshot: Snapshot, queue: str, channel: str | None
) -> float | None:
    """Return what the rule's thresholds multiply: 1, the SL target or T (None: unknown)."""
    if rule.relative_to == "sl_target":
        targets = snapshot.sl_targets
        return targets.get(queue, targets.get("default"))
    if rule.relative_to == "sl_threshold":
        return snapshot.sl_thresholds.get(f"{queue}|{channel}")
    return 1.0


def _volume(names: tuple[str, ...], kpis: Mapping[str, Any]) -> float:
    total = 0.0
    for name in names:
        sign, kpi = (-1.0, name[1:]) if name.startswith("-") else (1.0, name)
        total += sign * float(kpis.get(kpi) or 0)
    return total


def _at_level(scope: str, level: Level) -> bool:
    parts = scope_parts(scope)
    return parts is not None and (parts[1] is not None) == (level == "queue_channel")


@dataclass
class _Track:
    """A rule's state for one scope: breached or not, and since when the change is pending."""

    breached: bool = False
    pending_since: float | None = None


@dataclass
class BreachDetector:
    """Turn successive snapshots into breach/clear events (pure: no I/O, no clock of its own)."""

    rules: tuple[BreachRule, ...] = DEFAULT_RULES
    min_duration_seconds: float = DEFAULT_MIN_DURATION_SECONDS
    tracks: dict[tuple[str, str], _Track] = field(default_factory=dict)

    def observe(self, snapshot: Snapshot) -> list[BreachEvent]:
        """Return the events one more snapshot causes."""
        events: list[BreachEvent] = []
        seen: set[tuple[str, str]] = set()
        for rule in self.rules:
            for scope, kpis in sorted(snapshot.windows.get(rule.window, {}).items()):
                if _at_level(scope, rule.level):
                    seen.add((rule.name, scope))
                    events.extend(self._step(rule, scope, kpis, snapshot))
        by_name = {rule.name: rule for rule in self.rules}
        for rule_name, scope in sorted(set(self.tracks) - seen):  # the scope left the window
            events.extend(self._step(by_name[rule_name], scope, {}, snapshot))
        return events

    def active(self) -> list[tuple[str, str]]:
        """Return (rule, scope) of every breach in force."""
        return sorted(key for key, track in self.tracks.items() if track.breached)

    def reset(self) -> None:
        """Forget every breach (another worker leads and judges now)."""
        self.tracks.clear()

    def _step(
        self, rule: BreachRule, scope: str, kpis: Mapping[str, Any], snapshot: Snapshot
    ) -> list[BreachEvent]:
        """Advance one rule for one scope; return its event if the state flips."""
        key = (rule.name, scope)
        track = self.tracks.setdefault(key, _Track())
        reading = read(rule, scope, kpis, snapshot)
        now = snapshot.generated_at
        events: list[BreachEvent] = []
        if reading.verdict(rule) != ("good" if track.breached else "bad"):
            track.pending_since = None  # the change must hold without a break
        else:
            if track.pending_since is None:
                track.pending_since = now
            if now - track.pending_since >= self.min_duration_seconds:
                events.append(self._event(rule, scope, reading, track, snapshot))
                track.breached, track.pending_since = not track.breached, None
        if not track.breached and track.pending_since is None:
            del self.tracks[key]  # nothing to remember: keeps memory to the breaches in play
        return events

    @staticmethod
    def _event(
        rule: BreachRule, scope: str, reading: Reading, track: _Track, snapshot: Snapshot
    ) -> BreachEvent:
        queue, channel = scope_parts(scope) or ("", None)
        return BreachEvent(
            type="clear" if track.breached else "breach",
            rule=rule.name,
            kpi=rule.kpi,
            scope=scope,
            queue=queue,
            channel=channel,
            window=rule.window,
            value=reading.value,
            breach_threshold=reading.breach_at,
            clear_threshold=reading.clear_at,
            better=rule.better,
            severity=rule.severity,
            reason="no_data" if reading.value is None else "threshold",
            since=track.pending_since if track.pending_since is not None else snapshot.generated_at,
            at=snapshot.generated_at,
            watermark=snapshot.watermark,
            app_id=snapshot.app_id,
            volume=reading.volume,
        )


# -- publishing --------------------------------------------------------------------------------


class Producer(Protocol):
    """The part of aiokafka's ``AIOKafkaProducer`` the sink uses."""

    async def start(self) -> None: ...

    async def send_and_wait(self, topic: str, value: bytes, key: bytes) -> Any: ...

    async def stop(self) -> None: ...


@dataclass
class _Destination:
    """One place events go (Redis or Kafka): its unsent events, backoff and log-once flag."""

    name: str
    target: str  # for logs, without secrets
    pending: deque[tuple[bytes, bytes]] = field(
        default_factory=lambda: deque(maxlen=MAX_PENDING_EVENTS)
    )
    backoff: float = 0.0
    next_try: float = 0.0
    down: bool = False

    def failed(self, exc: BaseException, now: float) -> None:
        if not self.down:
            log.warning(
                "breaches sink: cannot send alerts to %s %s (%s: %s); %d event(s) kept, retrying "
                "with backoff up to %.0f s",
                self.name,
                self.target,
                type(exc).__name__,
                exc,
                len(self.pending),
                BACKOFF_MAX_SECONDS,
            )
            self.down = True
        self.backoff = min(BACKOFF_MAX_SECONDS, self.backoff * 2 or BACKOFF_FIRST_SECONDS)
        self.next_try = now + self.backoff

    def succeeded(self) -> None:
        if self.down:
            log.info("breaches sink: %s %s reachable again", self.name, self.target)
        self.down, self.backoff, self.next_try = False, 0.0, 0.0


def alerts_channel(prefix: str, app_id: str) -> str:
    """Return the Redis pub/sub channel of breach events: ``<prefix>:v1:<app_id>:alerts``."""
    return key_base(prefix, app_id) + "alerts"


class BreachSink:
    """Detect breaches in the leader's snapshots; send them to Redis pub/sub and Kafka."""

    name = "breaches"

    def __init__(
        self,
        detector: BreachDetector,
        redis_client: aioredis.Redis,
        channel: str,
        topic: str,
        producer_factory: Callable[[], Producer],
        clock: Callable[[], float] = time.time,
        redis_target: str = "redis",
        kafka_target: str = "kafka",
    ) -> None:
        self.detector = detector
        self.client = redis_client
        self.channel = channel
        self.topic = topic
        self.producer_factory = producer_factory
        self.producer: Producer | None = None  # started at the first event, not before
        self.clock = clock
        self.redis = _Destination("redis channel", f"{redis_target} {channel}")
        self.kafka = _Destination("kafka topic", f"{kafka_target} {topic}")
        # Kafka sends run in the background: a broker that does not answer must not hold up
        # the publish loop (and with it the Redis sink's writes) for seconds.
        self.kafka_task: asyncio.Task[None] | None = None
        self.last_success_at: float | None = None
        self.failures = 0  # failed send attempts since start (a counter)

    @classmethod
    def from_settings(
        cls,
        settings: Settings,
        min_duration_seconds: float = DEFAULT_MIN_DURATION_SECONDS,
        thresholds: str = "",
    ) -> BreachSink:
        """Build the sink a worker uses: its Redis URL and prefix, broker and alerts topic."""
        detector = BreachDetector(rules_with_overrides(thresholds), min_duration_seconds)
        return cls(
            detector,
            connect(settings.redis_url),
            alerts_channel(settings.redis_prefix, settings.app_id),
            settings.alerts_topic,
            lambda: kafka_producer(settings),
            redis_target=redacted(settings.redis_url),
            kafka_target=settings.broker,
        )

    async def publish(self, snapshot: Snapshot) -> None:
        """Judge a leader's snapshot and send its events; never raise for a backend."""
        if not snapshot.leader:
            self.detector.reset()  # the leader judges; when we lead again we start afresh
            return
        for event in self.detector.observe(snapshot):
            message = (event.key.encode(), orjson.dumps(event.as_dict()))
            self.redis.pending.append(message)
            self.kafka.pending.append(message)
        now = self.clock()
        redis_ok = await self._send_redis(now)
        self._start_kafka(now)
        if redis_ok and not self.kafka.pending and not self.kafka.down:
            self.last_success_at = now

    async def flush(self) -> None:
        """Wait for the Kafka send in progress, if any."""
        if self.kafka_task is not None:
            await self.kafka_task

    async def _send_redis(self, now: float) -> bool:
        destination = self.redis
        if not destination.pending:
            return True
        if now < destination.next_try:
            return False
        try:
            while destination.pending:
                await self.client.publish(self.channel, destination.pending[0][1])
                destination.pending.popleft()
        except UNAVAILABLE as exc:
            self.failures += 1
            destination.failed(exc, now)
            return False
        destination.succeeded()
        return True

    def _start_kafka(self, now: float) -> None:
        running = self.kafka_task is not None and not self.kafka_task.done()
        if self.kafka.pending and now >= self.kafka.next_try and not running:
            self.kafka_task = asyncio.create_task(self._send_kafka(now))

    async def _send_kafka(self, now: float) -> None:
        """Send the pending events in order; on failure keep them and back off."""
        destination = self.kafka
        try:
            producer = await self._producer()
            while destination.pending:
                key, value = destination.pending[0]
                send = producer.send_and_wait(self.topic, value=value, key=key)
                await asyncio.wait_for(send, KAFKA_TIMEOUT_SECONDS)
                destination.pending.popleft()
        except KAFKA_UNAVAILABLE as exc:
            self.failures += 1
            destination.failed(exc, now)
            await self._drop_producer()  # a fresh one next time: aiokafka's may be wedged
            return
        destination.succeeded()

    async def _producer(self) -> Producer:
        if self.producer is None:
            producer = self.producer_factory()
            self.producer = producer
            await asyncio.wait_for(producer.start(), KAFKA_TIMEOUT_SECONDS)
        return self.producer

    async def _drop_producer(self) -> None:
        producer, self.producer = self.producer, None
        if producer is not None:
            try:
                await asyncio.wait_for(producer.stop(), KAFKA_TIMEOUT_SECONDS)
            except STOP_ERRORS:
                pass  # it is being thrown away: whatever state it is in

    async def close(self) -> None:
        """Send what Kafka can still take, stop the producer, close the Redis client."""
        await self.flush()
        if self.kafka.pending and not self.kafka.down:
            await self._send_kafka(self.clock())
        await self._drop_producer()
        await self.client.aclose()


def kafka_producer(settings: Settings) -> Producer:
    """Return an aiokafka producer (not started) for the settings' broker and security."""
    from aiokafka import AIOKafkaProducer
    from aiokafka.helpers import create_ssl_context

    from stream.topics import bootstrap_servers

    options: dict[str, Any] = {
        "bootstrap_servers": bootstrap_servers(settings),
        "client_id": f"{settings.app_id}-breaches",
        "acks": "all",
        "request_timeout_ms": int(KAFKA_TIMEOUT_SECONDS * 1000),
    }
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        options["security_protocol"] = protocol
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = create_ssl_context(cafile=settings.kafka_ssl_cafile or None)
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    producer: Producer = AIOKafkaProducer(**options)
    return producer
