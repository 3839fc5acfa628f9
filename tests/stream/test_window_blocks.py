"""Remembered five-minute block sums (stream/buckets.py) never change what a window adds up to."""

from __future__ import annotations

import copy
import random

import orjson

from ccpulse.simulator.defaults import default_scenario
from ccpulse.simulator.engine import generate
from stream.buckets import BLOCK_SECONDS
from stream.contacts import ContactState
from stream.pipeline import Pipeline
from tests.stream.harness import T0, settings


def _fresh(pipeline: Pipeline, state: ContactState) -> ContactState:
    """The same records loaded into a state that remembers nothing."""
    fresh = ContactState(state.partition, pipeline.window_clock, pipeline.rules, pipeline.horizons)
    fresh.load(iter(copy.deepcopy(list(state.records.items()))))
    return fresh


def test_windows_equal_a_fresh_states_after_every_batch_and_at_any_watermark() -> None:
    scenario = default_scenario(queues=3, channels=("voice", "chat"), agents=12)
    events = list(generate(scenario, seed=7, start=T0, duration_seconds=3 * 3600))
    pipeline = Pipeline(settings())
    rng = random.Random(11)
    offset, remembered = 0, 0
    while offset < len(events):
        size = rng.choice((1, 5, 40, 300))
        chunk = events[offset : offset + size]
        batch = [(0, offset + n, orjson.dumps(e)) for n, e in enumerate(chunk)]
        pipeline.process(batch)
        offset += size
        state = pipeline.contact_state(0)
        watermark = state.watermark
        for at in (watermark, watermark - 45, watermark + BLOCK_SECONDS + 17):
            assert state.window_partials(at) == _fresh(pipeline, state).window_partials(at)
        remembered = max(remembered, len(state._blocks))
    assert remembered >= 10  # the 1 h window was read from remembered blocks


def test_a_late_event_drops_its_blocks_sum() -> None:
    pipeline = Pipeline(settings())
    offered = {"type": "contact.offered", "queue": "q", "channel": "voice"}
    early = [{**offered, "event_id": f"e{n}", "contact_id": f"c{n}", "ts": T0 + 60 * n} for n in range(40)]
    pipeline.process([(0, n, orjson.dumps(e)) for n, e in enumerate(early)])
    state = pipeline.contact_state(0)
    before = state.window_partials(state.watermark)["1h"]["all"]["offered"]
    late = {**offered, "event_id": "late", "contact_id": "late", "ts": T0 + 60}  # in a remembered block
    pipeline.process([(0, 40, orjson.dumps(late))])
    assert state.window_partials(state.watermark)["1h"]["all"]["offered"] == before + 1
