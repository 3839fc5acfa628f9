"""Render a run's results as the Markdown table docs/benchmarks.md shows."""

from __future__ import annotations

import math
from typing import Any

MIB = 2**20


def _rate(value: float | None) -> str:
    return (
        "–"
        if value is None or (isinstance(value, float) and math.isnan(value))
        else f"{value:,.0f}"
    )


def _ms(value: float) -> str:
    return "never (not visible)" if math.isinf(value) else f"{value:,.0f} ms"


def _ok(passed: bool) -> str:
    return "met" if passed else "**missed**"


def machine_line(results: dict[str, Any]) -> str:
    m = results["machine"]
    p = m["packages"]
    return (
        f"Machine: {m['cpu_model']}, {m['nproc']} cores (shared with the broker), "
        f"{m['ram_bytes'] / 2**30:.1f} GiB RAM, Linux {m['kernel']}, Python {m['python']}, Kafka {m['kafka']}, "
        f"faust-streaming {p['faust-streaming']}, aiokafka {p['aiokafka']}, quixstreams {p['quixstreams']} "
        f"(confluent-kafka {p['confluent-kafka']}), orjson {p['orjson']}; load average "
        f"{m['load_average_at_start'][0]:.2f} at start, {m.get('load_average_at_end', [math.nan])[0]:.2f} at end; "
        f"mode {results['mode']}, {results.get('total_seconds', math.nan):.0f} s in all."
    )


def render(results: dict[str, Any]) -> str:
    """Return the Markdown of every benchmark present in ``results``."""
    b = results["benchmarks"]
    lines = [machine_line(results), ""]
    lines += _throughput(b.get("throughput"), b.get("scaleout"))
    lines += _publish(b.get("publish"))
    lines += _changelog(b.get("changelog"))
    lines += _freshness(b.get("freshness"))
    lines += _replay_recovery_memory(b.get("replay"), b.get("recovery"), b.get("memory"))
    lines += _soak(b.get("soak"))
    lines += _targets(b)
    lines += _profile(b.get("profile"))
    for name, result in b.items():
        if "error" in result:
            lines.append(f"- {name} FAILED: {result['error']}")
    return "\n".join(lines)


def _throughput(t: dict[str, Any] | None, s: dict[str, Any] | None) -> list[str]:
    if not t or "error" in t:
        return []
    out = [
        f"| throughput ({t['events']:,} events, one worker each) | events/s | ccpulse / this |",
        "|---|---:|---:|",
    ]
    names = {
        "limit": "limit: raw aiokafka + orjson",
        "floor": "framework floor: Faust agent, no state",
        "floor_prompt": "floor with ccpulse's prompt delivery (stream/delivery.py)",
        "floor_bulk": "floor with prompt delivery and ccpulse's batch feed (stream/feed.py)",
        "peer": "peer: Quix Streams, 15-min sliding KPIs per queue",
    }
    for key, label in names.items():
        if key not in t:  # a result from before the row existed
            continue
        out.append(f"| {label} | {_rate(t[key]['rate'])} | {t[f'ccpulse_over_{key}']:.2f}× |")
    out.append(
        f"| **ccpulse: full KPI state, sinks on** | **{_rate(t['ccpulse']['rate'])}** | 1.00× |"
    )
    if s and "error" not in s:
        out.append(
            f"| scale-out: ccpulse, 2 workers (total) | {_rate(s['workers_2']['rate'])} | "
            f"{s['speedup']:.2f}× of 1 worker |"
        )
    return [*out, ""]


def _publish(p: dict[str, Any] | None) -> list[str]:
    if not p or "error" in p:
        return []
    return [
        f"| publish ({p['events']:,} events in {p['publishes']} slices; {p['hashes']:,} hashes, "
        f"{p['hashes_written_per_publish']:,.0f} written a publish) | ms a publish |",
        "|---|---:|",
        f"| partials of 4 partitions | {p['partials_ms']:,.1f} |",
        f"| KPIs of every window and scope | {p['kpis_ms']:,.1f} |",
        *_lanes_rows(p),
        f"| Redis write: one script call (ccpulse) | {p['redis_script_ms']:,.1f} |",
        f"| Redis write: HSET + EXPIRE per hash in MULTI/EXEC (baseline) | {p['redis_multi_ms']:,.1f} "
        f"(script {p['script_over_multi']:.2f}×) |",
        "",
    ]


def _changelog(c: dict[str, Any] | None) -> list[str]:
    if not c or "error" in c:
        return []
    return [
        f"| changelog writes ({c['events']:,} events in {c['batches']} batches, {c['records']:,} records) "
        "| s in all | µs a record, until acknowledged | µs of CPU a record |",
        "|---|---:|---:|---:|",
        f"| record batches, one per partition (ccpulse) | {c['record_batches_seconds']:.2f} | "
        f"{c['record_batches_us_per_record']:,.1f} ({c['batches_over_each']:.2f}×) | "
        f"{c['record_batches_cpu_us_per_record']:,.1f} ({c['cpu_batches_over_each']:.2f}×) |",
        f"| one producer send a record (baseline) | {c['one_send_a_record_seconds']:.2f} | "
        f"{c['one_send_a_record_us_per_record']:,.1f} | {c['one_send_a_record_cpu_us_per_record']:,.1f} |",
        "",
    ]


def _lanes_rows(p: dict[str, Any]) -> list[str]:
    if "lanes_kpis_ms" not in p:
        return []
    return [
        f"| partials, as the worker builds them: main lane + one slice of agents and of queue×channel | "
        f"{p['lanes_partials_ms']:,.1f} |",
        f"| KPIs of the main lane + those slices | {p['lanes_kpis_ms']:,.1f} "
        f"({p['lanes_over_every_scope']:.2f}× the every-scope build) |",
    ]


def _freshness(f: dict[str, Any] | None) -> list[str]:
    if not f or "error" in f:
        return []
    out = [
        "| freshness (produced → visible in Redis) | achieved input | p50 | p99 | max | probes not visible |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for key, r in f.items():
        if not key.startswith("rate_"):
            continue
        out.append(
            f"| {r['target_rate']:,} events/s, live | {_rate(r['achieved_rate'])}/s | {_ms(r['p50_ms'])} | "
            f"{_ms(r['p99_ms'])} | {_ms(r['max_ms'])} | {r['unseen']} of {r['probes']} "
            f"(after {r['drain_seconds']:.0f} s) |"
        )
        if "drilldown_p50_ms" in r:
            out.append(
                f"| … its queue×channel scope (recomputed every 4th publish) | | "
                f"{_ms(r['drilldown_p50_ms'])} | {_ms(r['drilldown_p99_ms'])} | | "
                f"{r['drilldown_unseen']} of {r['probes']} |"
            )
    return [*out, ""]


def _load_spread(load: dict[str, Any]) -> str:
    """How the repeated in-process loads spread, and where the median one spent its time."""
    if "user_seconds" not in load:
        return ""
    runs = load.get("runs_seconds", [load["seconds"]])
    spread = f", the median of {len(runs)} runs of {min(runs):.1f}-{max(runs):.1f} s" if len(runs) > 1 else ""
    moved = load.get("windows_moved_seconds")
    return (f"{spread} (CPU user {load['user_seconds']:.1f} s, kernel {load['sys_seconds']:.1f} s "
            f"for {load['page_faults']:,} page faults)"
            + ("" if moved is None else f"; then {load['warm_publishes']} publishes decode the blocks and edge "
               f"buckets left packed, {load['warm_seconds']:.1f} s more in all, and the windows' first move on "
               f"by a bucket adds them up again in {moved:.1f} s (the next move, as every 30 s of event "
               f"time live: {load.get('windows_moved_again_seconds', 0):.1f} s)"))


def _replay_recovery_memory(
    r: dict[str, Any] | None, c: dict[str, Any] | None, m: dict[str, Any] | None
) -> list[str]:
    out = ["| state and time | measured | note |", "|---|---:|---|"]
    if r and "error" not in r:
        done = (
            "whole topic"
            if r["complete"]
            else f"{r['processed']:,} of {r['events']:,} events within the cap"
        )
        out.append(
            f"| replay one simulated day (50 queues, 5 channels) | {r['day_seconds_estimate']:,.0f} s | "
            f"{r['hours']} h of the day produced, {done}, {_rate(r['rate'])} events/s"
            f"{'' if r['complete'] and r['hours'] >= 24 else '; day time extrapolated at that rate'} |"
        )
    if c and "error" not in c:
        out.append(
            f"| recovery: start → first correct publish, from checkpoints (graceful stop) | "
            f"{c['recovery_seconds']:.1f} s | one hour of state at {c['event_rate_per_second']:,.0f} events/s "
            f"({c['events']:,} events) |"
        )
        out.append(
            f"| recovery: the same from the changelogs alone (a new machine, or a crash before the first "
            f"background checkpoint) | "
            f"{c['recovery_from_changelog_seconds']:.1f} s | {c['changelog_records']:,} changelog records "
            f"left by compaction of {c.get('changelog_records_written', 0):,} written |"
        )
        if "checkpoint_load_scaled" in c:
            one, big = c["checkpoint_load_one"], c["checkpoint_load_scaled"]
            out.append(
                f"| recovery, one hour at 1,000 events/s, from checkpoints | "
                f"{c['extrapolated_1k_per_second_seconds']:,.1f} s | the restart above with its checkpoint "
                f"load ({one['seconds']:.2f} s) replaced by loading {big['copies']} copies "
                f"({big['records']:,} records, {big['bytes'] / MIB:,.0f} MiB) in {big['seconds']:.1f} s, "
                f"in a new process"
                f"{_load_spread(big)} |"
            )
        if "extrapolated_1k_per_second_crash_seconds" in c:
            interval = c["checkpoint_interval_seconds"]
            out.append(
                f"| recovery, one hour at 1,000 events/s, after a crash (SIGKILL), the last background "
                f"checkpoint {interval:.0f} s old | {c['extrapolated_1k_per_second_crash_seconds']:,.1f} s | "
                f"the row above plus the changelog of those {interval:.0f} s "
                f"({c['changelog_records_written'] / c['events'] * 1000 * interval:,.0f} records at the "
                f"records written per event) at the measured restore rate "
                f"({c['changelog_records_per_second']:,.0f} records/s) |"
            )
        out.append(
            f"| recovery, one hour at 1,000 events/s, from the changelogs | "
            f"{c.get('extrapolated_1k_per_second_from_changelog_seconds', 0):,.0f} s | "
            f"extrapolated: linear in the records compaction left, at the measured restore rate |"
        )
    if m and "error" not in m:
        o, f = m["open_contacts"], m["fcr_customers"]
        out.append(
            f"| worker RSS, 100k open contacts | {m['open_contacts_100k_bytes'] / MIB:,.0f} MiB | "
            f"{_points(o)}{'' if o['points'][-1][0] >= 100_000 else '; extrapolated'} |"
        )
        out.append(
            f"| worker RSS, 1M customers in FCR state | {m['fcr_customers_1m_bytes'] / MIB:,.0f} MiB | "
            f"{_points(f)}; extrapolated linearly ({f['bytes_per_entity'] / 1024:,.1f} KiB per customer) |"
        )
    return [*out, ""] if len(out) > 2 else []


def _soak(s: dict[str, Any] | None) -> list[str]:
    if not s or "error" in s:
        return []
    out = ["| soak: after day | events | worker RSS | state records (stage 1 + stage 2) |", "|---:|---:|---:|---:|"]
    for p in s["points"]:
        out.append(f"| {p['day']} | {p['events']:,} | {p['rss_bytes'] / MIB:,.0f} MiB | "
                   f"{p['contact_stage']:,} + {p['customer_stage']:,} |")
    return [*out, ""]


def _points(result: dict[str, Any]) -> str:
    return "measured " + ", ".join(f"{n:,} → {rss / MIB:,.0f} MiB" for n, rss in result["points"])


def _targets(b: dict[str, Any]) -> list[str]:
    out = []
    t, f, c, m = b.get("throughput"), b.get("freshness"), b.get("recovery"), b.get("memory")
    if t and "error" not in t:
        out.append(
            f"- ccpulse ≥ 1.0× the framework floor: {t['ccpulse_over_floor']:.2f}× — {_ok(t['ccpulse_over_floor'] >= 1.0)}"
        )
        out.append(
            f"- ccpulse ≥ 2× the Quix Streams peer: {t['ccpulse_over_peer']:.2f}× — {_ok(t['ccpulse_over_peer'] >= 2.0)}"
        )
    if f and "error" not in f and "rate_1000" in f:
        p99 = f["rate_1000"]["p99_ms"]
        out.append(f"- freshness p99 ≤ 500 ms at 1k events/s: {_ms(p99)} — {_ok(p99 <= 500)}")
    if c and "error" not in c:
        e = c["extrapolated_1k_per_second_seconds"]
        out.append(
            f"- recovery ≤ 10 s for one hour at 1k events/s: {e:,.1f} s from checkpoints (extrapolated), "
            + (f"{c['extrapolated_1k_per_second_crash_seconds']:,.1f} s after a crash, "
               if "extrapolated_1k_per_second_crash_seconds" in c else "")
            + f"{c.get('extrapolated_1k_per_second_from_changelog_seconds', 0):,.0f} s from the changelogs alone — "
            f"{_ok(e <= 10)}"
        )
    if m and "error" not in m:
        rss = m["open_contacts_100k_bytes"] / MIB
        out.append(
            f"- RSS ≤ 300 MB with 100k open contacts: {rss * MIB / 1e6:,.0f} MB — {_ok(rss * MIB <= 300e6)}"
        )
    return ["Targets:", "", *out, ""] if out else []


def _profile(p: dict[str, Any] | None) -> list[str]:
    if not p or "error" in p:
        return []
    out = [
        f"Profile of one worker on the throughput topic (py-spy, {p['samples']:,} samples, "
        f"{_rate(p['rate_under_profiler'])} events/s under the profiler):",
        "",
        "| where the time goes | share of samples |",
        "|---|---:|",
    ]
    out += [f"| {k} | {v} % |" for k, v in p["by_category_percent"].items()]
    out += ["", "| ccpulse function (inclusive) | share |", "|---|---:|"]
    out += [f"| `{k}` | {v} % |" for k, v in list(p["ccpulse_inclusive_percent"].items())[:12]]
    return [*out, ""]
