"""Blocking work run one job at a time on a daemon thread, awaited from asyncio.

The operator's clearings run here: they queue instead of interleaving, and because the thread is
a daemon, stopping the service never waits for a solve to finish (a clearing commits its result
in one transaction at its end, so one cut short leaves the interval gate-closed, to be cleared
again after the restart).
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_Job = tuple[Callable[[], Any], asyncio.AbstractEventLoop, "asyncio.Future[Any]"]


class SerialWorker:
    def __init__(self, name: str) -> None:
        self.name = name
        self._jobs: queue.SimpleQueue[_Job] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()
        self.busy_since: float | None = None  # time.monotonic() of the running job's start

    async def run(self, fn: Callable[[], T]) -> T:
        """Run ``fn`` after the jobs queued before it; its result or its error."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._work, name=self.name, daemon=True)
                self._thread.start()
        self._jobs.put((fn, loop, future))
        return await future

    def _work(self) -> None:
        import time

        while True:  # a daemon: it ends with the process, idle or not
            fn, loop, future = self._jobs.get()
            if future.cancelled():
                continue
            self.busy_since = time.monotonic()
            try:
                value, error = fn(), None
            except BaseException as exc:  # handed to the awaiting coroutine
                value, error = None, exc
            finally:
                self.busy_since = None
            with contextlib.suppress(RuntimeError):  # the loop closed: the service stopped
                loop.call_soon_threadsafe(_settle, future, value, error)


def _settle(future: asyncio.Future[Any], value: Any, error: BaseException | None) -> None:
    if future.cancelled():
        return
    if error is not None:
        future.set_exception(error)
    else:
        future.set_result(value)
