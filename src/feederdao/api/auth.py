"""Roles from API keys (``Authorization: Bearer fdk_…``): operator, participant, auditor.

The dependencies are ``async`` and run on the event loop: the key lookup is one indexed query,
cheaper than a hop through the thread pool (and its GIL hand-over) on every request."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Annotated

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from feederdao.workflows.market import MarketService
from feederdao.workflows.market.keys import Caller
from feederdao.workflows.operator import Operator as MarketOperator

bearer = HTTPBearer(auto_error=False, description="An API key issued by the operator")


async def service(request: Request) -> MarketService:
    svc: MarketService = request.app.state.service
    return svc


async def optional_caller(
    request: Request,
    credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(bearer)],
) -> Caller | None:
    if credentials is None:
        return None
    svc: MarketService = request.app.state.service
    found = svc.keys.identify(credentials.credentials)
    if found is None:
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
