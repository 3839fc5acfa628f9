"""Run the ccpulse benchmark suite: ``python -m bench.run [--quick] [--only a,b]``.

Every benchmark runs against the real local stack (stack/stack.sh up) on topics, consumer
groups and Redis keys of its own, all named after this run and deleted at the end. Results
are printed as a table and written, with the machine facts, to bench/results/latest.json.
Method and the latest table: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import orjson

from bench import changelog, contenders, dataset, freshness, machine, memory, profile, publish, recovery, soak
from bench.kafka import create_topic, delete_run_leftovers, produce, wait_for_topic
from bench.report import render
from bench.worker import ROOT, wait_caught_up
from stream.settings import Settings

BENCHMARKS = (
    "throughput", "scaleout", "publish", "changelog", "freshness", "replay", "recovery", "memory", "soak", "profile"
)

# Sizes per mode: the full suite takes ~25 min on a 2-core box (replay and soak are most of it), --quick ~3-8.
SIZES = {
    "full": {
        "throughput_events": 60_000,
        "publish_events": 60_000,
        "freshness_seconds": 30,
        "replay_hours": 24,
        "replay_cap_seconds": 300,
        "recovery_scale": 3,
        "recovery_load_repeats": 3,
        "open_contacts": [50_000, 100_000],
        "fcr_customers": [25_000, 50_000],
        "soak_days": 6,
        "timeout": 600,
    },
    "quick": {
        "throughput_events": 10_000,
        "publish_events": 20_000,
        "freshness_seconds": 8,
        "replay_hours": 1,
        "replay_cap_seconds": 30,
        "recovery_scale": 1,
        "recovery_load_repeats": 1,
        "open_contacts": [5_000, 10_000],
        "fcr_customers": [2_500, 5_000],
        "soak_days": 4,
        "timeout": 180,
    },
}


class Suite:
    """One run: its tag, work folder, sizes, and the results gathered so far."""

    def __init__(self, quick: bool, selected: list[str]) -> None:
        self.tag = f"b{int(time.time()) % 10**7}"
        self.mode = "quick" if quick else "full"
        self.size = SIZES[self.mode]
        self.selected = selected
        self.work = Path(tempfile.mkdtemp(prefix="ccpulse-bench-"))
        self.results: dict[str, Any] = {
            "mode": self.mode,
            "machine": machine.facts(),
            "benchmarks": {},
        }
        self.topic = f"{self.tag}-throughput"

    def name(self, suffix: str) -> str:
        return f"{self.tag}-{suffix}"

    def step(self, n: int, name: str, run: Callable[[], dict[str, Any]]) -> None:
        print(f"[{n}/{len(self.selected)}] {name} ...", flush=True)
        started = time.time()
        try:
            result = run()
        except Exception as exc:  # one broken benchmark must not hide the others
            traceback.print_exc()
            result = {"error": f"{type(exc).__name__}: {exc}"}
        result["wall_seconds"] = round(time.time() - started, 1)
        self.results["benchmarks"][name] = result
        print(
            f"      {name}: {summary_line(name, result)} ({result['wall_seconds']} s)", flush=True
        )

    # -- the benchmarks ------------------------------------------------------------------------
    def throughput_events(self, count: int) -> list[dict[str, Any]]:
        """The day's events from 08:00 on, first ``count``."""
        return [
            e
            for e in dataset.simulated_day(duration_seconds=16 * 3600)
            if e["ts"] >= "2025-10-09T08:00"
        ][:count]

    def throughput_topic(self) -> int:
        """Fill the shared topic once: the day's events from 08:00 on, first N."""
        events = self.throughput_events(self.size["throughput_events"])
        create_topic(self.topic)
        wait_for_topic(self.topic)
        return produce(self.topic, dataset.keyed(events))

    def throughput(self) -> dict[str, Any]:
        n, timeout, work = self.events, self.size["timeout"], self.work
        out = {"events": n}
        out["limit"] = contenders.limit(self.topic, n, work, self.name("limit"), timeout)
        print(f"      limit {out['limit']['rate']:,.0f} events/s", flush=True)
        out["floor"] = contenders.floor(self.topic, n, work, self.name("floor"), timeout)
        print(f"      floor {out['floor']['rate']:,.0f} events/s", flush=True)
        out["floor_prompt"] = contenders.floor(self.topic, n, work, self.name("floorp"), timeout, "prompt")
        print(f"      floor, prompt delivery {out['floor_prompt']['rate']:,.0f} events/s", flush=True)
        out["floor_bulk"] = contenders.floor(self.topic, n, work, self.name("floorb"), timeout, "prompt", "bulk")
        print(f"      floor, prompt delivery and batch feed {out['floor_bulk']['rate']:,.0f} events/s", flush=True)
        out["peer"] = contenders.peer(self.topic, n, work, self.name("quix"), timeout)
        print(f"      peer  {out['peer']['rate']:,.0f} events/s", flush=True)
        out["ccpulse"] = contenders.ccpulse(self.topic, self.name("tp1"), work, 1, timeout)
        for base in ("limit", "floor", "floor_prompt", "floor_bulk", "peer"):
            out[f"ccpulse_over_{base}"] = out["ccpulse"]["rate"] / out[base]["rate"]
        return out

    def scaleout(self) -> dict[str, Any]:
        out: dict[str, Any] = {"events": self.events}
        earlier = self.results["benchmarks"].get("throughput", {}).get("ccpulse")
        out["workers_1"] = earlier or contenders.ccpulse(
            self.topic, self.name("so1"), self.work, 1, self.size["timeout"]
        )
        out["workers_2"] = contenders.ccpulse(
            self.topic, self.name("so2"), self.work, 2, self.size["timeout"]
        )
        out["speedup"] = out["workers_2"]["rate"] / out["workers_1"]["rate"]
        return out

    def publish(self) -> dict[str, Any]:
        return publish.measure(self.throughput_events(self.size["publish_events"]), self.name("pb"))

    def changelog(self) -> dict[str, Any]:
        return changelog.measure(self.throughput_events(self.size["publish_events"]), self.name("cl"))

    def freshness(self) -> dict[str, Any]:
        events = [e for e in dataset.simulated_day() if e["ts"] >= "2025-10-09T08:00"]
        seconds = self.size["freshness_seconds"]
        out = {}
        for rate in (1000, 5000):
            out[f"rate_{rate}"] = freshness.measure(
                rate, seconds, events, self.name(f"fr{rate}"), self.work
            )
            r = out[f"rate_{rate}"]
            print(f"      {rate}/s: p50 {r['p50_ms']:.0f} ms, p99 {r['p99_ms']:.0f} ms (queue×channel p50 {r['drilldown_p50_ms']:.0f}, p99 {r['drilldown_p99_ms']:.0f} ms)", flush=True)
        return out

    def replay(self) -> dict[str, Any]:
        hours = self.size["replay_hours"]
        start = dataset.START + (8 * 3600 if hours < 24 else 0)
        topic = self.name("replay")
        create_topic(topic)
        wait_for_topic(topic)
        events = produce(
            topic, dataset.keyed(dataset.simulated_day(duration_seconds=hours * 3600, start=start))
        )
        app_id = self.name("rp")
        from bench.worker import Worker, worker_env

        worker = Worker(
            worker_env(app_id, topic, self.work / f"{app_id}-data"), self.work / f"{app_id}.log"
        ).start()
        cap = self.size["replay_cap_seconds"]
        try:
            first_at, first_n, end_at, end_n = wait_caught_up(
                [worker], app_id, topic, cap, partial=True
            )
        finally:
            worker.stop()
        rate = (end_n - first_n) / max(end_at - first_at, 1e-9)
        complete = end_n >= events
        day_events = events if hours >= 24 else None
        return {
            "hours": hours,
            "events": events,
            "processed": end_n,
            "complete": complete,
            "seconds_from_start": end_at - worker.started_at if complete else None,
            "rate": rate,
            "day_events": day_events,
            "day_seconds_estimate": (end_at - worker.started_at)
            if complete and hours >= 24
            else (first_at - worker.started_at) + (day_events or DAY_EVENTS) / rate,
        }

    def recovery(self) -> dict[str, Any]:
        out = recovery.measure(
            self.size["recovery_scale"], self.name("rc"), self.work, self.size["timeout"]
        )
        out["extrapolated_1k_per_second_from_changelog_seconds"] = recovery.extrapolate(out)
        kept = Path(out.pop("checkpoints"))
        copies = max(1, round(1000.0 / out["event_rate_per_second"]))
        one = recovery.checkpoint_load(kept, 1)
        print(f"      loading {copies} copies of the checkpoints ({one['bytes'] * copies / 2**20:,.0f} MiB) ...", flush=True)
        scaled = recovery.repeated_load(kept, copies, self.size["recovery_load_repeats"])
        out["checkpoint_load_one"], out["checkpoint_load_scaled"] = one, scaled
        out["extrapolated_1k_per_second_seconds"] = recovery.extrapolate_checkpoint(out, one, scaled)
        out["checkpoint_interval_seconds"] = Settings().checkpoint_interval_seconds
        out["extrapolated_1k_per_second_crash_seconds"] = recovery.extrapolate_crash(
            out, out["extrapolated_1k_per_second_seconds"], out["checkpoint_interval_seconds"]
        )
        return out

    def memory(self) -> dict[str, Any]:
        timeout = self.size["timeout"]
        open_ = memory.measure(
            lambda c, f: dataset.open_contacts(c, f),
            self.size["open_contacts"],
            self.name("mo"),
            self.work,
            timeout,
        )
        fcr = memory.measure(
            lambda c, f: dataset.resolved_customers(c, f),
            self.size["fcr_customers"],
            self.name("mf"),
            self.work,
            timeout,
        )
        return {
            "open_contacts": open_,
            "open_contacts_100k_bytes": memory.at(open_, 100_000),
            "fcr_customers": fcr,
            "fcr_customers_1m_bytes": memory.at(fcr, 1_000_000),
        }

    def soak(self) -> dict[str, Any]:
        return soak.measure(self.size["soak_days"], self.name("sk"), self.work, self.size["timeout"])

    def profile(self) -> dict[str, Any]:
        return profile.profile(self.topic, self.name("pf"), self.work, self.size["timeout"])

    # -- driver ----------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        started = time.time()
        try:
            if {"throughput", "scaleout", "profile"} & set(self.selected):
                print(
                    f"producing {self.size['throughput_events']:,} simulated events to {self.topic} ...",
                    flush=True,
                )
                self.events = self.throughput_topic()
            for n, name in enumerate(self.selected, 1):
                self.step(n, name, getattr(self, name))
        finally:
            removed = delete_run_leftovers(self.tag)
            if os.environ.get("CCPULSE_BENCH_KEEP_WORK") != "1":  # 1: keep logs and raw profiles
                shutil.rmtree(self.work, ignore_errors=True)
            else:
                print(f"work folder kept: {self.work}", flush=True)
            print(f"cleaned up {removed} topics and Redis keys of run {self.tag}", flush=True)
        self.results["total_seconds"] = round(time.time() - started, 1)
        self.results["machine"]["load_average_at_end"] = machine.load_average()
        return self.results


DAY_EVENTS = 394_600  # events in the simulated day (50 queues, 5 channels, 600 agents, seed 1)


def summary_line(name: str, result: dict[str, Any]) -> str:
    if "error" in result:
        return f"FAILED: {result['error']}"
    if name == "throughput":
        return f"ccpulse {result['ccpulse']['rate']:,.0f} events/s"
    if name == "scaleout":
        return f"2 workers {result['workers_2']['rate']:,.0f} events/s ({result['speedup']:.2f}x)"
    if name == "publish":
        lanes = result.get("lanes_partials_ms", 0.0) + result.get("lanes_kpis_ms", 0.0)
        return (f"{result['partials_ms'] + result['kpis_ms'] + result['redis_script_ms']:,.0f} ms a publish "
                f"of every scope, build {lanes:,.0f} ms by lanes; "
                f"Redis {result['redis_script_ms']:,.0f} ms (script) vs {result['redis_multi_ms']:,.0f} ms (MULTI)")
    if name == "changelog":
        return (f"{result['records']:,} records: {result['record_batches_us_per_record']:,.1f} µs a record in record batches, "
                f"{result['one_send_a_record_us_per_record']:,.1f} µs one send each ({result['batches_over_each']:.2f}x); "
                f"CPU {result['cpu_batches_over_each']:.2f}x")
    if name == "replay":
        return f"{result['processed']:,} events at {result['rate']:,.0f} events/s"
    if name == "recovery":
        return (f"{result['recovery_seconds']:.1f} s from checkpoints, "
                f"{result['recovery_from_changelog_seconds']:.1f} s from {result['changelog_records']:,} changelog records")
    if name == "memory":
        return f"100k open contacts {result['open_contacts_100k_bytes'] / 2**20:,.0f} MiB"
    if name == "soak":
        return (f"{result['days']} days, RSS {result['points'][-1]['rss_bytes'] / 2**20:,.0f} MiB, "
                f"last day {result['rss_growth_last_day_bytes'] / 2**20:+,.0f} MiB, "
                f"{result['records_growth_last_day']:+,} records")
    if name == "profile":
        return ", ".join(
            f"{k} {v}%" for k, v in list(result.get("by_category_percent", {}).items())[:3]
        )
    return "done"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.run", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes: a smoke run in about 3 minutes"
    )
    parser.add_argument(
        "--only",
        default=",".join(BENCHMARKS),
        help=f"comma-separated subset of {','.join(BENCHMARKS)}",
    )
    parser.add_argument(
        "--out",
        default=str(ROOT / "bench" / "results" / "latest.json"),
        help="where to write the JSON",
    )
    args = parser.parse_args(argv)
    selected = [b.strip() for b in args.only.split(",") if b.strip()]
    unknown = set(selected) - set(BENCHMARKS)
    if unknown:
        parser.error(f"unknown benchmark(s): {', '.join(sorted(unknown))}")
    if (
        subprocess.run(
            ["bash", str(ROOT / "stack" / "stack.sh"), "status"], capture_output=True
        ).returncode
        != 0
    ):
        print("bench: the local stack is not up (bash stack/stack.sh up)", file=sys.stderr)
        return 2
    results = Suite(args.quick, selected).run()
    print(render(results))
    Path(args.out).write_bytes(
        orjson.dumps(results, option=orjson.OPT_INDENT_2 | orjson.OPT_SERIALIZE_NUMPY)
    )
    print(f"written to {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
