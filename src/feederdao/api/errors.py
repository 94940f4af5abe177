"""Every error leaves the API as JSON ``{"error": message, "field": name-or-null}``."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from feederdao.errors import FeederDaoError, FieldError, PowerFlowError, SolverError
from feederdao.governance.errors import ChainUnavailableError
from feederdao.governance.signing import SignatureError
from feederdao.store.errors import ConflictError, NotFoundError, StoreError
from feederdao.workflows.errors import (
    InsufficientCollateralError,
    NotApprovedError,
    ServiceStoppingError,
    SignerMismatchError,
    SignInBusyError,
    SignInRefusedError,
)

log = logging.getLogger("feederdao.api")


def _body(message: str, field: str | None = None, **extra: Any) -> dict[str, Any]:
    return {"error": message, "field": field, **extra}


def _loc(loc: Any) -> str:
    parts = [str(p) for p in loc if p not in ("body",)]
    out = ""
    for p in parts:
        out += f"[{p}]" if p.isdigit() else (f".{p}" if out else p)
    return out or "body"


def status_of(exc: Exception) -> int:
    if isinstance(exc, FieldError | SignatureError):
        return 422
    if isinstance(exc, SignerMismatchError | SignInRefusedError):
        return 401
    if isinstance(exc, InsufficientCollateralError):
        return 402
    if isinstance(exc, NotApprovedError):
        return 403
    if isinstance(exc, NotFoundError):
        return 404
    if isinstance(exc, ConflictError):
        return 409
    if isinstance(
        exc,
        SolverError
        | PowerFlowError
        | StoreError
        | ChainUnavailableError
        | ServiceStoppingError
        | SignInBusyError,
    ):
        return 503
    return 400


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid(_: Request, exc: RequestValidationError) -> JSONResponse:
        errors = exc.errors()
        first = errors[0] if errors else {"loc": ("body",), "msg": "invalid request"}
        field = _loc(first.get("loc", ()))
        message = f"{field}: {first.get('msg', 'invalid')}"
        detail = [{"field": _loc(e.get("loc", ())), "message": e.get("msg", "")} for e in errors]
        return JSONResponse(_body(message, field, problems=detail), status_code=422)

    @app.exception_handler(FeederDaoError)
    async def domain(request: Request, exc: FeederDaoError) -> JSONResponse:
        status = status_of(exc)
        retry = getattr(exc, "retry_after_s", None)
        headers = {"Retry-After": str(retry)} if status == 503 and retry else None
        if status == 503:
            log.warning("%s %s answered 503: %s", request.method, request.url.path, exc)
        return JSONResponse(_body(str(exc), getattr(exc, "field", None)), status, headers)

    @app.exception_handler(SignatureError)
    async def signature(_: Request, exc: SignatureError) -> JSONResponse:
        return JSONResponse(_body(str(exc), exc.field or "signature"), 422)

    @app.exception_handler(StarletteHTTPException)
    async def http(_: Request, exc: StarletteHTTPException) -> JSONResponse:
        return JSONResponse(
            _body(str(exc.detail)), exc.status_code, headers=getattr(exc, "headers", None)
        )

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unexpected error on %s %s", request.method, request.url.path)
        return JSONResponse(_body("internal error; the operator has been told"), 500)
