"""Redis, /metrics, PromQL and independent references agree on one replay (issue 4).

One JSON-lines file is replayed with the real CLI through the real broker into a real worker,
and the local stack's Prometheus scrapes that worker through a file_sd target. The same
numbers are then read four ways and must agree, exactly for counts and to 1e-6 for ratios:

- (a) Redis: every KPI hash the worker published (``read_kpis``);
- (b) the worker's ``/metrics``: the raw ``*_total`` counters and histograms, and the KPI
  gauges of every window;
- (c) PromQL on the real Prometheus: every scraped series, the counters summed by queue,
  ratios computed from the counters and from the wait histogram's bucket at the threshold,
  and the recording rules of ops/prometheus/rules;
- (d) two references: ``expected_kpis`` (an in-process run of the same lines) for every
  queue, and a count by hand of an exact queue of 40 built calls.

The data: 45 minutes of a simulated center (6 queues, 1 % duplicates and invalid events)
from 06:00 UTC, queues renamed ``<queue>-<tag>``, with the exact queue's calls merged in by
event time. The counters are cumulative since the beginning while the window KPIs cover
their window only; the whole file lies inside the UTC day of its watermark and inside the
watermark's ``1h`` window (which spans at least 59.5 minutes), so the counters must equal
the ``today`` and the ``1h`` counts. The test checks that premise from the published
window bounds before trusting it. The shorter windows (``5m``, ``15m``, ``interval``) are
compared through their gauges only.
"""

from __future__ import annotations

import itertools
import json
import math
import shutil
import subprocess
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import orjson
import pytest
import redis
from prometheus_client.parser import text_string_to_metric_families

from sinks.prometheus import KPI_GAUGES, scope_labels
from tests.conftest import make_env, prometheus_query, run_cli, wait_for
from tests.integration.faults import START, differences, expected_kpis, published, simulated_lines

pytestmark = pytest.mark.integration

PROMTOOL = shutil.which("promtool") or "/usr/bin/promtool"

HOURS = 0.75  # 06:00-06:45 UTC: inside `today` and inside the `1h` window of its watermark
SEED = 11
EXACT_START = START + 600.0  # the exact calls run 06:10-06:18, amid the simulated ones
SHORT_ABANDON_SECONDS = 5.0  # CCPULSE_SHORT_ABANDON_SECONDS default
# SPEC §2 default service-level thresholds, written out by hand, and the `le` of their buckets.
SL_SECONDS = {
    "voice": 20.0,
    "chat": 60.0,
    "sms": 3600.0,
    "social": 3600.0,
    "video": 20.0,
    "email": 14400.0,
}
LE = {channel: f"{seconds:.1f}" for channel, seconds in SL_SECONDS.items()}
KINDS = (
    "offered",
    "answered",
    "abandoned",
    "short_abandoned",
    "transferred",
    "resolved",
    "reopened",
)
FULL = ("today", "1h")  # the windows holding the whole file
TARGET_LABELS = {"instance", "job", "test"}  # added by Prometheus and the file_sd target
# Wall-clock gauges: they move with every snapshot, so a scrape and a read never meet; and
# the background checkpoints' series, which move whenever a forked writer is reaped.
VOLATILE = {
    "ccpulse_snapshot_timestamp_seconds",
    "ccpulse_watermark_lag_seconds",
    "ccpulse_last_publish_timestamp_seconds",
    "ccpulse_checkpoints_total",
    "ccpulse_last_checkpoint_timestamp_seconds",
}
RATIO_TOLERANCE = 1e-6

Labels = tuple[tuple[str, str], ...]
Series = dict[tuple[str, Labels], float]


# -- the input -------------------------------------------------------------------------------


def renamed(line: bytes, tag: str) -> bytes:
    """Give a simulated line's queues this test's tag; non-objects pass unchanged."""
    try:
        event = orjson.loads(line)
    except orjson.JSONDecodeError:
        return line
    if not isinstance(event, dict):
        return line
    for key in ("queue", "to_queue"):
        if isinstance(event.get(key), str):
            event[key] = f"{event[key]}-{tag}"
    if isinstance(event.get("queues"), list):
        event["queues"] = [f"{q}-{tag}" if isinstance(q, str) else q for q in event["queues"]]
    return orjson.dumps(event)


def exact_calls(queue: str, tag: str) -> list[dict[str, Any]]:
    """Build 40 calls of one queue, 7 s apart, half voice and half chat.

    Every fifth call (i % 5 == 3) hangs up: after 2 s (short, i odd) or 35 s. The others are
    answered after (i % 9) * 4 s, so voice waits of exactly 20 s sit on the threshold (within),
    and 24-32 s are over it; every chat wait is within 60 s.
    """
    events: list[dict[str, Any]] = []

    def add(kind: str, at: float, cid: str, channel: str, **fields: Any) -> None:
        events.append(
            {
                "event_id": f"{tag}-e{len(events)}",
                "type": kind,
                "ts": EXACT_START + at,
                "contact_id": cid,
                "queue": queue,
                "channel": channel,
                **fields,
            }
        )

    for i in range(40):
        cid, channel, offered = f"{tag}-c{i}", ("voice" if i % 4 < 2 else "chat"), i * 7.0
        add("contact.offered", offered, cid, channel)
        if i % 5 == 3:
            add("contact.abandoned", offered + (2 if i % 2 else 35), cid, channel)
        else:
            add("contact.answered", offered + (i % 9) * 4, cid, channel, agent_id=f"{tag}-a{i % 3}")
            add("contact.wrapped", offered + 200, cid, channel)
    return events


def event_time(line: bytes) -> float | None:
    """Return a line's event time (epoch s), or None when it has none that parses."""
    try:
        ts = orjson.loads(line).get("ts")
        return float(ts) if isinstance(ts, int | float) else datetime.fromisoformat(ts).timestamp()
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None


def interleaved(lines: list[bytes], extra: list[dict[str, Any]]) -> list[bytes]:
    """Merge events into time-ordered lines by event time, so none arrives late."""
    pending = sorted(extra, key=lambda e: e["ts"])  # stable: an offer stays before its answer
    out, j = [], 0
    for line in lines:
        at = event_time(line)
        while at is not None and j < len(pending) and pending[j]["ts"] <= at:
            out.append(orjson.dumps(pending[j]))
            j += 1
        out.append(line)
    return out + [orjson.dumps(e) for e in pending[j:]]


def hand_counts(events: list[dict[str, Any]]) -> dict[str, dict[str, float | None]]:
    """Count the exact calls by hand, per queue×channel and per queue, and their ratios."""
    legs: dict[str, dict[str, dict[str, Any]]] = {}
    for event in events:
        legs.setdefault(event["contact_id"], {})[event["type"]] = event
    counts: dict[str, dict[str, float]] = {}
    for contact in legs.values():
        offer = contact["contact.offered"]
        channel = offer["channel"]
        for scope in (f"queue:{offer['queue']}|channel:{channel}", f"queue:{offer['queue']}"):
            n = counts.setdefault(scope, {k: 0.0 for k in (*KINDS, "within", "wait_sum")})
            n["offered"] += 1
            if "contact.answered" in contact:
                wait = contact["contact.answered"]["ts"] - offer["ts"]
                n["answered"] += 1
                n["wait_sum"] += wait
                n["within"] += wait <= SL_SECONDS[channel]
            else:
                wait = contact["contact.abandoned"]["ts"] - offer["ts"]
                n["short_abandoned" if wait < SHORT_ABANDON_SECONDS else "abandoned"] += 1
    return {scope: {**n, **ratios(n)} for scope, n in counts.items()}


def ratios(n: dict[str, float]) -> dict[str, float | None]:
    """The docs/metrics.md formulas, written out again for the hand count."""
    return {
        "service_level": _div(n["within"], n["answered"] + n["abandoned"]),
        "service_level_answered": _div(n["within"], n["answered"]),
        "abandon_rate": _div(n["abandoned"], n["offered"] - n["short_abandoned"]),
        "asa_seconds": _div(n["wait_sum"], n["answered"]),
    }


def _div(numerator: float, denominator: float) -> float | None:
    return numerator / denominator if denominator > 0 else None


# -- reading the outputs ---------------------------------------------------------------------


def exposition(text: str) -> Series:
    """Every sample of a classic exposition by (name, labels); empty labels are no labels."""
    out: Series = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            labels = tuple(sorted((k, v) for k, v in sample.labels.items() if v != ""))
            out[(sample.name, labels)] = float(sample.value)
    return out


def vector(base: str, expr: str) -> Series:
    """An instant vector by (name, labels without the target's); NaN and ±Inf (x/0) are None."""
    out: Series = {}
    for item in prometheus_query(base, expr):
        metric = dict(item["metric"])
        name = metric.pop("__name__", "")
        labels = tuple(sorted((k, v) for k, v in metric.items() if k not in TARGET_LABELS))
        out[(name, labels)] = float(item["value"][1])
    return out


def number(value: Any) -> float | None:
    """A comparable value: None for null, absent, NaN and ±Inf."""
    if value is None or isinstance(value, bool):
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def lab(**labels: str) -> Labels:
    return tuple(sorted(labels.items()))


# -- comparing -------------------------------------------------------------------------------


@dataclass
class Row:
    """One quantity as every source gives it."""

    what: str
    exact: bool  # counts: equal; ratios and seconds: within RATIO_TOLERANCE
    values: dict[str, float | None]

    def disagrees(self) -> bool:
        present = [v for v in self.values.values() if v is not None]
        if present and len(present) < len(self.values):
            return True  # "null is absent": a value somewhere and none elsewhere
        return any(not self._same(a, b) for a, b in itertools.combinations(present, 2))

    def _same(self, a: float, b: float) -> bool:
        if self.exact:
            return a == b
        # both sides may be rounded to 6 decimals (sums in another order): allow that unit
        return abs(a - b) <= RATIO_TOLERANCE * max(1.0, abs(b)) + 1e-12

    def __str__(self) -> str:
        return f"{self.what}: {self.values}"


@dataclass
class Outputs:
    """Everything one poll read: Redis, the scrape text, Prometheus."""

    redis: dict[str, Any]
    scrape: Series
    prometheus: Series  # every ccpulse series of this test's target
    promql: dict[str, Series]  # named aggregation queries

    def series(self, name: str, labels: Any) -> dict[str, Any]:
        """One series as the worker's ``/metrics`` and as Prometheus hold it."""
        key = (name, labels)
        return {"metrics": self.scrape.get(key), "promql": self.prometheus.get(key)}


def promql_expressions(tag: str, thresholds: dict[str, str]) -> dict[str, str]:
    """The PromQL the test asks Prometheus, by name: sums and ratios of the raw series."""
    sel = f'test="{tag}"'

    def total(kind: str, by: str = "queue", extra: str = "") -> str:
        return f"sum by ({by}) (ccpulse_contacts_{kind}_total{{{sel}{extra}}})"

    exprs: dict[str, str] = {}
    for kind in (*KINDS, "answered_within_sl"):
        exprs[f"pair:{kind}"] = total(kind, "queue, channel")
        exprs[f"queue:{kind}"] = total(kind)
        exprs[f"all:{kind}"] = total(kind, "")
    within, answered = total("answered_within_sl"), total("answered")
    exprs["queue:service_level"] = f"{within} / ({answered} + {total('abandoned')})"
    exprs["queue:service_level_answered"] = f"{within} / {answered}"
    exprs["queue:abandon_rate"] = (
        f"{total('abandoned')} / ({total('offered')} - {total('short_abandoned')})"
    )
    wait = "sum by (queue) (ccpulse_wait_seconds_{}{{%s}})" % sel  # noqa: UP031  # braces
    exprs["queue:asa_seconds"] = f"{wait.format('sum')} / {wait.format('count')}"
    for channel, le in thresholds.items():  # the bucket at the channel's threshold T
        one = f'{sel}, channel="{channel}"'
        bucket = f'sum by (queue, channel) (ccpulse_wait_seconds_bucket{{{one}, le="{le}"}})'
        count = f"sum by (queue, channel) (ccpulse_wait_seconds_count{{{one}}})"
        abandoned = total("abandoned", "queue, channel", f', channel="{channel}"')
        exprs[f"hist_sl:{channel}"] = f"{bucket} / ({count} + {abandoned})"
        exprs[f"hist_sla:{channel}"] = f"{bucket} / {count}"
    exprs["rules"] = (
        f'{{__name__=~"queue_channel_window(_kind)?:ccpulse_.+:max", queue=~".+-{tag}"}}'
    )
    return exprs


def read_outputs(env: dict[str, str], base: str, worker: Any, tag: str) -> Outputs:
    """Read Redis, the worker's /metrics and Prometheus, one after the other."""
    return Outputs(
        redis=published(env),
        scrape=exposition(worker.metrics()),
        prometheus=vector(base, f'{{test="{tag}", __name__=~"ccpulse_.+"}}'),
        promql={name: vector(base, expr) for name, expr in promql_expressions(tag, LE).items()},
    )


def compare(
    out: Outputs, want: dict[str, Any], hand: dict[str, dict[str, float | None]]
) -> list[Row]:
    """Every comparison of the test, as rows of agreeing (or not) sources."""
    return [
        *count_rows(out, want, hand),
        *ratio_rows(out, want, hand),
        *gauge_rows(out, want),
        *series_rows(out),
        *exact_queue_rows(out, hand),
    ]


def _pair(scope: str) -> tuple[str, str] | None:
    labels = scope_labels(scope)
    return labels if labels and "_all" not in labels and scope.startswith("queue:") else None


def _queue(scope: str) -> str | None:
    return scope.removeprefix("queue:") if scope.startswith("queue:") and "|" not in scope else None


def _windows(source: dict[str, Any], window: str, scope: str, kpi: str) -> float | None:
    return number(source["windows"].get(window, {}).get(scope, {}).get(kpi))


def count_rows(
    out: Outputs, want: dict[str, Any], hand: dict[str, dict[str, float | None]]
) -> Iterator[Row]:
    """Counters (cumulative) = today's and 1h's counts, per queue×channel, queue and all."""
    today = want["windows"]["today"]
    exported = {labels for (name, labels) in out.scrape if name == "ccpulse_contacts_offered_total"}
    expected_pairs = {lab(queue=p[0], channel=p[1]) for s in today if (p := _pair(s))}
    yield Row(
        "queue×channel pairs with counters",
        True,
        {
            "reference": float(len(expected_pairs)),
            "metrics": float(len(exported)),
            "in both": float(len(exported & expected_pairs)),
        },
    )
    for scope in sorted(today):
        pair, queue = _pair(scope), _queue(scope)
        if pair:
            q, c = pair
        elif queue:
            q, c = queue, "_all"
        elif scope == "all":
            q, c = "_all", "_all"
        else:
            continue  # channel and agent scopes: compared through the gauges
        for kind in KINDS:
            counter = f"ccpulse_contacts_{kind}_total"
            values = {
                f"{src} {w}": _windows(data, w, scope, kind)
                for src, data in (("reference", want), ("redis", out.redis))
                for w in FULL
            }
            if pair:
                values["metrics counter"] = out.scrape.get((counter, lab(queue=q, channel=c)))
                values["promql counter"] = out.promql[f"pair:{kind}"].get(
                    ("", lab(queue=q, channel=c))
                )
            elif queue:
                values["metrics counters summed"] = sum(
                    v for (n, ls), v in out.scrape.items() if n == counter and ("queue", q) in ls
                )
                values["promql sum by queue"] = out.promql[f"queue:{kind}"].get(("", lab(queue=q)))
            else:
                values["promql sum"] = out.promql[f"all:{kind}"].get(("", ()))
            for w in FULL:
                key = ("ccpulse_window_contacts", lab(queue=q, channel=c, window=w, kind=kind))
                values[f"metrics gauge {w}"] = out.scrape.get(key)
                values[f"promql gauge {w}"] = out.prometheus.get(key)
                if q != "_all":  # the rules drop the instance: only this test's queues are ours
                    rule = "queue_channel_window_kind:ccpulse_window_contacts:max"
                    values[f"recording rule {w}"] = out.promql["rules"].get((rule, key[1]))
            if scope in hand:
                values["hand"] = number(hand[scope][kind])
            yield Row(f"{kind} {scope}", True, values)


def ratio_rows(
    out: Outputs, want: dict[str, Any], hand: dict[str, dict[str, float | None]]
) -> Iterator[Row]:
    """Ratios PromQL computes from the raw counters and histograms = the windows' KPIs."""
    today = want["windows"]["today"]
    metric_of = {kpi: f"ccpulse_{name}" for kpi, name, _ in KPI_GAUGES}
    for scope in sorted(today):
        queue, pair = _queue(scope), _pair(scope)
        if queue:
            computed = {
                kpi: (
                    "promql from counters",
                    out.promql[f"queue:{kpi}"].get(("", lab(queue=queue))),
                )
                for kpi in (
                    "service_level",
                    "service_level_answered",
                    "abandon_rate",
                    "asa_seconds",
                )
            }
            labels = {"queue": queue, "channel": "_all"}
        elif pair and f"hist_sl:{pair[1]}" in out.promql:
            key = ("", lab(queue=pair[0], channel=pair[1]))
            computed = {
                "service_level": ("promql bucket at T", out.promql[f"hist_sl:{pair[1]}"].get(key)),
                "service_level_answered": (
                    "promql bucket at T",
                    out.promql[f"hist_sla:{pair[1]}"].get(key),
                ),
            }
            labels = {"queue": pair[0], "channel": pair[1]}
        else:
            continue
        for kpi, (source, value) in computed.items():
            values: dict[str, float | None] = {source: number(value)}
            for w in FULL:
                values[f"reference {w}"] = _windows(want, w, scope, kpi)
                values[f"redis {w}"] = _windows(out.redis, w, scope, kpi)
                values[f"metrics gauge {w}"] = out.scrape.get(
                    (metric_of[kpi], lab(window=w, **labels))
                )
            if scope in hand:
                values["hand"] = hand[scope][kpi]
            yield Row(f"{kpi} {scope} ({source})", False, values)


def gauge_rows(out: Outputs, want: dict[str, Any]) -> Iterator[Row]:
    """Every KPI gauge of every window and scope = Redis = the reference = Prometheus."""
    rules = {
        "service_level": "service_level_ratio",
        "abandon_rate": "abandon_rate_ratio",
        "asa_seconds": "asa_seconds",
    }
    for window, scoped in want["windows"].items():
        for scope, kpis in sorted(scoped.items()):
            labels = scope_labels(scope)
            if labels is None:
                continue  # agent scopes are in Redis only (compared by the reference check)
            key = lab(queue=labels[0], channel=labels[1], window=window)
            for kpi, name, _ in KPI_GAUGES:
                values = {
                    "reference": number(kpis.get(kpi)),
                    "redis": _windows(out.redis, window, scope, kpi),
                    **out.series(f"ccpulse_{name}", key),
                }
                if kpi in rules and labels[0] != "_all":  # only this test's queues are ours
                    rule = f"queue_channel_window:ccpulse_{rules[kpi]}:max"
                    values["recording rule"] = out.promql["rules"].get((rule, key))
                yield Row(f"{window} {scope} {kpi}", kpi in KINDS, values)


def series_rows(out: Outputs) -> Iterator[Row]:
    """Every series of the scrape is in Prometheus with the same value, and no other."""
    names = set(out.scrape) | set(out.prometheus)
    for name, labels in sorted(names):
        if name in VOLATILE or not name.startswith("ccpulse_"):
            continue
        yield Row(f"series {name}{dict(labels)}", True, out.series(name, labels))


def exact_queue_rows(out: Outputs, hand: dict[str, dict[str, float | None]]) -> Iterator[Row]:
    """The exact queue's threshold, within-SL counter and wait histogram = the hand count."""
    for scope, n in sorted(hand.items()):
        pair = _pair(scope)
        if pair is None:
            continue
        queue, channel = pair
        labels = lab(queue=queue, channel=channel)
        bucket = lab(queue=queue, channel=channel, le=LE[channel])
        yield Row(
            f"threshold {scope}",
            True,
            {
                "hand": SL_SECONDS[channel],
                **out.series("ccpulse_sl_threshold_seconds", labels),
            },
        )
        yield Row(
            f"within SL {scope}",
            True,
            {
                "hand": n["within"],
                "metrics counter": out.scrape.get(
                    ("ccpulse_contacts_answered_within_sl_total", labels)
                ),
                "metrics bucket at T": out.scrape.get(("ccpulse_wait_seconds_bucket", bucket)),
                "promql counter": out.promql["pair:answered_within_sl"].get(("", labels)),
                "promql bucket at T": out.prometheus.get(("ccpulse_wait_seconds_bucket", bucket)),
            },
        )
        yield Row(
            f"wait count {scope}",
            True,
            {
                "hand": n["answered"],
                **out.series("ccpulse_wait_seconds_count", labels),
            },
        )
        yield Row(
            f"wait sum {scope}",
            False,
            {
                "hand": n["wait_sum"],
                **out.series("ccpulse_wait_seconds_sum", labels),
            },
        )


def settle(check: Callable[[], list[str]], what: str, timeout: float) -> None:
    """Wait for ``check`` to find nothing wrong; then fail with whatever it still finds."""
    try:
        wait_for(lambda: not check(), timeout=timeout, interval=1.0, message=what)
    except AssertionError:
        pass  # reported below, with the details
    problems = check()
    assert not problems, f"{what}: {len(problems)} problems, first: {problems[:15]}"


# -- the test --------------------------------------------------------------------------------


def test_redis_metrics_promql_and_references_agree(
    tmp_path: Path, stack: dict[str, Any], worker_factory: Any, scrape_target: Any
) -> None:
    base = f"http://127.0.0.1:{stack['prometheus_port']}"
    # The stack may have started before the rule files existed: load the recording rules.
    urllib.request.urlopen(urllib.request.Request(f"{base}/-/reload", method="POST"), timeout=10)
    env = make_env(tmp_path)
    tag = env["CCPULSE_APP_ID"]
    exact = exact_calls(f"exact-{tag}", tag)
    lines = interleaved([renamed(line, tag) for line in simulated_lines(HOURS, SEED)], exact)
    path = tmp_path / "events.jsonl"
    path.write_bytes(b"\n".join(lines) + b"\n")
    want = expected_kpis(lines)
    hand = hand_counts(exact)

    replay = run_cli(env, "replay", str(path), "--no-progress")
    assert replay.returncode == 0, replay.stderr.decode()
    worker = worker_factory(env)
    scrape_target(worker.port, tag)

    # (a) = (d): every published KPI of every window and scope equals the reference.
    settle(lambda: differences(published(env), want), "Redis equals the reference", timeout=180)
    premise_holds(env, stack["redis_port"], lines, want)

    # (a) = (b) = (c) = (d), once Prometheus has scraped the final snapshot.
    wait_for(
        lambda: prometheus_query(base, f'ccpulse_leader{{test="{tag}"}} == 1'),
        timeout=90,
        message=f"Prometheus scraping the worker at 127.0.0.1:{worker.port}\n{worker.log()}",
    )
    rows: list[Row] = []

    def disagreements() -> list[str]:
        rows[:] = compare(read_outputs(env, base, worker, tag), want, hand)
        return [str(row) for row in rows if row.disagrees()]

    settle(disagreements, "Redis, /metrics, PromQL and the references agree", timeout=90)
    assert sum(1 for r in rows if "hand" in r.values) >= 2 * 7 + 2 * 4, (
        "the exact queue was compared"
    )

    text = worker.metrics()
    checked = subprocess.run(
        [PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True, timeout=60
    )
    lint = (checked.stdout + checked.stderr).splitlines()
    assert checked.returncode == 0 and not lint, (
        f"promtool check metrics: rc {checked.returncode}: {lint}"
    )

    exact_sl = hand[f"queue:exact-{tag}"]["service_level"]
    print(
        f"\n{len(lines)} lines replayed ({len(exact)} hand-built); "
        f"{len(rows)} quantities agree across "
        f"reference, hand count, Redis, /metrics, PromQL and recording rules "
        f"({sum(r.exact for r in rows)} exact, {sum(not r.exact for r in rows)} to 1e-6; "
        f"{sum(r.what.startswith('series ') for r in rows)} scraped series equal in Prometheus); "
        f"exact queue service level {exact_sl:.6f}; promtool check metrics clean "
        f"({len(text.splitlines())} lines)"
    )


def premise_holds(
    env: dict[str, str], redis_port: int, lines: list[bytes], want: dict[str, Any]
) -> None:
    """The whole file lies inside `today` and `1h`, so the counters must equal their counts."""
    client = redis.Redis(port=redis_port)
    base = f"{env['CCPULSE_REDIS_PREFIX']}:v1:{env['CCPULSE_APP_ID']}:kpi:"
    times = [t for line in lines if (t := event_time(line)) is not None]
    for window in FULL:
        start = json.loads(client.hget(f"{base}{window}:all", "window_start") or b"null")
        end = json.loads(client.hget(f"{base}{window}:all", "window_end") or b"null")
        assert start is not None and start <= min(times), (
            f"{window} starts at {start}, after {min(times)}"
        )
        assert end == want["watermark"] and max(times) <= end, f"{window} ends at {end}"
    client.close()
