"""The FastAPI application factory."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response

from feederdao import __version__
from feederdao.api import errors
from feederdao.api.routers import bids, governance, intervals, participants, system
from feederdao.workflows.operator import Operator

DESCRIPTION = """
The local energy market of one feeder. Participants register with an Ethereum address, the
operator approves their bus and devices; they bid with an API key or with EIP-712 signatures.
Each market interval is cleared as an optimal power flow with the grid parameters voted on chain;
prices (DLMPs), dispatch and settlement are published here and over OPC UA, and each result's
hash is anchored in the SettlementRegistry contract.

Roles: **operator** (runs the market), **participant** (its own bids and settlement),
**auditor** (reads everything). Authenticate with `Authorization: Bearer <api key>`.
Errors are `{"error": message, "field": name}`.
"""


def create_app(operator: Operator) -> FastAPI:
    app = FastAPI(title="feederdao market API", version=__version__, description=DESCRIPTION)
    app.state.service = operator.service
    app.state.operator = operator
    app.state.metrics = operator.metrics
    errors.install(app)
    for r in (system, participants, bids, intervals, governance):
        app.include_router(r.router)
    histogram = operator.metrics.requests

    @app.middleware("http")
    async def observe(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        t = time.perf_counter()
        response = await call_next(request)
        route = request.scope.get("route")
        path = getattr(route, "path", "unmatched")
        histogram.labels(request.method, path, str(response.status_code)).observe(
            time.perf_counter() - t
        )
        return response

    return app
