"""Colour thresholds: judge a KPI value green, amber or red for a queue.

A rule says which way is better and where green and amber end. Higher is better: green at
or above ``green``, amber at or above ``amber``, red below. Lower is better: green at or
below ``green``, amber at or below ``amber``, red above. ``green: "sl_target"`` uses the
queue's service-level target from Redis meta, and ``amber_margin`` puts amber that far on
the bad side of green (service level 0.8 target, margin 0.1: amber from 0.7). Every value a
page shows carries its target, so colour is never the only signal. The file format is in
docs/wallboard.md.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Literal

import orjson

Level = Literal["good", "warn", "bad", "none"]
SL_TARGET = "sl_target"
DEFAULT_STALE_AFTER_SECONDS = 5.0


class ThresholdsError(ValueError):
    """The thresholds configuration cannot be used; the message names the field."""


@dataclass(frozen=True)
class Rule:
    """Where green and amber end for one KPI, and which way is better."""

    better: Literal["higher", "lower"]
    green: float | str  # a number, or SL_TARGET: the queue's service-level target
    amber: float | None = None
    amber_margin: float | None = None

    def bounds(self, sl_target: float | None) -> tuple[float, float] | None:
        """Return (green, amber) as numbers, or None when the target is unknown."""
        green = sl_target if self.green == SL_TARGET else self.green
        if not isinstance(green, int | float):
            return None
        if self.amber is not None:
            return float(green), self.amber
        margin = self.amber_margin or 0.0
        # Rounded so that 0.8 - 0.1 is 0.7, not 0.7000000000000001 (0.7 must be amber).
        amber = green - margin if self.better == "higher" else green + margin
        return float(green), round(amber, 9)


DEFAULT_RULES: Mapping[str, Rule] = {
    "service_level": Rule("higher", SL_TARGET, amber_margin=0.1),
    "abandon_rate": Rule("lower", 0.05, 0.10),
    "asa_seconds": Rule("lower", 20.0, 60.0),
    "oldest_wait_seconds": Rule("lower", 60.0, 180.0),
    "csat": Rule("higher", 0.8, 0.7),
    "sentiment": Rule("higher", 0.05, -0.05),
}


def level(rule: Rule | None, value: Any, sl_target: float | None = None) -> Level:
    """Judge one value: ``good``, ``warn``, ``bad``, or ``none`` (no rule, null, no target)."""
    if rule is None or not _number(value):
        return "none"
    bounds = rule.bounds(sl_target)
    if bounds is None:
        return "none"
    green, amber = bounds
    sign = 1.0 if rule.better == "higher" else -1.0
    if sign * value >= sign * green:
        return "good"
    return "warn" if sign * value >= sign * amber else "bad"


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


@dataclass(frozen=True)
class Thresholds:
    """Every rule: per KPI, with per-queue overrides; and when data counts as stale."""

    rules: Mapping[str, Rule]
    queues: Mapping[str, Mapping[str, Rule]]
    stale_after_seconds: float = DEFAULT_STALE_AFTER_SECONDS

    def rule(self, kpi: str, queue: str | None) -> Rule | None:
        """Return the rule of a KPI for a queue (None: the all-queues summary)."""
        override = self.queues.get(queue, {}) if queue is not None else {}
        return override.get(kpi, self.rules.get(kpi))

    def judge(
        self, kpi: str, value: Any, queue: str | None, sl_target: float | None
    ) -> dict[str, Any]:
        """Return what a page shows beside a value: level, target and which way is better."""
        rule = self.rule(kpi, queue)
        bounds = rule.bounds(sl_target) if rule is not None else None
        if rule is None or bounds is None:
            return {"value": value, "level": "none"}
        return {
            "value": value,
            "level": level(rule, value, sl_target),
            "target": bounds[0],
            "better": rule.better,
        }


def parse_thresholds(config: Mapping[str, Any] | None) -> Thresholds:
    """Build Thresholds from the JSON configuration over the built-in defaults."""
    config = config or {}
    _only(config, {"stale_after_seconds", "kpis", "queues"}, "thresholds")
    rules = dict(DEFAULT_RULES)
    for kpi, raw in _mapping(config.get("kpis"), "kpis").items():
        rules[kpi] = _rule(raw, rules.get(kpi), f"kpis.{kpi}")
    queues: dict[str, dict[str, Rule]] = {}
    for queue, overrides in _mapping(config.get("queues"), "queues").items():
        queues[queue] = {
            kpi: _rule(raw, rules.get(kpi), f"queues.{queue}.{kpi}")
            for kpi, raw in _mapping(overrides, f"queues.{queue}").items()
        }
    stale = config.get("stale_after_seconds", DEFAULT_STALE_AFTER_SECONDS)
    if not _number(stale) or stale <= 0:
        raise ThresholdsError(f"stale_after_seconds: want a positive number, got {stale!r}")
    return Thresholds(rules, queues, float(stale))


def load_thresholds(path: str | Path | None) -> dict[str, Any]:
    """Read a thresholds JSON file; no path means the built-in defaults (``{}``)."""
    if not path:
        return {}
    try:
        config = orjson.loads(Path(path).read_bytes())
    except OSError as exc:
        raise ThresholdsError(f"{path}: cannot read ({exc.strerror})") from exc
    except orjson.JSONDecodeError as exc:
        raise ThresholdsError(f"{path}: not JSON ({exc})") from exc
    if not isinstance(config, dict):
        raise ThresholdsError(f"{path}: want a JSON object")
    return config


def _rule(raw: Any, base: Rule | None, where: str) -> Rule:
    """Read one rule, inheriting the fields it leaves out from ``base``."""
    fields = _mapping(raw, where)
    _only(fields, {"better", "green", "amber", "amber_margin"}, where)
    if base is None:
        if "green" not in fields or ("amber" not in fields and "amber_margin" not in fields):
            raise ThresholdsError(f"{where}: a new KPI needs green and amber (or amber_margin)")
        base = Rule("higher", 0.0)
    rule = replace(base, better=fields.get("better", base.better))
    if "green" in fields:
        rule = replace(rule, green=fields["green"])
    if "amber" in fields:
        rule = replace(rule, amber=fields["amber"], amber_margin=None)
    if "amber_margin" in fields:
        rule = replace(rule, amber=None, amber_margin=fields["amber_margin"])
    _check(rule, where)
    return rule


def _check(rule: Rule, where: str) -> None:
    if rule.better not in ("higher", "lower"):
        raise ThresholdsError(f"{where}.better: want 'higher' or 'lower', got {rule.better!r}")
    if rule.green != SL_TARGET and not _number(rule.green):
        raise ThresholdsError(f"{where}.green: want a number or 'sl_target', got {rule.green!r}")
    for name in ("amber", "amber_margin"):
        value = getattr(rule, name)
        if value is not None and not _number(value):
            raise ThresholdsError(f"{where}.{name}: want a number, got {value!r}")
    if rule.amber_margin is not None and rule.amber_margin < 0:
        raise ThresholdsError(f"{where}.amber_margin: must not be negative")
    if rule.amber is not None and isinstance(rule.green, int | float):
        worse = rule.amber <= rule.green if rule.better == "higher" else rule.amber >= rule.green
        if not worse:
            raise ThresholdsError(f"{where}: amber must be on the bad side of green")


def _mapping(raw: Any, where: str) -> Mapping[str, Any]:
    if raw is None:
        return {}
    if not isinstance(raw, Mapping):
        raise ThresholdsError(f"{where}: want a JSON object, got {raw!r}")
    return raw


def _only(fields: Mapping[str, Any], allowed: set[str], where: str) -> None:
    unknown = sorted(set(fields) - allowed)
    if unknown:
        raise ThresholdsError(f"{where}: unknown field(s) {', '.join(unknown)}")
