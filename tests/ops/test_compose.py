"""docker-compose.yml and the Dockerfile, checked statically (there is no Docker engine here).

The schema is Compose's own (the Debian docker-compose package's compose_spec.json, and its
`docker-compose config`); the cross-references are ours: mounted files exist, every CCPULSE_*
variable is a real setting with a valid value, and ports agree with the settings' defaults.
"""

from __future__ import annotations

import dataclasses
import json
import re
import tomllib
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest

from stream.settings import ENV_PREFIX, Settings
from tests.ops.opsfiles import OPS, ROOT, load_yaml, run, tool

COMPOSE_FILE = ROOT / "docker-compose.yml"
COMPOSE = load_yaml(COMPOSE_FILE)
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
DOCKERFILE = (ROOT / "Dockerfile").read_text()
SCHEMA_PATHS = [Path("/usr/lib/python3/dist-packages/compose/config/compose_spec.json")]
CCPULSE = {"worker", "wallboard", "simulator"}
OBSERVABILITY = {"prometheus", "alertmanager", "grafana"}
DEFAULTS = Settings()
SETTING_NAMES = {ENV_PREFIX + f.name.upper() for f in dataclasses.fields(Settings)}


def env(service: str) -> dict[str, str]:
    return {k: str(v) for k, v in (SERVICES[service].get("environment") or {}).items()}


def published(service: str) -> dict[int, int]:
    """Container port -> host port of a service's published ports (host side on loopback)."""
    ports = {}
    for spec in SERVICES[service].get("ports", []):
        host_ip, host, container = str(spec).split(":")
        assert host_ip == "127.0.0.1", f"{service}: {spec} must bind loopback only"
        ports[int(container)] = int(host)
    return ports


def healthcheck_ports(service: str) -> set[int]:
    test = " ".join(SERVICES[service]["healthcheck"]["test"])
    return {int(p) for p in re.findall(r"(?:127\.0\.0\.1|localhost|kafka):(\d+)", test)}


def test_docker_compose_config_accepts_it() -> None:
    for profiles in ([], ["--profile", "observability", "--profile", "demo"]):
        result = run(tool("docker-compose"), "-f", COMPOSE_FILE, *profiles, "config", "-q")
        assert result.returncode == 0, result.stdout + result.stderr
    listed = run(
        tool("docker-compose"),
        "-f",
        COMPOSE_FILE,
        "--profile",
        "observability",
        "--profile",
        "demo",
        "config",
        "--services",
    )
    assert set(listed.stdout.split()) == set(SERVICES)


def test_compose_schema() -> None:
    schema_path = next((p for p in SCHEMA_PATHS if p.is_file()), None)
    assert schema_path, "compose_spec.json not found: apt-get install docker-compose (make install)"
    schema = json.loads(schema_path.read_text())
    jsonschema.validate(COMPOSE, schema)


def test_the_full_stack_is_there() -> None:
    assert set(SERVICES) == {"kafka", "redis", *CCPULSE, *OBSERVABILITY}
    assert SERVICES["kafka"]["image"].startswith("apache/kafka:")
    assert SERVICES["kafka"]["environment"]["KAFKA_PROCESS_ROLES"] == "broker,controller"  # KRaft
    assert SERVICES["worker"]["deploy"]["replicas"] >= 2


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_images_are_pinned(service: str) -> None:
    image = SERVICES[service]["image"]
    name, _, tag = image.rpartition(":")
    assert name and tag and tag != "latest" and re.search(r"\d", tag), image
    if service in CCPULSE:
        version = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["version"]
        assert image == f"ccpulse:{version}"
        assert SERVICES[service]["build"] == {"context": ".", "dockerfile": "Dockerfile"}


@pytest.mark.parametrize("service", sorted(SERVICES))
def test_every_service_has_a_healthcheck(service: str) -> None:
    check = SERVICES[service]["healthcheck"]
    assert check["test"][0] in ("CMD", "CMD-SHELL") and len(check["test"]) > 1
    assert {"interval", "timeout", "retries"} <= set(check)


def test_depends_on_conditions_name_healthy_services() -> None:
    for service, spec in SERVICES.items():
        for dependency, how in (spec.get("depends_on") or {}).items():
            assert dependency in SERVICES, f"{service} depends on unknown {dependency}"
            assert how["condition"] == "service_healthy", f"{service} -> {dependency}"
            assert "healthcheck" in SERVICES[dependency]
            # a service that starts by default must not wait for one in a profile
            if not spec.get("profiles"):
                assert not SERVICES[dependency].get("profiles"), f"{service} -> {dependency}"
    assert set(SERVICES["worker"]["depends_on"]) == {"kafka", "redis"}
    assert set(SERVICES["grafana"]["depends_on"]) == {"prometheus"}


def test_profiles() -> None:
    for service in OBSERVABILITY:
        assert SERVICES[service]["profiles"] == ["observability"]
    assert SERVICES["simulator"]["profiles"] == ["demo"]
    for service in ("kafka", "redis", "worker", "wallboard"):
        assert "profiles" not in SERVICES[service]  # the core starts with a plain `up`


def test_every_mounted_file_exists_in_the_repo() -> None:
    mounted = []
    for service, spec in SERVICES.items():
        for volume in spec.get("volumes", []):
            source, target, *mode = volume.split(":")
            if source.startswith("."):
                path = ROOT / source
                assert path.exists(), f"{service}: {source} does not exist"
                assert mode == ["ro"], f"{service}: mount {source} read-only"
                mounted.append((service, source, target))
            else:
                assert source in COMPOSE["volumes"], f"{service}: named volume {source} undeclared"
    assert ("prometheus", "./ops/prometheus/rules", "/etc/prometheus/rules") in mounted
    assert (ROOT / SERVICES["worker"]["build"]["context"] / "Dockerfile").is_file()


def test_prometheus_and_alertmanager_read_what_is_mounted() -> None:
    prometheus = SERVICES["prometheus"]
    mounts = dict(v.split(":")[1::-1] for v in prometheus["volumes"] if v.startswith("."))
    config_flag = next(a for a in prometheus["command"] if a.startswith("--config.file="))
    assert mounts[config_flag.split("=", 1)[1]] == "./ops/prometheus/prometheus.yml"
    config = load_yaml(OPS / "prometheus" / "prometheus.yml")
    rules_dir = config["rule_files"][0].rsplit("/", 1)[0]
    assert mounts[rules_dir] == "./ops/prometheus/rules"
    assert list((OPS / "prometheus" / "rules").glob("*.yml"))
    alertmanager = SERVICES["alertmanager"]
    am_mounts = dict(v.split(":")[1::-1] for v in alertmanager["volumes"])
    am_flag = next(a for a in alertmanager["command"] if a.startswith("--config.file="))
    assert am_mounts[am_flag.split("=", 1)[1]] == "./ops/alertmanager/alertmanager.yml"
    am_config = load_yaml(OPS / "alertmanager" / "alertmanager.yml")
    secret_dirs = {
        cfg.get("routing_key_file", cfg.get("api_url_file", "")).rsplit("/", 1)[0]
        for receiver in am_config["receivers"]
        for kind in ("pagerduty_configs", "slack_configs")
        for cfg in receiver.get(kind, [])
    }
    assert secret_dirs == {"/etc/alertmanager/secrets"}
    assert am_mounts["/etc/alertmanager/secrets"] == "./ops/alertmanager/secrets"


def test_every_ccpulse_variable_is_a_real_setting() -> None:
    for text in (COMPOSE_FILE.read_text(), DOCKERFILE):
        names = set(re.findall(r"\bCCPULSE_[A-Z0-9_]+", text))
        assert names and names <= SETTING_NAMES, names - SETTING_NAMES


@pytest.mark.parametrize("service", sorted(CCPULSE))
def test_the_settings_of_every_ccpulse_service_are_valid(service: str) -> None:
    dockerfile_env = dict(re.findall(r"(CCPULSE_[A-Z_]+)=(\S+)", DOCKERFILE))
    settings = Settings.from_env({**dockerfile_env, **env(service)})
    assert settings.web_host == "0.0.0.0"  # reachable from the other containers


def test_ports_agree_with_the_settings() -> None:
    worker = Settings.from_env(env("worker"))
    assert worker.web_port == DEFAULTS.web_port == 6066
    assert SERVICES["worker"]["expose"] == [str(worker.web_port)]
    assert healthcheck_ports("worker") == {worker.web_port}
    scrape = load_yaml(OPS / "prometheus" / "prometheus.yml")["scrape_configs"]
    job = next(j for j in scrape if j["job_name"] == "ccpulse")
    assert job["dns_sd_configs"][0] == {
        "names": ["worker"],
        "type": "A",
        "port": worker.web_port,
        "refresh_interval": "15s",
    }
    assert f"EXPOSE {worker.web_port} " in DOCKERFILE
    assert f"127.0.0.1:{worker.web_port}/healthz" in DOCKERFILE


def test_kafka_listeners_match_the_broker_settings() -> None:
    kafka = SERVICES["kafka"]["environment"]
    listeners = dict(item.split("://") for item in kafka["KAFKA_ADVERTISED_LISTENERS"].split(","))
    internal = urlsplit(Settings.from_env(env("worker")).broker)
    assert listeners["INTERNAL"] == f"kafka:{internal.port}" and internal.hostname == "kafka"
    default = urlsplit(DEFAULTS.broker)  # what `ccpulse replay` on the host uses
    assert listeners["HOST"] == f"{default.hostname}:{default.port}"
    assert published("kafka") == {default.port: default.port}
    assert healthcheck_ports("kafka") == {internal.port}


def test_redis_matches_the_settings() -> None:
    inside = urlsplit(Settings.from_env(env("worker")).redis_url)
    default = urlsplit(DEFAULTS.redis_url)
    assert (inside.hostname, inside.port) == ("redis", 6379)
    assert published("redis") == {inside.port: default.port}


def test_wallboard_port() -> None:
    from ccpulse.wallboard.server import DEFAULT_PORT

    command = SERVICES["wallboard"]["command"]
    port = int(command[command.index("--port") + 1])
    assert port == DEFAULT_PORT
    assert published("wallboard") == {port: port}
    assert healthcheck_ports("wallboard") == {port}


def test_observability_ports() -> None:
    assert published("prometheus") == {9090: 9090}
    assert published("alertmanager") == {9093: 9093}
    assert published("grafana") == {3000: 3000}
    source = load_yaml(OPS / "grafana" / "provisioning" / "datasources" / "prometheus.yml")
    assert source["datasources"][0]["url"] == "http://prometheus:9090"
    alerting = load_yaml(OPS / "prometheus" / "prometheus.yml")["alerting"]
    assert alerting["alertmanagers"][0]["static_configs"][0]["targets"] == ["alertmanager:9093"]
    for service, port in (("prometheus", 9090), ("alertmanager", 9093), ("grafana", 3000)):
        assert healthcheck_ports(service) == {port}


def test_dockerfile() -> None:
    froms = re.findall(r"^FROM (\S+)", DOCKERFILE, re.MULTILINE)
    assert froms and all(re.fullmatch(r"python:3\.11\.\d+-slim-\w+", image) for image in froms)
    for source in re.findall(r"^COPY (?!--from)(.+) \S+$", DOCKERFILE, re.MULTILINE):
        for path in source.split():
            assert (ROOT / path).exists(), path
    scripts = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["scripts"]
    assert 'ENTRYPOINT ["ccpulse"]' in DOCKERFILE and "ccpulse" in scripts
    user = re.findall(r"^USER (\S+)", DOCKERFILE, re.MULTILINE)
    assert user and user[-1] not in ("root", "0")
    lines = (ROOT / ".dockerignore").read_text().splitlines()
    ignored = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    for needed in ("pyproject.toml", "README.md", "LICENSE", "stream", "sinks", "ccpulse"):
        assert needed not in ignored


def test_dockerfile_copies_every_file_the_package_build_reads() -> None:
    """``pip install .`` in the image fails if the readme or a license file is missing."""
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    build_stage = DOCKERFILE.split("RUN pip install", 1)[0]
    copied = {path for source in re.findall(r"^COPY (?!--from)(.+) \S+$", build_stage, re.MULTILINE)
              for path in source.split()}
    for needed in [project["readme"], *project.get("license-files", [])]:
        assert needed in copied, f"the Dockerfile does not copy {needed} before pip install"
