"""Publish lanes (stream/lanes.py): recomputing a lane at a time never changes a KPI."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
import pytest

from bench.publish import Discard
from ccpulse.simulator.defaults import default_scenario
from ccpulse.simulator.engine import generate
from stream import lanes, snapshot
from stream.exchange import field_name
from stream.pipeline import Pipeline
from stream.runtime import Runtime
from tests.stream.harness import T0, settings


def test_every_agent_scope_has_one_agent_lane_and_the_rest_are_main() -> None:
    agents = [f"agent:a{n}" for n in range(400)]
    for scope in agents:
        assert lanes.lane(scope) in lanes.AGENT_LANES
        assert lanes.lane(scope) == lanes.agent_lane(scope.removeprefix("agent:"))
    used = {lanes.lane(scope) for scope in agents}
    assert used == set(lanes.AGENT_LANES)  # 400 agents spread over all eight slices
    for scope in ("all", "queue:agent:x", "channel:voice", "queue:a|b"):
        assert lanes.lane(scope) == lanes.MAIN
    crossed = {lanes.lane(f"queue:q{n}|channel:chat") for n in range(100)}
    assert crossed == set(lanes.CROSS_LANES)


def test_rotation_visits_every_lane_with_the_main_lane() -> None:
    seen = [lanes.rotation(n) for n in range(lanes.AGENT_SLICES)]
    assert all(first == lanes.MAIN for first, _, _ in seen)
    assert sorted(agent for _, agent, _ in seen) == sorted(lanes.AGENT_LANES)
    assert {cross for _, _, cross in seen} == set(lanes.CROSS_LANES)
    assert lanes.AGENT_SLICES % lanes.CROSS_SLICES == 0  # a round of agents is whole rounds of both


def _pipeline(partitions: int = 2) -> Pipeline:
    scenario = default_scenario(queues=3, channels=("voice", "chat"), agents=24)
    events = list(generate(scenario, seed=5, start=T0, duration_seconds=2 * 3600))
    pipeline = Pipeline(settings())
    for n, event in enumerate(events):
        partition = n % partitions
        pipeline.process([(partition, n, orjson.dumps(event))])
    return pipeline


def _union(parts: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for part in parts:
        for name, scoped in part.items():
            for scope, value in scoped.items():
                assert scope not in out.get(name, {}), f"{scope} in two lanes"
                out.setdefault(name, {})[scope] = value
    return out


@pytest.mark.parametrize("shift", [0.0, -45.0, 317.0])
def test_the_lanes_of_a_partial_add_up_to_the_whole_partial(shift: float) -> None:
    pipeline = _pipeline()
    for state in pipeline.contacts.values():
        wm = state.watermark + shift
        whole = snapshot.contact_partial(state, wm, wm, 1800.0, -0.05)
        by_lane = [snapshot.contact_partial(state, wm, wm, 1800.0, -0.05, (lane,)) for lane in lanes.LANES]
        windows = [snapshot.merge_windows([p], customers=False) for p in by_lane]
        assert _union(windows) == snapshot.merge_windows([whole], customers=False)
        assert _union([{"live": p["live"]} for p in by_lane]) == {"live": whole["live"]}
        main = [p for p in by_lane if "lane" not in p]
        assert len(main) == 1 and main[0]["totals"] == whole["totals"]
        assert all(p["lane"] in lanes.LANES[1:] for p in by_lane if p is not main[0])
        assert any(scope.startswith("agent:") for w in windows for scope in w["1h"])


def test_after_a_round_of_lanes_the_snapshot_equals_the_every_scope_one() -> None:
    pipeline = _pipeline()
    discard = Discard()
    runtime = Runtime(settings(), pipeline, discard, discard, discard, discard)
    wm = max(state.watermark for state in pipeline.contacts.values())
    runtime.global_watermark = wm
    parts = list(pipeline.contacts), list(pipeline.customers)
    first = asyncio.run(runtime.tick(*parts, leader=True))
    agent_scopes = {s for s in first.windows["1h"] if s.startswith("agent:")}
    assert agent_scopes and {lanes.lane(s) for s in agent_scopes} == {lanes.rotation(0)[1]}
    crossed = {s for s in first.windows["1h"] if "|channel:" in s}
    assert crossed and {lanes.lane(s) for s in crossed} == {lanes.rotation(0)[2]}
    for _ in range(lanes.AGENT_SLICES - 1):
        last = asyncio.run(runtime.tick(*parts, leader=True))
    whole = snapshot.kpis_by_window(
        [snapshot.contact_partial(c, wm, wm, 1800.0, -0.05) for c in pipeline.contacts.values()]
        + [snapshot.customer_partial(c, wm, wm) for c in pipeline.customers.values()],
        wm,
    )
    assert {w: dict(s) for w, s in last.windows.items()} == whole


def test_exchange_fields_name_the_agent_lane() -> None:
    assert field_name({"stage": "contacts", "partition": 3}) == "contacts:3"
    assert field_name({"stage": "customers", "partition": 0, "lane": "main"}) == "customers:0"
    assert field_name({"stage": "contacts", "partition": 1, "lane": "a5"}) == "contacts:1:a5"


def test_remembered_sums_between_publishes_never_change_a_kpi() -> None:
    """Publish after every chunk of events (late ones too): the worker's snapshot, built from
    remembered sums, equals one built from scratch, scope by scope, as each lane comes up."""
    scenario = default_scenario(queues=3, channels=("voice", "chat"), agents=16)
    events = list(generate(scenario, seed=9, start=T0, duration_seconds=3 * 3600))
    late = [{**e, "event_id": f"late-{e['event_id']}", "contact_id": f"late-{e.get('contact_id')}"}
            for e in events[::97] if e["type"] == "contact.offered"]
    pipeline = Pipeline(settings())
    discard = Discard()
    runtime = Runtime(settings(), pipeline, discard, discard, discard, discard)
    offsets = [0, 0]
    chunk, checked, reused = 100, 0, 0
    for start in range(0, len(events), chunk):
        batch = events[start : start + chunk] + late[start // chunk : start // chunk + 1]
        for n, event in enumerate(batch):
            partition = n % 2
            pipeline.process([(partition, offsets[partition], orjson.dumps(event))])
            offsets[partition] += 1
        asyncio.run(runtime.tick(list(pipeline.contacts), list(pipeline.customers), leader=True))
        before = runtime.older_sums["main"]["1h"]
        # again, with nothing new: the sums of older buckets are served from the cache
        got = asyncio.run(runtime.tick(list(pipeline.contacts), list(pipeline.customers), leader=True))
        reused += runtime.older_sums["main"]["1h"] is before
        wm = got.watermark
        fresh = snapshot.kpis_by_window(
            [snapshot.contact_partial(c, wm, wm, 1800.0, -0.05) for c in pipeline.contacts.values()]
            + [snapshot.customer_partial(c, wm, wm) for c in pipeline.customers.values()],
            wm,
        )
        for window, scoped in fresh.items():
            for scope, kpis in scoped.items():
                if lanes.lane(scope) in lanes.rotation(runtime.publishes - 1):
                    assert got.windows[window][scope] == kpis, (window, scope)
                    checked += 1
    assert checked > 1000 and reused > 10
