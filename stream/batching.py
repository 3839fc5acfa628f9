"""A batch wait that follows the worker's backlog: short while it keeps up, longer behind.

The ingest agent's batch feed (stream/feed.py) asks ``Runtime.batch_wait`` itself before
every batch; the customer stage reads through Faust's ``take_events``, for which this module
makes the same wait.

``Stream.take_events(max_, within)`` waits up to ``within`` seconds for a batch to fill,
counted from when the previous batch was handed back. A short wait makes KPIs fresher (an
event that arrives while a batch is applied waits for the rest of it, then for the whole
``within``): at 1,000 events/s, 0.05 s against 0.1 s took the freshness p99 from
676-769 ms to 519-565 ms. Behind, a batch is cut by the wait too (Faust hands over a few
thousand messages a second here), and every batch costs a flush of the state's changed
records: 0.05 s cost about 9 % of the events/s of a catch-up.

Faust converts ``within`` once, with mode's ``want_seconds``, and hands the result to every
wait of the loop, where ``want_seconds`` is asked again. ``BatchWait`` is converted to a
``_Timeout`` that keeps it, and a ``_Timeout`` to the seconds its function gives at that
moment: so the wait is decided anew for every batch. tests/stream/test_batching.py checks
this against the installed Faust.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

from mode.utils.times import want_seconds


class BatchWait:
    """A ``within`` for ``take_events`` whose seconds are asked for at each batch."""

    def __init__(self, seconds: Callable[[], float]) -> None:
        self.seconds = seconds

    def __bool__(self) -> bool:  # take_events passes no timeout at all for a falsy ``within``
        return True


class _Timeout:
    """What ``take_events`` keeps of a ``BatchWait``."""

    def __init__(self, wait: BatchWait) -> None:
        self.wait = wait


def within(seconds: Callable[[], float]) -> float:
    """A ``BatchWait`` of ``seconds``, typed as the ``within`` Faust's signature asks for
    (Faust does nothing with it but hand it to ``want_seconds``)."""
    return cast(float, BatchWait(seconds))


def _keep(wait: BatchWait) -> _Timeout:
    return _Timeout(wait)


def _now(timeout: _Timeout) -> float:
    return float(timeout.wait.seconds())


# mode types want_seconds for its own argument types only; these two are ours
cast(Any, want_seconds).register(BatchWait, _keep)
cast(Any, want_seconds).register(_Timeout, _now)
