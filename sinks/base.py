"""The one protocol every sink implements."""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:  # at runtime sinks stay free of stream's Faust imports
    from stream.snapshot import Snapshot


class Sink(Protocol):
    """Publish snapshots somewhere; own the client that gets them there."""

    name: str  # short label for logs and the ``sink`` label of the publish metrics

    async def publish(self, snapshot: Snapshot) -> None:
        """Publish one snapshot; must not raise for an unreachable backend."""
        ...

    async def close(self) -> None:
        """Release the sink's client."""
        ...
