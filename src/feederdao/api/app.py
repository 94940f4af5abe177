"""The FastAPI application factory."""

from __future__ import annotations

import time

from fastapi import FastAPI
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from feederdao import __version__
from feederdao.api import docs, errors
from feederdao.api.limits import BodyLimits, SecurityHeaders, sane_recursion_limit
from feederdao.api.ratelimit import ClientLimiter
from feederdao.api.routers import (
    audit,
    bids,
    console,
    dispatch,
    events,
    governance,
    intervals,
    keys,
    login,
    participants,
    system,
)
from feederdao.api.routers import readings as metering_readings
from feederdao.workflows.operator import Operator

DESCRIPTION = """
The local energy market of one feeder. Participants register with an Ethereum address, the
operator approves their bus and devices; they bid with an API key or with EIP-712 signatures.
Each market interval is cleared as an optimal power flow with the grid parameters voted on chain;
prices (DLMPs), dispatch and settlement are published here and over OPC UA, and each result's
hash is anchored in the SettlementRegistry contract.

Roles: **operator** (runs the market), **participant** (its own bids and settlement),
**auditor** (reads everything). Authenticate with `Authorization: Bearer <api key>`.
Errors are `{"error": message, "field": name}`. Request bodies are limited in size and JSON
nesting depth; too many wrong keys, or refused batches of readings, from one client answer 429;
a busy or read-only store answers 503 with `Retry-After`.
"""


def create_app(operator: Operator) -> FastAPI:
    sane_recursion_limit()  # importing py_ecc (via the embedded chain) raises it to 100,000
    settings = operator.service.settings
    app = FastAPI(
        title="feederdao market API",
        version=__version__,
        description=DESCRIPTION,
        docs_url=None,  # served from the package by feederdao.api.docs (no CDN)
        redoc_url=None,
    )
    app.state.service = operator.service
    app.state.operator = operator
    app.state.metrics = operator.metrics
    app.state.auth_limiter = ClientLimiter(settings.auth_failures_per_minute, 60.0)
    app.state.readings_limiter = ClientLimiter(settings.refused_readings_per_minute, 60.0)
    app.state.nonce_limiter = ClientLimiter(settings.login_nonces_per_minute, 60.0)
    app.state.metering = operator.metering
    errors.install(app)
    for r in (system, participants, keys, bids, intervals, governance):
        app.include_router(r.router)
    app.include_router(metering_readings.router)
    app.include_router(docs.router)
    for r in (console, login, events, dispatch, audit):  # the web console and what it needs
        app.include_router(r.router)
    app.state.price_grids = console.GridCache()
    app.add_middleware(
        BodyLimits, max_bytes=settings.max_body_bytes, max_depth=settings.max_json_depth
    )
    app.add_middleware(RequestMetrics, histogram=operator.metrics.requests)
    app.add_middleware(SecurityHeaders)
    return app


async def warm_up(app: ASGIApp) -> None:
    """Answer one request in process before serving: FastAPI builds each route's validation
    state when the first request comes (0.5 to 1 s for this API on a 2-core machine), which
    would otherwise be paid by the first viewer of a freshly started service."""
    scope: Scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": "/console/icon.svg",
        "raw_path": b"/console/icon.svg",
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"localhost")],
        "client": ("127.0.0.1", 0),
        "server": ("127.0.0.1", 0),
    }

    async def receive() -> Message:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(_: Message) -> None:
        return None

    await app(scope, receive, send)


class RequestMetrics:
    """Request latency by method, route template and status (a plain ASGI middleware)."""

    def __init__(self, app: ASGIApp, histogram: Histogram) -> None:
        self.app = app
        self.histogram = histogram

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        status = 500

        async def observed_send(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, observed_send)
        finally:
            path = getattr(scope.get("route"), "path", "unmatched")
            self.histogram.labels(scope["method"], path, str(status)).observe(
                time.perf_counter() - start
            )
