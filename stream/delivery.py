"""Hand fetched messages to Faust's conductor without four tasks a message.

Faust's fetch loop (``Consumer._drain_messages``) hands every message over as
``await self.wait_first(callback(message), self.suspend_flow.wait())``, so that a delivery
blocked on a full stream buffer, or on flow control during a rebalance, gives up once the
consumer's flow is suspended. mode's ``Service.wait_first`` wraps each of the two, and
the service's stopped and crashed events, in a task, waits for the first of the four with
``asyncio.wait`` and cancels the other three: seven tasks' steps and a waiter for what is
almost always a coroutine that finishes without waiting at all (it decodes the message and
puts it on the stream's queue). On the benchmarks' throughput topic that was about a tenth
of a bare Faust agent's time (py-spy, the framework floor of bench/floor.py).

``deliver_promptly(consumer)`` gives the consumer a ``wait_first`` that first runs the
delivery itself up to its first wait. Finished there (the common case): its result is
returned as ``wait_first`` would have, and no task is made. Waiting: the delivery goes on,
from where it stands, inside mode's ``wait_first`` with the flow event, exactly as before;
so does every other call, and every call made while the flow is suspended or the consumer is
stopping.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Coroutine, Generator
from typing import Any

from mode.services import WaitResults


class _Started:
    """The rest of a coroutine already run up to its first wait (``first``: what it yielded).

    Awaiting it yields that to the task, and then goes on sending the coroutine what the
    task sends (a future's result) or throwing what it throws (a cancellation), as
    ``await coro`` would have done from the start.
    """

    def __init__(self, coro: Coroutine[Any, Any, Any], first: Any) -> None:
        self.coro = coro
        self.first = first

    def __await__(self) -> Generator[Any, Any, Any]:
        coro, value = self.coro, self.first
        while True:
            try:
                sent = yield value
            except GeneratorExit:
                coro.close()
                raise
            except BaseException as exc:  # noqa: B036  # a cancellation goes to the coroutine
                try:
                    value = coro.throw(exc)
                except StopIteration as stop:
                    return stop.value
            else:
                try:
                    value = coro.send(sent)
                except StopIteration as stop:
                    return stop.value


async def _resume(started: _Started) -> Any:
    return await started


def deliver_promptly(consumer: Any) -> None:
    """Give ``consumer`` (a Faust consumer) the ``wait_first`` described above, once."""
    if getattr(consumer, "_ccpulse_prompt_delivery", False):
        return
    original: Callable[..., Awaitable[WaitResults]] = consumer.wait_first

    async def wait_first(*coros: Any, timeout: Any = None) -> WaitResults:
        if (
            timeout is not None
            or len(coros) != 2
            or not asyncio.iscoroutine(coros[0])
            or consumer.suspend_flow.is_set()
            or consumer._stopped.is_set()
            or consumer._crashed.is_set()
        ):
            return await original(*coros, timeout=timeout)
        delivery, flow = coros
        try:
            first = delivery.send(None)
        except StopIteration as done:
            _close(flow)
            return WaitResults([delivery], [done.value], False)
        except BaseException:
            _close(flow)
            raise
        return await original(_resume(_Started(delivery, first)), flow)

    consumer.wait_first = wait_first
    consumer._ccpulse_prompt_delivery = True


def prompt_delivery(app: Any) -> None:
    """Apply ``deliver_promptly`` to the app's consumer from the moment it is made."""
    from stream.agents import on_new_consumer  # the worker's Faust plumbing

    on_new_consumer(app, deliver_promptly)


def _close(awaitable: Any) -> None:
    """Close a coroutine that will never run (no "never awaited" warning)."""
    close = getattr(awaitable, "close", None)
    if close is not None:
        close()
