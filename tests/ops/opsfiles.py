"""Readers shared by the ops tests: rule files, dashboards, their PromQL, the exported names."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterator, Mapping
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[2]
OPS = ROOT / "ops"
RULES = OPS / "prometheus" / "rules"
RULE_TESTS = OPS / "prometheus" / "tests"
DASHBOARDS = OPS / "grafana" / "dashboards"
PROVISIONING = OPS / "grafana" / "provisioning"
ALERTMANAGER = OPS / "alertmanager" / "alertmanager.yml"
RUNBOOKS = ROOT / "docs" / "runbooks"
RUNBOOK_BASE = "https://github.com/ccpulse/ccpulse/blob/main/"

# Grafana variables as the unit tests substitute them (the live test uses real values).
GRAFANA_DEFAULTS = {
    "__rate_interval": "1m",
    "__interval": "1m",
    "__range": "1h",
    "queue": ".+",
    "window": "15m",
    "job": ".+",
    "instance": ".+",
}


def tool(name: str) -> str:
    """Return a command's path, or fail naming the package that installs it."""
    packages = {
        "promtool": "prometheus",
        "amtool": "prometheus-alertmanager",
        "docker-compose": "docker-compose",
    }
    path = shutil.which(name)
    assert path, f"{name} not found: apt-get install {packages.get(name, name)} (make install)"
    return path


def run(*args: str | Path, cwd: Path = ROOT) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(a) for a in args], cwd=cwd, capture_output=True, text=True, timeout=120
    )


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text())


def rule_groups() -> list[dict[str, Any]]:
    """Every rule group of every rule file."""
    return [group for path in sorted(RULES.glob("*.yml")) for group in load_yaml(path)["groups"]]


def alerting_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "alert" in rule]


def recording_rules() -> list[dict[str, Any]]:
    return [rule for group in rule_groups() for rule in group["rules"] if "record" in rule]


def dashboards() -> dict[str, dict[str, Any]]:
    """Every dashboard JSON by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted(DASHBOARDS.glob("*.json"))}


def panels(dashboard: Mapping[str, Any]) -> Iterator[dict[str, Any]]:
    """Every panel, rows' nested panels included, rows themselves excluded."""
    for panel in dashboard["panels"]:
        if panel["type"] == "row":
            yield from panel.get("panels", [])
        else:
            yield panel


def panel_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """(panel title / refId, PromQL) of every panel target."""
    return [
        (f"{panel['title']} / {target['refId']}", target["expr"])
        for panel in panels(dashboard)
        for target in panel["targets"]
    ]


def annotation_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    return [
        (f"annotation {a['name']}", a["expr"])
        for a in dashboard["annotations"]["list"]
        if a.get("expr")
    ]


def variable_queries(dashboard: Mapping[str, Any]) -> list[tuple[str, str]]:
    """The selector inside each ``label_values(selector, label)`` variable, as PromQL."""
    found = []
    for variable in dashboard["templating"]["list"]:
        if variable["type"] != "query":
            continue
        match = re.fullmatch(r"label_values\((.+),\s*(\w+)\)", variable["definition"])
        assert match, f"variable {variable['name']}: not label_values(selector, label)"
        found.append((f"variable {variable['name']}", match.group(1)))
    return found


def substitute(expr: str, values: Mapping[str, str]) -> str:
    """Replace Grafana's ``$name`` and ``${name}`` variables."""

    def value(match: re.Match[str]) -> str:
        name = match.group(1) or match.group(2)
        assert name in values, f"unknown Grafana variable ${name} in {expr}"
        return values[name]

    return re.sub(r"\$\{(\w+)\}|\$(\w+)", value, expr)


def metric_names(expr: str) -> set[str]:
    """ccpulse metric and recording rule names an expression reads."""
    without_strings = re.sub(r'"[^"]*"', '""', expr)
    return set(re.findall(r"\b(ccpulse_\w+|\w+:[\w:]+)", without_strings))


def exported_names() -> set[str]:
    """Sample names the worker's Prometheus sink exports, plus the recording rules'."""
    from sinks.prometheus import KPI_GAUGES, checkpoint_families, offset_families, snapshot_families
    from tests.sinks import snapshots

    names = {f"ccpulse_{name}" for _, name, _ in KPI_GAUGES}
    for family in snapshot_families(snapshots.snapshot(), "ccpulse"):
        names |= {sample.name for sample in family.samples}
    # a worker that writes checkpoints (the test snapshot's pipeline has none)
    health = {"checkpoint:written": 1.0, "checkpoint:failed": 0.0, "checkpoint:last_success": 1.0}
    for family in checkpoint_families(health, "ccpulse"):
        names |= {sample.name for sample in family.samples}
    skipped = {"offsets:contacts:absent": 0.0, "offsets:contacts:given_up": 0.0}
    for family in offset_families(skipped, "ccpulse"):
        names |= {sample.name for sample in family.samples}
    return names | {rule["record"] for rule in recording_rules()}
