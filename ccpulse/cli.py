"""The ``ccpulse`` command: worker, replay, simulate, kpis, wallboard, settings."""

from __future__ import annotations

import argparse
import asyncio
import logging
import sys
from collections.abc import Sequence

from stream.settings import Settings, SettingsError


def main(argv: Sequence[str] | None = None) -> int:
    """Run one ccpulse command; return its exit code."""
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        settings = Settings.from_env()
    except SettingsError as exc:
        print(f"ccpulse: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    result: int = args.run(args, settings)
    return result


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="ccpulse", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)

    worker = commands.add_parser("worker", help="run a Faust worker (several form one group)")
    worker.set_defaults(run=_worker)

    from ccpulse import replay

    replay_parser = commands.add_parser("replay", help="produce a JSON-lines file to the input topic")
    replay.add_arguments(replay_parser)
    replay_parser.set_defaults(run=replay.run)

    simulate = commands.add_parser("simulate", help="a live simulated contact center")
    _simulate_arguments(simulate)
    simulate.set_defaults(run=_simulate)

    kpis = commands.add_parser("kpis", help="print the current KPIs from Redis")
    kpis.add_argument("--window", default=None, help="5m, 15m, 1h, today or interval (default: all)")
    kpis.add_argument("--queue", default=None, help="only this queue's scopes")
    kpis.add_argument("--channel", default=None, help="only this channel's scopes")
    kpis.add_argument("--json", action="store_true", help="one JSON object instead of a table")
    kpis.set_defaults(run=_kpis)

    wallboard = commands.add_parser("wallboard", help="serve the live wallboard")
    wallboard.add_argument("--host", default=None)
    wallboard.add_argument("--port", type=int, default=None)
    wallboard.set_defaults(run=_wallboard)

    settings = commands.add_parser("settings", help="list every CCPULSE_* setting")
    settings.add_argument("--markdown", action="store_true", help="as a Markdown table")
    settings.set_defaults(run=_settings)
    return parser


def fix_mmap_threshold(size: int = 128 * 1024) -> bool:
    """Have glibc give every allocation of ``size`` bytes or more its own mapping, returned
    to the system when freed; True if it took the setting (False off glibc).

    By default glibc raises that threshold after each large free (up to 32 MiB); the
    producer's 512 KiB batches and Kafka's fetch buffers then come from the heap and leave
    it fragmented. A worker with 100k open contacts measured 293-297 MiB with the moving
    threshold and 277-280 MiB with it fixed (bench/memory.py, two runs each).
    """
    import ctypes

    m_mmap_threshold = -3  # mallopt's M_MMAP_THRESHOLD (malloc.h)
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(m_mmap_threshold, size))
    except (OSError, AttributeError):
        return False


def _worker(args: argparse.Namespace, settings: Settings) -> int:
    fix_mmap_threshold()
    if settings.event_loop == "uvloop":
        import uvloop

        uvloop.install()  # before Faust makes its loop

    from stream.app import create_app, worker
    from stream.topics import ensure_topics

    ensure_topics(settings)
    app = create_app(settings)
    worker(app, settings.log_level).execute_from_commandline()
    return 0


def _simulate_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--rate", type=float, default=1.0, help="arrival-rate multiplier")
    parser.add_argument("--speed", type=float, default=1.0, help="times faster than real time (0 = flat out)")
    parser.add_argument("--duration", type=float, default=None, help="simulated seconds (default: forever)")
    parser.add_argument("--queues", type=int, default=4)
    parser.add_argument("--agents", type=int, default=24)
    parser.add_argument("--start", default="now", help="simulated start: 'now' or RFC 3339 / epoch")
    parser.add_argument("--out", default=None, help="write JSON lines to this file (- for stdout) instead of Kafka")
    parser.add_argument("--dirty", type=float, default=0.0, help="fraction of duplicate/invalid events")
    parser.add_argument("--staff-drop", default=None, help="AT_SECONDS:FRACTION — agents leave at a time")
    parser.add_argument("--spike", default=None, help="AT_SECONDS:MULTIPLIER:DURATION — arrival spike")


def _kpis(args: argparse.Namespace, settings: Settings) -> int:
    from ccpulse import kpis

    return asyncio.run(kpis.run(args, settings))


def _simulate(args: argparse.Namespace, settings: Settings) -> int:
    from ccpulse.simulate import run

    return run(args, settings)


def _wallboard(args: argparse.Namespace, settings: Settings) -> int:
    from ccpulse.wallboard.server import serve

    return serve(settings, host=args.host, port=args.port)


def _settings(args: argparse.Namespace, settings: Settings) -> int:
    rows = settings.described()
    if args.markdown:
        print("| variable | default | meaning |\n|---|---|---|")
        for name, default, doc in rows:
            print(f"| `{name}` | `{default}` | {doc} |")
        return 0
    print(settings)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
