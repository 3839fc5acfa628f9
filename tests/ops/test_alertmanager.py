"""The Alertmanager example: amtool-valid, routed by severity, about alerts that exist."""

from __future__ import annotations

import pytest

from tests.ops.opsfiles import ALERTMANAGER, ROOT, alerting_rules, load_yaml, run, tool


def test_amtool_check_config() -> None:
    result = run(tool("amtool"), "check-config", ALERTMANAGER)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


@pytest.mark.parametrize(
    ("labels", "receivers"),
    [
        (
            ["severity=critical", "alertname=CcpulseServiceLevelBelowTarget", "queue=billing"],
            "pager,chat",
        ),
        (["severity=warning", "alertname=CcpulseAbandonRateHigh", "queue=billing"], "chat"),
        (["severity=info"], "chat"),
    ],
)
def test_routes_by_severity(labels: list[str], receivers: str) -> None:
    result = run(
        tool("amtool"), "config", "routes", "test", f"--config.file={ALERTMANAGER}", *labels
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip() == receivers


def test_every_severity_of_the_rules_has_a_route() -> None:
    config = load_yaml(ALERTMANAGER)
    routed = {matcher for route in config["route"]["routes"] for matcher in route["matchers"]}
    severities = {rule["labels"]["severity"] for rule in alerting_rules()}
    assert {f'severity="{s}"' for s in severities} <= routed


def test_inhibitions_name_real_alerts() -> None:
    names = {rule["alert"] for rule in alerting_rules()}
    for rule in load_yaml(ALERTMANAGER)["inhibit_rules"]:
        for matcher in rule["source_matchers"] + rule["target_matchers"]:
            assert matcher.removeprefix('alertname="').removesuffix('"') in names, matcher


def test_secrets_are_files_in_the_mounted_folder_and_not_in_git() -> None:
    config = load_yaml(ALERTMANAGER)
    files = [
        cfg.get("routing_key_file") or cfg.get("api_url_file")
        for receiver in config["receivers"]
        for kind in ("pagerduty_configs", "slack_configs")
        for cfg in receiver.get(kind, [])
    ]
    assert files and all(f.startswith("/etc/alertmanager/secrets/") for f in files)
    ignore = (ROOT / "ops" / "alertmanager" / "secrets" / ".gitignore").read_text().split()
    assert ignore[ignore.index("*") :] == ["*", "!.gitignore", "!README.md"]
    text = ALERTMANAGER.read_text()
    assert "hooks.slack.com" not in text and "routing_key:" not in text
