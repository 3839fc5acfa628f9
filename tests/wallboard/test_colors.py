"""Colour thresholds: exact levels for exact values, and the configuration format."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest

from ccpulse.wallboard.colors import (
    DEFAULT_RULES,
    Rule,
    ThresholdsError,
    level,
    load_thresholds,
    parse_thresholds,
)

HIGHER = Rule("higher", 0.8, 0.7)
LOWER = Rule("lower", 20.0, 60.0)
SL = DEFAULT_RULES["service_level"]


@pytest.mark.parametrize(
    ("rule", "value", "sl_target", "expected"),
    [
        # higher is better: green at or above green, amber at or above amber, red below
        (HIGHER, 0.95, None, "good"),
        (HIGHER, 0.8, None, "good"),
        (HIGHER, 0.79, None, "warn"),
        (HIGHER, 0.7, None, "warn"),
        (HIGHER, 0.69, None, "bad"),
        (HIGHER, 0, None, "bad"),
        # lower is better: green at or below green, amber at or below amber, red above
        (LOWER, 0, None, "good"),
        (LOWER, 20, None, "good"),
        (LOWER, 20.5, None, "warn"),
        (LOWER, 60, None, "warn"),
        (LOWER, 61, None, "bad"),
        # service level against the queue's target, amber within 0.1 below it
        (SL, 0.82, 0.8, "good"),
        (SL, 0.8, 0.8, "good"),
        (SL, 0.75, 0.8, "warn"),
        (SL, 0.7, 0.8, "warn"),  # 0.8 - 0.1 is 0.7 exactly, not 0.7000000000000001
        (SL, 0.69, 0.8, "bad"),
        (SL, 0.85, 0.9, "warn"),
        (SL, 0.95, None, "none"),  # no target known: no colour
        # null and non-numbers are never coloured
        (HIGHER, None, None, "none"),
        (LOWER, None, None, "none"),
        (HIGHER, True, None, "none"),
        (HIGHER, "0.9", None, "none"),
        (HIGHER, math.nan, None, "none"),
        (None, 0.5, None, "none"),
    ],
)
def test_level(rule: Rule | None, value: Any, sl_target: float | None, expected: str) -> None:
    assert level(rule, value, sl_target) == expected


@pytest.mark.parametrize(
    ("kpi", "value", "expected"),
    [
        ("abandon_rate", 0.05, "good"),
        ("abandon_rate", 0.07, "warn"),
        ("abandon_rate", 0.11, "bad"),
        ("asa_seconds", 20.0, "good"),
        ("asa_seconds", 45.0, "warn"),
        ("asa_seconds", 61.0, "bad"),
        ("oldest_wait_seconds", 0.0, "good"),
        ("oldest_wait_seconds", 180.0, "warn"),
        ("oldest_wait_seconds", 181.0, "bad"),
        ("csat", 0.8, "good"),
        ("csat", 0.75, "warn"),
        ("csat", 0.6, "bad"),
        ("sentiment", 0.05, "good"),
        ("sentiment", 0.0, "warn"),
        ("sentiment", -0.05, "warn"),
        ("sentiment", -0.3, "bad"),
        ("waiting", 40, "none"),  # no default rule: shown without colour
        ("agents_available", 0, "none"),
    ],
)
def test_default_rules(kpi: str, value: float, expected: str) -> None:
    assert parse_thresholds(None).judge(kpi, value, "billing", 0.8)["level"] == expected


def test_judge_carries_the_target_and_direction() -> None:
    thresholds = parse_thresholds({})
    assert thresholds.judge("service_level", 0.82, "sales", 0.9) == {
        "value": 0.82,
        "level": "warn",
        "target": 0.9,
        "better": "higher",
    }
    assert thresholds.judge("asa_seconds", None, "sales", 0.9) == {
        "value": None,
        "level": "none",
        "target": 20.0,
        "better": "lower",
    }
    assert thresholds.judge("waiting", 3, "sales", 0.9) == {"value": 3, "level": "none"}


def test_file_overrides_merge_field_by_field() -> None:
    thresholds = parse_thresholds(
        {
            "stale_after_seconds": 8,
            "kpis": {
                "asa_seconds": {"green": 30},
                "waiting": {"better": "lower", "green": 5, "amber": 15},
            },
            "queues": {
                "tech_support": {"asa_seconds": {"green": 60, "amber": 180}},
                "sales": {"service_level": {"amber_margin": 0.05}},
                "vip": {"service_level": {"green": 0.95, "amber": 0.9}},
            },
        }
    )
    assert thresholds.stale_after_seconds == 8.0
    assert thresholds.rule("asa_seconds", "billing") == Rule("lower", 30, 60.0)
    assert thresholds.rule("asa_seconds", None) == Rule("lower", 30, 60.0)
    assert thresholds.rule("asa_seconds", "tech_support") == Rule("lower", 60, 180)
    assert thresholds.judge("waiting", 12, "billing", None)["level"] == "warn"
    assert thresholds.judge("service_level", 0.86, "sales", 0.9)["level"] == "warn"
    assert thresholds.judge("service_level", 0.84, "sales", 0.9)["level"] == "bad"
    assert thresholds.judge("service_level", 0.92, "vip", 0.8)["level"] == "warn"  # fixed 0.95
    assert thresholds.judge("service_level", 0.72, "billing", 0.8)["level"] == "warn"


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"colours": {}}, "thresholds: unknown field(s) colours"),
        ({"kpis": []}, "kpis: want a JSON object"),
        ({"kpis": {"csat": {"better": "up"}}}, "kpis.csat.better: want 'higher' or 'lower'"),
        ({"kpis": {"csat": {"green": "high"}}}, "kpis.csat.green: want a number or 'sl_target'"),
        ({"kpis": {"csat": {"amber": 0.9}}}, "kpis.csat: amber must be on the bad side of green"),
        ({"kpis": {"asa_seconds": {"amber": 10}}}, "kpis.asa_seconds: amber must be on the bad"),
        ({"kpis": {"csat": {"colour": 1}}}, "kpis.csat: unknown field(s) colour"),
        ({"kpis": {"waiting": {"green": 5}}}, "kpis.waiting: a new KPI needs green and amber"),
        ({"queues": {"sales": {"csat": {"amber_margin": -1}}}}, "queues.sales.csat.amber_margin"),
        ({"stale_after_seconds": 0}, "stale_after_seconds: want a positive number"),
    ],
)
def test_bad_configuration_names_the_field(config: dict[str, Any], message: str) -> None:
    with pytest.raises(ThresholdsError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_thresholds(config)


def test_load_thresholds(tmp_path: Path) -> None:
    path = tmp_path / "thresholds.json"
    path.write_text('{"kpis": {"csat": {"green": 0.9, "amber": 0.8}}}')
    assert load_thresholds(path) == {"kpis": {"csat": {"green": 0.9, "amber": 0.8}}}
    assert load_thresholds(None) == {}
    path.write_text("{not json")
    with pytest.raises(ThresholdsError, match="not JSON"):
        load_thresholds(path)
    path.write_text("[1]")
    with pytest.raises(ThresholdsError, match="want a JSON object"):
        load_thresholds(path)
    with pytest.raises(ThresholdsError, match="cannot read"):
        load_thresholds(tmp_path / "missing.json")
