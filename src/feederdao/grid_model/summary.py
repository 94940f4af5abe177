"""A readable summary of a network: sizes, topology and an AC power flow at its base case."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import numpy as np

from feederdao.domain.network import GENERATION, DeviceKind, NetworkView
from feederdao.domain.powerflow import PowerFlowResult
from feederdao.grid_model.powerflow import run_power_flow


@dataclass(frozen=True)
class NetworkSummary:
    name: str
    n_buses: int
    n_lines: int
    n_trafos: int
    devices: dict[str, int]
    topology: str
    voltage_levels_kv: tuple[float, ...]
    unsupplied_buses: tuple[str, ...]
    islands: tuple[tuple[str, ...], ...]
    vm_min_pu: float
    vm_min_bus: str
    vm_max_pu: float
    vm_max_bus: str
    max_loading_percent: float
    max_loading_branch: str
    losses_mw: float
    slack_p_mw: float
    total_load_mw: float
    total_generation_mw: float
    #: branches without a thermal rating (their loading is not computed)
    unrated_branches: int = 0
    #: voltage-controlled generators (pandapower ``gen``: PV buses), as "name at bus, set-point"
    voltage_controlled: tuple[str, ...] = ()

    @property
    def rated(self) -> bool:
        """Whether any branch has a thermal rating (``max_loading_*`` mean something)."""
        return not math.isnan(self.max_loading_percent)


def summarise(net: Any, view: NetworkView, flow: PowerFlowResult | None = None) -> NetworkSummary:
    """Summarise ``view``; runs an AC power flow at the base case unless ``flow`` is given."""
    flow = flow or run_power_flow(net, view)
    vm = flow.vm_pu[0]
    rated = np.array([br.rating_mva is not None for br in view.branches], dtype=bool)
    loading = np.where(rated, flow.branch_loading_percent[0], -np.inf)
    i_min, i_max = int(np.argmin(vm)), int(np.argmax(vm))
    k_max = int(np.argmax(loading)) if rated.any() else -1
    load = sum(d.p_mw for d in view.devices if d.kind in (DeviceKind.LOAD, DeviceKind.FLEX_LOAD))
    gen = sum(d.p_mw for d in view.devices if d.kind in GENERATION)
    return NetworkSummary(
        name=view.name,
        n_buses=len(view.buses),
        n_lines=sum(max(len(b.parallel_ids), 1) for b in view.branches if b.kind == "line"),
        n_trafos=sum(max(len(b.parallel_ids), 1) for b in view.branches if b.kind == "trafo"),
        devices={str(k): view.count(k) for k in DeviceKind if view.count(k)},
        topology=view.topology,
        voltage_levels_kv=tuple(sorted({b.vn_kv for b in view.buses}, reverse=True)),
        unsupplied_buses=view.unsupplied_buses,
        islands=view.islands,
        vm_min_pu=float(vm[i_min]),
        vm_min_bus=view.buses[i_min].name,
        vm_max_pu=float(vm[i_max]),
        vm_max_bus=view.buses[i_max].name,
        max_loading_percent=float(loading[k_max]) if k_max >= 0 else float("nan"),
        max_loading_branch=view.branches[k_max].name if k_max >= 0 else "-",
        losses_mw=float(flow.losses_mw[0]),
        slack_p_mw=float(flow.slack_p_mw[0].sum()),
        total_load_mw=float(load),
        total_generation_mw=float(gen),
        unrated_branches=int((~rated).sum()),
        voltage_controlled=tuple(
            f"{d.name} at {view.bus_name(d.bus)} holds {d.vm_pu or 1.0:.3f} pu"
            for d in view.devices
            if d.kind == DeviceKind.GENERATOR
        ),
    )
