"""``/``: the web console, served from the installed package (no CDN, nothing remote), and the
feeder's topology it draws (``/network``).

The console is plain JavaScript modules, CSS and SVG drawn by its own code
(``feederdao/api/console/``); it talks to the same JSON routes as any client and listens to
``/events`` for what changed. Its pages get a content security policy that allows this origin
only (:data:`feederdao.api.limits.CONSOLE_POLICY`).
"""

from __future__ import annotations

import gzip
import threading
from collections import OrderedDict
from functools import cache
from importlib import resources
from typing import Annotated, Literal

from fastapi import APIRouter, HTTPException, Path, Query, Request
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from feederdao.api.auth import Anyone, MaybeCaller, Service
from feederdao.api.schemas import Error, IntervalId
from feederdao.workflows.market.topology import topology

router = APIRouter(tags=["console"])

TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
AssetName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]*\.(js|css|svg)$", max_length=64)]


@cache
def _asset(name: str) -> bytes | None:
    found = resources.files("feederdao.api").joinpath("console", name)
    return found.read_bytes() if found.is_file() else None


# the page, its files and the topology are answered on the event loop (they are made once and
# kept): no hop through the thread pool, which the store-bound routes of a first paint share


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
async def page() -> HTMLResponse:
    body = _asset("index.html")
    if body is None:
        raise HTTPException(503, "the console's files are missing from this installation")
    return HTMLResponse(body, headers={"cache-control": "no-cache"})


@router.get("/console/{name}", include_in_schema=False)
async def asset(name: AssetName) -> Response:
    body = _asset(name)
    if body is None:
        raise HTTPException(404, f"no console file {name!r}")
    kind = TYPES[name[name.rindex(".") :]]
    return Response(body, media_type=kind, headers={"cache-control": "no-cache"})


class BusOut(BaseModel):
    index: int
    name: str
    vn_kv: float
    devices: int
    x: float | None
    y: float | None


class BranchOut(BaseModel):
    id: str
    kind: str
    from_bus: int
    to_bus: int
    rating_mva: float | None


class NetworkOut(BaseModel):
    """The feeder to draw: ``geographic`` when every bus has coordinates (``x``, ``y``: the
    network's own, e.g. longitude and latitude), else the console draws a one-line tree."""

    name: str
    radial: bool
    slack_buses: list[int]
    geographic: bool
    buses: list[BusOut]
    branches: list[BranchOut]


@router.get(
    "/network",
    response_model=NetworkOut,
    tags=["system"],
    responses={200: {"content": {"application/json": {}}}},
)
async def network(svc: Service, request: Request) -> Response:
    """The feeder's buses and branches (with coordinates when the network has them);
    gzip-compressed when the client accepts it."""
    found: tuple[bytes, bytes] | None = getattr(request.app.state, "network_json", None)
    if found is None:  # the network does not change while the service runs: made once
        t = topology(svc.network)
        out = NetworkOut(
            name=t.name,
            radial=t.radial,
            slack_buses=list(t.slack_buses),
            geographic=t.geographic,
            buses=[BusOut.model_validate(b, from_attributes=True) for b in t.buses],
            branches=[BranchOut.model_validate(b, from_attributes=True) for b in t.branches],
        )
        plain = out.model_dump_json().encode()
        found = (plain, gzip.compress(plain, compresslevel=6))
        request.app.state.network_json = found
    return _json(found, request)


def _json(found: tuple[bytes, bytes], request: Request) -> Response:
    """JSON kept plain and gzipped, answered gzipped to a client that accepts it."""
    plain, packed = found
    headers = {"vary": "accept-encoding"}
    if "gzip" in request.headers.get("accept-encoding", ""):
        headers["content-encoding"] = "gzip"
        return Response(packed, media_type="application/json", headers=headers)
    return Response(plain, media_type="application/json", headers=headers)


class SessionOut(BaseModel):
    """Who an API key belongs to (the console signs in with it)."""

    role: str
    participant_id: str | None
    key_id: int | None


@router.get("/session", response_model=SessionOut, tags=["api-keys"])
def session(caller: Anyone) -> SessionOut:
    """The role and participant of the key this request is made with."""
    return SessionOut(role=caller.role, participant_id=caller.participant_id, key_id=caller.key_id)


#: price grids kept in memory (the latest intervals viewed)
KEPT_GRIDS = 8


class GridCache:
    """The price grids of the latest intervals viewed, plain and gzipped: a cleared interval's
    result never changes, so its grid is made once."""

    def __init__(self, size: int = KEPT_GRIDS) -> None:
        self.size = size
        self._lock = threading.Lock()
        self._kept: OrderedDict[tuple[int, str, str], tuple[bytes, bytes]] = OrderedDict()

    def get(self, key: tuple[int, str, str]) -> tuple[bytes, bytes] | None:
        with self._lock:
            found = self._kept.get(key)
            if found is not None:
                self._kept.move_to_end(key)
            return found

    def put(self, key: tuple[int, str, str], value: tuple[bytes, bytes]) -> None:
        with self._lock:
            self._kept[key] = value
            while len(self._kept) > self.size:
                self._kept.popitem(last=False)


@router.get(
    "/intervals/{interval_id}/price-grid",
    tags=["intervals"],
    responses={200: {"content": {"application/json": {}}}, 404: {"model": Error}},
)
def price_grid(
    interval_id: IntervalId,
    svc: Service,
    caller: MaybeCaller,
    request: Request,
    parts: Annotated[
        Literal["all", "dlmp"], Query(description="``dlmp``: the DLMP only, without its parts")
    ] = "all",
) -> Response:
    """The DLMP and its parts as ``[period][bus]`` arrays in ``buses`` order (EUR/MWh, rounded
    to 0.0001): the same prices as ``/intervals/{id}/prices`` in a fifth of the bytes, and
    gzip-compressed when the client accepts it (made when the result was stored). With
    ``parts=dlmp`` the DLMP alone (a fifth of that again: what a first paint needs). Public once
    the interval is published."""
    row = svc.intervals.visible(interval_id, caller is not None and caller.sees_everything)
    kept: GridCache = request.app.state.price_grids
    key = (interval_id, str(row.cleared_at), parts)
    found = kept.get(key)
    if found is None:
        found = svc.results.price_grid(interval_id, parts)
        kept.put(key, found)
    return _json(found, request)
