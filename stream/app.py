"""Build the ccpulse Faust app: ``create_app(settings)``. Nothing else happens here."""

from __future__ import annotations

import ssl
from typing import Any

import faust
import redis.asyncio as aioredis
from faust.tables import TableManager
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from prometheus_client import CollectorRegistry

from sinks.base import Sink
from sinks.prometheus import PrometheusSink, exposition
from sinks.redis import RedisSink
from stream import agents
from stream.delivery import prompt_delivery
from stream.exchange import PartialExchange
from stream.pipeline import Pipeline
from stream.runtime import Runtime
from stream.settings import Settings


def create_app(settings: Settings, registry: CollectorRegistry | None = None) -> faust.App:
    """Return a configured worker app with its agents, timer, sinks and web pages."""
    shorten_fetch_wait(settings.fetch_max_wait_seconds)
    app = faust.App(
        settings.app_id,
        broker=settings.broker,
        broker_credentials=_credentials(settings),
        store="memory://",
        datadir=settings.data_dir,
        autodiscover=False,
        topic_partitions=settings.partitions,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        producer_acks=-1,
        # A batch's state writes are hundreds of records a partition; Faust's default batch of
        # 16 KiB sent them a few dozen per broker round trip (825 µs a record waiting on acks,
        # measured on the benchmarks' throughput topic; 240 µs with 512 KiB).
        producer_max_batch_size=settings.producer_batch_bytes,
        table_standby_replicas=0,
        web_host=settings.web_host,
        web_bind=settings.web_host,
        web_port=settings.web_port,
        web_enabled=True,
        stream_wait_empty=False,
        broker_commit_interval=1.0,
        broker_session_timeout=settings.session_timeout_seconds,
        broker_heartbeat_interval=min(3.0, settings.session_timeout_seconds / 3),
        TableManager=PromptTableManager,
    )
    registry = registry or CollectorRegistry()
    redis_client = aioredis.Redis.from_url(settings.redis_url, socket_timeout=2, socket_connect_timeout=2)
    sinks: list[Sink] = [
        RedisSink(
            settings.redis_url,
            settings.redis_prefix,
            settings.app_id,
            settings.redis_ttl_seconds,
            settings.heartbeat_seconds,
        ),
        PrometheusSink(registry),
    ]
    exchange = PartialExchange(
        redis_client, settings.redis_prefix, settings.app_id, settings.partitions, settings.redis_ttl_seconds
    )

    def runtime_factory(dead_letters: Any, facts: Any, contacts: Any, customers: Any) -> Runtime:
        pipeline = Pipeline(
            settings,
            store_items=contacts.take,
            customer_items=customers.take,
        )
        return Runtime(settings, pipeline, dead_letters, facts, contacts, customers, sinks, exchange)

    agents.use_read_offsets(app)
    if settings.prompt_delivery:
        prompt_delivery(app)
    runtime = agents.register(app, settings, runtime_factory)
    _pages(app, registry, runtime)
    return app


def worker(app: faust.App, loglevel: str) -> faust.Worker:
    """Faust's worker for ``app``, without its terminal spinner.

    ``faust.Worker`` draws a spinner that turns once for every log record, and for it sets
    the root logger to DEBUG whenever the log level is WARNING or above (the default here):
    every debug call of Faust, mode and aiokafka (several per message produced or fetched)
    then built a record that the console handler threw away, about 2 % of a busy worker's
    time (py-spy, bench/profile.py). Without the spinner the root logger keeps ``loglevel``.
    """
    built = faust.Worker(app, loglevel=loglevel, quiet=True)
    built.spinner = None
    return built


class PromptTableManager(TableManager):
    """Faust's table manager, without the second it sleeps at start.

    ``TableManager.on_start`` sleeps 1 s before registering the tables' changelogs, so that
    tables declared after the app started are in; ccpulse declares both tables in
    ``create_app``, before the worker starts, so the second only delayed every start: a
    quarter of a restart from checkpoints (stream/checkpoint.py).
    """

    async def on_start(self) -> None:
        if not self.should_stop:
            await self._update_channels()
            await self.recovery.start()


def shorten_fetch_wait(seconds: float) -> None:
    """Build Faust's worker consumer with ``fetch_max_wait_ms`` of ``seconds``.

    Faust creates its aiokafka consumer with ``fetch_max_wait_ms=1500`` and no setting to
    change it. On a live load whose event loop is busy now and then (a publish holds it for
    a few hundred ms), events then reached the agents 1-2 s after they were produced: a
    bare Faust agent on the freshness benchmark's load went from 128 ms (p50) to 1,262 ms
    when a timer held its loop 250 ms a second, and back to 195 ms with a 100 ms wait. The
    worker consumer is the only one changed; its value is read when the consumer starts.
    """
    millis = max(1, int(seconds * 1000))
    cls: Any = AIOKafkaConsumerThread
    original = getattr(cls, "_ccpulse_original_create", None)
    if original is None:
        original = cls._create_worker_consumer
        cls._ccpulse_original_create = original

    def create_worker_consumer(self: Any, transport: Any) -> Any:
        consumer = original(self, transport)
        consumer._fetch_max_wait_ms = millis  # aiokafka hands it to its Fetcher at start()
        return consumer

    cls._create_worker_consumer = create_worker_consumer


def _pages(app: faust.App, registry: CollectorRegistry, runtime: Runtime) -> None:
    @app.page("/metrics")
    async def metrics(web: Any, request: Any) -> Any:
        body, content_type = exposition(registry, request.headers.get("Accept", ""))
        # aiohttp refuses a content_type argument carrying "; charset=...": send the header as is
        return web.bytes(body, headers={"Content-Type": content_type})

    @app.page("/healthz")
    async def healthz(web: Any, request: Any) -> Any:
        snapshot = runtime.last_snapshot
        return web.json({"ok": True, "watermark": snapshot.watermark if snapshot else None})


def _credentials(settings: Settings) -> Any:
    protocol = settings.kafka_security_protocol
    context = None
    if protocol in ("SSL", "SASL_SSL"):
        context = ssl.create_default_context(cafile=settings.kafka_ssl_cafile or None)
    if protocol.startswith("SASL"):
        return faust.SASLCredentials(
            username=settings.kafka_sasl_username,
            password=settings.kafka_sasl_password,
            mechanism=settings.kafka_sasl_mechanism,
            ssl_context=context,
        )
    if protocol == "SSL":
        return faust.SSLCredentials(context)
    return None
