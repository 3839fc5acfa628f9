"""Checkpoints (stream/checkpoint.py): what is written comes back, and only while valid; the
store starts a partition from its checkpoint and lets the changelog read after it win."""

from __future__ import annotations

import asyncio
import marshal
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import faust
import orjson
import pytest
from faust.types import TP

from stream.agents import TableWriter, state_table
from stream.checkpoint import Checkpoints

TOPIC = "app-contacts-changelog"
RECORDS = {
    "1|c|a": {"o": 10, "queue": "billing", "events": ["e1", "e2"]},
    "1|b|1700000000": {"o": 12, "all": {"offered": 3}},
    "1|m": {"o": 12, "wm": 1700000010.0, "n": {}},
}


class Clock:
    def __init__(self) -> None:
        self.now = 1_000_000.0

    def __call__(self) -> float:
        return self.now


def checkpoints(
    folder: Path, ids: dict[str, str] | None = None, clock: Clock | None = None
) -> Checkpoints:
    known = {TOPIC: "id-1"} if ids is None else ids
    return Checkpoints(folder, known.get, max_age_seconds=3600.0, clock=clock or Clock())


def test_a_written_checkpoint_reads_back_with_its_offset(tmp_path: Path) -> None:
    cp = checkpoints(tmp_path)
    cp.write(TOPIC, 1, 41, RECORDS)
    assert cp.read(TOPIC, 1) == (41, RECORDS)
    assert cp.read(TOPIC, 2) is None  # never written
    assert [p.name for p in (tmp_path / TOPIC).iterdir()] == ["1.ckpt"]  # no scratch file left


def test_a_checkpoint_of_another_topic_incarnation_is_not_used(tmp_path: Path) -> None:
    checkpoints(tmp_path).write(TOPIC, 1, 41, RECORDS)
    # the topic was deleted and created again
    assert checkpoints(tmp_path, {TOPIC: "id-2"}).read(TOPIC, 1) is None
    assert checkpoints(tmp_path, {}).read(TOPIC, 1) is None  # id unknown: never trusted


def test_a_checkpoint_older_than_the_max_age_is_not_used(tmp_path: Path) -> None:
    clock = Clock()
    cp = checkpoints(tmp_path, clock=clock)
    cp.write(TOPIC, 1, 41, RECORDS)
    clock.now += 3599.0
    assert cp.read(TOPIC, 1) == (41, RECORDS)
    clock.now += 2.0
    assert cp.read(TOPIC, 1) is None


def test_a_damaged_or_misplaced_checkpoint_is_not_used(tmp_path: Path) -> None:
    cp = checkpoints(tmp_path)
    cp.write(TOPIC, 1, 41, RECORDS)
    path = cp.path(TOPIC, 1)
    whole = path.read_bytes()
    path.write_bytes(whole[: len(whole) - 5])  # cut short
    assert cp.read(TOPIC, 1) is None
    path.write_bytes(b"not json\n" + whole.split(b"\n", 1)[1])
    assert cp.read(TOPIC, 1) is None
    path.write_bytes(whole)
    cp.path(TOPIC, 3).write_bytes(whole)  # partition 1's file under partition 3's name
    assert cp.read(TOPIC, 3) is None
    header, body = whole.split(b"\n", 1)
    fewer = dict(RECORDS)
    fewer.pop("1|m")
    path.write_bytes(header + b"\n" + marshal.dumps(fewer))  # count differs from the header
    assert cp.read(TOPIC, 1) is None


def _event(partition: int, key: str, value: dict[str, Any] | None) -> Any:
    raw = None if value is None else orjson.dumps(value)
    message = SimpleNamespace(partition=partition, key=key.encode(), value=raw)
    return SimpleNamespace(message=message, key=key.encode(), value=raw)


def _table(tmp_path: Path, app_id: str) -> tuple[faust.App, Checkpoints, Any, str]:
    """A contacts table on a Faust app (never started) with checkpoints in ``tmp_path``."""
    app = faust.App(app_id, broker="kafka://127.0.0.1:1", store="memory://", autodiscover=False)
    cp = Checkpoints(tmp_path, lambda topic: "id-1", max_age_seconds=3600.0)
    table = state_table(app, "contacts", 4, cp)
    return app, cp, table, table.changelog_topic.get_topic_name()


def test_the_store_starts_from_the_checkpoint_and_the_changelog_after_it_wins(
    tmp_path: Path,
) -> None:
    app, cp, table, changelog = _table(tmp_path, "app")
    cp.write(changelog, 1, 41, RECORDS)
    store = table.data
    assert store.persisted_offset(TP(changelog, 1)) == 41  # Faust reads from 42 on
    assert store.persisted_offset(TP(changelog, 2)) is None  # no checkpoint: from the start
    newer = {"o": 50, "queue": "billing", "events": ["e1", "e2", "e3"]}
    store.apply_changelog_batch(
        [_event(1, "1|c|a", newer), _event(1, "1|m", None), _event(1, "1|c|b", {"o": 51})],
        to_key=lambda k: k, to_value=lambda v: v,
    )
    writer = TableWriter(app, table)
    taken = dict(writer.take(1))
    bucket = "1|b|1700000000"
    assert taken == {"1|c|a": newer, bucket: RECORDS[bucket], "1|c|b": {"o": 51}}
    assert dict(writer.take(1)) == {}  # handed over once
    # the partition is held now: later assignments ask Faust's own offsets, not the file
    assert store.persisted_offset(TP(changelog, 1)) is None


def test_a_revoked_partition_drops_its_unused_checkpoint(tmp_path: Path) -> None:
    app, cp, table, changelog = _table(tmp_path, "app2")
    cp.write(changelog, 2, 7, RECORDS)
    store = table.data
    assert store.persisted_offset(TP(changelog, 2)) == 7
    asyncio.run(store.on_rebalance(set(), {TP(changelog, 2)}, set()))
    assert store.take_checkpoint(2) == {}


def test_checkpoint_writes_each_state_at_its_offset_and_not_while_a_batch_runs(
    tmp_path: Path,
) -> None:
    app, cp, table, changelog = _table(tmp_path, "app3")
    writer = TableWriter(app, table)
    states = {0: SimpleNamespace(checkpoint_body=lambda: {"0|m": {"o": 3}}),
              1: SimpleNamespace(checkpoint_body=lambda: RECORDS)}
    writer.offsets.update({0: 5, 1: 9})
    with writer.busy():
        assert writer.checkpoint(states) == 0
    assert cp.read(changelog, 0) is None
    assert writer.checkpoint(states) == 1 + len(RECORDS)
    assert cp.read(changelog, 0) == (5, {"0|m": {"o": 3}})
    assert cp.read(changelog, 1) == (9, RECORDS)


def test_the_max_age_setting_stays_below_kafkas_tombstone_retention() -> None:
    from stream.settings import Settings, SettingsError

    for age in ("0", "43200"):
        Settings.from_env({"CCPULSE_CHECKPOINT_MAX_AGE_SECONDS": age})
    for age in ("-1", "43201"):
        with pytest.raises(SettingsError, match="CCPULSE_CHECKPOINT_MAX_AGE_SECONDS"):
            Settings.from_env({"CCPULSE_CHECKPOINT_MAX_AGE_SECONDS": age})


def test_a_state_loaded_from_its_checkpoint_has_the_same_live_indexes_and_windows() -> None:
    """Loading skips replaying closed contacts; the open ones still fill every live index."""
    from ccpulse.simulator.defaults import default_scenario
    from ccpulse.simulator.engine import generate
    from stream.contacts import ContactState
    from stream.pipeline import Pipeline
    from tests.stream.harness import T0, settings

    events = list(generate(default_scenario(queues=3, channels=("voice", "chat"), agents=12), seed=3,
                           start=T0, duration_seconds=2 * 3600))
    pipeline = Pipeline(settings())
    pipeline.process([(0, n, orjson.dumps(e)) for n, e in enumerate(events)])
    state = pipeline.contact_state(0)
    contacts = [r for k, r in state.records.items() if k.split("|")[1] == "c"]
    assert any(r.get("closed") for r in contacts) and state.waiting, "both kinds are in the test"
    loaded = ContactState(0, pipeline.window_clock, pipeline.rules, pipeline.horizons)
    loaded.load(iter(marshal.loads(marshal.dumps(state.records)).items()))
    assert loaded.waiting == state.waiting
    assert loaded.sentiment == state.sentiment
    assert loaded.window_partials(state.watermark) == state.window_partials(state.watermark)


def test_the_live_index_kept_beside_a_checkpoint_is_used_only_for_records_it_was_made_of(
    tmp_path: Path,
) -> None:
    """A checkpoint keeps the open contacts' live index; loading takes it instead of deriving
    their lifecycles again, except for a record replaced since (another ``o``)."""
    from ccpulse.simulator.defaults import default_scenario
    from ccpulse.simulator.engine import generate
    from stream.buckets import LIVE_KEY
    from stream.contacts import ContactState
    from stream.pipeline import Pipeline
    from tests.stream.harness import T0, settings

    events = list(generate(default_scenario(queues=3, channels=("voice", "chat"), agents=12), seed=5,
                           start=T0, duration_seconds=2 * 3600))
    pipeline = Pipeline(settings())
    pipeline.process([(0, n, orjson.dumps(e)) for n, e in enumerate(events)])
    state = pipeline.contact_state(0)
    assert state.waiting and state.sentiment, "both live indexes are in the test"
    cp = checkpoints(tmp_path, ids={"c": "id-1"})
    cp.write("c", 0, 7, state.checkpoint_body())
    found = cp.read("c", 0)
    assert found is not None and LIVE_KEY in found[1]

    def load(records: dict[str, Any]) -> ContactState:
        loaded = ContactState(0, pipeline.window_clock, pipeline.rules, pipeline.horizons)
        loaded.load(iter(records.items()))
        return loaded

    loaded = load(dict(found[1]))
    assert loaded.waiting == state.waiting and loaded.sentiment == state.sentiment
    assert LIVE_KEY not in loaded.records and unpacked(loaded.records) == state.records
    assert loaded.live_index() == state.live_index()
    # the saved entries are what is used: a marked one shows through while its record is the
    # one it was made of, and is derived again once the record is another
    contact = next(iter(state.waiting))
    saved = found[1][LIVE_KEY]
    o, waiting, sentiment = saved[contact]
    marked = ("marked", "marked", 0.0)
    records = dict(found[1])
    records[LIVE_KEY] = {**saved, contact: (o, marked, sentiment)}
    assert load(records).waiting[contact] == marked
    records[f"0|c|{contact}"] = {**records[f"0|c|{contact}"], "o": o + 1}
    assert load(records).waiting[contact] == state.waiting[contact]


def unpacked(records: dict[str, Any]) -> dict[str, Any]:
    """Records with every field a checkpoint left packed decoded (a copy)."""
    from stream.buckets import plain

    return {key: plain(dict(record)) for key, record in records.items()}


def test_a_restart_decodes_only_the_buckets_it_reads_and_takes_block_sums_made_of_its_buckets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A checkpoint keeps buckets packed and the remembered sums beside them: the restored
    state reads the same windows, now and after more events, while most of its buckets stay
    packed; a saved sum is used only while its buckets have the offsets it was made of."""
    from ccpulse.simulator.defaults import default_scenario
    from ccpulse.simulator.engine import generate
    from stream import buckets
    from stream.buckets import BLOB_TYPES, BLOCK_SECONDS, ROLLING, SUMS_KEY
    from stream.contacts import ContactState
    from stream.pipeline import Pipeline
    from tests.stream.harness import T0, settings

    events = list(generate(default_scenario(queues=3, channels=("voice", "chat"), agents=12), seed=9,
                           start=T0, duration_seconds=2 * 3600))
    cut = len(events) * 3 // 4
    encoded = [(0, n, orjson.dumps(e)) for n, e in enumerate(events)]
    pipeline = Pipeline(settings())
    pipeline.process(encoded[:cut])
    state = pipeline.contact_state(0)
    wm = state.watermark
    before = state.window_partials(wm)  # fills the remembered sums, as a publish does
    assert len(state._blocks) >= 6 and state._closed is not None
    cp = checkpoints(tmp_path, ids={"c": "id-1"})
    cp.write("c", 0, cut - 1, state.checkpoint_body())
    found = cp.read("c", 0)
    assert found is not None

    def fresh() -> dict[str, Any]:  # read again: loading decodes and changes records in place
        read = cp.read("c", 0)
        assert read is not None
        return read[1]

    def load(records: dict[str, Any]) -> ContactState:
        loaded = ContactState(0, pipeline.window_clock, pipeline.rules, pipeline.horizons)
        loaded.load(iter(records.items()))
        return loaded

    def still_packed(loaded: ContactState) -> int:
        return sum(isinstance(b["s"], BLOB_TYPES) for b in [*loaded.fine.values(), *loaded.intervals.values()])

    loaded = load(fresh())
    assert still_packed(loaded) == len(loaded.fine) + len(loaded.intervals)
    assert set(loaded._older) == set(ROLLING) and all(isinstance(b, bytes) for b in loaded._blocks.values())
    assert loaded.window_partials(wm) == before
    assert still_packed(loaded) >= len(loaded.fine) // 2, "the blocks' buckets stay packed"
    closed = [r for k, r in loaded.records.items() if k.split("|")[1] == "c" and r.get("closed")]
    assert closed and all(isinstance(r["e"], BLOB_TYPES) for r in closed), "closed contacts' events stay packed"
    assert unpacked(loaded.records) == state.records
    # each read of the windows decodes a little more of what their next move reads: here one
    # blob a read, until every block and edge bucket is decoded; the windows never change
    monkeypatch.setattr(buckets, "UNPACK_BYTES", 1)
    warming = load(fresh())
    queued, reads = warming.unpacking_left(), 0
    while warming.unpacking_left():
        assert warming.window_partials(wm) == before
        reads += 1
    assert queued > 3 and 3 < reads <= queued
    assert not any(isinstance(b, bytes) for b in warming._blocks.values())
    moved = wm + pipeline.window_clock.bucket_seconds
    assert warming.window_partials(moved) == state.window_partials(moved)
    # more events after the restart: the same as the worker that never stopped
    again = Pipeline(settings(), store_items=lambda p: iter(fresh().items()))
    packed_before = {k for k, r in fresh().items() if isinstance(r.get("e"), BLOB_TYPES)}
    again.process(encoded[cut:])
    took = [k for k in packed_before if isinstance(again.contact_state(0).records.get(k, {}).get("e"), list)]
    assert took, "a closed contact left packed took an event after the restart"
    pipeline.process(encoded[cut:])
    later = pipeline.contact_state(0).watermark
    assert again.contact_state(0).window_partials(later) == pipeline.contact_state(0).window_partials(later)
    # a marked sum shows through while its buckets are the ones it was made of, and is added
    # up anew once one of them is another
    sums = found[1][SUMS_KEY]
    block = max(sums["blocks"])
    stamp, split = sums["blocks"][block]
    marked = {lane: {"all": {"marked": 1.0}} for lane in marshal.loads(split)}
    records = fresh()
    records[SUMS_KEY] = {**sums, "blocks": {**sums["blocks"], block: (stamp, marshal.dumps(marked))}}
    assert load(records)._block(block, pipeline.window_clock.bucket_seconds) == marked
    start = next(s for s in range(block, block + BLOCK_SECONDS) if f"0|b|{s}" in records)
    records = fresh()
    records[SUMS_KEY] = {**sums, "blocks": {**sums["blocks"], block: (stamp, marshal.dumps(marked))}}
    records[f"0|b|{start}"] = {**records[f"0|b|{start}"], "o": cut + 5}
    reloaded = load(records)
    assert block not in reloaded._blocks
    assert reloaded.window_partials(wm) == before


def test_a_bucket_left_packed_goes_to_the_changelog_and_the_store_as_json() -> None:
    """A packed bucket that a batch changes (or that is put back into the store) is decoded
    first: what is written is never a blob."""
    from stream.buckets import packed, scoped

    record = packed({"o": 3, "s": {"all": {"offered": 2.0}}})
    assert isinstance(record["s"], bytes)
    assert scoped(record) == {"all": {"offered": 2.0}} and record["s"] == {"all": {"offered": 2.0}}
    assert packed(packed(record)) == packed(record)


def test_a_background_checkpoint_is_written_by_a_child_from_the_state_at_the_fork(tmp_path: Path) -> None:
    import time

    from stream.checkpoint import Background

    cp = checkpoints(tmp_path)
    records = {key: dict(value) for key, value in RECORDS.items()}
    background = Background()
    assert background.health() == {"checkpoint:written": 0.0, "checkpoint:failed": 0.0}
    forked_at = time.time()
    assert background.start([(cp, TOPIC, 1, 41, lambda: records)])
    records["1|c|a"]["o"] = 99  # the worker goes on; the child has its own copy
    deadline = time.monotonic() + 20
    while background.running() and time.monotonic() < deadline:
        time.sleep(0.01)
    assert background.written == 1 and background.failed == 0
    health = background.health()
    assert health["checkpoint:written"] == 1.0 and forked_at <= health["checkpoint:last_success"] <= time.time()
    assert cp.read(TOPIC, 1) == (41, RECORDS)
    assert not background.start([])  # nothing to write: no child


def test_loads_freeze_the_heap_only_once_they_add_up_to_a_large_state(monkeypatch: pytest.MonkeyPatch) -> None:
    import stream.pipeline as pipeline

    frozen = []
    monkeypatch.setattr(pipeline.gc, "freeze", lambda: frozen.append(True))
    monkeypatch.setattr(pipeline, "_loaded_since_freeze", 0)
    pipeline.freeze_if_large(30_000)
    assert not frozen  # a small load: whatever is cyclic garbage-to-be stays collectable
    pipeline.freeze_if_large(30_000)
    assert len(frozen) == 1
    pipeline.freeze_if_large(49_999)
    assert len(frozen) == 1


def test_half_written_files_are_removed_by_writer_or_by_age(tmp_path: Path) -> None:
    import os

    clock = Clock()
    cp = checkpoints(tmp_path, clock=clock)
    cp.write(TOPIC, 1, 41, RECORDS)
    folder = tmp_path / TOPIC
    mine = folder / ".2.ckpt.4242-00ff00ff.tmp"  # a child 4242 killed before its rename
    other = folder / ".3.ckpt.777-11aa11aa.tmp"  # another worker's, maybe still writing
    for path in (mine, other):
        path.write_bytes(b"half")
    assert cp.remove_scratch(pid=4242) == 1 and not mine.exists() and other.exists()
    os.utime(other, (clock.now - 10, clock.now - 10))
    assert cp.remove_scratch(older_than=3600.0) == 0  # too fresh to be abandoned
    os.utime(other, (clock.now - 4000, clock.now - 4000))
    assert cp.remove_scratch(older_than=3600.0) == 1 and not other.exists()
    assert cp.read(TOPIC, 1) == (41, RECORDS)  # finished checkpoints are never touched


def test_stopping_a_background_writer_removes_what_it_left_half_written(tmp_path: Path) -> None:
    import os
    import signal
    import time

    from stream.checkpoint import Background

    cp = checkpoints(tmp_path)
    big = {f"1|c|{n}": {"o": n, "e": [[float(n), "contact.offered", f"e{n}"]] * 20} for n in range(200_000)}
    background = Background()
    assert background.start([(cp, TOPIC, 1, 41, lambda: big)] * 20)
    child = background.pid
    assert child is not None
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:  # catch the child with a file half written, and freeze it
        if list((tmp_path / TOPIC).glob(f".*.{child}-*.tmp")):
            os.kill(child, signal.SIGSTOP)
            if list((tmp_path / TOPIC).glob(f".*.{child}-*.tmp")):
                break
            os.kill(child, signal.SIGCONT)  # renamed just before: try the next file
        time.sleep(0.002)
    assert list((tmp_path / TOPIC).glob(f".*.{child}-*.tmp")), "caught writing"
    background.stop()  # as a graceful stop does before its own checkpoint
    assert background.pid is None
    assert not list((tmp_path / TOPIC).glob(".*.tmp"))


def test_packed_fields_are_written_after_the_body_and_read_back_as_views_of_the_file(tmp_path: Path) -> None:
    """A packed field comes back as a view of the mapped file, equal to what was written; a
    file cut short in its blobs, or one packed field pointing past its end, is not used."""
    from stream.buckets import packed, plain

    cp = checkpoints(tmp_path)
    scopes = {"all": {"offered": 3.0}, "queue:billing": {"offered": 1.0}}
    records = {**RECORDS, "1|b|1700000030": packed({"o": 12, "s": scopes})}
    cp.write(TOPIC, 1, 41, records)
    found = cp.read(TOPIC, 1)
    assert found is not None and found[0] == 41
    field = found[1]["1|b|1700000030"]["s"]
    assert isinstance(field, memoryview) and bytes(field) == records["1|b|1700000030"]["s"]
    assert plain(found[1]["1|b|1700000030"]) == {"o": 12, "s": scopes}
    assert {k: v for k, v in found[1].items() if k != "1|b|1700000030"} == RECORDS
    path = cp.path(TOPIC, 1)
    whole = path.read_bytes()
    path.write_bytes(whole[:-1])
    assert cp.read(TOPIC, 1) is None
    header, _, rest = whole.partition(b"\n")
    meta = orjson.loads(header)
    body = marshal.loads(rest[: meta["body_bytes"]])
    body["1|b|1700000030"]["s"] = (0, meta["blob_bytes"] + 1)  # past the end
    changed = marshal.dumps(body)
    path.write_bytes(orjson.dumps({**meta, "body_bytes": len(changed)}) + b"\n" + changed + rest[meta["body_bytes"]:])
    assert cp.read(TOPIC, 1) is None
    # a format 3 file kept its blobs inside the body: still read
    inline = marshal.dumps(records)
    path.write_bytes(orjson.dumps({**meta, "format": 3, "body_bytes": None, "blob_bytes": 0}) + b"\n" + inline)
    again = cp.read(TOPIC, 1)
    assert again is not None and again[1]["1|b|1700000030"]["s"] == records["1|b|1700000030"]["s"]
