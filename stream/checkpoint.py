"""Checkpoints: a partition's state on local disk, with the changelog offset it stands for.

Faust restores a memory-store table by reading its whole changelog, one message at a time
(about 7,000 records/s on the benchmark machine, so an hour at 1,000 events/s took minutes).
When a worker stops gracefully it writes each partition it holds to
``<data_dir>/checkpoints/<app_id>/<changelog topic>/<partition>.ckpt``: the records, exactly
as its changelog would restore them, and the offset ``C`` of the last changelog record they
include. A worker that is assigned the partition later (the same one restarted, or another
sharing the folder) reads the file and tells Faust's recovery that the store already holds
the changelog through ``C`` (``CheckpointStore.persisted_offset``), so Faust reads only what
was written after it.

A checkpoint is the changelog compacted through ``C``; whatever was written after it (by
this worker before it stopped, or by the partition's next owners) is read on top of it, so
a checkpoint never has to be the newest to be correct. It is used only if

- it names the changelog topic's current Kafka topic id (a topic deleted and created again
  starts from nothing, never from an earlier topic's state);
- it is younger than ``CCPULSE_CHECKPOINT_MAX_AGE_SECONDS`` (6 h): Kafka keeps a deleted
  key's tombstone for ``delete.retention.ms`` (24 h by default) and then drops it, after
  which an older checkpoint could bring the key back;
- its header and body parse (a file cut short by a crash is ignored).

Anything else falls back to Faust reading the changelog from its first offset.

While it runs, a worker also writes checkpoints every ``CCPULSE_CHECKPOINT_INTERVAL_SECONDS``
(60) from a forked child (``Background``): the fork is taken between batches, so the child's
copy of the state (the kernel's copy-on-write) equals the changelog through the offsets of
that moment, and the worker goes on while the child writes. A worker that is killed then
restarts from its last one and the changelog written since.
"""

from __future__ import annotations

import gc
import logging
import marshal
import mmap
import os
import signal
import sys
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any

import orjson
from faust.stores import memory
from faust.types import TP

from stream.buckets import BLOB_TYPES, PACKED_FIELDS
from stream.pipeline import freeze_if_large, gc_paused

log = logging.getLogger(__name__)

FORMAT = 4  # 4: packed fields after the body; 3: packed fields in it, sums kept; 2: the live
READ_FORMATS = (1, 2, 3, 4)  # index kept; 1: records only
SUFFIX = ".ckpt"
# The body is what the partition's state gives (``BucketState.checkpoint_body``): its
# records, with each bucket's scopes (and each closed contact's lifecycle events) packed as
# one marshal blob that is decoded only when something reads it, and under keys no record
# has (stream/buckets.py) what loading would otherwise work out again from them: the
# remembered sums of buckets, and a contact partition's live index of its open contacts
# (``ContactState.live_index``). Each of those is stamped with the ``o`` of the records it
# was made of, and used only while no changelog record read after the checkpoint replaced
# one of them.
# The body is ``marshal``: records are dicts, lists, strings and numbers, and marshal reads
# them 1.6x as fast as orjson reads the same JSON (168 against 102 MB/s of JSON, measured on
# the recovery benchmark's checkpoints). Its format belongs to the Python version, which the
# header names; a checkpoint of another version is not used.
BODY = f"marshal-{marshal.version}-py{sys.version_info[0]}.{sys.version_info[1]}"


class Checkpoints:
    """The checkpoint files of one app: written whole, read back only when still valid."""

    def __init__(
        self,
        folder: Path | str,
        topic_id: Callable[[str], str | None],
        max_age_seconds: float,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.folder = Path(folder)
        self.topic_id = topic_id
        self.max_age_seconds = max_age_seconds
        self.clock = clock

    def path(self, topic: str, partition: int) -> Path:
        return self.folder / topic / f"{partition}{SUFFIX}"

    def write(
        self,
        topic: str,
        partition: int,
        offset: int,
        records: Mapping[str, Any],
    ) -> int:
        """Write a partition's records as of changelog offset ``offset``; return the bytes written.

        The file appears whole or not at all (written beside it, synced, then renamed).
        """
        topic_id = self.topic_id(topic)
        if topic_id is None:
            log.warning("no checkpoint of %s[%d]: the topic's id is unknown", topic, partition)
            return 0
        content, blobs = _split_blobs(records)
        body = marshal.dumps(content)
        blob_bytes = sum(len(blob) for blob in blobs)
        header = {
            "format": FORMAT,
            "topic": topic,
            "topic_id": topic_id,
            "partition": partition,
            "offset": offset,
            "written_at": self.clock(),
            "records": len(records),
            "body": BODY,
            "body_bytes": len(body),
            "blob_bytes": blob_bytes,
        }
        target = self.path(topic, partition)
        target.parent.mkdir(parents=True, exist_ok=True)
        scratch = target.with_name(f".{target.name}.{os.getpid()}-{os.urandom(4).hex()}.tmp")
        with open(scratch, "wb") as out:
            out.write(orjson.dumps(header) + b"\n")
            out.write(body)
            for blob in blobs:
                out.write(blob)
            out.flush()
            os.fsync(out.fileno())
        os.replace(scratch, target)
        return len(body) + blob_bytes

    def remove_scratch(self, pid: int | None = None, older_than: float | None = None) -> int:
        """Delete half-written files (a writer killed before its rename); return how many.

        Only those of process ``pid`` if given, only those untouched for ``older_than``
        seconds if given (another worker sharing the folder may be writing its own).
        """
        removed = 0
        for path in self.folder.glob(f"*/.*{SUFFIX}.*.tmp"):
            if pid is not None and f".{pid}-" not in path.name:
                continue
            try:
                if older_than is not None and self.clock() - path.stat().st_mtime < older_than:
                    continue
                path.unlink()
                removed += 1
            except FileNotFoundError:
                pass
        return removed

    def read(self, topic: str, partition: int) -> tuple[int, dict[str, Any]] | None:
        """Return ``(offset, records)`` of a valid checkpoint of the partition, else None."""
        path = self.path(topic, partition)
        try:
            with open(path, "rb") as source:
                # mapped, not read: packed fields stay views of the file (page cache, not heap)
                # until something decodes them; the mapping outlives the file's replacement
                mapped = mmap.mmap(source.fileno(), 0, access=mmap.ACCESS_READ)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as error:  # ValueError: an empty file
            log.warning("checkpoint %s unreadable: %s", path, error)
            return None
        view = memoryview(mapped)
        end = mapped.find(b"\n")
        if end < 0:
            header, body = view.tobytes(), view[len(view):]
        else:
            header, body = view[:end].tobytes(), view[end + 1:]
        reason, found = self._parse(header, body, topic, partition)
        if found is None:
            log.warning("checkpoint %s not used: %s; the changelog is read from its start",
                        path, reason)
            return None
        return found

    def _parse(
        self, line: bytes, body: memoryview, topic: str, partition: int
    ) -> tuple[str, tuple[int, dict[str, Any]] | None]:
        try:
            header = orjson.loads(line)
        except orjson.JSONDecodeError:
            return "its header does not parse", None
        if not isinstance(header, dict) or header.get("format") not in READ_FORMATS:
            return "unknown format", None
        if header.get("body") != BODY:
            return f"written as {header.get('body')}, this worker reads {BODY}", None
        if header.get("topic") != topic or header.get("partition") != partition:
            return "it is another partition's", None
        age = self.clock() - float(header.get("written_at", 0.0))
        if age > self.max_age_seconds:
            return f"{age:.0f} s old, more than CCPULSE_CHECKPOINT_MAX_AGE_SECONDS", None
        current = self.topic_id(topic)
        if current is None or header.get("topic_id") != current:
            return f"topic id {header.get('topic_id')} is not the topic's ({current})", None
        size = header.get("body_bytes")
        blob_bytes = int(header.get("blob_bytes", 0))
        if size is not None and len(body) != int(size) + blob_bytes:
            return "its size is not its header's (cut short?)", None
        try:
            with gc_paused():
                records = marshal.loads(body if size is None else body[: int(size)])
                if size is not None and blob_bytes and isinstance(records, dict):
                    _join_blobs(records, body[int(size):])
                freeze_if_large(len(records) if isinstance(records, dict) else 0)
        except (EOFError, ValueError, TypeError):
            return "its records do not parse (cut short?)", None
        if not isinstance(records, dict) or len(records) != header.get("records"):
            return "its record count does not match its header", None
        return "", (int(header["offset"]), records)


def _split_blobs(records: Mapping[str, Any]) -> tuple[dict[str, Any], list[Any]]:
    """The records with each packed field replaced by ``(offset, length)`` of its blob in
    the list returned beside them (written after the body, in that order)."""
    content: dict[str, Any] = {}
    blobs: list[Any] = []
    at = 0
    for key, record in records.items():
        if record.__class__ is dict:
            for field in PACKED_FIELDS:
                blob = record.get(field)
                if blob.__class__ in BLOB_TYPES:
                    if record is records[key]:
                        record = dict(record)  # the state's own record stays as it is
                    record[field] = (at, len(blob))
                    blobs.append(blob)
                    at += len(blob)
        content[key] = record
    return content, blobs


def _join_blobs(records: dict[str, Any], blobs: memoryview) -> None:
    """Put each packed field's blob back, as a view of the file (``_split_blobs``)."""
    for record in records.values():
        if record.__class__ is dict:
            for field in PACKED_FIELDS:
                ref = record.get(field)
                if ref.__class__ is tuple:
                    at, length = ref
                    if at + length > len(blobs):
                        raise ValueError("a packed field is past the end of the file")
                    record[field] = blobs[at:at + length]


class CheckpointStore(memory.Store[bytes, bytes]):
    """Faust's memory store, starting a partition from its checkpoint when there is one.

    ``persisted_offset`` is asked once per assignment of each changelog partition; the first
    time a partition is asked for in this process its checkpoint (if valid) is read and its
    offset returned, so Faust reads the changelog only after it. Recovered changelog records
    land in ``data`` as usual and replace (or, as tombstones, delete) the checkpoint's.
    ``take_checkpoint`` hands the checkpoint's records over, once, to the Python state
    (``TableWriter.take`` in stream/agents.py).
    """

    checkpoints: Checkpoints | None = None  # set by the table (stream/agents.py state_table)

    def __post_init__(self) -> None:
        super().__post_init__()
        self.loaded: dict[int, tuple[int, dict[str, Any]]] = {}
        self._asked: set[int] = set()

    def persisted_offset(self, tp: TP) -> int | None:
        if tp.partition not in self._asked:
            self._asked.add(tp.partition)
            found = self.checkpoints.read(tp.topic, tp.partition) if self.checkpoints else None
            if found is not None:
                self.loaded[tp.partition] = found
                log.info("%s[%d]: checkpoint of %d records through offset %d",
                         tp.topic, tp.partition, len(found[1]), found[0])
        entry = self.loaded.get(tp.partition)
        return None if entry is None else entry[0]

    def apply_changelog_batch(
        self, batch: Iterable[Any], to_key: Callable[[Any], Any], to_value: Callable[[Any], Any]
    ) -> None:
        events = list(batch)
        if self.loaded:
            for event in events:
                entry = self.loaded.get(event.message.partition)
                if entry is not None:
                    entry[1].pop(bytes(event.message.key).decode(), None)
        super().apply_changelog_batch(events, to_key, to_value)

    def take_checkpoint(self, partition: int) -> dict[str, Any]:
        """Hand over (and forget) a partition's checkpoint records not replaced since."""
        entry = self.loaded.pop(partition, None)
        return {} if entry is None else entry[1]

    def forget_checkpoint(self, partition: int) -> None:
        """The partition is recovered from the changelog's first offset: its checkpoint is moot."""
        self.loaded.pop(partition, None)

    async def on_rebalance(
        self, assigned: Any, revoked: Any, newly_assigned: Any, generation_id: int = 0
    ) -> None:
        await super().on_rebalance(assigned, revoked, newly_assigned, generation_id)
        changelog = self.table.changelog_topic.get_topic_name()
        for tp in revoked:
            if tp.topic == changelog:
                self.loaded.pop(tp.partition, None)

    async def on_recovery_completed(self, active_tps: set[TP], standby_tps: set[TP]) -> None:
        await super().on_recovery_completed(active_tps, standby_tps)
        changelog = self.table.changelog_topic.get_topic_name()
        kept = {tp.partition for tp in active_tps if tp.topic == changelog}
        for partition in [p for p in self.loaded if p not in kept]:
            del self.loaded[partition]


# (checkpoints, topic, partition, offset, what to write): the body is asked for only when the
# file is written, in the forked child for a background one
Job = tuple[Checkpoints, str, int, int, Callable[[], Mapping[str, Any]]]


def write_job(job: Job) -> int:
    """Write one job's checkpoint; return the entries written."""
    checkpoints, topic, partition, offset, body = job
    content = body()
    checkpoints.write(topic, partition, offset, content)
    return len(content)


class Background:
    """Checkpoints written by a forked child while the worker goes on (one child at a time).

    The child only serialises and writes files, then leaves with ``os._exit``: it never runs
    the event loop, logs or talks to Kafka (the topic ids are looked up before the fork).
    """

    def __init__(self) -> None:
        self.pid: int | None = None
        self.folders: list[Checkpoints] = []  # where the child writes
        self.started = 0.0
        self.written = 0  # checkpoint runs that finished well
        self.failed = 0
        self.last_success = 0.0  # wall-clock time the last good run was started (0: none yet)
        self._started_at = 0.0

    def running(self) -> bool:
        """Whether the last child is still writing (reaping it if it has finished)."""
        if self.pid is None:
            return False
        try:
            done, status = os.waitpid(self.pid, os.WNOHANG)
        except ChildProcessError:
            done, status = self.pid, 1
        if done == 0:
            return True
        if os.waitstatus_to_exitcode(status) == 0:
            self.written += 1
            self.last_success = self._started_at  # its files hold the state as of the fork
            log.info("checkpoints written in the background (done %.2f s after the fork, or sooner)",
                     time.monotonic() - self.started)
        else:
            self.failed += 1
            log.warning("a background checkpoint failed (status %d)", status)
            self._clean(self.pid)
        self.pid = None
        return False

    def health(self) -> dict[str, float]:
        """Counts for the worker's metrics (sinks/prometheus.py ``checkpoint_families``)."""
        out = {"checkpoint:written": float(self.written), "checkpoint:failed": float(self.failed)}
        if self.last_success:
            out["checkpoint:last_success"] = self.last_success
        return out

    def _clean(self, pid: int) -> None:
        for checkpoints in self.folders:
            checkpoints.remove_scratch(pid=pid)

    def start(self, jobs: list[Job]) -> bool:
        """Fork a child that writes ``jobs``; False if the previous one is still at it."""
        if self.running() or not jobs:
            return False
        self.started, self._started_at = time.monotonic(), time.time()
        self.folders = list({id(job[0]): job[0] for job in jobs}.values())
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child; its files are what the tests check
            code = 0
            try:
                gc.disable()
                for job in jobs:
                    write_job(job)
            except BaseException:
                code = 1
            os._exit(code)
        self.pid = pid
        return True

    def stop(self) -> None:
        """Stop a child still writing (a newer checkpoint is about to be written)."""
        if self.running() and self.pid is not None:
            os.kill(self.pid, signal.SIGKILL)
            os.waitpid(self.pid, 0)
            self._clean(self.pid)  # its half-written files, up to a checkpoint's size each
            self.pid = None
