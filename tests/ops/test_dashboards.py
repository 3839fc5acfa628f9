"""Grafana dashboards and provisioning: they parse, their PromQL is valid, units and thresholds."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.ops.opsfiles import (
    DASHBOARDS,
    GRAFANA_DEFAULTS,
    PROVISIONING,
    alerting_rules,
    annotation_queries,
    dashboards,
    exported_names,
    load_yaml,
    metric_names,
    panel_queries,
    panels,
    run,
    substitute,
    tool,
    variable_queries,
)

BOARDS = dashboards()
EXPECTED = {"queue-overview", "customer-experience", "pipeline-health"}
RANGE_FUNCTIONS = re.compile(r"\b(rate|irate|increase|delta|deriv|avg_over_time)\(")
DATASOURCE_UID = "ccpulse-prometheus"


def all_queries(board: dict[str, Any]) -> list[tuple[str, str]]:
    return panel_queries(board) + annotation_queries(board) + variable_queries(board)


def test_the_three_dashboards_exist_and_parse() -> None:
    assert set(BOARDS) == EXPECTED
    uids = [board["uid"] for board in BOARDS.values()]
    assert len(set(uids)) == len(uids)
    for board in BOARDS.values():
        assert board["title"].startswith("ccpulse / ")
        assert "ccpulse" in board["tags"]
        assert board.get("id") is None  # provisioned dashboards carry no database id


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_promql_of_every_panel_is_valid(name: str, tmp_path: Path) -> None:
    """Every target as a recording rule, Grafana variables substituted: promtool must accept it."""
    queries = all_queries(BOARDS[name])
    rules = [
        {"record": f"dashboard:query_{i}:check", "expr": substitute(expr, GRAFANA_DEFAULTS)}
        for i, (_, expr) in enumerate(queries)
    ]
    rule_file = tmp_path / "dashboard.yml"
    rule_file.write_text(yaml.safe_dump({"groups": [{"name": name, "rules": rules}]}))
    result = run(tool("promtool"), "check", "rules", rule_file)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(rules)} rules found" in result.stdout


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_panels_read_exported_metrics_and_rate_over_rate_interval(name: str) -> None:
    known = exported_names() | {"ccpulse_events_dropped_total"}
    for title, expr in all_queries(BOARDS[name]):
        assert not metric_names(expr) - known, f"{title}: {metric_names(expr) - known}"
        for match in RANGE_FUNCTIONS.finditer(expr):
            rest = expr[match.end() :]
            assert "[$__rate_interval]" in _call_arguments(rest), (
                f"{title}: {match.group(1)} without $__rate_interval"
            )


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_every_panel_has_a_unit_a_datasource_and_a_description(name: str) -> None:
    board = BOARDS[name]
    ids = [panel["id"] for panel in board["panels"]]
    assert len(set(ids)) == len(ids)
    for panel in panels(board):
        defaults = panel["fieldConfig"]["defaults"]
        assert defaults.get("unit"), f"{panel['title']}: no unit"
        assert panel["datasource"] == {"type": "prometheus", "uid": "${datasource}"}
        assert panel["description"], panel["title"]
        assert panel["targets"], panel["title"]
        for target in panel["targets"]:
            assert target["datasource"]["uid"] == "${datasource}"
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24, panel["title"]


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_variables(name: str) -> None:
    variables = {v["name"]: v for v in BOARDS[name]["templating"]["list"]}
    assert variables["datasource"]["type"] == "datasource"
    assert variables["datasource"]["current"]["value"] == DATASOURCE_UID
    if name == "pipeline-health":
        assert {"job", "instance"} <= set(variables)
    else:
        assert (
            variables["queue"]["definition"]
            == "label_values(ccpulse_contacts_offered_total, queue)"
        )
        assert variables["queue"]["includeAll"] and variables["queue"]["multi"]
        assert [o["value"] for o in variables["window"]["options"]] == [
            "5m",
            "15m",
            "1h",
            "today",
            "interval",
        ]
    used = {m for _, expr in all_queries(BOARDS[name]) for m in re.findall(r"\$(\w+)", expr)}
    assert used - {"__rate_interval"} <= set(variables), used


def _call_arguments(rest: str) -> str:
    """Return the text up to the parenthesis closing a call whose "(" was just read."""
    depth = 1
    for end, char in enumerate(rest):
        depth += {"(": 1, ")": -1}.get(char, 0)
        if depth == 0:
            return rest[:end]
    return rest


def _panel(board: str, title: str) -> dict[str, Any]:
    return next(p for p in panels(BOARDS[board]) if p["title"] == title)


def _alert(name: str) -> dict[str, Any]:
    return next(rule for rule in alerting_rules() if rule["alert"] == name)


# (dashboard, panel, alert, threshold, text in the alert's expression)
THRESHOLDS = [
    (
        "queue-overview",
        "Service level ($window)",
        "CcpulseServiceLevelBelowTarget",
        0.8,
        "queue:ccpulse_sl_target_ratio:max",
    ),
    ("queue-overview", "Abandon rate ($window)", "CcpulseAbandonRateHigh", 0.10, "> 0.10"),
    ("queue-overview", "Abandon rate", "CcpulseAbandonRateHigh", 0.10, "> 0.10"),
    (
        "queue-overview",
        "ASA / threshold (15m)",
        "CcpulseAsaAboveThreshold",
        1,
        "queue_channel:ccpulse_sl_threshold_seconds:max",
    ),
    (
        "queue-overview",
        "Oldest wait / threshold",
        "CcpulseOldestWaitHigh",
        3,
        "3 * queue_channel:ccpulse_sl_threshold_seconds:max",
    ),
    ("queue-overview", "Agents available", "CcpulseNoAgentsAvailable", 1, 'state="available"} > 0'),
    (
        "customer-experience",
        "Negative sentiment share",
        "CcpulseNegativeSentimentHigh",
        0.30,
        "> 0.30",
    ),
    ("pipeline-health", "Dead-letter share", "CcpulseDeadLettersRising", 0.01, "> 0.01"),
    ("pipeline-health", "Watermark lag", "CcpulseWatermarkLagging", 60, "> 60"),
    ("pipeline-health", "Time since the last publish", "CcpulsePublishStale", 30, "> 30"),
    ("pipeline-health", "Leaders", "CcpulseNoLeader", 1, "== 0"),
    ("pipeline-health", "Workers up", "CcpulseWorkerDown", 1, "== 0"),
]


@pytest.mark.parametrize(("board", "title", "alert", "value", "clause"), THRESHOLDS)
def test_panel_thresholds_match_the_alert_rules(
    board: str, title: str, alert: str, value: float, clause: str
) -> None:
    steps = _panel(board, title)["fieldConfig"]["defaults"]["thresholds"]["steps"]
    assert value in [step["value"] for step in steps], steps
    assert clause in _alert(alert)["expr"]
    assert alert in _panel(board, title)["description"] or value == 0.8


def test_default_sl_target_matches_the_settings_default() -> None:
    from stream.settings import Settings

    assert Settings().sl_target(None) == 0.8


def test_provisioning_points_at_the_dashboards_and_prometheus() -> None:
    source = load_yaml(PROVISIONING / "datasources" / "prometheus.yml")["datasources"][0]
    assert source["uid"] == DATASOURCE_UID and source["type"] == "prometheus"
    assert source["url"] == "http://prometheus:9090"
    prometheus = load_yaml(DASHBOARDS.parents[1] / "prometheus" / "prometheus.yml")
    scrape = prometheus["global"]["scrape_interval"]
    assert source["jsonData"]["timeInterval"] == scrape  # $__rate_interval is derived from it
    provider = load_yaml(PROVISIONING / "dashboards" / "ccpulse.yml")["providers"][0]
    compose = load_yaml(DASHBOARDS.parents[2] / "docker-compose.yml")
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"./ops/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "./ops/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts
