"""A size-capped map for per-call and per-agent adapter state."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from typing import Generic, TypeVar

K = TypeVar("K")
V = TypeVar("V")

DEFAULT_MAX_OPEN = 100_000
"""Default cap on open calls (or agents) one mapper remembers."""


class BoundedMap(Generic[K, V]):
    """Remember at most `capacity` entries, evicting the least recently touched.

    A call whose end we never see (a log cut mid-call) must not pin memory forever, so
    adapters keep their state here; `evicted` counts what was dropped to stay bounded.
    """

    def __init__(self, capacity: int = DEFAULT_MAX_OPEN) -> None:
        if capacity < 1:
            raise ValueError("capacity must be at least 1")
        self.capacity = capacity
        self.evicted = 0
        self._entries: OrderedDict[K, V] = OrderedDict()

    def __len__(self) -> int:
        return len(self._entries)

    def __contains__(self, key: object) -> bool:
        return key in self._entries

    def get(self, key: K) -> V | None:
        """Return the entry for key (marking it recently used), or None."""
        if key not in self._entries:
            return None
        self._entries.move_to_end(key)
        return self._entries[key]

    def put(self, key: K, value: V) -> None:
        """Store an entry, evicting the oldest one past the capacity."""
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self.capacity:
            self._entries.popitem(last=False)
            self.evicted += 1

    def setdefault(self, key: K, factory: Callable[[], V]) -> V:
        """Return the entry for key, creating it with factory when missing."""
        found = self.get(key)
        if found is None:
            found = factory()
            self.put(key, found)
        return found

    def pop(self, key: K) -> V | None:
        """Forget an entry (a call that ended) and return it."""
        return self._entries.pop(key, None)
