"""Every dashboard query returns data from the real Prometheus scraping a real worker.

A simulated hour of a contact center (plus a few invalid lines) is replayed into Kafka, a
worker computes its KPIs, the local stack's Prometheus scrapes the worker through a file_sd
target, and every panel's PromQL — Grafana variables set to this test's worker and one of
its queues — must return at least one series through the HTTP API. The queues are renamed
with the test's tag, so the answers cannot come from another test's worker.
"""

from __future__ import annotations

import json
import time
import urllib.parse
import urllib.request
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.conftest import make_env, run_cli, wait_for
from tests.conftest import prometheus_query as query
from tests.ops.opsfiles import (
    dashboards,
    panel_queries,
    rule_groups,
    substitute,
    variable_queries,
)

pytestmark = pytest.mark.integration

BAD_LINES = [
    b'{"event_id": "bad-1", "type": "contact.offered", ',
    b'{"event_id": "bad-2", "type": "x"}',
]


def prometheus_url(stack: dict[str, Any]) -> str:
    return f"http://127.0.0.1:{stack['prometheus_port']}"


def busy_hour_start(now: float) -> int:
    """10:00 UTC of the latest weekday at least 90 minutes past.

    The simulator follows a daily and weekly profile (ccpulse/simulator/profile.py): the
    hour ending 30 minutes before a run at 21:00 UTC had 953 events and two answered
    contacts in its last 15 minutes on the busiest queue, and the ASA panel of the 15-minute
    window came back empty. Its 10:00 peak on a weekday has work for every panel, whenever
    the suite runs.
    """
    day = datetime.fromtimestamp(now, UTC).replace(hour=10, minute=0, second=0, microsecond=0)
    while day.timestamp() > now - 5400 or day.weekday() >= 5:
        day -= timedelta(days=1)
    return int(day.timestamp())


def simulated_events(tmp_path: Path, tag: str) -> tuple[Path, str]:
    """An hour of simulated events from a busy past hour, queues renamed ``<queue>-<tag>``.

    Returns the file and the queue with the most survey answers (every panel must have data).
    """
    raw = tmp_path / "simulated.jsonl"
    start = busy_hour_start(time.time())
    result = run_cli(
        make_env(tmp_path),
        "simulate", "--out", str(raw), "--speed", "0", "--duration", "3600", "--rate", "6",
        "--start", str(start), "--seed", "7",
    )  # fmt: skip
    assert result.returncode == 0, result.stderr.decode()
    lines, surveys = [], Counter[str]()
    for line in raw.read_bytes().splitlines():
        event = orjson.loads(line)
        for key in ("queue", "to_queue"):
            if event.get(key):
                event[key] = f"{event[key]}-{tag}"
        if isinstance(event.get("queues"), list):
            event["queues"] = [f"{q}-{tag}" for q in event["queues"]]
        if event["type"] == "survey.response" and event.get("queue"):
            surveys[event["queue"]] += 1
        lines.append(orjson.dumps(event))
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines + BAD_LINES) + b"\n")
    return path, surveys.most_common(1)[0][0]


def test_every_panel_query_returns_data(
    tmp_path: Path, stack: dict[str, Any], worker_factory: Any, scrape_target: Any
) -> None:
    base = prometheus_url(stack)
    # The stack may have started before the rule files existed: load them (recording rules).
    urllib.request.urlopen(urllib.request.Request(f"{base}/-/reload", method="POST"), timeout=10)
    # background checkpoints every 2 s, so that the State row's panels have data in time
    env = make_env(tmp_path, CCPULSE_CHECKPOINT_INTERVAL_SECONDS="2")
    tag = env["CCPULSE_APP_ID"]
    events, queue = simulated_events(tmp_path, tag)
    replay = run_cli(env, "replay", str(events), "--no-progress")
    assert replay.returncode == 0, replay.stderr.decode()
    worker = worker_factory(env)
    instance = f"127.0.0.1:{worker.port}"
    scrape_target(worker.port, tag)

    values = {
        "__rate_interval": "15s",  # Grafana's: 4 x the stack's 1 s scrape interval, with room
        "__interval": "15s",
        "__range": "1h",
        "queue": queue,
        "window": "1h",  # the whole replayed hour: every survey KPI has answers in it
        "job": "ccpulse",
        "instance": instance,
    }
    queries = [
        (f"{name}: {title}", substitute(expr, values))
        for name, board in dashboards().items()
        for title, expr in panel_queries(board) + variable_queries(board)
    ]

    def empty() -> list[str]:
        return [title for title, expr in queries if not query(base, expr)]

    wait_for(
        lambda: query(base, f'ccpulse_window_contacts{{instance="{instance}", queue="{queue}"}}'),
        timeout=90,
        message=f"Prometheus scraping the worker at {instance}\n{worker.log()}",
    )
    try:
        wait_for(lambda: not empty(), timeout=90, interval=2, message="every panel query has data")
    except AssertionError:
        pass  # report which ones below
    missing = empty()
    assert not missing, f"{len(missing)} of {len(queries)} queries return no data: {missing}"
    print(f"\n{len(queries)} dashboard queries return data for queue {queue} on {instance}")
    unhealthy = wait_for(lambda: rules_evaluated(base), timeout=30, message="rules evaluated")
    assert unhealthy == ["none"], f"rules failing on real data: {unhealthy}"


def rules_evaluated(base: str) -> list[str] | None:
    """Every ccpulse rule's health once all were evaluated (["none"] when all are ok)."""
    with urllib.request.urlopen(f"{base}/api/v1/rules", timeout=10) as reply:
        groups = json.loads(reply.read())["data"]["groups"]
    rules = [r for g in groups if g["name"].startswith("ccpulse-") for r in g["rules"]]
    if len(rules) < sum(len(g["rules"]) for g in rule_groups()) or any(
        r["health"] == "unknown" for r in rules
    ):
        return None
    bad = [f"{r['name']}: {r.get('lastError')}" for r in rules if r["health"] != "ok"]
    return bad or ["none"]
