"""Drive both pipeline stages in-process (no Kafka) and read the KPIs they give."""

from __future__ import annotations

import zlib
from typing import Any

import orjson

from stream import snapshot
from stream.pipeline import Pipeline
from stream.settings import Settings

T0 = 1_759_996_800.0  # 2025-10-09T08:00:00Z (04:00 in New York), a fixed past origin for tests


def settings(**overrides: Any) -> Settings:
    return Settings.from_env({}, live=False, **overrides)


def run(
    events: list[dict[str, Any]], cfg: Settings | None = None, partitions: int = 1
) -> tuple[Pipeline, dict[str, Any]]:
    """Apply events (in list order) across partitions; return the pipeline and its KPIs."""
    cfg = cfg or settings()
    pipeline = Pipeline(cfg, clock=lambda: 4_000_000_000.0, scorer=_scorer())
    offsets = [0] * partitions
    fact_offsets = [0] * partitions
    for event in events:
        raw = event if isinstance(event, bytes) else orjson.dumps(event)
        key = _key(event) if isinstance(event, dict) else ""
        p = zlib.crc32(key.encode()) % partitions
        result = pipeline.process([(p, offsets[p], raw)])
        offsets[p] += 1
        for fact in result.customer_facts:
            q = zlib.crc32(fact["customer_id"].encode()) % partitions
            pipeline.process_customer_facts([(q, fact_offsets[q], fact)])
            fact_offsets[q] += 1
    return pipeline, kpis(pipeline)


def kpis(pipeline: Pipeline, watermark: float | None = None) -> dict[str, Any]:
    contacts = list(pipeline.contacts.values())
    customers = list(pipeline.customers.values())
    wm = watermark if watermark is not None else max([c.watermark for c in contacts] or [0.0])
    partials = [snapshot.contact_partial(c, wm, wm, 1800.0, -0.05) for c in contacts]
    partials += [snapshot.customer_partial(c, wm, wm) for c in customers]
    return snapshot.kpis_by_window(partials, wm)


def _key(event: dict[str, Any]) -> str:
    from stream.models import partition_key

    return partition_key(
        event.get("type", ""), event.get("contact_id"), event.get("agent_id"), event.get("customer_id")
    )


def _scorer() -> Any:
    from stream.sentiment import score_text

    return score_text


class Events:
    """A tiny builder of canonical events with unique ids."""

    def __init__(self) -> None:
        self.n = 0
        self.items: list[dict[str, Any]] = []

    def add(self, kind: str, at: float, **fields: Any) -> Events:
        self.n += 1
        self.items.append({"event_id": f"e{self.n}", "type": kind, "ts": T0 + at, **fields})
        return self

    def call(self, cid: str, offered: float, queue: str = "billing", channel: str = "voice",
             answered: float | None = None, abandoned: float | None = None, wrapped: float | None = None,
             agent: str = "a1", **extra: Any) -> Events:
        self.add("contact.offered", offered, contact_id=cid, queue=queue, channel=channel, **extra)
        if answered is not None:
            self.add("contact.answered", answered, contact_id=cid, agent_id=agent, queue=queue, channel=channel)
        if abandoned is not None:
            self.add("contact.abandoned", abandoned, contact_id=cid, queue=queue, channel=channel)
        if wrapped is not None:
            self.add("contact.wrapped", wrapped, contact_id=cid, queue=queue, channel=channel)
        return self
