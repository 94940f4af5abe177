"""``/events``: what changed in the market, pushed as Server-Sent Events.

The operator loop and the API publish to the operator's :class:`~feederdao.workflows.events.
EventHub`; each stream gets ``interval`` (opened, gate closed), ``step`` (a step of the loop done,
failed or escalated) and ``dispatch`` (held or released) events as JSON, a comment every
``KEEPALIVE_S`` so proxies keep it open, and ``resync`` when it fell behind. A browser's
``EventSource`` reconnects by itself after ``retry`` milliseconds, sending the last id it saw
(``Last-Event-ID``); the hub keeps no history (and a restarted service numbers its events
afresh), so such a stream starts with ``resync``: reload, something may have been missed.
Events are public.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from fastapi import APIRouter, Request
from fastapi.responses import StreamingResponse

from feederdao.api.auth import Loop
from feederdao.workflows.events import RESYNC

router = APIRouter(tags=["system"])

KEEPALIVE_S = 15.0
RETRY_MS = 2000


# kept out of the OpenAPI schema: a stream that never ends is no operation for a client
# generator or a fuzzer (docs/console.md describes it)
@router.get("/events", response_class=StreamingResponse, include_in_schema=False)
async def events(request: Request, op: Loop) -> StreamingResponse:
    """A stream of market events (``text/event-stream``)."""

    coming_back = request.headers.get("last-event-id") is not None

    async def stream() -> AsyncIterator[str]:
        with op.events.subscribe() as sub:
            yield f"retry: {RETRY_MS}\n: connected\n\n"
            if coming_back:
                yield f"event: {RESYNC}\ndata: {{}}\n\n"
            while not await request.is_disconnected():
                try:
                    event = await sub.next(KEEPALIVE_S)
                except EOFError:  # the service is stopping
                    return
                if event is None:
                    yield ": keepalive\n\n"
                    continue
                data = json.dumps(event.data, separators=(",", ":"))
                yield f"id: {event.id}\nevent: {event.kind}\ndata: {data}\n\n"

    return StreamingResponse(
        stream(),
        media_type="text/event-stream",
        headers={"cache-control": "no-cache", "x-accel-buffering": "no"},
    )
