"""A per-client limit on wrong API keys: after ``max_failures`` within ``window_s`` a client's
keyed requests answer 429 (with ``Retry-After``) until its oldest failure leaves the window.

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


class FailureLimiter:
    def __init__(
        self,
        max_failures: int,
        window_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 10_000,
    ) -> None:
        self.max_failures = max_failures
        self.window_s = window_s
        self.clock = clock
        self.max_clients = max_clients
        self._failures: OrderedDict[str, deque[float]] = OrderedDict()
        self._lock = threading.Lock()

    def _recent(self, client: str, now: float) -> deque[float] | None:
        times = self._failures.get(client)
        if times is None:
            return None
        while times and times[0] <= now - self.window_s:
            times.popleft()
        if not times:
            del self._failures[client]
            return None
        return times

    def retry_after(self, client: str) -> int | None:
        """Seconds until ``client`` may try a key again (None: it may now)."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now)
            if times is None or len(times) < self.max_failures:
                return None
            return max(1, math.ceil(times[0] + self.window_s - now))

    def failed(self, client: str) -> None:
        """Count a wrong key from ``client``."""
        with self._lock:
            now = self.clock()
            times = self._recent(client, now) or deque()
            times.append(now)
            self._failures[client] = times
            self._failures.move_to_end(client)
            while len(self._failures) > self.max_clients:
                self._failures.popitem(last=False)
