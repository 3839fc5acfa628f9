"""Produce canonical events (or raw bytes) to Kafka with the keys SPEC §1 assigns."""

from __future__ import annotations

from typing import Any

import orjson
from kafka import KafkaProducer

from stream.models import partition_key
from stream.settings import Settings
from stream.topics import ensure_topics, kafka_client_options


def event_key(event: dict[str, Any]) -> bytes | None:
    """Return the Kafka key of a canonical event dict (None when it has no id to key by)."""
    key = partition_key(
        str(event.get("type", "")),
        _text(event.get("contact_id")),
        _text(event.get("agent_id")),
        _text(event.get("customer_id")),
    )
    return key.encode() if key else None


def _text(value: Any) -> str | None:
    return value if isinstance(value, str) else None


class EventProducer:
    """A kafka-python producer for the input topic (acks=all, batched)."""

    def __init__(self, settings: Settings, topic: str | None = None) -> None:
        self.topic = topic or settings.input_topic
        ensure_topics(settings)
        self.producer = KafkaProducer(
            acks="all",
            linger_ms=20,
            batch_size=256 * 1024,
            max_request_size=4 * 1024 * 1024,
            **kafka_client_options(settings),
        )
        self.sent = 0

    def send_event(self, event: dict[str, Any]) -> None:
        """Produce one canonical event, keyed by contact, agent or customer."""
        self.send_raw(orjson.dumps(event), event_key(event))

    def send_raw(
        self, value: bytes, key: bytes | None = None, headers: list[tuple[str, bytes]] | None = None,
        topic: str | None = None,
    ) -> None:
        """Produce bytes as they are (a malformed line goes on to be dead-lettered)."""
        self.producer.send(topic or self.topic, value=value, key=key, headers=headers or [])
        self.sent += 1

    def close(self) -> None:
        self.producer.flush()
        self.producer.close()
