"""The wait-percentile sketch: relative error within ALPHA of the exact nearest-rank value."""

from __future__ import annotations

import math
import random

import pytest

from stream import aggregates, sketch


def exact(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[math.floor(q * (len(ordered) - 1))]


def sketch_of(values: list[float]) -> aggregates.Agg:
    agg = aggregates.initialize()
    for value in values:
        aggregates.add(agg, [(sketch.bucket_key(value), 1.0)])
    return agg


@pytest.mark.parametrize("seed", range(20))
@pytest.mark.parametrize("q", [0.5, 0.9, 0.99])
def test_quantile_error_within_alpha(seed: int, q: float) -> None:
    rng = random.Random(seed)
    values = [rng.lognormvariate(3, 1.5) for _ in range(rng.randint(1, 3000))]
    got = sketch.quantile(sketch_of(values), q)
    want = exact(values, q)
    assert got is not None
    assert abs(got - want) <= sketch.ALPHA * want + 1e-12


def test_merge_of_parts_equals_sketch_of_all() -> None:
    rng = random.Random(1)
    a = [rng.expovariate(1 / 30) for _ in range(500)]
    b = [rng.expovariate(1 / 300) for _ in range(700)]
    merged = aggregates.merge(sketch_of(a), sketch_of(b))
    assert merged == sketch_of(a + b)


def test_retraction_removes_a_sample() -> None:
    agg = sketch_of([10.0, 20.0, 30.0])
    aggregates.add(agg, [(sketch.bucket_key(30.0), 1.0)], sign=-1.0)
    assert agg == sketch_of([10.0, 20.0])


def test_zero_waits_and_empty() -> None:
    assert sketch.quantile({}, 0.5) is None
    assert sketch.quantile(sketch_of([0.0, 0.0, 5.0]), 0.5) == 0.0
