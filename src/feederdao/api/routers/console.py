"""``/``: the web console, served from the installed package (no CDN, nothing remote), and the
feeder's topology it draws (``/network``).

The console is plain JavaScript modules, CSS and SVG drawn by its own code
(``feederdao/api/console/``); it talks to the same JSON routes as any client and listens to
``/events`` for what changed. Its pages get a content security policy that allows this origin
only (:data:`feederdao.api.limits.CONSOLE_POLICY`).
"""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Annotated

from fastapi import APIRouter, HTTPException, Path
from fastapi.responses import HTMLResponse, Response
from pydantic import BaseModel

from feederdao.api.auth import Anyone, Service
from feederdao.workflows.market.topology import topology

router = APIRouter(tags=["console"])

TYPES = {".js": "text/javascript", ".css": "text/css", ".svg": "image/svg+xml"}
AssetName = Annotated[str, Path(pattern=r"^[a-z][a-z0-9-]*\.(js|css|svg)$", max_length=64)]


@cache
def _asset(name: str) -> bytes | None:
    found = resources.files("feederdao.api").joinpath("console", name)
    return found.read_bytes() if found.is_file() else None


@router.get("/", response_class=HTMLResponse, include_in_schema=False)
def page() -> HTMLResponse:
    body = _asset("index.html")
    if body is None:
        raise HTTPException(503, "the console's files are missing from this installation")
    return HTMLResponse(body, headers={"cache-control": "no-cache"})


@router.get("/console/{name}", include_in_schema=False)
def asset(name: AssetName) -> Response:
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


@router.get("/network", response_model=NetworkOut, tags=["system"])
def network(svc: Service) -> NetworkOut:
    """The feeder's buses and branches (with coordinates when the network has them)."""
    t = topology(svc.network)
    return NetworkOut(
        name=t.name,
        radial=t.radial,
        slack_buses=list(t.slack_buses),
        geographic=t.geographic,
        buses=[BusOut.model_validate(b, from_attributes=True) for b in t.buses],
        branches=[BranchOut.model_validate(b, from_attributes=True) for b in t.branches],
    )


class SessionOut(BaseModel):
    """Who an API key belongs to (the console signs in with it)."""

    role: str
    participant_id: str | None
    key_id: int | None


@router.get("/session", response_model=SessionOut, tags=["api-keys"])
def session(caller: Anyone) -> SessionOut:
    """The role and participant of the key this request is made with."""
    return SessionOut(role=caller.role, participant_id=caller.participant_id, key_id=caller.key_id)
