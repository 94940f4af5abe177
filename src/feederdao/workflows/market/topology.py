"""The feeder as the console draws it: buses, branches, the slack and devices per bus, and the
buses' coordinates when the network has them."""

from __future__ import annotations

from dataclasses import dataclass

from feederdao.grid_model.geometry import bus_coordinates
from feederdao.workflows.network import OpenNetwork


@dataclass(frozen=True)
class TopologyBus:
    index: int
    name: str
    vn_kv: float
    devices: int
    x: float | None
    y: float | None


@dataclass(frozen=True)
class TopologyBranch:
    id: str
    kind: str
    from_bus: int
    to_bus: int
    rating_mva: float | None


@dataclass(frozen=True)
class Topology:
    name: str
    radial: bool
    slack_buses: tuple[int, ...]
    geographic: bool
    buses: tuple[TopologyBus, ...]
    branches: tuple[TopologyBranch, ...]


def topology(network: OpenNetwork) -> Topology:
    view = network.view
    indices = [b.index for b in view.buses]
    coords = bus_coordinates(network.loaded, indices)
    per_bus: dict[int, int] = {}
    for d in view.devices:
        per_bus[d.bus] = per_bus.get(d.bus, 0) + 1
    buses = tuple(
        TopologyBus(
            b.index,
            b.name,
            b.vn_kv,
            per_bus.get(b.index, 0),
            coords[b.index][0] if coords else None,
            coords[b.index][1] if coords else None,
        )
        for b in view.buses
    )
    branches = tuple(
        TopologyBranch(br.branch_id, str(br.kind), br.from_bus, br.to_bus, br.rating_mva)
        for br in view.branches
    )
    return Topology(
        view.name,
        view.topology == "radial",
        tuple(s.bus for s in view.slacks),
        bool(coords),
        buses,
        branches,
    )
