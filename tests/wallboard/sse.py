"""Read Server-Sent Events from an aiohttp client response, one event at a time."""

from __future__ import annotations

import asyncio
from typing import Any

import orjson
from aiohttp import ClientResponse


class EventReader:
    """Parse ``event:``/``data:`` blocks; ``retry:`` lines and comments are skipped."""

    def __init__(self, response: ClientResponse) -> None:
        self.response = response

    async def next(self, timeout: float = 3.0) -> tuple[str, dict[str, Any]]:
        """Return the next event's name and JSON data."""
        async with asyncio.timeout(timeout):
            name, data = "message", []
            while True:
                raw = await self.response.content.readline()
                if not raw:
                    raise EOFError("the event stream ended")
                line = raw.decode().rstrip("\n")
                if not line:
                    if data:
                        return name, orjson.loads("\n".join(data))
                    continue
                field, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if field == "event":
                    name = value
                elif field == "data":
                    data.append(value)

    async def until(self, name: str, timeout: float = 3.0) -> dict[str, Any]:
        """Skip events until one called ``name``; return its data."""
        async with asyncio.timeout(timeout):
            while True:
                event, data = await self.next(timeout)
                if event == name:
                    return data

    async def next_news(self, timeout: float = 3.0) -> tuple[str, dict[str, Any]]:
        """Return the next event that is not a heartbeat."""
        async with asyncio.timeout(timeout):
            while True:
                event, data = await self.next(timeout)
                if event != "heartbeat":
                    return event, data
