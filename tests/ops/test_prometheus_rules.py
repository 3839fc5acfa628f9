"""The Prometheus rules: promtool-valid, unit-tested alert by alert, documented, on real names."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from tests.ops.opsfiles import (
    OPS,
    ROOT,
    RULE_TESTS,
    RULES,
    RUNBOOK_BASE,
    alerting_rules,
    exported_names,
    load_yaml,
    metric_names,
    recording_rules,
    rule_groups,
    run,
    tool,
)

RULE_FILES = sorted(RULES.glob("*.yml"))
TEST_FILES = sorted(RULE_TESTS.glob("*.yml"))
# level:metric:operation, e.g. queue_channel_window:ccpulse_service_level_ratio:max
RECORD_NAME = re.compile(r"^[a-z][a-z_]*:ccpulse_[a-z0-9_]+:[a-z0-9_]+$")
SLA_ALERTS = {
    "CcpulseServiceLevelBelowTarget",
    "CcpulseAbandonRateHigh",
    "CcpulseAsaAboveThreshold",
    "CcpulseOldestWaitHigh",
    "CcpulseNegativeSentimentHigh",
    "CcpulseNoAgentsAvailable",
    "CcpulseQueueUnstaffed",
}
PIPELINE_ALERTS = {
    "CcpulseNoEvents",
    "CcpulseWatermarkLagging",
    "CcpulsePublishStale",
    "CcpulseDeadLettersRising",
    "CcpulseNoLeader",
    "CcpulseWorkerDown",
    "CcpulseCheckpointsFailing",
    "CcpulseOffsetsGivenUp",
}


def test_promtool_check_rules() -> None:
    result = run(tool("promtool"), "check", "rules", *RULE_FILES)
    assert result.returncode == 0, result.stdout + result.stderr
    assert len(RULE_FILES) == 2


@pytest.mark.parametrize("test_file", TEST_FILES, ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    result = run(tool("promtool"), "test", "rules", test_file.name, cwd=RULE_TESTS)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout + result.stderr


def test_every_alert_is_tested_firing_quiet_and_resolved() -> None:
    """Each alert has a firing expectation, and quiet expectations before and after it."""
    seen: dict[str, list[tuple[int, bool]]] = {}
    for path in TEST_FILES:
        spec = load_yaml(path)
        assert spec["rule_files"] == [
            "../rules/ccpulse-recording.yml",
            "../rules/ccpulse-alerts.yml",
        ]
        assert spec["group_eval_order"] == [g["name"] for g in _groups_recording_first()]
        for group in spec["tests"]:
            for case in group.get("alert_rule_test", []):
                minutes = _minutes(case["eval_time"])
                seen.setdefault(case["alertname"], []).append((minutes, bool(case["exp_alerts"])))
    assert set(seen) == SLA_ALERTS | PIPELINE_ALERTS
    for alert, checks in seen.items():
        checks.sort()
        firing = [t for t, fires in checks if fires]
        assert firing, f"{alert}: never expected to fire"
        assert any(not fires and t < firing[0] for t, fires in checks), (
            f"{alert}: no quiet check before it fires"
        )
        assert (
            any(not fires and t > firing[0] for t, fires in checks)
            or alert == "CcpulseOldestWaitHigh"
        ), f"{alert}: no check that it resolves"


def test_oldest_wait_resolution_is_checked_per_queue() -> None:
    """Its test keeps one queue firing throughout: billing/voice must leave the list."""
    spec = load_yaml(RULE_TESTS / "oldest-wait.yml")
    cases = spec["tests"][0]["alert_rule_test"]
    queues = {c["eval_time"]: {a["exp_labels"]["queue"] for a in c["exp_alerts"]} for c in cases}
    assert queues["7m"] == {"billing", "returns"} and queues["12m"] == {"returns"}


def _groups_recording_first() -> list[dict[str, Any]]:
    groups = rule_groups()
    return [g for g in groups if g["name"].endswith("-recording")] + [
        g for g in groups if g["name"].endswith("-alerts")
    ]


def _minutes(duration: str) -> int:
    match = re.fullmatch(r"(\d+)m", duration)
    assert match, duration
    return int(match.group(1))


@pytest.mark.parametrize("rule", alerting_rules(), ids=lambda r: r["alert"])
def test_alert_has_severity_for_and_annotations(rule: dict[str, Any]) -> None:
    assert rule["labels"]["severity"] in ("critical", "warning")
    assert re.fullmatch(r"\d+m", rule["for"])
    annotations = rule["annotations"]
    assert set(annotations) == {"summary", "description", "runbook_url"}
    if rule["alert"] in SLA_ALERTS:  # the queue and the value that breached
        assert "$labels.queue" in annotations["description"]
        assert "$value" in annotations["description"]
    else:
        assert re.search(r"\$labels\.(job|instance)", annotations["description"])
    url = annotations["runbook_url"]
    assert url.startswith(RUNBOOK_BASE + "docs/runbooks/"), url
    runbook = ROOT / url.removeprefix(RUNBOOK_BASE)
    assert runbook.is_file(), f"{rule['alert']}: {runbook} missing"
    assert rule["alert"] in runbook.read_text(), f"{runbook.name} does not name {rule['alert']}"


def test_ratio_alerts_have_a_volume_guard() -> None:
    guarded = {
        "CcpulseServiceLevelBelowTarget",
        "CcpulseAbandonRateHigh",
        "CcpulseAsaAboveThreshold",
        "CcpulseNegativeSentimentHigh",
        "CcpulseDeadLettersRising",
    }
    for rule in alerting_rules():
        if rule["alert"] in guarded:
            assert re.search(r">= ?(20|100)\b", rule["expr"]), rule["alert"]


def test_recording_rule_names_are_level_metric_operation() -> None:
    for rule in recording_rules():
        assert RECORD_NAME.match(rule["record"]), rule["record"]
        level = rule["record"].split(":")[0]
        by = re.findall(r"\bby \(([^)]*)\)", rule["expr"])
        labels = {label.strip() for group in by for label in group.split(",")}
        assert set(level.split("_")) <= labels, rule["record"]


def test_rules_read_only_exported_metrics() -> None:
    """Every ccpulse metric a rule reads is one the worker's Prometheus sink exports."""
    known = exported_names() | {"ccpulse_events_dropped_total"}
    for group in rule_groups():
        for rule in group["rules"]:
            unknown = metric_names(rule["expr"]) - known
            assert not unknown, f"{rule.get('alert') or rule.get('record')}: {unknown}"


def test_every_runbook_is_linked_from_an_alert() -> None:
    linked = {rule["annotations"]["runbook_url"].rsplit("/", 1)[1] for rule in alerting_rules()}
    present = {
        path.name for path in (ROOT / "docs" / "runbooks").glob("*.md") if path.name != "README.md"
    }
    assert present == linked


def test_compose_prometheus_config_is_valid_and_loads_the_rules() -> None:
    config = OPS / "prometheus" / "prometheus.yml"
    result = run(tool("promtool"), "check", "config", "--syntax-only", config)
    assert result.returncode == 0, result.stdout + result.stderr
    spec = load_yaml(config)
    assert spec["rule_files"] == ["/etc/prometheus/rules/*.yml"]  # ops/prometheus/rules, mounted
    worker = next(job for job in spec["scrape_configs"] if job["job_name"] == "ccpulse")
    assert worker["dns_sd_configs"][0]["port"] == 6066
