"""Hostile input and time faults against a real worker (issue #7).

- Fuzz: hypothesis draws a few hundred malformed, truncated, wrongly typed, huge,
  unicode-heavy and hostile payloads, mixed into a simulated center's valid events. The
  worker survives; every rejected message is in the dead-letter topic byte for byte with
  its reason; the valid events among them give exactly the KPIs of a clean run.
- Time faults: far-future and far-past stamps, a producer whose clock is 90 s behind, a
  duplicate arriving hours later and a straggler two hours late — each handled by the rule
  of docs/metrics.md#late-out-of-order-and-duplicate-events and counted in its metric.
"""

from __future__ import annotations

import itertools
import random
import time
import urllib.error
import urllib.request
from collections import Counter
from pathlib import Path
from typing import Any

import orjson
import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from kafka import KafkaConsumer

from tests.conftest import KAFKA, make_env, samples, wait_for
from tests.integration.faults import differences, expected_kpis, processed, produce, published, rejected

pytestmark = pytest.mark.integration

VALID = {"event_id": "x1", "type": "contact.offered", "ts": "2025-10-09T07:00:00Z", "contact_id": "cx",
         "queue": "billing", "channel": "voice"}
JSON_VALUES = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3),
    max_leaves=8,
)


_WRONG_TYPE_IDS = itertools.count()  # unique event ids, without the random module in a strategy


def _wrong_type(field: str, value: Any) -> bytes:
    return orjson.dumps({**VALID, "event_id": f"w{next(_WRONG_TYPE_IDS)}", field: value})


HOSTILE = (  # one strategy per kind of payload; each is drawn 30 times
    st.binary(max_size=200),  # noise, invalid UTF-8 included
    st.integers(1, len(orjson.dumps(VALID)) - 1).map(lambda n: orjson.dumps(VALID)[:n]),  # truncated
    JSON_VALUES.filter(lambda v: not isinstance(v, dict)).map(orjson.dumps),  # JSON, not an object
    st.sampled_from(["event_id", "type", "ts", "contact_id", "queue", "channel"]).flatmap(
        lambda f: JSON_VALUES.filter(lambda v: not isinstance(v, str)).map(lambda v: _wrong_type(f, v))),
    st.text(min_size=1, max_size=30).map(lambda t: orjson.dumps({**VALID, "type": "contact." + t + "!"})),
    st.integers(70_000, 200_000).map(lambda n: orjson.dumps({**VALID, "queue": "q" * n})),  # oversized
    st.integers(1100, 3000).map(lambda depth: b"[" * depth + b"]" * depth),  # nesting past the parser
    st.sampled_from([
        b'{"event_id": "n1", "type": "contact.offered", "ts": NaN}',
        b'{"event_id": "n2", "type": "contact.offered", "ts": 1e400, '
        b'"contact_id": "c", "queue": "q", "channel": "voice"}',
        b'{"event_id": "n3", "type": "contact.offered", "ts": "yesterday", '
        b'"contact_id": "c", "queue": "q", "channel": "voice"}',
        b'\xef\xbb\xbf{"event_id": "bom"}',
        b'{"__proto__": {"admin": true}, "type": "contact.offered"}',
        b"\x00" * 64,
        b"",
    ]),
)
UNICODE_VALID = st.text(
    alphabet=st.characters(min_codepoint=0x80, max_codepoint=0x2FFFF, exclude_categories=("Cs",)),
    min_size=1, max_size=12,
)


def _mixed(data: st.DataObject, valid: tuple[bytes, ...]) -> list[bytes]:
    """Valid lines with hostile payloads and unicode-heavy (valid) events drawn in between."""
    hostile = [p for kind in HOSTILE for p in data.draw(st.lists(kind, min_size=30, max_size=30), label="payloads")]
    names = data.draw(st.lists(UNICODE_VALID, min_size=40, max_size=40), label="unicode queues")
    unicode_events = [
        orjson.dumps({**VALID, "event_id": f"u{i}", "contact_id": f"u{i}", "queue": name + "<script>alert(1)</script>"})
        for i, name in enumerate(names)
    ]
    lines = list(valid)
    rng = random.Random(7)
    for payload in hostile + unicode_events:
        lines.insert(rng.randrange(len(lines) + 1), payload)
    return lines


def _dead_letters(topic: str, count: int) -> list[tuple[str, bytes]]:
    consumer = KafkaConsumer(topic, bootstrap_servers=KAFKA, auto_offset_reset="earliest",
                             consumer_timeout_ms=20000, max_partition_fetch_bytes=8 * 1024 * 1024)
    out = []
    for message in consumer:
        headers = {k: v for k, v in message.headers}
        out.append((headers["ccpulse-reason"].decode(), message.value))
        if len(out) == count:
            break
    consumer.close()
    return out


@settings(max_examples=1, derandomize=True, deadline=None, database=None, phases=[Phase.generate],
          suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_fuzzed_input_lands_in_dead_letters_and_valid_events_count_exactly(
    data: st.DataObject, tmp_path_factory: pytest.TempPathFactory, stack: Any, worker_factory: Any
) -> None:
    from tests.integration.faults import simulated_lines

    lines = _mixed(data, simulated_lines(3.0, seed=5))
    env = make_env(tmp_path_factory.mktemp("fuzz"))
    produce(lines, env["CCPULSE_INPUT_TOPIC"])
    want = expected_kpis(lines)
    worker = worker_factory(env)
    wait_for(lambda: not differences(published(env), want), timeout=120, interval=1.0,
             message=f"published KPIs equal a clean run\n{worker.log()}")
    assert worker.proc is not None and worker.proc.poll() is None, "the worker survived"
    text = worker.metrics()
    assert processed(text) + rejected(text) == len(lines)
    letters = _dead_letters(env["CCPULSE_DEAD_LETTER_TOPIC"], want["dead_letters"])
    assert Counter(letters) == Counter(want["dead_letter_items"]), (
        "every rejected message, byte for byte, with its reason"
    )
    reasons = Counter(reason for reason, _ in letters)
    print(f"\nfuzz: sent {len(lines)} messages; processed {processed(text):.0f}, dead-lettered "
          f"{rejected(text):.0f} by reason {dict(reasons)}; KPIs equal a clean run of the valid events")


def _status(port: int, path: str, method: str) -> int:
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=b"{}", method=method)
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return int(reply.status)
    except urllib.error.HTTPError as error:
        return int(error.code)


# -- time faults --------------------------------------------------------------------------------
W = 1_760_014_800.0  # 2025-10-09T13:00:00Z, the final watermark
MIN = 60.0


def _time_fault_events() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Events in arrival order, and the counts the documented rules give for them."""
    n = 0

    def ev(kind: str, ts: float, cid: str, queue: str, **extra: Any) -> dict[str, Any]:
        nonlocal n
        n += 1
        return {"event_id": f"tf{n}", "type": kind, "ts": ts, "contact_id": cid, "queue": queue,
                "channel": "voice", **extra}

    dup_offer = ev("contact.offered", W - 150 * MIN, "dup", "q3")
    arrivals: list[tuple[float, dict[str, Any]]] = [
        (W - 150 * MIN, dup_offer),
        (W - 150 * MIN + 10, ev("contact.answered", W - 150 * MIN + 10, "dup", "q3", agent_id="a9")),
    ]
    for i in range(20):  # an on-time producer
        at = W - 50 * MIN + i * 2 * MIN
        arrivals += [(at, ev("contact.offered", at, f"a{i}", "q1")),
                     (at + 15, ev("contact.answered", at + 15, f"a{i}", "q1", agent_id="a1"))]
    for i in range(10):  # a producer whose clock runs 90 s behind: within the lateness, counted in place
        at = W - 40 * MIN + i * 3 * MIN
        arrivals += [(at + 90, ev("contact.offered", at, f"s{i}", "q2")),
                     (at + 105, ev("contact.answered", at + 15, f"s{i}", "q2", agent_id="a2"))]
    arrivals.append((W, {"event_id": "anchor", "type": "agent.state", "ts": W, "agent_id": "a1", "state": "available"}))
    arrivals.sort(key=lambda pair: pair[0])
    stragglers = [
        dup_offer,  # the same event again, 2.5 h later: counted once
        ev("contact.offered", W - 10 * 3600, "old", "q5"),  # 10 h behind, unknown contact: dropped
        ev("contact.offered", W - 120 * MIN, "late", "q4"),  # 2 h late: in today, not in the rolling windows
        ev("contact.answered", W - 120 * MIN + 20, "late", "q4", agent_id="a4"),
        ev("contact.offered", time.time() + 86400, "future", "q1"),  # a day ahead of the wall clock
    ]
    expected = {"duplicates": 1, "beyond_horizon": 1, "late": 4, "future_timestamp": 1,
                "today": {"q1": 20, "q2": 10, "q3": 1, "q4": 1}, "1h": {"q1": 20, "q2": 10}}
    return [e for _, e in arrivals] + stragglers, expected


def test_time_faults_follow_the_documented_rules(tmp_path: Path, stack: Any, worker_factory: Any) -> None:
    events, want = _time_fault_events()
    env = make_env(tmp_path)
    produce([orjson.dumps(e) for e in events], env["CCPULSE_INPUT_TOPIC"], partitions=1)
    env["CCPULSE_PARTITIONS"] = "1"  # one partition: arrival order is the order above
    worker = worker_factory(env)

    def settled() -> dict[str, Any] | None:
        got = published(env)["windows"]
        today = {q: got.get("today", {}).get(f"queue:{q}", {}).get("offered") for q in want["today"]}
        return got if today == want["today"] else None

    got = wait_for(settled, timeout=60, message=f"today's offered per queue\n{worker.log()}")
    for queue, offered in want["today"].items():
        assert got["today"][f"queue:{queue}"]["answered"] == offered, queue
    for queue, offered in want["1h"].items():
        assert got["1h"][f"queue:{queue}"]["offered"] == offered, queue
    assert "queue:q4" not in got["1h"] or got["1h"]["queue:q4"]["offered"] == 0
    assert "queue:q5" not in got["today"], "the far-past contact is dropped, not counted"
    text = worker.metrics()
    counters = {
        "duplicates": samples(text, "ccpulse_events_duplicate_total"),
        "late": samples(text, "ccpulse_events_late_total"),
        "beyond_horizon": [
            s for s in samples(text, "ccpulse_events_dropped_total") if s[0].get("reason") == "beyond_horizon"
        ],
        "future_timestamp": [
            s for s in samples(text, "ccpulse_events_rejected_total") if s[0].get("reason") == "future_timestamp"
        ],
    }
    seen = {
        name: sum(v for labels, v in found if labels.get("stage", "contacts") == "contacts")
        for name, found in counters.items()
    }
    assert seen == {name: want[name] for name in seen}
    letters = _dead_letters(env["CCPULSE_DEAD_LETTER_TOPIC"], 1)
    assert letters == [("future_timestamp", orjson.dumps(events[-1]))]
    for path in ("/metrics", "/healthz"):  # the worker's web server is read-only
        for method in ("POST", "PUT", "DELETE", "PATCH"):
            assert _status(worker.port, path, method) in (404, 405), (method, path)
    print(f"\ntime faults: sent {len(events)} events; counters {seen}; today offered {want['today']}, "
          f"1h offered {want['1h']}")
