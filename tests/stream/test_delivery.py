"""Prompt delivery (stream/delivery.py): Faust's fetch loop without four tasks a message."""

from __future__ import annotations

import asyncio
import gc
import warnings
from collections import defaultdict
from types import SimpleNamespace
from typing import Any

import pytest
from faust.types import TP
from mode import Service

from stream.delivery import deliver_promptly


class _Consumer(Service):  # type: ignore[misc]
    """A mode service with a consumer's flow event: what ``deliver_promptly`` needs."""

    def __init__(self) -> None:
        super().__init__()
        self.suspend_flow = asyncio.Event()


def _counting_tasks(loop: asyncio.AbstractEventLoop) -> list[Any]:
    made: list[Any] = []

    def factory(loop: asyncio.AbstractEventLoop, coro: Any, **kwargs: Any) -> asyncio.Task[Any]:
        made.append(coro)
        return asyncio.Task(coro, loop=loop, **kwargs)

    loop.set_task_factory(factory)
    return made


def test_a_delivery_that_never_waits_makes_no_task_and_leaves_no_coroutine_unawaited() -> None:
    async def main() -> tuple[Any, list[Any], Any]:
        consumer = _Consumer()
        deliver_promptly(consumer)
        made = _counting_tasks(asyncio.get_running_loop())

        async def delivery() -> str:
            return "put on the queue"

        coro = delivery()
        results = await consumer.wait_first(coro, consumer.suspend_flow.wait())
        return results, list(made), coro

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results, made, coro = asyncio.run(main())
        gc.collect()
    assert made == []
    assert results.done == [coro] and results.results == ["put on the queue"] and not results.stopped
    assert not [w for w in caught if "never awaited" in str(w.message)]


def test_a_delivery_that_waits_goes_on_from_where_it_stood_inside_mode_s_wait_first() -> None:
    steps: list[str] = []

    async def main() -> Any:
        consumer = _Consumer()
        deliver_promptly(consumer)
        room = asyncio.get_running_loop().create_future()

        async def delivery() -> str:
            steps.append("decoded")
            value = await room  # a full stream buffer
            steps.append(f"put after {value}")
            return "done"

        made = _counting_tasks(asyncio.get_running_loop())
        waiting = asyncio.ensure_future(consumer.wait_first(delivery(), consumer.suspend_flow.wait()))
        await asyncio.sleep(0.01)
        assert steps == ["decoded"] and not waiting.done()
        room.set_result("room")
        results = await waiting
        return results, made

    results, made = asyncio.run(main())
    assert steps == ["decoded", "put after room"], "the delivery ran once, in order"
    assert results.results[0] == "done" and not results.stopped
    assert len(made) > 1, "the waiting delivery went through mode's wait_first (its tasks)"


def test_a_waiting_delivery_is_cancelled_once_the_flow_is_suspended() -> None:
    steps: list[str] = []

    async def main() -> Any:
        consumer = _Consumer()
        deliver_promptly(consumer)
        never = asyncio.get_running_loop().create_future()

        async def delivery() -> None:
            try:
                await never  # blocked on flow control during a rebalance
            except asyncio.CancelledError:
                steps.append("cancelled")
                raise

        flow = consumer.suspend_flow.wait()
        waiting = asyncio.ensure_future(consumer.wait_first(delivery(), flow))
        await asyncio.sleep(0.01)
        consumer.suspend_flow.set()  # Consumer.stop_flow()
        results = await asyncio.wait_for(waiting, 1.0)
        await asyncio.sleep(0)
        return results, flow

    results, flow = asyncio.run(main())
    assert steps == ["cancelled"]
    assert results.done == [flow], "the flow event won; the delivery did not"


def test_a_delivery_s_error_reaches_the_fetch_loop_whether_or_not_it_waited() -> None:
    async def main(wait_first: bool) -> None:
        consumer = _Consumer()
        deliver_promptly(consumer)

        async def delivery() -> None:
            if wait_first:
                await asyncio.sleep(0.001)
            raise ValueError("broken")

        await consumer.wait_first(delivery(), consumer.suspend_flow.wait())

    for waits in (False, True):
        with pytest.raises(ValueError, match="broken"):
            asyncio.run(main(waits))


def test_while_the_flow_is_suspended_every_delivery_goes_through_mode_s_wait_first() -> None:
    async def main() -> tuple[list[Any], Any]:
        consumer = _Consumer()
        deliver_promptly(consumer)
        consumer.suspend_flow.set()
        made = _counting_tasks(asyncio.get_running_loop())
        ran: list[str] = []

        async def delivery() -> None:
            ran.append("ran")

        results = await consumer.wait_first(delivery(), consumer.suspend_flow.wait())
        return list(made), results

    made, results = asyncio.run(main())
    assert len(made) >= 2, "mode's wait_first, one task a coroutine"
    assert not results.stopped


def test_faust_s_fetch_loop_hands_every_message_over_in_order_with_prompt_delivery() -> None:
    from faust.transport.consumer import Consumer

    tp = TP("events", 0)
    handed: list[int] = []
    fetches = [[0, 1, 2], [3, 4]]

    async def main() -> None:
        service = _Consumer()
        deliver_promptly(service)
        stopped = asyncio.Event()

        async def getmany(timeout: float) -> Any:
            if not fetches:
                stopped.set()
                return
            for offset in fetches.pop(0):
                yield tp, SimpleNamespace(offset=offset, topic=tp.topic, key=None, value=None)

        async def callback(message: Any) -> None:
            if message.offset == 3:
                await asyncio.sleep(0.001)  # one that waits
            handed.append(message.offset)

        async def nothing(*_: Any) -> None:
            pass

        consumer = SimpleNamespace(
            callback=callback, getmany=getmany, _stopped=stopped, _read_offset=defaultdict(lambda: None),
            consumer_stopped_errors=(), should_stop=False,
            diag=SimpleNamespace(set_flag=lambda flag: None, unset_flag=lambda flag: None),
            _commit_every=None, app=SimpleNamespace(topics=SimpleNamespace(acks_enabled_for=lambda topic: True)),
            sleep=nothing, _add_gap=nothing, wait_first=service.wait_first, suspend_flow=service.suspend_flow,
            transport=SimpleNamespace(app=SimpleNamespace(should_stop=False)),
            log=SimpleNamespace(dev=lambda *a: None, exception=lambda *a: None),
        )
        await Consumer._drain_messages(consumer, SimpleNamespace(_stopped=asyncio.Event()))

    asyncio.run(main())
    assert handed == [0, 1, 2, 3, 4]


def test_the_worker_app_s_consumer_delivers_promptly_unless_turned_off() -> None:
    from stream.app import create_app
    from stream.settings import Settings

    default = create_app(Settings(broker="kafka://127.0.0.1:1"))
    assert default.consumer._ccpulse_prompt_delivery is True
    off = create_app(Settings(broker="kafka://127.0.0.1:1", app_id="other", prompt_delivery=False))
    assert not getattr(off.consumer, "_ccpulse_prompt_delivery", False)
