"""The KPI memo of a publish (stream/snapshot.py ``_kpis_since``): what it keeps from the
last publish and what it computes again always equals computing everything anew."""

from __future__ import annotations

from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from stream import aggregates, sketch
from stream.snapshot import _kpis_since, _scope_kpis

EVENT_COUNTERS = ("offered", "answered", "abandoned", "wait_sum", "wait_n", "sl_within", "handle_sum", "handle_n")
TIME = ("busy_us", "acw_us", "available_us", "busy_seconds")
counts = st.floats(min_value=1.0, max_value=1e6, allow_nan=False)


@st.composite
def aggregate(draw: Any) -> dict[str, float]:
    agg = draw(st.dictionaries(st.sampled_from(EVENT_COUNTERS + TIME), counts, max_size=10))
    for wait in draw(st.lists(st.floats(min_value=0.0, max_value=600.0), max_size=5)):
        key = sketch.bucket_key(wait)
        agg[key] = agg.get(key, 0.0) + 1.0
    return agg


@st.composite
def gauges(draw: Any) -> dict[str, float]:
    return draw(st.dictionaries(
        st.sampled_from(("waiting", "oldest_offered", "agents_busy", "agents_available", "sentiment_live")),
        st.floats(min_value=1.0, max_value=2e9), max_size=4,
    ))


def _changed(draw: Any, agg: dict[str, float], keys: tuple[str, ...]) -> dict[str, float]:
    """``agg`` with some of ``keys`` set anew or dropped."""
    out = dict(agg)
    for key in draw(st.lists(st.sampled_from(keys), max_size=3)):
        if draw(st.booleans()):
            out[key] = draw(counts)
        else:
            out.pop(key, None)
    return out


@given(st.data(), st.sampled_from(("queue:billing", "agent:a1", "all")), aggregate(), gauges())
def test_what_the_memo_keeps_equals_computing_anew(
    data: Any, scope: str, agg: dict[str, float], live: dict[str, float]
) -> None:
    watermark = 2e9 + 10
    wm = watermark if "oldest_offered" in live else 0.0
    before = (agg, live, wm, _scope_kpis(scope, agg, live, watermark))
    kind = data.draw(st.sampled_from(("same", "time", "events")))
    now_agg = dict(agg) if kind == "same" else _changed(data.draw, agg, TIME if kind == "time" else EVENT_COUNTERS)
    now_live = data.draw(gauges()) if data.draw(st.booleans()) else dict(live)
    now_watermark = watermark + data.draw(st.sampled_from((0.0, 0.5, 7.25)))
    now_wm = now_watermark if "oldest_offered" in now_live else 0.0
    kept = _kpis_since(before, scope, now_agg, now_live, now_wm, now_watermark)
    fresh = _scope_kpis(scope, now_agg, now_live, now_watermark)
    assert kept == fresh
    assert list(kept) == list(fresh)  # the same fields, in the same order


def test_unchanged_inputs_give_the_very_same_dict() -> None:
    agg = {"offered": 3.0, "answered": 2.0, "busy_us": 5e6, "available_us": 5e6}
    before = (agg, {}, 0.0, _scope_kpis("queue:q", agg, {}, 1.0))
    assert _kpis_since(before, "queue:q", dict(agg), {}, 0.0, 1.0) is before[3]


def test_agent_time_alone_moves_only_occupancy() -> None:
    agg = {"offered": 3.0, "answered": 2.0, "busy_us": 5e6, "available_us": 5e6}
    before = (agg, {}, 0.0, _scope_kpis("queue:q", agg, {}, 1.0))
    later = {**agg, "busy_us": 15e6}
    kept = _kpis_since(before, "queue:q", later, {}, 0.0, 1.0)
    assert kept["occupancy"] == 0.75 and before[3]["occupancy"] == 0.5
    assert {k: v for k, v in kept.items() if k != "occupancy"} == {
        k: v for k, v in before[3].items() if k != "occupancy"
    }


def test_same_but_agent_time_reads_every_other_counter() -> None:
    same = aggregates.same_but_agent_time
    assert same({"offered": 1.0, "busy_us": 2.0}, {"offered": 1.0, "available_us": 9.0})
    assert same({"offered": 1.0}, {"offered": 1.0, "busy_seconds": 3.0})
    assert not same({"offered": 1.0, "answered": 1.0}, {"offered": 1.0, "busy_us": 2.0})
    assert not same({"offered": 1.0}, {"offered": 2.0})
    assert not same({"offered": 1.0}, {"offered": 1.0, "w:3": 1.0})
