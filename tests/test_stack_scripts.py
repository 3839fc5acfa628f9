"""Fast checks of the local-stack scripts (stack/install.sh, stack/stack.sh)."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
STACK = REPO / "stack"
SCRIPTS = [STACK / "install.sh", STACK / "stack.sh"]


@pytest.mark.parametrize("script", SCRIPTS, ids=lambda p: p.name)
def test_script_parses(script: Path) -> None:
    result = subprocess.run(["bash", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_pom_pins_a_kafka_4_broker_and_a_logging_backend() -> None:
    pom = (STACK / "kafka" / "pom.xml").read_text()
    version = re.search(r"<kafka\.version>([^<]+)</kafka\.version>", pom)
    assert version and version.group(1).startswith("4."), "Kafka 4.x expected"
    assert "<artifactId>kafka_2.13</artifactId>" in pom
    assert "<artifactId>log4j-core</artifactId>" in pom
    assert "<artifactId>log4j-slf4j2-impl</artifactId>" in pom


def test_unknown_command_and_service_are_rejected() -> None:
    bad_cmd = subprocess.run(["bash", str(STACK / "stack.sh"), "bogus"], capture_output=True)
    assert bad_cmd.returncode == 2
    bad_svc = subprocess.run(
        ["bash", str(STACK / "stack.sh"), "stop-service", "zookeeper"],
        capture_output=True,
        text=True,
    )
    assert bad_svc.returncode != 0
    assert "unknown service" in bad_svc.stderr


@pytest.mark.integration
def test_status_is_zero_when_stack_is_up() -> None:
    result = subprocess.run(
        ["bash", str(STACK / "stack.sh"), "status"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0, result.stdout + result.stderr
    lines = {line.split()[0]: line.split()[1] for line in result.stdout.splitlines() if line}
    assert lines == {"kafka": "up", "redis": "up", "prometheus": "up"}
