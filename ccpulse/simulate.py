"""``ccpulse simulate``: run the simulated contact center into Kafka or a JSON-lines file."""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from tqdm import tqdm

from ccpulse.simulator import generate, pace, scenario_from_args
from stream.settings import Settings


def run(args: argparse.Namespace, settings: Settings) -> int:
    """Generate events (paced to the wall clock unless --speed 0) and send them on."""
    scenario = scenario_from_args(
        queues=args.queues, agents=args.agents, staff_drop=args.staff_drop, arrival_spike=args.spike
    )
    start = _start(args.start)
    events = generate(
        scenario, seed=args.seed, start=start, duration_seconds=args.duration,
        rate_multiplier=args.rate, dirty_fraction=args.dirty,
    )
    if args.speed and args.speed > 0:
        events = pace(events, args.speed)
    total = args.duration if args.duration else None
    with _progress(total) as bar:
        if args.out:
            count = _to_file(events, args.out, bar, start)
        else:
            count = _to_kafka(events, settings, bar, start)
    print(f"simulated {count} events", file=sys.stderr)
    return 0


def _start(text: str) -> float:
    if text == "now":
        return time.time()
    try:
        return float(text)
    except ValueError:
        return datetime.fromisoformat(text).timestamp()


def _progress(total: float | None) -> Any:
    return tqdm(total=total, unit="sim-s", desc="simulate", file=sys.stderr, mininterval=1.0)


def _advance(bar: Any, event: dict[str, Any], start: float) -> None:
    ts = event.get("ts")
    if isinstance(ts, str):
        try:
            seconds = datetime.fromisoformat(ts).timestamp() - start
        except ValueError:
            return
        if seconds > bar.n:
            bar.update(seconds - bar.n)


def _to_file(events: Iterator[dict[str, Any]], path: str, bar: Any, start: float) -> int:
    out = sys.stdout.buffer if path == "-" else open(path, "wb")
    count = 0
    try:
        for event in events:
            out.write(orjson.dumps(event) + b"\n")
            count += 1
            _advance(bar, event, start)
    finally:
        if path != "-":
            out.close()
        else:
            out.flush()
    return count


def _to_kafka(events: Iterator[dict[str, Any]], settings: Settings, bar: Any, start: float) -> int:
    from ccpulse.producer import EventProducer

    producer = EventProducer(settings)
    count = 0
    try:
        for event in events:
            producer.send_event(event)
            count += 1
            _advance(bar, event, start)
    except KeyboardInterrupt:
        pass
    finally:
        producer.close()
    return count
