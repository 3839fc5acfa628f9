"""Redis over TLS: a worker publishes through ``rediss://`` to a real TLS ``redis-server`` (issue #7).

The test makes its own certificate authority and server certificate with ``openssl`` and starts
a second ``redis-server`` that speaks TLS only, beside the stack's plain one.
"""

from __future__ import annotations

import asyncio
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
import redis.asyncio as aioredis

from sinks.redis import read_kpis
from tests.conftest import REDIS_PORT, free_port, make_env, wait_for
from tests.integration.faults import differences, expected_kpis, produce, simulated_lines

pytestmark = pytest.mark.integration


def _openssl(*args: str, cwd: Path) -> None:
    subprocess.run(["openssl", *args], cwd=cwd, check=True, capture_output=True, timeout=60)


def _certificates(where: Path) -> Path:
    """A throwaway CA and a server certificate for localhost / 127.0.0.1 signed by it."""
    _openssl("req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", "ca.key", "-out", "ca.crt",
             "-days", "2", "-subj", "/CN=ccpulse test CA", cwd=where)
    _openssl("req", "-newkey", "rsa:2048", "-nodes", "-keyout", "server.key", "-out", "server.csr",
             "-subj", "/CN=localhost", cwd=where)
    (where / "ext.cnf").write_text("subjectAltName=DNS:localhost,IP:127.0.0.1\n")
    _openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial",
             "-out", "server.crt", "-days", "2", "-extfile", "ext.cnf", cwd=where)
    return where / "ca.crt"


@pytest.fixture
def tls_redis(tmp_path: Path) -> Iterator[tuple[int, Path]]:
    certs = tmp_path / "tls"
    certs.mkdir()
    ca = _certificates(certs)
    port = free_port()
    server = subprocess.Popen(
        ["redis-server", "--port", "0", "--tls-port", str(port), "--tls-cert-file", "server.crt",
         "--tls-key-file", "server.key", "--tls-ca-cert-file", "ca.crt", "--tls-auth-clients", "no",
         "--save", "", "--appendonly", "no", "--dir", str(certs)],
        cwd=certs, stdout=subprocess.DEVNULL, stderr=subprocess.STDOUT,
    )
    try:
        client = redis.Redis(host="127.0.0.1", port=port, ssl=True, ssl_ca_certs=str(ca), socket_timeout=2)
        wait_for(lambda: _pings(client), timeout=20, message="TLS redis-server up")
        client.close()
        yield port, ca
    finally:
        server.terminate()
        server.wait(timeout=20)


def _pings(client: redis.Redis) -> bool:
    try:
        return bool(client.ping())
    except redis.ConnectionError:
        return False


def test_a_worker_publishes_over_tls_and_certificates_are_verified(
    tmp_path: Path, stack: Any, worker_factory: Any, tls_redis: tuple[int, Path]
) -> None:
    port, ca = tls_redis
    url = f"rediss://127.0.0.1:{port}/0?ssl_ca_certs={ca}"
    lines = simulated_lines(1.0)
    env = make_env(tmp_path, CCPULSE_REDIS_URL=url)
    produce(lines, env["CCPULSE_INPUT_TOPIC"])
    want = expected_kpis(lines)
    worker_factory(env)

    def published() -> dict[str, Any]:
        async def read() -> dict[str, Any]:
            client = aioredis.Redis.from_url(url)
            try:
                return await read_kpis(client, env["CCPULSE_REDIS_PREFIX"], env["CCPULSE_APP_ID"])
            finally:
                await client.aclose()

        return asyncio.run(read())

    wait_for(lambda: not differences(published(), want), timeout=90, interval=1.0,
             message="KPIs over TLS equal the reference run")
    plain = redis.Redis(port=REDIS_PORT)
    assert not list(plain.scan_iter(f"{env['CCPULSE_REDIS_PREFIX']}:*")), "something went to the plain server"
    plain.close()
    with pytest.raises(redis.ConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
        redis.Redis.from_url(f"rediss://127.0.0.1:{port}/0", socket_timeout=2).ping()  # no CA: refused
    print(f"\nRedis TLS: {len(lines)} messages sent; every KPI read back over TLS equals the reference "
          f"run ({sum(len(s) for s in want['windows'].values())} scope-windows); a client without the CA "
          f"is refused")
