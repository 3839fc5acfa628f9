"""Secrets stay secret, and Kafka SASL/SSL settings reach the client (issue #7)."""

from __future__ import annotations

import ssl
import subprocess
import sys

import faust
import pytest

from stream.app import _credentials
from stream.settings import Settings, SettingsError
from tests.conftest import ROOT

SECRETS = {
    "CCPULSE_KAFKA_SASL_PASSWORD": "kafka-pw-123",
    "CCPULSE_REDIS_URL": "rediss://svc:redis-pw-456@cache.internal:6380/1",
    "CCPULSE_WALLBOARD_TOKEN": "board-token-789",
}


def test_repr_and_str_hide_every_secret() -> None:
    settings = Settings.from_env({**SECRETS, "CCPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL"})
    for shown in (repr(settings), str(settings), f"{settings}"):
        for secret in ("kafka-pw-123", "redis-pw-456", "board-token-789"):
            assert secret not in shown
    assert "cache.internal:6380/1" in repr(settings)  # where it points is still visible
    assert settings.kafka_sasl_password == "kafka-pw-123"  # the value itself is intact


def test_settings_command_hides_secrets() -> None:
    out = subprocess.run([sys.executable, "-m", "ccpulse.cli", "settings"], cwd=ROOT, capture_output=True,
                         text=True, env={"PATH": "/usr/bin:/bin", **SECRETS}, timeout=60)
    assert out.returncode == 0, out.stderr
    assert "wallboard_token='***'" in out.stdout
    for secret in ("kafka-pw-123", "redis-pw-456", "board-token-789"):
        assert secret not in out.stdout + out.stderr


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_ssl_credentials_carry_mechanism_user_and_tls(mechanism: str) -> None:
    settings = Settings.from_env({
        "CCPULSE_KAFKA_SECURITY_PROTOCOL": "SASL_SSL", "CCPULSE_KAFKA_SASL_MECHANISM": mechanism,
        "CCPULSE_KAFKA_SASL_USERNAME": "ccpulse", "CCPULSE_KAFKA_SASL_PASSWORD": "pw",
    })
    credentials = _credentials(settings)
    assert isinstance(credentials, faust.SASLCredentials)
    assert (credentials.username, credentials.password) == ("ccpulse", "pw")
    assert credentials.mechanism.value == mechanism
    assert isinstance(credentials.ssl_context, ssl.SSLContext)
    assert credentials.ssl_context.verify_mode == ssl.CERT_REQUIRED
    assert "pw" not in repr(settings).replace("kafka_sasl_password='***'", "")


def test_plaintext_has_no_credentials_and_ssl_has_a_verifying_context() -> None:
    assert _credentials(Settings.from_env({})) is None
    credentials = _credentials(Settings.from_env({"CCPULSE_KAFKA_SECURITY_PROTOCOL": "SSL"}))
    assert isinstance(credentials, faust.SSLCredentials)
    assert credentials.context.check_hostname is True


def test_a_bad_session_timeout_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="CCPULSE_SESSION_TIMEOUT_SECONDS"):
        Settings.from_env({"CCPULSE_SESSION_TIMEOUT_SECONDS": "2"})


@pytest.mark.parametrize("value", ["100", "2000000"])
def test_a_producer_batch_outside_the_request_limit_names_its_variable(value: str) -> None:
    with pytest.raises(SettingsError, match="CCPULSE_PRODUCER_BATCH_BYTES"):
        Settings.from_env({"CCPULSE_PRODUCER_BATCH_BYTES": value})


def test_the_app_hands_the_producer_batch_size_to_faust() -> None:
    from stream.app import create_app

    settings = Settings.from_env({"CCPULSE_PRODUCER_BATCH_BYTES": "65536"})
    assert create_app(settings).conf.producer_max_batch_size == 65536


def test_a_ttl_not_longer_than_the_heartbeat_names_its_variable() -> None:
    with pytest.raises(SettingsError, match="CCPULSE_REDIS_TTL_SECONDS"):
        Settings.from_env({"CCPULSE_REDIS_TTL_SECONDS": "5", "CCPULSE_HEARTBEAT_SECONDS": "5"})
