"""Market events fanned out to live subscribers (the console's Server-Sent Events stream).

The operator loop and the API publish what changed (an interval opened, its gate closed, a step
done, failed or escalated, dispatch held or released) with :meth:`EventHub.publish`, from any
thread. Each subscriber has a bounded queue on its own event loop: a subscriber that does not
keep up loses events and is told to reload (``resync``) instead of holding memory or slowing
the publisher. Events carry only what is public (ids, states, step names and reason codes).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

#: events a subscriber may hold before it is told to resync
QUEUE_SIZE = 256


@dataclass(frozen=True)
class Event:
    id: int
    kind: str
    data: dict[str, Any]


RESYNC = "resync"


@dataclass(eq=False)
class Subscription:
    loop: asyncio.AbstractEventLoop
    queue: asyncio.Queue[Event | None] = field(default_factory=lambda: asyncio.Queue(QUEUE_SIZE))
    lost: bool = False

    def _put(self, event: Event | None) -> None:
        try:
            self.queue.put_nowait(event)
        except asyncio.QueueFull:
            self.lost = True

    async def next(self, timeout_s: float) -> Event | None:
        """The next event; an ``Event`` of kind ``resync`` if some were lost; None when nothing
        came within ``timeout_s``. Raises ``EOFError`` once the hub is closed."""
        if self.lost:
            self.lost = False
            while not self.queue.empty():
                if self.queue.get_nowait() is None:
                    raise EOFError
            return Event(0, RESYNC, {})
        try:
            got = await asyncio.wait_for(self.queue.get(), timeout_s)
        except TimeoutError:
            return None
        if got is None:
            raise EOFError
        return got


class EventHub:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._subscribers: set[Subscription] = set()
        self._ids = itertools.count(1)
        self._closed = False

    @property
    def subscribers(self) -> int:
        with self._lock:
            return len(self._subscribers)

    def publish(self, kind: str, **data: Any) -> None:
        """Send an event to every subscriber (safe from any thread; never blocks)."""
        with self._lock:
            event = Event(next(self._ids), kind, data)
            subs = list(self._subscribers)
        for sub in subs:
            with contextlib.suppress(RuntimeError):  # its loop is closed
                sub.loop.call_soon_threadsafe(sub._put, event)

    @contextlib.contextmanager
    def subscribe(self) -> Iterator[Subscription]:
        """A subscription on the running event loop, dropped on exit."""
        sub = Subscription(asyncio.get_running_loop())
        with self._lock:
            if self._closed:
                sub._put(None)
            self._subscribers.add(sub)
        try:
            yield sub
        finally:
            with self._lock:
                self._subscribers.discard(sub)

    def close(self) -> None:
        """The service is stopping: every subscription ends (its stream closes)."""
        with self._lock:
            self._closed = True
            subs = list(self._subscribers)
        for sub in subs:
            with contextlib.suppress(RuntimeError):
                sub.loop.call_soon_threadsafe(sub._put, None)
