"""Plain ASGI middlewares that guard the API before FastAPI sees a request.

* :class:`BodyLimits` reads a request's body up to ``max_bytes`` (a larger ``Content-Length`` is
  refused before anything is read: 413) and refuses JSON nested deeper than ``max_depth`` (422)
  before any parser runs; it also keeps the interpreter's recursion limit sane, whatever a
  dependency set it to (py_ecc raises it to 100,000, deep enough for a nested body to overflow
  the C stack).
* :class:`SecurityHeaders` adds the usual response headers (no sniffing, no framing, no referrer,
  a strict content security policy; ``no-store`` on answers to authenticated requests).
"""

from __future__ import annotations

import json
import re
import sys

from starlette.types import ASGIApp, Message, Receive, Scope, Send

#: the recursion limit the service runs with (CPython's default is 1000)
RECURSION_LIMIT = 3000

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"')
_NOT_BRACKET = re.compile(rb"[^\[\]{}]+")


def sane_recursion_limit(limit: int = RECURSION_LIMIT) -> None:
    """Lower the interpreter's recursion limit to ``limit`` if something raised it."""
    if sys.getrecursionlimit() > limit:
        sys.setrecursionlimit(limit)


def nesting_depth_exceeds(body: bytes, limit: int) -> bool:
    """Whether the JSON text ``body`` nests arrays and objects deeper than ``limit`` (brackets
    inside strings do not count). Runs in linear time and does not recurse."""
    if body.count(b"[") + body.count(b"{") <= limit:
        return False
    brackets = _NOT_BRACKET.sub(b"", _STRING.sub(b"", body))
    depth = 0
    for ch in brackets:
        if ch in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


async def _refuse(send: Send, status: int, message: str) -> None:
    body = json.dumps({"error": message, "field": "body"}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                (b"connection", b"close"),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class BodyLimits:
    def __init__(self, app: ASGIApp, max_bytes: int, max_depth: int) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_depth = max_depth

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        sane_recursion_limit()
        too_big = f"the request body exceeds {self.max_bytes} bytes"
        for name, value in scope["headers"]:
            if name == b"content-length":
                if not value.isdigit():
                    await _refuse(send, 400, "Content-Length is not a number")
                    return
                if int(value) > self.max_bytes:
                    await _refuse(send, 413, too_big)
                    return
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                await _refuse(send, 413, too_big)
                return
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        if nesting_depth_exceeds(body, self.max_depth):
            await _refuse(send, 422, f"the request body nests deeper than {self.max_depth} levels")
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


API_POLICY = b"default-src 'none'; frame-ancestors 'none'; base-uri 'none'; form-action 'none'"
DOCS_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
    b"img-src 'self' data:; connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; "
    b"form-action 'none'"
)
#: the console's pages: its own scripts, styles and images, fetches to this origin only
CONSOLE_POLICY = (
    b"default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    b"connect-src 'self'; frame-ancestors 'none'; base-uri 'none'; form-action 'self'"
)
_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"x-frame-options", b"DENY"),
    (b"referrer-policy", b"no-referrer"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"cross-origin-resource-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class SecurityHeaders:
    def __init__(self, app: ASGIApp, docs_prefix: str = "/docs") -> None:
        self.app = app
        self.docs_prefix = docs_prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path = scope["path"]
        if path.startswith(self.docs_prefix):
            policy = DOCS_POLICY
        elif path == "/" or path.startswith("/console/"):
            policy = CONSOLE_POLICY
        else:
            policy = API_POLICY
        authenticated = any(name == b"authorization" for name, _ in scope["headers"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                headers += [h for h in _HEADERS if h[0] not in present]
                headers.append((b"content-security-policy", policy))
                if authenticated:
                    headers.append((b"cache-control", b"no-store"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, with_headers)
