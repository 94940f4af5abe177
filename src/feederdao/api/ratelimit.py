"""A per-client limit on events: wrong API keys and refused sign-ins, refused batches of
readings, sign-in nonces handed out. After ``max_events`` within ``window_s`` the client's
requests of that kind answer 429 (with ``Retry-After``) until its oldest event leaves the window.

Clients are told apart by their address as the server sees it (behind a reverse proxy, that is
the proxy's: put the limit there too). At most ``max_clients`` are tracked; the least recently
failing are forgotten first.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable


class ClientLimiter:
    def __init__(
        self,
        max_events: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_events = max_events
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._events: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._events.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._events[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try again (None: it may now)."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if times is None or len(times) < self.max_events:
                return None
            return max(1, math.ceil(times[0] + self.window_s - now))

    def count(self, client: str) -> None:
        """Count one event of ``client``'s."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now) or deque()
            times.append(now)
            self._events[client] = times
            self._events.move_to_end(client)
            while len(self._events) > self.max_clients:
                self._events.popitem(last=False)
