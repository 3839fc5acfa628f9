"""``ccpulse kpis`` against a real redis-server holding what RedisSink wrote."""

from __future__ import annotations

import argparse
from collections.abc import Iterator
from pathlib import Path

import orjson
import pytest

from ccpulse import kpis as command
from sinks.redis import RedisSink
from stream.settings import Settings
from tests.sinks import snapshots
from tests.sinks.redis_server import RedisServer, free_port, running_redis


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    yield from running_redis(tmp_path)


def settings_for(url: str, app_id: str = "app") -> Settings:
    return Settings.from_env({}, redis_url=url, redis_prefix="t", app_id=app_id)


def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    command.add_arguments(parser)
    return parser.parse_args(argv)


async def publish(server: RedisServer) -> None:
    sink = RedisSink(server.url, "t", "app", 3600, 5.0, clock=lambda: snapshots.WM + 2.0)
    await sink.publish(snapshots.snapshot())
    await sink.close()


async def test_json_prints_one_object_with_every_kpi(
    redis_server: RedisServer,
    capsys: pytest.CaptureFixture[str],
) -> None:
    await publish(redis_server)
    code = await command.run(parse("--json"), settings_for(redis_server.url))
    out = capsys.readouterr().out
    assert code == 0
    assert out.count("\n") == 1
    printed = orjson.loads(out)
    expected = {
        w: {s: dict(k) for s, k in scoped.items()}
        for w, scoped in snapshots.snapshot().windows.items()
    }
    assert printed == {
        "watermark": snapshots.WM,
        "updated_at": snapshots.WM + 2.0,
        "windows": expected,
    }


async def test_json_with_filters(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await publish(redis_server)
    code = await command.run(
        parse("--json", "--window", "15m", "--queue", "billing"), settings_for(redis_server.url)
    )
    printed = orjson.loads(capsys.readouterr().out)
    assert code == 0
    assert list(printed["windows"]) == ["15m"]
    billing = printed["windows"]["15m"]
    assert sorted(billing) == ["queue:billing", "queue:billing|channel:voice"]
    assert (billing["queue:billing"]["offered"], billing["queue:billing"]["service_level"]) == (
        10,
        0.555556,
    )
    assert billing["queue:billing"]["nps"] is None


async def test_table(redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    await publish(redis_server)
    code = await command.run(parse("--window", "15m"), settings_for(redis_server.url))
    lines = capsys.readouterr().out.splitlines()
    assert code == 0
    assert (
        lines[0]
        == "t:v1:app: watermark 2027-01-15T08:15:00+00:00, updated 2027-01-15T08:15:02+00:00"
    )
    assert lines[1:3] == ["", "[15m]"]
    assert lines[3].split() == [
        "scope",
        "offered",
        "answered",
        "abandoned",
        "SL",
        "abandon",
        "ASA",
        "s",
        "waiting",
        "oldest",
        "s",
        "available",
        "CSAT",
        "sentiment",
    ]
    rows = {line.split()[0]: line.split()[1:] for line in lines[4:11]}
    assert rows["all"] == [
        "14",
        "11",
        "2",
        "69.2%",
        "15.4%",
        "11.3",
        "2",
        "42.5",
        "3",
        "0.750",
        "-0.10",
    ]
    assert rows["queue:sales|channel:chat"] == [
        "4",
        "4",
        "0",
        "100.0%",
        "0.0%",
        "10.0",
        "0",
        "0.0",
        "—",
        "—",
        "—",
    ]
    assert rows["queue:billing"][8] == "2" and rows["channel:voice"][8] == "—"
    assert list(rows) == [
        "all",
        "channel:chat",
        "channel:voice",
        "queue:billing",
        "queue:billing|channel:voice",
        "queue:sales",
        "queue:sales|channel:chat",
    ]
    assert "agent:a1" not in rows
    assert len({len(line) for line in lines[3:11]}) == 1  # fixed width
    assert lines[11:] == ["", "1 agent scope(s) not shown: use --json"]


async def test_no_data_yet(redis_server: RedisServer, capsys: pytest.CaptureFixture[str]) -> None:
    code = await command.run(parse(), settings_for(redis_server.url, app_id="idle"))
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err == "ccpulse kpis: no KPIs in Redis under t:v1:idle: is a worker running?\n"


async def test_filter_without_match(
    redis_server: RedisServer, capsys: pytest.CaptureFixture[str]
) -> None:
    await publish(redis_server)
    code = await command.run(parse("--json", "--queue", "nope"), settings_for(redis_server.url))
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err == "ccpulse kpis: no KPIs match --queue nope under t:v1:app\n"


async def test_redis_unreachable(capsys: pytest.CaptureFixture[str]) -> None:
    url = f"redis://:hunter2@127.0.0.1:{free_port()}/0"
    code = await command.run(parse(), settings_for(url))
    captured = capsys.readouterr()
    assert code == 1 and captured.out == ""
    assert captured.err.startswith(
        f"ccpulse kpis: cannot reach Redis at redis://127.0.0.1:{url.rsplit(':', 1)[1]}"
    )
    assert "hunter2" not in captured.err
