"""The frozen, solver-ready view of a feeder that ``grid_model`` builds and ``optimizer`` reads.

Everything here is plain data in per-unit on the network's power base ``base_mva``: no pandapower
object crosses this boundary.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from typing import Literal

import numpy as np
import numpy.typing as npt

BranchKind = Literal["line", "trafo"]


class DeviceKind(StrEnum):
    """What a device is; decides how the optimizer models it.

    ``PV`` and ``RENEWABLE`` (wind, biomass, hydro, aggregated small renewables: pandapower's
    other static generators) are inverter-connected generation whose available power follows
    its profile and can be curtailed; both are :data:`CURTAILABLE`. ``GENERATOR`` is a
    pandapower ``gen``: a voltage-controlled machine at its set-point.
    """

    LOAD = "load"
    PV = "pv"
    RENEWABLE = "renewable"
    GENERATOR = "generator"
    STORAGE = "storage"
    FLEX_LOAD = "flex_load"


#: inverter-connected generation that offers, is curtailed and supplies reactive power
CURTAILABLE = frozenset({DeviceKind.PV, DeviceKind.RENEWABLE})
#: devices that inject (their ``p_mw`` is generation, not consumption)
GENERATION = frozenset({DeviceKind.PV, DeviceKind.RENEWABLE, DeviceKind.GENERATOR})


@dataclass(frozen=True, slots=True)
class Bus:
    """A supplied bus. ``index`` is the pandapower bus index (its row in the view is
    :meth:`NetworkView.bus_position`); ``min_vm_pu``/``max_vm_pu`` are the network's own
    per-bus voltage limits, where it sets them."""

    index: int
    name: str
    vn_kv: float
    min_vm_pu: float | None = None
    max_vm_pu: float | None = None


@dataclass(frozen=True, slots=True)
class Branch:
    """An in-service branch between two supplied buses.

    For a radial feeder ``from_bus`` is the parent (nearer the slack) and ``to_bus`` the child.
    ``r_pu``/``x_pu`` are on ``NetworkView.base_mva`` and the from-bus voltage base. ``ratio``
    is the off-nominal voltage ratio (|V_from| / |V_to| at no load), 1 for lines.
    ``rating_mva`` is the thermal rating at 100 % loading (None: no rating given).
    Parallel elements between the same buses are merged into one equivalent branch whose
    ``parallel_ids`` lists the members.
    """

    kind: BranchKind
    element: int
    name: str
    from_bus: int
    to_bus: int
    r_pu: float
    x_pu: float
    rating_mva: float | None
    ratio: float = 1.0
    max_loading_percent: float = 100.0
    parallel_ids: tuple[str, ...] = ()

    @property
    def branch_id(self) -> str:
        return f"{self.kind}:{self.element}"


@dataclass(frozen=True, slots=True)
class Slack:
    """The substation (pandapower ext_grid): voltage set-point and import/export limits."""

    bus: int
    vm_pu: float
    max_import_mw: float | None = None
    max_export_mw: float | None = None


@dataclass(frozen=True, slots=True)
class Device:
    """A device at a bus, with its nameplate and its base operating point.

    Sign convention: ``p_mw``/``q_mvar`` are *consumption* for loads and storage (charging
    positive, as pandapower) and *injection* for PV and generators. ``e_max_mwh`` is only set
    for storage; ``vm_pu`` only for a voltage-controlled generator (its set-point).
    """

    device_id: str
    kind: DeviceKind
    element: int
    name: str
    bus: int
    p_mw: float
    q_mvar: float = 0.0
    sn_mva: float | None = None
    p_min_mw: float | None = None
    p_max_mw: float | None = None
    e_max_mwh: float | None = None
    soc_init_percent: float | None = None
    vm_pu: float | None = None


@dataclass(frozen=True, slots=True)
class DiscreteDevice:
    """A device set by position: a transformer's tap changer (``trafo:<i>``, position =
    tap_pos) or a switched capacitor/reactor bank (``shunt:<i>``, position = step)."""

    device_id: str
    kind: Literal["tap", "capacitor"]
    element: int
    name: str
    bus: int
    position: int
    minimum: int
    maximum: int


@dataclass(frozen=True, slots=True)
class NetworkView:
    """A frozen, solver-ready description of one feeder.

    ``buses`` are the supplied buses in breadth-first order from the slack, so every bus's parent
    comes before it; ``parent_branch[i]`` is the position in ``branches`` of the branch that feeds
    ``buses[i]`` (-1 for a slack bus). ``topology`` is ``"radial"`` when the supplied buses
    form a tree (a forest, for several substations whose supply areas do not touch),
    ``"meshed"`` otherwise. Buses not connected to the slack are listed, by name, in
    ``unsupplied_buses`` and left out of everything else, and so are their devices. Buses
    joined by closed bus-bus switches are fused into one, as pandapower does: ``bus_alias``
    maps each fused-away bus to the bus that represents it.
    """

    name: str
    base_mva: float
    f_hz: float
    buses: tuple[Bus, ...]
    branches: tuple[Branch, ...]
    slacks: tuple[Slack, ...]
    devices: tuple[Device, ...]
    parent_branch: tuple[int, ...]
    topology: Literal["radial", "meshed"]
    unsupplied_buses: tuple[str, ...] = ()
    unsupplied_bus_indices: tuple[int, ...] = ()
    islands: tuple[tuple[str, ...], ...] = ()
    unsupplied_devices: tuple[str, ...] = ()
    discrete: tuple[DiscreteDevice, ...] = ()
    bus_alias: dict[int, int] = field(default_factory=dict, compare=False)
    _bus_pos: dict[int, int] = field(default_factory=dict, repr=False, compare=False)
    _device_pos: dict[str, int] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        self._bus_pos.update({b.index: i for i, b in enumerate(self.buses)})
        for alias, target in self.bus_alias.items():
            self._bus_pos[alias] = self._bus_pos[target]
        # a lookup, not a search: the 10,453-bus SimBench network asks for 12,348 devices
        # while its participants are registered (6.7 s as a search)
        pos: dict[str, int] = {}
        for i, d in enumerate(self.devices):
            pos.setdefault(d.device_id, i)
        object.__setattr__(self, "_device_pos", pos)

    @property
    def slack_buses(self) -> tuple[int, ...]:
        return tuple(s.bus for s in self.slacks)

    @property
    def is_radial(self) -> bool:
        return self.topology == "radial"

    @property
    def supply_capacity_mva(self) -> float:
        """The most power the feeder can deliver to, or take from, any one place: what its
        substations carry (the ratings of the branches at the slack buses, or the substations'
        own import and export limits where both are set and lower) plus the rated power of
        every device on it. ``inf`` when a substation branch has no rating.

        No block of a bid may ask for more (:mod:`feederdao.domain.bidrules`): beyond it a
        quantity is a typo, not a bid."""
        total = 0.0
        for slack in self.slacks:
            at = [br for br in self.branches if slack.bus in (br.from_bus, br.to_bus)]
            rated = sum(br.rating_mva or 0.0 for br in at)
            if any(br.rating_mva is None for br in at) or not at:
                rated = float("inf")
            if slack.max_import_mw is not None and slack.max_export_mw is not None:
                rated = min(rated, max(slack.max_import_mw, slack.max_export_mw))
            total += rated
        devices = sum(
            max(d.sn_mva or 0.0, abs(d.p_mw), abs(d.p_max_mw or 0.0), abs(d.p_min_mw or 0.0))
            for d in self.devices
        )
        return total + devices

    def has_bus(self, index: int) -> bool:
        return index in self._bus_pos

    def bus_position(self, index: int) -> int:
        """Row of pandapower bus ``index`` (or a bus fused into it) in ``buses``; KeyError if the
        bus is not supplied."""
        return self._bus_pos[index]

    def canonical_bus(self, index: int) -> int:
        """The bus that represents ``index`` in this view (itself unless fused away)."""
        return self.bus_alias.get(index, index)

    def bus_name(self, index: int) -> str:
        return self.buses[self._bus_pos[index]].name

    def devices_at(self, bus: int) -> tuple[Device, ...]:
        return tuple(d for d in self.devices if d.bus == bus)

    def device(self, device_id: str) -> Device:
        return self.devices[self._device_pos[device_id]]

    def count(self, kind: DeviceKind) -> int:
        return sum(1 for d in self.devices if d.kind == kind)


def device_bus_consumption(
    view: NetworkView, p_mw: Mapping[str, float], q_mvar: Mapping[str, float] | None = None
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    """Net consumption per view bus from device powers in each device's own sign convention.

    Devices missing from ``p_mw``/``q_mvar`` stay at their base operating point.
    """
    q_mvar = q_mvar or {}
    p = np.zeros(len(view.buses))
    q = np.zeros(len(view.buses))
    for dev in view.devices:
        sign = -1.0 if dev.kind in GENERATION else 1.0
        row = view.bus_position(dev.bus)
        p[row] += sign * p_mw.get(dev.device_id, dev.p_mw)
        q[row] += sign * q_mvar.get(dev.device_id, dev.q_mvar)
    return p, q
