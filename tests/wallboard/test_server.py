"""The wallboard server against a real redis-server: snapshot, changes, heartbeats, outages,
token, read-only routes."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import pytest

from ccpulse.wallboard import server
from tests.sinks.redis_server import RedisServer
from tests.wallboard import data
from tests.wallboard.conftest import MakeClient, wallboard_settings
from tests.wallboard.feed import Feed
from tests.wallboard.sse import EventReader

QUEUE_SCOPES = ["queue:billing", "queue:retention", "queue:sales", "queue:tech_support"]


async def open_events(client: Any, path: str = "/events?window=15m", **kwargs: Any) -> EventReader:
    response = await client.get(path, **kwargs)
    assert response.status == 200, await response.text()
    assert response.headers["Content-Type"] == "text/event-stream"
    return EventReader(response)


def tiles_by_scope(event: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {tile["scope"]: tile for tile in event["tiles"]}


async def test_snapshot_on_connect(make_client: MakeClient, feed: Feed) -> None:
    written_at = await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    before = time.time()
    snapshot = await (await open_events(client)).next()
    assert snapshot[0] == "snapshot"
    event = snapshot[1]
    assert event["window"] == "15m"
    assert event["updated_at"] == written_at
    assert event["watermark"] == written_at - 1.0
    assert before - 1 <= event["server_time"] <= time.time() + 1
    assert event["available"] is True
    assert event["stale_after_seconds"] == 5.0
    tiles = tiles_by_scope(event)
    assert sorted(tiles) == ["all", *QUEUE_SCOPES]  # no channel scope
    billing = tiles["queue:billing"]
    assert billing["queue"] == "billing"
    assert billing["kpis"]["waiting"] == {"value": 6, "level": "none"}
    assert billing["kpis"]["service_level"] == {
        "value": 0.86,
        "level": "good",
        "target": 0.8,
        "better": "higher",
    }
    sales_sl = tiles["queue:sales"]["kpis"]["service_level"]
    assert (sales_sl["target"], sales_sl["level"]) == (0.9, "good")
    tech = tiles["queue:tech_support"]["kpis"]
    assert [tech[k]["level"] for k in ("service_level", "abandon_rate", "asa_seconds")] == [
        "bad",
        "bad",
        "bad",
    ]
    assert tiles["queue:retention"]["kpis"]["csat"]["value"] is None
    assert tiles["all"]["queue"] is None


async def test_change_after_a_hash_update_and_publish(make_client: MakeClient, feed: Feed) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    events = await open_events(client)
    await events.until("snapshot")
    written_at = await feed.publish(data.windows(waiting=9, service_level=0.61), data.SL_TARGETS)
    name, event = await events.next_news()
    assert name == "change"
    assert event["updated_at"] == written_at
    assert event["removed"] == []
    assert [tile["scope"] for tile in event["tiles"]] == ["queue:billing"]  # only what changed
    kpis = event["tiles"][0]["kpis"]
    assert kpis["waiting"]["value"] == 9
    assert (kpis["service_level"]["value"], kpis["service_level"]["level"]) == (0.61, "bad")


async def test_another_windows_change_is_not_sent(make_client: MakeClient, feed: Feed) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    events = await open_events(client, "/events?window=today")
    await events.until("snapshot")
    await feed.publish({"15m": {"queue:billing": data.QUEUES["billing"] | {"waiting": 50}}})
    await feed.publish({"today": {"queue:sales": data.QUEUES["sales"] | {"waiting": 3}}})
    name, event = await events.next_news()
    assert (name, [t["scope"] for t in event["tiles"]]) == ("change", ["queue:sales"])


async def test_a_lost_pubsub_message_is_caught_by_the_meta_poll(
    make_client: MakeClient, feed: Feed
) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    events = await open_events(client)
    await events.until("snapshot")
    await feed.publish(data.windows(waiting=12), data.SL_TARGETS, announce=False)
    name, event = await events.next_news(timeout=2.0)  # poll every 0.2 s in tests
    assert name == "change"
    assert [(t["scope"], t["kpis"]["waiting"]["value"]) for t in event["tiles"]] == [
        ("queue:billing", 12)
    ]


async def test_a_scope_that_leaves_is_removed(make_client: MakeClient, feed: Feed) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    events = await open_events(client)
    await events.until("snapshot")
    await feed.remove("15m", "queue:sales")
    name, event = await events.next_news()
    assert (name, event["tiles"], event["removed"]) == ("change", [], ["queue:sales"])


async def test_heartbeat_carries_server_time_and_data_stamps(
    make_client: MakeClient, feed: Feed
) -> None:
    written_at = await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    events = await open_events(client)
    await events.until("snapshot")
    started = time.monotonic()
    beat = await events.until("heartbeat", timeout=2.0)
    assert time.monotonic() - started < 1.0  # every 0.3 s in tests
    assert abs(beat["server_time"] - time.time()) < 1.0
    assert beat["updated_at"] == written_at
    assert beat["watermark"] == written_at - 1.0
    assert beat["available"] is True


async def test_nothing_published_yet_gives_an_empty_snapshot(
    make_client: MakeClient, redis_server: RedisServer
) -> None:
    client = await make_client()
    name, event = await (await open_events(client)).next()
    assert (name, event["tiles"], event["updated_at"]) == ("snapshot", [], None)


async def test_redis_down_at_start_keeps_serving_and_recovers(
    make_client: MakeClient, tmp_path: Path
) -> None:
    later = RedisServer(tmp_path)  # not started: nothing listens on its port yet
    client = await make_client(redis_url=later.url)
    page = await client.get("/")
    assert page.status == 200
    events = await open_events(client)
    name, event = await events.next_news()
    assert (name, event["available"]) == ("status", False)
    beat = await events.until("heartbeat")
    assert beat["available"] is False
    later.start()
    try:
        writer = Feed(later.url, "t", "wb")
        await writer.publish(data.windows(), data.SL_TARGETS)
        await writer.close()
        snapshot = await events.until("snapshot", timeout=5.0)
        assert sorted(tiles_by_scope(snapshot)) == ["all", *QUEUE_SCOPES]
    finally:
        later.stop()


async def test_redis_lost_mid_stream_says_unavailable_then_resends_a_snapshot(
    make_client: MakeClient, feed: Feed, redis_server: RedisServer
) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    events = await open_events(client)
    await events.until("snapshot")
    redis_server.stop()
    status = await events.until("status", timeout=3.0)
    assert status["available"] is False
    assert status["reason"]
    redis_server.start()  # empty again: nothing is persisted
    writer = Feed(redis_server.url, "t", "wb")
    await writer.publish(data.windows(waiting=2), data.SL_TARGETS)
    await writer.close()
    snapshot = await events.until("snapshot", timeout=5.0)
    assert tiles_by_scope(snapshot)["queue:billing"]["kpis"]["waiting"]["value"] == 2


async def test_thresholds_configuration_is_applied(make_client: MakeClient, feed: Feed) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    config = {"queues": {"tech_support": {"asa_seconds": {"green": 120, "amber": 240}}}}
    client = await make_client(thresholds=config)
    name, event = await (await open_events(client)).next()
    asa = tiles_by_scope(event)["queue:tech_support"]["kpis"]["asa_seconds"]
    assert asa == {"value": 96.4, "level": "good", "target": 120, "better": "lower"}
    billing_asa = tiles_by_scope(event)["queue:billing"]["kpis"]["asa_seconds"]
    assert billing_asa["target"] == 20.0


# -- token ------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["/", "/events?window=15m"])
async def test_token_is_required_on_the_page_and_the_stream(
    make_client: MakeClient, feed: Feed, path: str
) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client(token="s3cret")
    refused = [
        await client.get(path),
        await client.get(path, headers={"Authorization": "Bearer wrong"}),
        await client.get(path + ("&" if "?" in path else "?") + "token=wrong"),
        await client.get(path, headers={"Authorization": "Basic s3cret"}),
    ]
    for response in refused:
        assert response.status == 401
        assert response.headers["WWW-Authenticate"].startswith("Bearer")
        assert "s3cret" not in await response.text()
    by_query = await client.get(path + ("&" if "?" in path else "?") + "token=s3cret")
    by_header = await client.get(path, headers={"Authorization": "Bearer s3cret"})
    assert (by_query.status, by_header.status) == (200, 200)
    by_query.close()
    by_header.close()


async def test_without_a_token_configured_everything_is_open(make_client: MakeClient) -> None:
    client = await make_client()
    assert (await client.get("/")).status == 200


async def test_static_files_and_health_need_no_token(make_client: MakeClient) -> None:
    client = await make_client(token="s3cret")
    js = await client.get("/static/wallboard.js")
    css = await client.get("/static/wallboard.css")
    assert (js.status, css.status) == (200, 200)
    assert js.headers["Content-Type"].startswith("text/javascript")
    assert css.headers["Content-Type"].startswith("text/css")
    assert (await client.get("/static/index.html")).status == 404
    assert (await client.get("/static/..%2Fserver.py")).status == 404
    health = await client.get("/healthz")
    assert health.status == 200
    assert (await health.json())["ok"] is True


# -- read-only ----------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH", "DELETE", "OPTIONS"])
@pytest.mark.parametrize("path", ["/", "/events", "/static/wallboard.js", "/healthz", "/nope"])
async def test_only_get_and_head(make_client: MakeClient, method: str, path: str) -> None:
    client = await make_client()
    response = await client.request(method, path)
    assert response.status == 405
    assert set(response.headers["Allow"].split(",")) == {"GET", "HEAD"}


async def test_head_is_allowed(make_client: MakeClient) -> None:
    client = await make_client()
    for path in ("/", "/events", "/static/wallboard.css", "/healthz"):
        assert (await client.head(path)).status == 200, path


async def test_unknown_window_is_a_bad_request(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/events?window=2h")
    assert response.status == 400
    assert "unknown window" in await response.text()


# -- escaping -----------------------------------------------------------------------------------


async def test_security_headers_forbid_inline_script(make_client: MakeClient) -> None:
    client = await make_client()
    response = await client.get("/")
    policy = response.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Cache-Control"] == "no-store"


async def test_markup_in_a_queue_name_travels_as_plain_json(
    make_client: MakeClient, feed: Feed
) -> None:
    name = "<script>alert(1)</script>"
    await feed.publish({"15m": {f"queue:{name}": {"waiting": 1}}}, {"default": 0.8})
    client = await make_client()
    page = await (await client.get("/")).text()
    assert "alert" not in page  # the page is static: data only arrives through /events
    _, event = await (await open_events(client)).next()
    assert [tile["queue"] for tile in event["tiles"]] == [name]


def test_the_page_script_never_parses_data_as_markup() -> None:
    script = (server.STATIC / "wallboard.js").read_text()
    for sink in ("innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("):
        assert sink not in script


# -- serve() and configuration ------------------------------------------------------------------


def test_thresholds_come_from_the_named_file(tmp_path: Path) -> None:
    path = tmp_path / "t.json"
    path.write_text('{"stale_after_seconds": 9}')
    assert server.thresholds_from_env({server.THRESHOLDS_VARIABLE: str(path)}) == {
        "stale_after_seconds": 9
    }
    assert server.thresholds_from_env({}) == {}


def test_serve_refuses_bad_thresholds(capsys: pytest.CaptureFixture[str]) -> None:
    settings = wallboard_settings("redis://127.0.0.1:1/0")
    assert server.serve(settings, port=1, thresholds={"kpis": {"csat": {"better": "up"}}}) == 2
    assert "kpis.csat.better" in capsys.readouterr().err


async def test_heartbeats_keep_coming_while_unchanged_data_flows(
    make_client: MakeClient, feed: Feed
) -> None:
    await feed.publish(data.windows(), data.SL_TARGETS)
    client = await make_client()
    events = await open_events(client)
    await events.until("snapshot")

    async def publish_often() -> None:
        while True:  # a worker with nothing new: a notice every 0.1 s, no change to send
            await feed.publish(data.windows(), data.SL_TARGETS)
            await asyncio.sleep(0.1)

    publisher = asyncio.create_task(publish_often())
    try:
        beats = [await events.until("heartbeat", timeout=1.0) for _ in range(4)]
    finally:
        publisher.cancel()
    assert beats[-1]["updated_at"] > beats[0]["updated_at"]
