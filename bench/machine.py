"""What the benchmarks ran on: CPU, cores, RAM, load, and the versions that matter."""

from __future__ import annotations

import os
import platform
from importlib import metadata
from pathlib import Path
from typing import Any

from bench.worker import ROOT

PACKAGES = (
    "faust-streaming",
    "aiokafka",
    "quixstreams",
    "confluent-kafka",
    "orjson",
    "redis",
    "prometheus-client",
)


def _cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return platform.processor() or "unknown"


def _mem_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 0


def _kafka_version() -> str:
    libs = Path(os.environ.get("CCPULSE_STACK_DIR", ROOT / ".stack")) / "kafka" / "libs"
    jars = sorted(libs.glob("kafka_2.13-*.jar"))
    return jars[0].name.removeprefix("kafka_2.13-").removesuffix(".jar") if jars else "unknown"


def _version(package: str) -> str:
    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return "missing"


def load_average() -> list[float]:
    return [float(x) for x in Path("/proc/loadavg").read_text().split()[:3]]


def facts() -> dict[str, Any]:
    """Return the machine facts recorded with every result."""
    return {
        "nproc": os.cpu_count(),
        "cpu_model": _cpu_model(),
        "ram_bytes": _mem_total_bytes(),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "kafka": _kafka_version(),
        "packages": {p: _version(p) for p in PACKAGES},
        "load_average_at_start": load_average(),
    }
