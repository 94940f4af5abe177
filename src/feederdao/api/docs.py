"""``/docs``: Swagger UI served from the installed package, so it works offline (no CDN).

The assets come from the ``swagger-ui-py`` distribution pinned in pyproject.toml, which ships
Swagger UI's build (Apache License 2.0; its text is at ``/docs/assets/LICENSE``). The page loads
nothing but these files and ``/openapi.json``; the validator badge (an outside call) is off.
"""

from __future__ import annotations

import importlib.util
from functools import cache
from pathlib import Path

from fastapi import APIRouter, HTTPException
from fastapi.responses import FileResponse, HTMLResponse, Response

router = APIRouter(include_in_schema=False)

ASSETS = {
    "swagger-ui.css": "text/css",
    "swagger-ui-bundle.js": "application/javascript",
    "favicon-32x32.png": "image/png",
    "LICENSE": "text/plain",
}

PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{title}</title>
<link rel="stylesheet" href="/docs/assets/swagger-ui.css">
<link rel="icon" type="image/png" href="/docs/assets/favicon-32x32.png">
</head>
<body>
<div id="swagger-ui"></div>
<script src="/docs/assets/swagger-ui-bundle.js"></script>
<script src="/docs/init.js"></script>
</body>
</html>
"""

INIT = """window.addEventListener("load", function () {
  window.ui = SwaggerUIBundle({
    url: "/openapi.json",
    dom_id: "#swagger-ui",
    deepLinking: true,
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis],
    layout: "BaseLayout"
  });
});
"""


@cache
def assets_dir() -> Path | None:
    """Where the installed Swagger UI build is (None: the package is missing)."""
    spec = importlib.util.find_spec("swagger_ui")
    if spec is None or not spec.submodule_search_locations:
        return None
    path = Path(next(iter(spec.submodule_search_locations))) / "static"
    return path if (path / "swagger-ui-bundle.js").is_file() else None


@router.get("/docs", response_class=HTMLResponse)
def page() -> HTMLResponse:
    if assets_dir() is None:
        raise HTTPException(503, "Swagger UI is not installed (pip install swagger-ui-py)")
    return HTMLResponse(PAGE.format(title="feederdao market API"))


@router.get("/docs/init.js")
def init() -> Response:
    return Response(INIT, media_type="application/javascript")


@router.get("/docs/assets/{name}")
def asset(name: str) -> FileResponse:
    folder = assets_dir()
    if name not in ASSETS or folder is None:
        raise HTTPException(404, f"no asset {name!r}")
    return FileResponse(folder / name, media_type=ASSETS[name])
