"""Roles from API keys (``Authorization: Bearer fdk_…``): operator, participant, auditor.

The key lookup is a store call, so the dependencies are plain functions that FastAPI runs in its
thread pool: a locked database never stalls the event loop. A client that sends too many wrong
keys is answered 429 for a while (:mod:`feederdao.api.ratelimit`).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from feederdao.api.ratelimit import ClientLimiter
from feederdao.workflows.market import MarketService
from feederdao.workflows.market.keys import Caller
from feederdao.workflows.operator import Operator as MarketOperator

bearer = HTTPBearer(auto_error=False, description="An API key issued by the operator")


async def service(request: Request) -> MarketService:
    svc: MarketService = request.app.state.service
    return svc


def client_of(request: Request) -> str:
    return request.client.host if request.client is not None else "unknown"


def refuse_if_limited(limiter: ClientLimiter, request: Request, what: str) -> str:
    """The request's client, or 429 (with ``Retry-After``) while ``limiter`` holds it back
    after too many ``what`` (e.g. "wrong API keys")."""
    client = client_of(request)
    wait = limiter.retry_after(client)
    if wait is not None:
        raise HTTPException(
            429,
            f"too many {what} from this client; retry in {wait} s",
            {"Retry-After": str(wait)},
        )
    return client


def optional_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller | None:
    if credentials is None:
        return None
    limiter: ClientLimiter = request.app.state.auth_limiter
    client = refuse_if_limited(limiter, request, "wrong API keys")
    svc: MarketService = request.app.state.service
    found = svc.keys.identify(credentials.credentials)
    if found is None:
        limiter.count(client)
        raise HTTPException(401, "unknown or revoked API key", {"WWW-Authenticate": "Bearer"})
    return found


def require(*roles: str) -> Callable[..., Awaitable[Caller]]:
    async def dependency(caller: Annotated[Caller | None, Depends(optional_caller)]) -> Caller:
        if caller is None:
            raise HTTPException(401, "an API key is required", {"WWW-Authenticate": "Bearer"})
        if caller.role not in roles:
            raise HTTPException(403, f"this needs the {' or '.join(roles)} role")
        return caller

    return dependency


Operator = Annotated[Caller, Depends(require("operator"))]
Reader = Annotated[Caller, Depends(require("operator", "auditor"))]
Anyone = Annotated[Caller, Depends(require("operator", "auditor", "participant"))]
Participant = Annotated[Caller, Depends(require("participant"))]
MaybeCaller = Annotated[Caller | None, Depends(optional_caller)]
Service = Annotated[MarketService, Depends(service)]


async def operator_loop(request: Request) -> MarketOperator:
    op: MarketOperator = request.app.state.operator
    return op


Loop = Annotated[MarketOperator, Depends(operator_loop)]
