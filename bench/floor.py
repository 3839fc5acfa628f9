"""Framework floor: a Faust agent that iterates the same events and JSON-decodes them, no state.

Run as a subprocess worker: ``python -m bench.floor TOPIC COUNT RESULT_PATH DATA_DIR APP_ID [prompt]``. The
app is configured like ccpulse's (stream/app.py: memory store, commit every second, no
``stream_wait_empty``) but has no table, no timer and no sinks. When COUNT events went
through it writes ``{"events", "seconds"}`` (first to last event) to RESULT_PATH and the
benchmark stops it. With ``prompt`` its consumer hands messages over the way ccpulse's does
(stream/delivery.py), a change to Faust's own per-message work that any Faust app could make:
the stock floor is the target's baseline, this one shows what of ccpulse's lead comes from it.
"""

from __future__ import annotations

import sys
import time
from typing import Any

import faust
import orjson

from bench.kafka import BROKER
from stream.app import worker
from stream.delivery import prompt_delivery
from stream.feed import BulkFeed


def create_app(
    topic_name: str, count: int, result_path: str, data_dir: str, app_id: str, prompt: bool = False,
    bulk: bool = False,
) -> faust.App:
    """Return the floor app: one raw-bytes topic, one counting agent (``prompt``: see above)."""
    app = faust.App(
        app_id,
        broker=f"kafka://{BROKER}",
        store="memory://",
        datadir=data_dir,
        autodiscover=False,
        topic_partitions=4,
        topic_replication_factor=1,
        consumer_auto_offset_reset="earliest",
        web_enabled=False,
        stream_wait_empty=False,
        broker_commit_interval=1.0,
    )
    topic = app.topic(
        topic_name, key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw"
    )
    progress = {"seen": 0, "first": 0.0}

    def seen(value: bytes) -> None:
        orjson.loads(value)
        progress["seen"] += 1
        if progress["seen"] == 1:
            progress["first"] = time.perf_counter()
        elif progress["seen"] == count:
            seconds = time.perf_counter() - progress["first"]
            with open(result_path, "wb") as out:
                out.write(orjson.dumps({"events": count, "seconds": seconds}))

    if bulk:
        feed = BulkFeed(app, topic_name, maxsize=8000)
        feed.install()

        @app.agent(topic, name="floor", concurrency=1)
        async def floor_bulk(stream: Any) -> None:
            async for batch in feed.batches(2000, lambda: 0.05):
                for message in batch:
                    seen(message.value)
                feed.acknowledge(batch)
    else:

        @app.agent(topic, name="floor", concurrency=1)
        async def floor(stream: Any) -> None:
            async for value in stream:
                seen(value)

    if prompt:
        prompt_delivery(app)
    return app


def main(argv: list[str]) -> int:
    topic, count, result_path, data_dir, app_id = argv[0], int(argv[1]), argv[2], argv[3], argv[4]
    modes = argv[5:]
    app = create_app(topic, count, result_path, data_dir, app_id, prompt="prompt" in modes, bulk="bulk" in modes)
    sys.argv = [sys.argv[0]]  # faust's command line must not see ours
    # the worker ccpulse runs in (no terminal spinner), so the two differ only in their agents
    worker(app, "WARNING").execute_from_commandline()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
