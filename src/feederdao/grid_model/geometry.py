"""Where a network's buses are drawn: their geographic coordinates when the network has them.

pandapower 3 keeps a bus's position as a GeoJSON point in ``net.bus.geo``; older files have a
``bus_geodata`` table with ``x`` and ``y``. A network whose buses are not all placed gets no
coordinates at all (a partial map would mislead more than a schematic).
"""

from __future__ import annotations

import json
import math
from typing import Any

from feederdao.grid_model.loader import LoadedNetwork


def _point(value: Any) -> tuple[float, float] | None:
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    if isinstance(value, dict) and value.get("type") == "Point":
        coords = value.get("coordinates")
        if isinstance(coords, list | tuple) and len(coords) >= 2:
            x, y = coords[0], coords[1]
            numbers = isinstance(x, int | float) and isinstance(y, int | float)
            if numbers and math.isfinite(x) and math.isfinite(y):
                return float(x), float(y)
    return None


def bus_coordinates(loaded: LoadedNetwork, buses: list[int]) -> dict[int, tuple[float, float]]:
    """``{bus index: (x, y)}`` for every bus in ``buses``, or ``{}`` when any is unplaced."""
    net = loaded.net
    found: dict[int, tuple[float, float]] = {}
    table = getattr(net, "bus", None)
    if table is not None and "geo" in getattr(table, "columns", ()):
        for index, value in table["geo"].items():
            p = _point(value)
            if p is not None:
                found[int(index)] = p
    geodata = getattr(net, "bus_geodata", None)
    if not found and geodata is not None and {"x", "y"} <= set(getattr(geodata, "columns", ())):
        for index, row in geodata.iterrows():
            x, y = float(row["x"]), float(row["y"])
            if math.isfinite(x) and math.isfinite(y):
                found[int(index)] = (x, y)
    if any(b not in found for b in buses):
        return {}
    if len({found[b] for b in buses}) < max(2, len(buses) // 2):
        return {}  # every bus at one point (a placeholder, not a map)
    return {b: found[b] for b in buses}
