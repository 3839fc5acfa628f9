"""The worker's table manager starts without Faust's one-second sleep (stream/app.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from faust.tables import TableManager

from stream.app import PromptTableManager, create_app
from stream.settings import Settings


def test_the_worker_app_uses_the_prompt_table_manager() -> None:
    app = create_app(Settings(broker="kafka://127.0.0.1:1"))
    assert app.conf.TableManager is PromptTableManager
    assert isinstance(app.tables, PromptTableManager)


def test_its_start_registers_the_changelogs_and_starts_recovery_without_sleeping() -> None:
    calls: list[Any] = []

    class Recovery:
        async def start(self) -> None:
            calls.append("recovery")

    async def update_channels() -> None:
        calls.append("channels")

    async def sleep(seconds: float, *args: Any, **kwargs: Any) -> None:
        calls.append(("sleep", seconds))

    manager = PromptTableManager.__new__(PromptTableManager)
    manager.__dict__.update(_update_channels=update_channels, sleep=sleep, _recovery=Recovery())
    type(manager).should_stop = False  # type: ignore[misc]
    try:
        asyncio.run(manager.on_start())
    finally:
        del type(manager).should_stop
    assert calls == ["channels", "recovery"]  # Faust's own sleeps 1 s first


def test_faust_still_sleeps_where_this_one_does_not() -> None:
    """If a Faust upgrade drops the sleep, this override can go."""
    assert "sleep" in TableManager.on_start.__code__.co_names
