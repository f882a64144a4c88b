"""Latest frame wins: the one-item slot between a producer that must never wait (a probe, a browser, a network
client) and a consumer that may be slower (the model). ``put`` replaces an item nobody took yet and counts it
as dropped; ``take`` empties the slot. The slot itself holds no lock: each user wraps it in its own
concurrency primitive (a ``threading.Condition`` in :class:`~usedge.stream.sources.PushSource`, an
``asyncio.Event`` in the server), so the rule is written once."""
from __future__ import annotations

from typing import Generic, TypeVar

T = TypeVar("T")


class LatestSlot(Generic[T]):
    """At most one item; the newest wins."""

    def __init__(self) -> None:
        self._item: T | None = None
        self.dropped = 0          # items replaced before anyone took them

    def put(self, item: T) -> bool:
        """Store ``item``; True when it replaced one that was never taken."""
        replaced = self._item is not None
        self.dropped += replaced
        self._item = item
        return replaced

    def take(self) -> T | None:
        """The newest item (None when empty); the slot is empty afterwards."""
        item, self._item = self._item, None
        return item

    @property
    def empty(self) -> bool:
        return self._item is None


__all__ = ["LatestSlot"]
