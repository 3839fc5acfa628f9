"""Agent time (stream/contacts.py): added to the buckets as event time passes, exact in
microseconds, the same however the input is cut into batches, and the same after a crash
that kept only part of a batch's writes."""

from __future__ import annotations

import copy
import random
from collections import defaultdict
from typing import Any

import orjson

from stream.contacts import AGENT_TIME, ContactState
from stream.pipeline import Pipeline
from tests.stream.harness import T0, settings

STATES = ("available", "busy", "after_contact_work", "away", "offline")
QUEUES = ("billing", "sales", "support")


def _events(seed: int, count: int = 400) -> list[dict[str, Any]]:
    """Agent state changes of five agents over ~40 minutes, some late, out of order or repeated,
    with contacts between them moving the watermark."""
    rng = random.Random(seed)
    out: list[dict[str, Any]] = []
    clock = 0.0
    for n in range(count):
        clock += rng.uniform(0.0, 6.0)
        roll = rng.random()
        if roll < 0.3:
            out.append({"event_id": f"c{n}", "type": "contact.offered", "ts": T0 + clock, "contact_id": f"c{n}",
                        "queue": rng.choice(QUEUES), "channel": "voice"})
            continue
        if roll < 0.35 and out:
            out.append(copy.deepcopy(rng.choice(out)))  # a repeat
            continue
        late = rng.uniform(0.0, 90.0) if roll < 0.55 else 0.0  # late, or older than the agent's state
        event = {"event_id": f"a{n}", "type": "agent.state", "ts": round(T0 + clock - late, 3),
                 "agent_id": f"ag{rng.randrange(5)}", "state": rng.choice(STATES)}
        if rng.random() < 0.5:
            event["queues"] = rng.sample(QUEUES, rng.randrange(1, 3))
        out.append(event)
    return out


def _us(ts: float) -> int:
    return round(ts * 1_000_000)


Span = tuple[float, float, Any, list[str], str]  # start, end, state, queues, agent


def _timeline(events: list[dict[str, Any]], until: float | None = None) -> list[Span]:
    """Each agent's accepted states: each runs until the agent's next accepted change, the
    last until ``until`` (default: the watermark)."""
    agents: dict[str, dict[str, Any]] = {}
    seen: set[str] = set()
    spans: list[Span] = []
    watermark = 0.0
    for event in events:
        watermark = max(watermark, event["ts"])
        if event["type"] != "agent.state" or event["event_id"] in seen:
            continue
        seen.add(event["event_id"])
        agent = agents.setdefault(event["agent_id"], {"st": None, "since": event["ts"], "q": []})
        if event["ts"] < agent["since"]:
            continue  # older than the agent's state: ignored
        spans.append((agent["since"], event["ts"], agent["st"], agent["q"], event["agent_id"]))
        agent.update(st=event["state"], since=event["ts"])
        if "queues" in event:
            agent["q"] = list(event["queues"])
    for name, agent in agents.items():
        spans.append((agent["since"], watermark if until is None else until, agent["st"], agent["q"], name))
    return spans


def _reference(events: list[dict[str, Any]], state: ContactState) -> dict[tuple[str, str, str], int]:
    """Agent time by (bucket key, scope, counter), worked out from each agent's timeline."""
    clock = state.clock
    want: dict[tuple[str, str, str], int] = defaultdict(int)
    for start, end, st, queues, name in _timeline(events):
        counter = AGENT_TIME.get(st or "")
        if counter is None or end <= start:
            continue
        cursor = start
        while cursor < end:  # one fine bucket at a time; its interval is the interval of its start
            bucket = clock.bucket_start(cursor)
            stop = min(end, bucket + clock.bucket_seconds)
            micros = _us(stop) - _us(cursor)
            for key in (state.key("b", bucket), state.key("i", clock.interval_start(bucket))):
                for scope in ["all", f"agent:{name}", *(f"queue:{q}" for q in queues)]:
                    want[(key, scope, counter)] += micros
            cursor = stop
    return {k: v for k, v in want.items() if v}


def _held(state: ContactState) -> dict[tuple[str, str, str], int]:
    out = {}
    buckets = [(state.key("b", start), r) for start, r in state.fine.items()]
    buckets += [(state.key("i", start), r) for start, r in state.intervals.items()]
    for name, record in buckets:
        for scope, agg in record["s"].items():
            for counter in AGENT_TIME.values():
                if agg.get(counter):
                    value = agg[counter]
                    assert value == int(value), (name, scope, counter, value)
                    out[(name, scope, counter)] = int(value)
    return out


def _apply(events: list[dict[str, Any]], sizes: tuple[int, ...], seed: int) -> Pipeline:
    pipeline = Pipeline(settings())
    rng = random.Random(seed)
    offset = 0
    while offset < len(events):
        size = rng.choice(sizes)
        chunk = events[offset : offset + size]
        pipeline.process([(0, offset + n, orjson.dumps(e)) for n, e in enumerate(chunk)])
        offset += len(chunk)
    return pipeline


def test_agent_time_in_every_bucket_is_exact_whatever_the_batches() -> None:
    for seed in range(4):
        events = _events(seed)
        results = []
        for sizes in ((1,), (3, 17), (60, 250), (len(events),)):
            state = _apply(events, sizes, seed).contact_state(0)
            results.append(_held(state))
        want = _reference(events, state)
        assert len(want) > 100
        for held in results:
            assert held == want


def test_the_windows_count_each_stretch_once_between_batches() -> None:
    """Between two batches the snapshot adds the time since the last accrual, not since each
    state began: the 1 h window's occupancy equals that of a state fed everything at once."""
    events = _events(5)
    stepwise = _apply(events[:200], (7,), 1).contact_state(0)
    whole = _apply(events[:200], (200,), 1).contact_state(0)
    wm = stepwise.watermark + 42.0  # a live window running past the last event
    bounds = {"1h": stepwise.clock.bounds("1h", wm), "today": stepwise.clock.bounds("today", wm)}
    for window, (start, end) in bounds.items():
        a = _sum_agent_time(stepwise, window, wm, bounds)
        b = _sum_agent_time(whole, window, wm, bounds)
        want: dict[str, float] = defaultdict(float)
        for since, until, st, _, _ in _timeline(events[:200], until=wm):
            counter = AGENT_TIME.get(st or "")
            if counter is not None and min(until, end) > max(since, start):
                want[counter] += _us(min(until, end)) - _us(max(since, start))
        assert a == b and a["all"] == want, window


def _sum_agent_time(state: ContactState, window: str, wm: float, bounds: Any) -> dict[str, dict[str, float]]:
    parts = state.window_partials(wm)[window]
    ongoing = state.ongoing_agent_time({window: bounds[window]})[window]
    total: dict[str, dict[str, float]] = {}
    for scoped in (parts, ongoing):
        for scope, agg in scoped.items():
            for counter in AGENT_TIME.values():
                if agg.get(counter):
                    total.setdefault(scope, {}).setdefault(counter, 0.0)
                    total[scope][counter] += agg[counter]
    return total


def test_a_batch_whose_writes_were_cut_short_is_re_read_without_counting_twice() -> None:
    events = _events(9, count=300)
    want = _held(_apply(events, (300,), 0).contact_state(0))
    rng = random.Random(3)
    for _ in range(6):
        pipeline = Pipeline(settings())
        cut = rng.randrange(50, 250)
        first = [(0, n, orjson.dumps(e)) for n, e in enumerate(events[:cut])]
        durable = copy.deepcopy(dict(pipeline.process(first).writes))  # the changelog so far
        end = min(len(events), cut + rng.randrange(10, 40))
        batch = [(0, n, orjson.dumps(e)) for n, e in enumerate(events[cut:end], start=cut)]
        writes = pipeline.process(batch).writes
        kept = rng.randrange(0, len(writes))  # a crash: a prefix of the batch's writes landed
        for key, record in writes[:kept]:
            durable[key] = copy.deepcopy(record)
        durable = {k: v for k, v in durable.items() if v is not None}
        restarted = Pipeline(settings(), store_items=lambda p, d=durable: iter(copy.deepcopy(list(d.items()))))
        state = restarted.contact_state(0)
        start = cut  # Faust re-delivers from the committed offset: the records skip what they hold
        rest = [(0, n, orjson.dumps(e)) for n, e in enumerate(events[start:], start=start)]
        rest_cut = rng.randrange(1, len(rest))  # re-read in other batches than before
        restarted.process(rest[:rest_cut])
        restarted.process(rest[rest_cut:])
        assert _held(state) == want, (cut, end, kept)


def test_ongoing_time_and_agent_gauges_by_group_equal_adding_agent_by_agent() -> None:
    """``ongoing_agent_time`` and ``live_partials`` count agents in groups (same state, queues
    and start); the result is what adding each agent to each of its scopes gives."""
    from stream.contacts import AGENT_GAUGES, _agent_scopes
    from stream.lanes import LANES, MAIN, agent_lane

    events = _events(11, count=500)
    for n, event in enumerate(events):  # many agents, so that groups hold several
        if event["type"] == "agent.state":
            event["agent_id"] = f"ag{n % 40}"
    state = _apply(events, (37,), 1).contact_state(0)
    wm = state.watermark + 5.0
    bounds = {w: state.clock.bounds(w, wm) for w in ("5m", "1h", "today", "interval")}
    accrued = state.meta.get("acc")
    for lanes in (None, (MAIN,), ("a3",), ("x1",), (MAIN, "a5", "x0")):
        chosen = LANES if lanes is None else lanes
        time_want: dict[str, dict[str, dict[str, float]]] = {}
        gauges_want: dict[str, dict[str, float]] = {}
        for agent, record in state.agents():
            scopes = _agent_scopes(agent, record.get("q", []), MAIN in chosen, agent_lane(agent) in chosen)
            counter = AGENT_TIME.get(record.get("st") or "")
            since = record["since"] if accrued is None else max(record["since"], accrued)
            for window, (start, end) in bounds.items():
                micros = _us(end) - _us(max(start, since))
                if counter is not None and micros > 0:
                    for scope in scopes:
                        agg = time_want.setdefault(window, {}).setdefault(scope, {})
                        agg[counter] = agg.get(counter, 0.0) + micros
            gauge = AGENT_GAUGES.get(record.get("st") or "")
            if wm - record.get("last", wm) > 600 and record.get("st") != "offline":
                gauge = "agents_stale"
            if gauge is not None:
                for scope in scopes:
                    gauges_want.setdefault(scope, {})[gauge] = gauges_want.get(scope, {}).get(gauge, 0.0) + 1
        assert bool(time_want) == (MAIN in chosen or "a3" in chosen or "a5" in chosen), lanes
        assert state.ongoing_agent_time(bounds, lanes) == time_want, lanes
        live = state.live_partials(wm, 600, -0.5, lanes)
        agents_only = {
            scope: {k: v for k, v in gauges.items() if k.startswith("agents_")} for scope, gauges in live.items()
        }
        assert {s: g for s, g in agents_only.items() if g} == gauges_want, lanes
