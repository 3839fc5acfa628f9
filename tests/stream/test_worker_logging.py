"""The worker keeps the root logger at its log level (stream/app.py ``worker``).

Faust's own worker sets the root logger to DEBUG for its terminal spinner, so every debug
call in Faust, mode and aiokafka builds a record that is thrown away.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator

import faust
import pytest

from stream.app import worker


@pytest.fixture
def saved_logging() -> Iterator[None]:
    root = logging.getLogger()
    level, handlers = root.level, list(root.handlers)
    try:
        yield
    finally:
        root.handlers[:] = handlers
        root.setLevel(level)


def _app() -> faust.App:
    return faust.App("ccpulse-logging-test", broker="kafka://127.0.0.1:1", autodiscover=False)


def test_the_ccpulse_worker_leaves_debug_calls_disabled(saved_logging: None) -> None:
    built = worker(_app(), "WARNING")
    built._setup_logging()  # what the worker does first when it is executed
    assert logging.getLogger().level == logging.WARNING
    assert not logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
    assert not any(type(h).__name__ == "SpinnerHandler" for h in logging.getLogger().handlers)


def test_faust_s_own_worker_turns_them_on(saved_logging: None) -> None:
    # the reason for ``worker``; should Faust stop doing this, the override can go
    built = faust.Worker(_app(), loglevel="WARNING", quiet=True)
    built._setup_logging()
    assert logging.getLogger().level == logging.DEBUG
    assert logging.getLogger("aiokafka.producer.producer").isEnabledFor(logging.DEBUG)
