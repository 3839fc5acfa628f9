"""Peer: the same rolling KPIs computed by Quix Streams from the same topic.

Offered, answered and abandoned counts, service level and ASA per queue over a sliding
15-minute event-time window (Quix's recommended rolling window), the way a Quix user would
write it: a stateful per-contact step (the topic is keyed by contact) that turns lifecycle
events into per-contact outcomes, ``group_by`` queue, then ``sliding_window(...).agg(...)``.
Service level is answered within the channel's threshold over answered + abandoned, ASA the
mean wait of answered contacts: the definitions of docs/metrics.md, without ccpulse's
corrections for late events, transfers and short abandons.

Run as a subprocess: ``python -m bench.peer_quix TOPIC COUNT RESULT_PATH STATE_DIR GROUP``.
"""

from __future__ import annotations

import sys
import time
from datetime import datetime, timedelta
from typing import Any

import orjson
from quixstreams import Application
from quixstreams.dataframe.windows.aggregations import Sum

from bench.kafka import BROKER

SL_SECONDS = {
    "voice": 20.0,
    "chat": 60.0,
    "email": 14400.0,
    "sms": 3600.0,
    "social": 3600.0,
    "video": 20.0,
}
ANSWERS = ("contact.answered", "contact.first_response")
OUTCOME = {"offered": 0, "answered": 0, "abandoned": 0, "within": 0, "wait": 0.0}


def event_ms(value: Any, headers: Any, timestamp: int, timestamp_type: Any) -> int:
    """Event time of a record: its ``ts`` field (RFC 3339), milliseconds."""
    return int(datetime.fromisoformat(value["ts"]).timestamp() * 1000)


def contact_outcome(event: dict[str, Any], state: Any) -> dict[str, Any] | None:
    """Turn one contact event into a per-queue increment, remembering the offer per contact."""
    kind = event["type"]
    ts = event_ms(event, None, 0, None) / 1000.0
    if kind == "contact.offered":
        state.set("offer", [ts, event["queue"], event.get("channel") or "voice", False])
        return {**OUTCOME, "queue": event["queue"], "offered": 1}
    offer = state.get("offer")
    if offer is None or offer[3]:
        return None
    offered_at, queue, channel, _ = offer
    if kind in ANSWERS:
        offer[3] = True
        state.set("offer", offer)
        wait = max(0.0, ts - offered_at)
        return {
            **OUTCOME,
            "queue": queue,
            "answered": 1,
            "wait": wait,
            "within": int(wait <= SL_SECONDS.get(channel, 20.0)),
        }
    if kind == "contact.abandoned":
        offer[3] = True
        state.set("offer", offer)
        return {**OUTCOME, "queue": queue, "abandoned": 1}
    return None


def kpis(window: dict[str, Any]) -> dict[str, Any]:
    """Service level and ASA of one queue's window."""
    w = window  # start, end and one field per named aggregation
    handled = w["answered"] + w["abandoned"]
    return {
        "offered": w["offered"],
        "answered": w["answered"],
        "abandoned": w["abandoned"],
        "service_level": w["within"] / handled if handled else None,
        "asa_seconds": w["wait"] / w["answered"] if w["answered"] else None,
    }


def build(app: Application, topic_name: str, progress: dict[str, Any], count: int) -> None:
    """Declare the dataframe: contact outcomes -> group by queue -> 15-minute sliding KPIs."""
    topic = app.topic(topic_name, value_deserializer="json", timestamp_extractor=event_ms)

    def seen(_: Any) -> None:
        progress["inputs"] += 1
        if progress["inputs"] == 1:
            progress["first"] = time.perf_counter()
        check(progress, count, app)

    def emitted(_: Any) -> None:
        progress["emitted"] += 1

    def arrived(_: Any) -> None:
        progress["arrived"] += 1
        check(progress, count, app)

    sdf = app.dataframe(topic).update(seen)
    sdf = sdf.filter(
        lambda e: (
            e["type"] == "contact.offered"
            or e["type"] in ANSWERS
            or e["type"] == "contact.abandoned"
        )
    )
    sdf = sdf.apply(contact_outcome, stateful=True).filter(lambda o: o is not None).update(emitted)
    sdf = sdf.group_by("queue", name="queue").update(arrived)
    # The repartition topic interleaves four input partitions read in large chunks, so event
    # time jumps around by minutes; a one-hour grace keeps every outcome in (none is dropped
    # as late, as none is in ccpulse), which is the work the comparison is about.
    window = sdf.sliding_window(
        duration_ms=timedelta(minutes=15), grace_ms=timedelta(hours=1), on_late=late(progress)
    )
    sdf = window.agg(
        offered=Sum("offered"),
        answered=Sum("answered"),
        abandoned=Sum("abandoned"),
        within=Sum("within"),
        wait=Sum("wait"),
    ).current()
    sdf.apply(kpis)


def late(progress: dict[str, Any]) -> Any:
    """Count records a window dropped as late (reported; expected 0)."""

    def on_late(*args: Any, **kwargs: Any) -> bool:
        progress["late"] += 1
        return False

    return on_late


def check(progress: dict[str, Any], count: int, app: Application) -> None:
    """Stop once every input went through and every outcome reached the window step."""
    if (
        progress["inputs"] >= count
        and progress["arrived"] >= progress["emitted"]
        and not progress["last"]
    ):
        progress["last"] = time.perf_counter()
        app.stop()


def main(argv: list[str]) -> int:
    topic, count, result_path, state_dir, group = argv[0], int(argv[1]), argv[2], argv[3], argv[4]
    app = Application(
        broker_address=BROKER,
        consumer_group=group,
        auto_offset_reset="earliest",
        state_dir=state_dir,
        commit_interval=1.0,
        loglevel="WARNING",
    )
    progress: dict[str, Any] = {
        "inputs": 0,
        "emitted": 0,
        "arrived": 0,
        "late": 0,
        "first": 0.0,
        "last": 0.0,
    }
    build(app, topic, progress, count)
    app.run()
    with open(result_path, "wb") as out:
        out.write(
            orjson.dumps(
                {
                    "events": progress["inputs"],
                    "seconds": progress["last"] - progress["first"],
                    "outcomes": progress["emitted"],
                    "late": progress["late"],
                }
            )
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
