"""Create ccpulse's topics up front with the configured partition count.

Partition counts are locked in by the changelog topics (NOTES-faust-kafka.md), so the
input, dead-letter, customer-facts and alerts topics, and the raw platform topics of
CCPULSE_PLATFORM_TOPICS, are created explicitly, never left to broker auto-creation.
"""

from __future__ import annotations

import logging
from typing import Any

from kafka.admin import KafkaAdminClient, NewTopic
from kafka.errors import TopicAlreadyExistsError

from stream.settings import Settings, platform_topic_table

log = logging.getLogger(__name__)


def bootstrap_servers(settings: Settings) -> list[str]:
    """Return host:port pairs from CCPULSE_BROKER (``kafka://a:9092,b:9092``)."""
    servers = []
    for part in settings.broker.split(","):
        part = part.strip()
        servers.append(part.split("://", 1)[1] if "://" in part else part)
    return [s.rstrip("/") for s in servers if s]


def kafka_client_options(settings: Settings) -> dict[str, Any]:
    """kafka-python connection options, including SASL/SSL from settings."""
    options: dict[str, Any] = {"bootstrap_servers": bootstrap_servers(settings)}
    if settings.kafka_security_protocol != "PLAINTEXT":
        options["security_protocol"] = settings.kafka_security_protocol
    if settings.kafka_security_protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    if settings.kafka_ssl_cafile:
        options["ssl_cafile"] = settings.kafka_ssl_cafile
    return options


def topic_names(settings: Settings) -> list[str]:
    """Every topic ccpulse produces to or consumes from, besides Faust's own."""
    return [
        settings.input_topic,
        settings.dead_letter_topic,
        f"{settings.app_id}-customer-facts",
        settings.alerts_topic,
        *platform_topic_table(settings).values(),
    ]


# Kafka compacts only closed segments, and a changelog rolls a segment at 1 GiB (Faust's
# default) or at the broker's log.segment.bytes: every version a batch ever wrote stayed
# until then, and a restart read them all. Small segments and a low dirty ratio let the log
# cleaner keep about one record per key behind the active segment.
CHANGELOG_CONFIG = {
    "segment.bytes": str(8 * 2**20),
    "segment.ms": str(10 * 60 * 1000),
    "min.cleanable.dirty.ratio": "0.1",
    "min.compaction.lag.ms": "0",
}


def changelog_topic_names(settings: Settings) -> list[str]:
    """The state tables' changelogs (stream/agents.py ``state_table``)."""
    return [f"{settings.app_id}-{table}-changelog" for table in ("contacts", "customers")]


def ensure_topics(settings: Settings, names: list[str] | None = None) -> None:
    """Create missing topics with ``settings.partitions`` partitions.

    Without ``names``, the state changelogs too (compacted, ``CHANGELOG_CONFIG``): left to
    Faust, two workers starting together raced to create them, and one ran on without the
    customers changelog in its metadata ("Ignoring missing topic"; seen once in CI).
    """
    admin = KafkaAdminClient(client_id="ccpulse-admin", **kafka_client_options(settings))
    compacted = {"cleanup.policy": "compact", **CHANGELOG_CONFIG}
    configs = {name: compacted for name in changelog_topic_names(settings)}
    try:
        existing = set(admin.list_topics())
        wanted = names or topic_names(settings) + list(configs)
        for name in [n for n in wanted if n not in existing]:
            try:
                topic = NewTopic(name, settings.partitions, 1, topic_configs=configs.get(name, {}))
                admin.create_topics([topic])
                log.info("created topic %s with %d partitions", name, settings.partitions)
            except TopicAlreadyExistsError:
                pass
    finally:
        admin.close()


class TopicIds:
    """Kafka's topic ids, asked for once per topic (a topic deleted and created again gets a
    new one; stream/checkpoint.py uses it to tell a changelog's checkpoints from an older
    topic's)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.known: dict[str, str] = {}

    def __call__(self, topic: str) -> str | None:
        if topic not in self.known:
            self.fetch([topic, *changelog_topic_names(self.settings)])
        return self.known.get(topic)

    def fetch(self, topics: list[str]) -> None:
        """Ask Kafka for the ids of ``topics`` (the worker does so before Faust starts)."""
        try:
            admin = KafkaAdminClient(client_id="ccpulse-admin", **kafka_client_options(self.settings))
            try:
                for found in admin.describe_topics(sorted(set(topics))):
                    if found.get("error_code") == 0 and found.get("topic_id"):
                        self.known[found["name"]] = str(found["topic_id"])
            finally:
                admin.close()
        except Exception as error:  # no checkpoint then: the changelog is read whole
            log.warning("topic ids of %s unknown: %s", ", ".join(topics), error)
