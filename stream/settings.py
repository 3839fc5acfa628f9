"""Settings: one frozen object, read from ``CCPULSE_*`` environment variables once.

Every field names its unit. Nothing else in ccpulse reads ``os.environ``. The README's
settings table is generated from the field metadata here (``ccpulse settings``).
"""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ccpulse.adapters import FORMATS

ENV_PREFIX = "CCPULSE_"

# Service-level thresholds by channel when no per-queue override is set (SPEC §2).
DEFAULT_SL_SECONDS: Mapping[str, float] = {
    "voice": 20.0,
    "chat": 60.0,
    "sms": 3600.0,
    "social": 3600.0,
    "video": 20.0,
    "email": 4 * 3600.0,
}


class SettingsError(ValueError):
    """A ``CCPULSE_*`` variable has a value ccpulse cannot use."""


def _doc(text: str, default: Any, secret: bool = False) -> Any:
    return field(default=default, metadata={"doc": text, "secret": secret})


@dataclass(frozen=True)
class Settings:
    """Everything a worker, the CLI and the wallboard need to know, with units."""

    broker: str = _doc("Kafka bootstrap URL(s), comma-separated.", "kafka://127.0.0.1:9092")
    input_topic: str = _doc("Topic of canonical contact-center events.", "contact-events")
    dead_letter_topic: str = _doc(
        "Topic receiving invalid input with its reason.", "contact-events-dlq"
    )
    alerts_topic: str = _doc("Topic receiving SLA breach/clear events.", "ccpulse-alerts")
    platform_topics: str = _doc(
        "Raw platform topics the worker maps onto the input topic: `format=topic`, "
        "comma-separated, with the formats of `ccpulse replay --format` "
        "(`asterisk-queue-log=raw-asterisk,zendesk=raw-zendesk`).",
        "",
    )
    app_id: str = _doc(
        "Faust app id: consumer group and prefix of internal topics and Redis keys.", "ccpulse"
    )
    partitions: int = _doc(
        "Partitions of the input topic and of every internal topic (fixed up front).", 4
    )
    redis_url: str = _doc(
        "Redis URL (redis://, or rediss:// for TLS with ?ssl_ca_certs=<CA file>; user:password@ for AUTH).",
        "redis://127.0.0.1:6379/0",
        secret=True,
    )
    redis_prefix: str = _doc("First segment of every Redis key.", "ccpulse")
    redis_ttl_seconds: int = _doc("TTL of every KPI hash in Redis, seconds.", 3600)
    web_host: str = _doc("Address the worker's web server binds.", "127.0.0.1")
    web_port: int = _doc("Worker web port: /metrics, /healthz, wallboard.", 6066)
    data_dir: str = _doc("Folder for the worker's local table state.", "data")
    time_zone: str = _doc("IANA time zone of the `today` window.", "UTC")
    day_reset_hour: int = _doc("Local hour (0-23) at which `today` starts.", 0)
    interval_minutes: int = _doc("Length of the fixed `interval` window: 15 or 30 minutes.", 15)
    bucket_seconds: int = _doc(
        "Bucket size of rolling windows, seconds; a rolling window spans whole buckets.", 30
    )
    allowed_lateness_seconds: float = _doc(
        "How far behind the watermark an event may arrive and still count, seconds.", 120.0
    )
    max_future_seconds: float = _doc(
        "Events stamped further ahead of the wall clock are dead-lettered, seconds.", 300.0
    )
    live: bool = _doc(
        "Live mode: the watermark never lags the wall clock by more than the lateness.", True
    )
    publish_interval_seconds: float = _doc(
        "How often snapshots are published, seconds (from the start of one to the next; the "
        "publish duty cap may space them further).",
        0.15,
    )
    heartbeat_seconds: float = _doc("Publish at least this often even if nothing changed.", 5.0)
    short_abandon_seconds: float = _doc(
        "Default short-abandon threshold: abandons with wait below it, seconds.", 5.0
    )
    sl_thresholds: str = _doc(
        "Service-level thresholds: `channel=seconds` or `queue/channel=seconds`, "
        "comma-separated, over the defaults voice 20, chat 60, email 14400.",
        "",
    )
    short_abandon_overrides: str = _doc(
        "Per-queue short-abandon thresholds: `queue=seconds`, comma-separated.", ""
    )
    sl_targets: str = _doc(
        "Service-level targets (0..1) for the wallboard and alerts: `default=0.8,queue=0.9`.",
        "default=0.8",
    )
    fcr_repeat_days: float = _doc("Window for repeat-contact FCR detection, days.", 7.0)
    sentiment_negative_below: float = _doc(
        "A contact's rolling sentiment below this is negative (−1..1).", -0.05
    )
    agent_stale_seconds: float = _doc(
        "An agent with no event for this long is shown as stale, seconds.", 1800.0
    )
    contact_horizon_seconds: float = _doc(
        "Closed contacts (and their dedupe ids) are forgotten after this long, seconds.",
        6 * 3600.0,
    )
    open_contact_horizon_seconds: float = _doc(
        "Contacts with no event for this long are forgotten even if open, seconds.", 2 * 86400.0
    )
    max_event_bytes: int = _doc("Larger input messages are dead-lettered, bytes.", 65536)
    batch_size: int = _doc("Events taken per batch before one state write per key.", 2000)
    batch_seconds: float = _doc(
        "How long a batch waits for more events after the last one was applied, seconds, "
        "while the worker keeps up (at least 0.1 while it is behind).",
        0.05,
    )
    producer_batch_bytes: int = _doc(
        "Largest batch of records the Kafka producer sends to one partition at a time, bytes "
        "(state changelogs, customer facts, dead letters; keep it under the broker's "
        "`message.max.bytes`, 1 MiB by default).",
        524288,
    )
    wallboard_token: str = _doc(
        "Optional bearer token the wallboard and its event stream require.", "", secret=True
    )
    kafka_security_protocol: str = _doc(
        "PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL.", "PLAINTEXT"
    )
    kafka_sasl_mechanism: str = _doc("PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512.", "PLAIN")
    kafka_sasl_username: str = _doc("SASL user name.", "")
    kafka_sasl_password: str = _doc("SASL password.", "", secret=True)
    kafka_ssl_cafile: str = _doc("CA bundle for Kafka TLS.", "")
    session_timeout_seconds: float = _doc(
        "A worker silent this long (killed, hung) leaves the consumer group and its "
        "partitions move to the others, seconds (Kafka allows 6 to 300 by default).",
        10.0,
    )
    fetch_max_wait_seconds: float = _doc(
        "Longest the broker holds a fetch of the input while it has nothing new, seconds "
        "(Faust's own choice is 1.5: KPIs then reached Redis 1-2 s after their events).",
        0.1,
    )
    prompt_delivery: bool = _doc(
        "Hand fetched messages to the agents without mode's four tasks a message "
        "(stream/delivery.py; docs/reliability.md; with the batch feed, ccpulse ran at "
        "1.21-1.26x its events/s without it). false: mode's own path.",
        True,
    )
    checkpoint_max_age_seconds: float = _doc(
        "Workers write their partitions' state to <data_dir>/checkpoints when they stop and "
        "while they run; a restart reads one younger than this and only the changelog after "
        "it, seconds (at most 43200, half of Kafka's default tombstone retention; 0 turns "
        "checkpoints off).",
        21600.0,
    )
    checkpoint_interval_seconds: float = _doc(
        "How often a running worker also writes its checkpoints, from a forked child, so a "
        "killed worker restarts from one too, seconds (0: only when stopping).",
        60.0,
    )
    log_level: str = _doc("Worker log level.", "WARNING")
    event_loop: str = _doc(
        "The worker's event loop: uvloop (libuv; 9 % more events/s and a lower freshness "
        "p99 in the benchmarks) or asyncio (the standard library's).",
        "uvloop",
    )

    def __repr__(self) -> str:
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.metadata.get("secret"):
                value = _redact(f.name, value)
            shown.append(f"{f.name}={value!r}")
        return f"Settings({', '.join(shown)})"

    __str__ = __repr__

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Settings:
        """Read every field from ``CCPULSE_<NAME>``; fail loudly naming the variable."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            name = ENV_PREFIX + f.name.upper()
            if name in env:
                values[f.name] = _parse(name, env[name], type(f.default))
        values.update(overrides)
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check cross-field rules; raise SettingsError naming the variable."""
        try:
            ZoneInfo(self.time_zone)
        except (ZoneInfoNotFoundError, ValueError) as exc:
            raise SettingsError(f"CCPULSE_TIME_ZONE: unknown time zone {self.time_zone!r}") from exc
        if self.interval_minutes not in (15, 30):
            raise SettingsError("CCPULSE_INTERVAL_MINUTES: must be 15 or 30")
        if not 0 <= self.day_reset_hour <= 23:
            raise SettingsError("CCPULSE_DAY_RESET_HOUR: must be 0..23")
        if self.bucket_seconds <= 0 or 300 % self.bucket_seconds:
            raise SettingsError("CCPULSE_BUCKET_SECONDS: must divide 300 (5 minutes)")
        if self.partitions < 1:
            raise SettingsError("CCPULSE_PARTITIONS: must be at least 1")
        if not 6.0 <= self.session_timeout_seconds <= 300.0:
            raise SettingsError("CCPULSE_SESSION_TIMEOUT_SECONDS: must be 6..300 (the broker's limits)")
        if not 0.0 < self.fetch_max_wait_seconds <= 30.0:
            raise SettingsError("CCPULSE_FETCH_MAX_WAIT_SECONDS: must be above 0 and at most 30")
        if not 0.0 <= self.checkpoint_max_age_seconds <= 43200.0:
            raise SettingsError("CCPULSE_CHECKPOINT_MAX_AGE_SECONDS: must be 0..43200")
        if self.checkpoint_interval_seconds < 0:
            raise SettingsError("CCPULSE_CHECKPOINT_INTERVAL_SECONDS: must be 0 or more")
        if self.event_loop not in ("uvloop", "asyncio"):
            raise SettingsError("CCPULSE_EVENT_LOOP: must be uvloop or asyncio")
        if self.redis_ttl_seconds <= self.heartbeat_seconds:
            raise SettingsError(
                "CCPULSE_REDIS_TTL_SECONDS: must be longer than CCPULSE_HEARTBEAT_SECONDS "
                "(TTLs restart on heartbeats)"
            )
        if not 1024 <= self.producer_batch_bytes <= 1_000_000:
            raise SettingsError(
                "CCPULSE_PRODUCER_BATCH_BYTES: must be 1024..1000000 (the producer's request limit)"
            )
        sl_threshold_table(self)
        short_abandon_table(self)
        sl_target_table(self)
        platform_topic_table(self)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.time_zone)

    @property
    def interval_seconds(self) -> int:
        return self.interval_minutes * 60

    def sl_threshold_seconds(self, queue: str, channel: str) -> float:
        """Service-level threshold T for a queue and channel, seconds."""
        table = sl_threshold_table(self)
        return table.get(
            (queue, channel), table.get((None, channel), DEFAULT_SL_SECONDS.get(channel, 20.0))
        )

    def short_abandon_threshold(self, queue: str) -> float:
        """Short-abandon threshold for a queue, seconds."""
        return short_abandon_table(self).get(queue, self.short_abandon_seconds)

    def sl_target(self, queue: str | None) -> float:
        """Service-level target (0..1) of a queue, or the default."""
        table = sl_target_table(self)
        return table.get(queue or "default", table.get("default", 0.8))

    def described(self) -> list[tuple[str, str, str]]:
        """(variable, default, meaning) for every setting: the README's settings table."""
        rows = []
        for f in dataclasses.fields(self):
            rows.append((ENV_PREFIX + f.name.upper(), repr(f.default), f.metadata["doc"]))
        return rows


def _redact(name: str, value: Any) -> Any:
    if not value:
        return value
    if name == "redis_url" and "@" in str(value):
        scheme, _, rest = str(value).partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    if name == "redis_url":
        return value
    return "***"


def _parse(name: str, raw: str, kind: type) -> Any:
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
                raise ValueError(raw)
            return lowered in ("1", "true", "yes", "on")
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        return raw
    except ValueError as exc:
        raise SettingsError(f"{name}: expected {kind.__name__}, got {raw!r}") from exc


def _pairs(variable: str, raw: str) -> list[tuple[str, float]]:
    pairs = []
    for item in filter(None, (part.strip() for part in raw.split(","))):
        key, sep, value = item.partition("=")
        try:
            pairs.append((key.strip(), float(value)))
        except ValueError as exc:
            raise SettingsError(f"{variable}: cannot read {item!r} (want name=number)") from exc
        if not sep or not key.strip():
            raise SettingsError(f"{variable}: cannot read {item!r} (want name=number)")
    return pairs


def sl_threshold_table(settings: Settings) -> dict[tuple[str | None, str], float]:
    """Parse CCPULSE_SL_THRESHOLDS into {(queue or None, channel): seconds} (do not change it)."""
    return _sl_thresholds(settings.sl_thresholds)


# The pipeline asks for a threshold at every answer and abandon: parse each text once.
@functools.lru_cache(maxsize=32)
def _sl_thresholds(raw: str) -> dict[tuple[str | None, str], float]:
    table: dict[tuple[str | None, str], float] = {}
    for key, seconds in _pairs("CCPULSE_SL_THRESHOLDS", raw):
        queue, _, channel = key.rpartition("/")
        table[(queue or None, channel)] = seconds
    return table


def short_abandon_table(settings: Settings) -> dict[str, float]:
    """Parse CCPULSE_SHORT_ABANDON_OVERRIDES into {queue: seconds} (do not change it)."""
    return _short_abandons(settings.short_abandon_overrides)


@functools.lru_cache(maxsize=32)
def _short_abandons(raw: str) -> dict[str, float]:
    return dict(_pairs("CCPULSE_SHORT_ABANDON_OVERRIDES", raw))


def sl_target_table(settings: Settings) -> dict[str, float]:
    """Parse CCPULSE_SL_TARGETS into {queue or 'default': ratio}."""
    table = dict(_pairs("CCPULSE_SL_TARGETS", settings.sl_targets))
    for queue, ratio in table.items():
        if not 0 <= ratio <= 1:
            raise SettingsError(f"CCPULSE_SL_TARGETS: target of {queue!r} must be 0..1")
    return table


def platform_topic_table(settings: Settings) -> dict[str, str]:
    """Parse CCPULSE_PLATFORM_TOPICS into {format: raw topic}."""
    table: dict[str, str] = {}
    for item in filter(None, (part.strip() for part in settings.platform_topics.split(","))):
        fmt, topic = _format_topic(item)
        if fmt in table or topic in table.values():
            raise SettingsError(f"{_PLATFORMS}: {item!r} repeats a format or a topic")
        if topic in (settings.input_topic, settings.dead_letter_topic):
            # the worker writes to both: reading one back as raw input would loop forever
            raise SettingsError(f"{_PLATFORMS}: {topic!r} is the input or the dead-letter topic")
        table[fmt] = topic
    return table


_PLATFORMS = "CCPULSE_PLATFORM_TOPICS"


def _format_topic(item: str) -> tuple[str, str]:
    """Split one `format=topic` pair, checking the format is one ccpulse maps."""
    fmt, sep, topic = (part.strip() for part in item.partition("="))
    if not sep or not fmt or not topic:
        raise SettingsError(f"{_PLATFORMS}: cannot read {item!r} (want format=topic)")
    if fmt not in FORMATS:
        known = ", ".join(sorted(FORMATS))
        raise SettingsError(f"{_PLATFORMS}: unknown format {fmt!r}; known formats: {known}")
    return fmt, topic


def sl_bucket_bounds(settings: Settings, channels: tuple[str, ...]) -> list[float]:
    """Histogram bucket bounds for wait times: a bound at every service-level threshold."""
    base = {1.0, 2.0, 5.0, 10.0, 15.0, 20.0, 30.0, 45.0, 60.0, 90.0, 120.0, 180.0, 300.0}
    base |= {600.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 86400.0}
    base |= {DEFAULT_SL_SECONDS[c] for c in channels if c in DEFAULT_SL_SECONDS}
    base |= set(sl_threshold_table(settings).values())
    return sorted(base)
