"""Build the frozen, solver-ready :class:`NetworkView` from a pandapower net.

The net is only read. Per-unit values use the net's power base ``sn_mva`` and each branch's
from-bus nominal voltage, as pandapower does.
"""

from __future__ import annotations

import math
from collections import deque
from dataclasses import replace
from typing import Any, Literal

from feederdao.domain.network import (
    Branch,
    Bus,
    Device,
    DeviceKind,
    DiscreteDevice,
    NetworkView,
    Slack,
)
from feederdao.errors import NetworkDataError

_PV_TYPES = ("pv", "solar", "photovoltaic")
#: pandapower's converters write max_i_ka = 99999 where a case gives no rating (MATPOWER's
#: rateA = 0 means "unlimited")
_NO_RATING_KA = 99999.0


class _Row(dict[str, Any]):
    """One row of a pandapower table, its columns read as attributes or items."""

    def __getattr__(self, column: str) -> Any:
        try:
            return self[column]
        except KeyError:
            raise AttributeError(column) from None


def _rows(df: Any) -> Any:
    """``(index, row)`` for every row of ``df``, as ``DataFrame.iterrows`` gives them, without
    a Series per row (the 10,453-bus SimBench network's tables took 2 s that way)."""
    return zip(df.index.tolist(), map(_Row, df.to_dict("records")), strict=True)


def _f(value: Any, default: float | None = None) -> float | None:
    """A finite float or ``default`` (pandapower uses NaN for 'not set')."""
    try:
        v = float(value)
    except (TypeError, ValueError):
        return default
    return v if math.isfinite(v) else default


def _open_switch_elements(net: Any, et: str) -> set[int]:
    sw = net.switch
    if len(sw) == 0:
        return set()
    mask = (sw.et == et) & (~sw.closed.astype(bool))
    return {int(e) for e in sw.loc[mask, "element"]}


def _unsupported(net: Any) -> None:
    for table in ("trafo3w", "impedance", "dcline", "tcsc", "ssc", "vsc"):
        df = getattr(net, table, None)
        if df is not None and len(df) and df.in_service.astype(bool).any():
            names = ", ".join(str(n) for n in df.loc[df.in_service.astype(bool), "name"][:5])
            raise NetworkDataError(
                f"in-service {table} elements are not supported yet ({names}); "
                "take them out of service or model them as two-winding transformers/lines"
            )


def _slack_generators(net: Any) -> None:
    gen = net.gen
    if len(gen) and "slack" in gen.columns:
        slack = gen[gen.in_service.astype(bool) & gen.slack.fillna(False).astype(bool)]
        if len(slack):
            names = ", ".join(f"gen {i}" for i in slack.index[:5])
            raise NetworkDataError(
                f"{names}: a gen with slack=True is a substation to pandapower; feederdao's "
                "substations are ext_grids (give it an ext_grid, or set slack=False)"
            )


def _bus_name(net: Any, idx: int) -> str:
    name = net.bus.at[idx, "name"] if "name" in net.bus.columns else None
    return str(name) if isinstance(name, str) and name else f"bus {idx}"


def _line_branches(net: Any, in_service_buses: set[int], sn_mva: float) -> list[Branch]:
    opened = _open_switch_elements(net, "l")
    vn_kv = net.bus.vn_kv.to_dict()
    out: list[Branch] = []
    for idx, row in _rows(net.line):
        if not bool(row.in_service) or int(idx) in opened:
            continue
        fb, tb = int(row.from_bus), int(row.to_bus)
        if fb not in in_service_buses or tb not in in_service_buses:
            continue
        vn = float(vn_kv[fb])
        z_base = vn**2 / sn_mva
        parallel = float(row.parallel) if _f(row.parallel) else 1.0
        length = float(row.length_km)
        df = _f(row.get("df", 1.0), 1.0) or 1.0
        max_i = _f(row.max_i_ka)
        if max_i is not None and max_i >= _NO_RATING_KA:
            max_i = None  # pandapower's stand-in for a rating the source did not give
        rating = max_i * df * parallel * vn * math.sqrt(3.0) if max_i else None
        out.append(
            Branch(
                kind="line",
                element=int(idx),
                name=str(row["name"]) if isinstance(row["name"], str) else f"line {idx}",
                from_bus=fb,
                to_bus=tb,
                r_pu=float(row.r_ohm_per_km) * length / parallel / z_base,
                x_pu=float(row.x_ohm_per_km) * length / parallel / z_base,
                rating_mva=rating,
                max_loading_percent=_f(row.get("max_loading_percent"), 100.0) or 100.0,
            )
        )
    return out


def _trafo_ratio(net: Any, row: Any) -> float:
    """|V_hv| / |V_lv| in per unit of the buses' nominal voltages at no load."""
    vn_hv_bus = float(net.bus.at[int(row.hv_bus), "vn_kv"])
    vn_lv_bus = float(net.bus.at[int(row.lv_bus), "vn_kv"])
    vn_hv, vn_lv = float(row.vn_hv_kv), float(row.vn_lv_kv)
    tap_pos, tap_neutral = _f(row.get("tap_pos")), _f(row.get("tap_neutral"), 0.0)
    step = _f(row.get("tap_step_percent"), 0.0) or 0.0
    # pandapower ≥ 3 ignores the tap position of a transformer without a tap changer type
    changer = row.get("tap_changer_type", "Ratio")
    has_changer = (isinstance(changer, str) and changer != "") or "tap_changer_type" not in row
    if has_changer and tap_pos is not None and tap_neutral is not None and step:
        factor = 1.0 + (tap_pos - tap_neutral) * step / 100.0
        if str(row.get("tap_side", "hv")) == "lv":
            vn_lv *= factor
        else:
            vn_hv *= factor
    return (vn_hv / vn_hv_bus) / (vn_lv / vn_lv_bus)


def _trafo_branches(net: Any, in_service_buses: set[int], sn_mva: float) -> list[Branch]:
    opened = _open_switch_elements(net, "t")
    out: list[Branch] = []
    for idx, row in _rows(net.trafo):
        if not bool(row.in_service) or int(idx) in opened:
            continue
        hv, lv = int(row.hv_bus), int(row.lv_bus)
        if hv not in in_service_buses or lv not in in_service_buses:
            continue
        parallel = float(row.parallel) if _f(row.parallel) else 1.0
        sn = float(row.sn_mva) * parallel
        vn_lv_bus = float(net.bus.at[lv, "vn_kv"])
        # pandapower refers the short-circuit impedance to the LV side's rated voltage
        scale = sn_mva / sn * (float(row.vn_lv_kv) / vn_lv_bus) ** 2
        vk, vkr = float(row.vk_percent) / 100.0, float(row.vkr_percent) / 100.0
        out.append(
            Branch(
                kind="trafo",
                element=int(idx),
                name=str(row["name"]) if isinstance(row["name"], str) else f"trafo {idx}",
                from_bus=hv,
                to_bus=lv,
                r_pu=vkr * scale,
                x_pu=math.sqrt(max(vk**2 - vkr**2, 0.0)) * scale,
                rating_mva=sn,
                ratio=_trafo_ratio(net, row),
                max_loading_percent=_f(row.get("max_loading_percent"), 100.0) or 100.0,
            )
        )
    return out


def _fused_buses(net: Any, in_service_buses: set[int], roots: list[int]) -> dict[int, int]:
    """Map every bus to the representative of its group of buses joined by closed bus-bus
    switches (as pandapower fuses them); a slack bus represents its group."""
    parent = {b: b for b in in_service_buses}

    def find(b: int) -> int:
        while parent[b] != b:
            parent[b] = parent[parent[b]]
            b = parent[b]
        return b

    sw = net.switch
    if len(sw):
        for _, row in _rows(sw[(sw.et == "b") & sw.closed.astype(bool)]):
            a, b = int(row.bus), int(row.element)
            if a in in_service_buses and b in in_service_buses:
                ra, rb = find(a), find(b)
                if ra != rb:
                    keep, drop = (ra, rb) if (ra in roots or rb not in roots) else (rb, ra)
                    if keep not in roots and drop not in roots:
                        keep, drop = min(ra, rb), max(ra, rb)
                    parent[drop] = keep
    return {b: find(b) for b in in_service_buses}


def _merge_parallel(branches: list[Branch]) -> list[Branch]:
    """Replace branches that join the same two buses by one equivalent branch.

    The equivalent impedance is the parallel combination; its rating is the largest flow at
    which no member exceeds its own rating, with the flow splitting in inverse proportion to
    the members' impedance magnitudes.
    """
    groups: dict[tuple[int, int], list[Branch]] = {}
    for br in branches:
        key = (min(br.from_bus, br.to_bus), max(br.from_bus, br.to_bus))
        groups.setdefault(key, []).append(br)
    out: list[Branch] = []
    for members in groups.values():
        if len(members) == 1:
            out.append(members[0])
            continue
        first = members[0]
        same_way = [
            m if m.from_bus == first.from_bus else _oriented(m, first.from_bus) for m in members
        ]
        y = [1.0 / complex(m.r_pu, m.x_pu) for m in same_way]
        z_eq = 1.0 / sum(y)
        ratings = [m.rating_mva for m in same_way]
        rating: float | None = None
        if all(r is not None for r in ratings):
            rating = min(
                float(r) * abs(complex(m.r_pu, m.x_pu)) / abs(z_eq)  # type: ignore[arg-type]
                for r, m in zip(ratings, same_way, strict=True)
            )
        out.append(
            Branch(
                kind=first.kind,
                element=first.element,
                name=" ∥ ".join(m.name for m in same_way),
                from_bus=first.from_bus,
                to_bus=first.to_bus,
                r_pu=z_eq.real,
                x_pu=z_eq.imag,
                rating_mva=rating,
                ratio=sum(m.ratio for m in same_way) / len(same_way),
                max_loading_percent=min(m.max_loading_percent for m in same_way),
                parallel_ids=tuple(m.branch_id for m in same_way),
            )
        )
    return out


def _oriented(branch: Branch, parent: int) -> Branch:
    if branch.from_bus == parent:
        return branch
    # reverse a line or switch; a transformer's orientation is HV→LV by construction
    ratio = 1.0 / branch.ratio
    scale = branch.ratio**2  # impedance referred to the other side's base
    return Branch(
        kind=branch.kind,
        element=branch.element,
        name=branch.name,
        from_bus=branch.to_bus,
        to_bus=branch.from_bus,
        r_pu=branch.r_pu * (scale if branch.kind == "trafo" else 1.0),
        x_pu=branch.x_pu * (scale if branch.kind == "trafo" else 1.0),
        rating_mva=branch.rating_mva,
        ratio=ratio,
        max_loading_percent=branch.max_loading_percent,
        parallel_ids=branch.parallel_ids,
    )


def _devices(net: Any, supplied: set[int], rep: dict[int, int]) -> tuple[list[Device], list[str]]:
    devices: list[Device] = []
    unsupplied: list[str] = []

    def add(dev: Device, in_service: bool) -> None:
        if not in_service or dev.bus not in rep:
            return
        dev = replace(dev, bus=rep[dev.bus])
        if dev.bus in supplied:
            devices.append(dev)
        else:
            unsupplied.append(f"{dev.device_id} ({dev.name}) at {_bus_name(net, dev.bus)}")

    for idx, row in _rows(net.load):
        scaling = _f(row.get("scaling", 1.0), 1.0) or 1.0
        name = str(row["name"]) if isinstance(row["name"], str) else f"load {idx}"
        add(
            Device(
                device_id=f"load:{idx}",
                kind=DeviceKind.LOAD,
                element=int(idx),
                name=name,
                bus=int(row.bus),
                p_mw=float(row.p_mw) * scaling,
                q_mvar=float(row.q_mvar) * scaling,
                sn_mva=_f(row.get("sn_mva")),
                p_min_mw=_f(row.get("min_p_mw")),
                p_max_mw=_f(row.get("max_p_mw")),
            ),
            bool(row.in_service),
        )
    for idx, row in _rows(net.sgen):
        scaling = _f(row.get("scaling", 1.0), 1.0) or 1.0
        typ = str(row.get("type", "")).lower()
        name = str(row["name"]) if isinstance(row["name"], str) else f"sgen {idx}"
        is_pv = any(t in typ for t in _PV_TYPES) or "pv" in name.lower() or typ in {"", "nan"}
        add(
            Device(
                device_id=f"sgen:{idx}",
                kind=DeviceKind.PV if is_pv else DeviceKind.RENEWABLE,
                element=int(idx),
                name=name,
                bus=int(row.bus),
                p_mw=float(row.p_mw) * scaling,
                q_mvar=float(row.q_mvar) * scaling,
                sn_mva=_f(row.get("sn_mva")),
                p_min_mw=_f(row.get("min_p_mw")),
                p_max_mw=_f(row.get("max_p_mw")),
            ),
            bool(row.in_service),
        )
    for idx, row in _rows(net.storage):
        name = str(row["name"]) if isinstance(row["name"], str) else f"storage {idx}"
        add(
            Device(
                device_id=f"storage:{idx}",
                kind=DeviceKind.STORAGE,
                element=int(idx),
                name=name,
                bus=int(row.bus),
                p_mw=float(row.p_mw),
                q_mvar=float(row.q_mvar),
                sn_mva=_f(row.get("sn_mva")),
                p_min_mw=_f(row.get("min_p_mw")),
                p_max_mw=_f(row.get("max_p_mw")),
                e_max_mwh=_f(row.get("max_e_mwh")),
                soc_init_percent=_f(row.get("soc_percent")),
            ),
            bool(row.in_service),
        )
    for idx, row in _rows(net.gen):
        name = str(row["name"]) if isinstance(row["name"], str) else f"gen {idx}"
        add(
            Device(
                device_id=f"gen:{idx}",
                kind=DeviceKind.GENERATOR,
                element=int(idx),
                name=name,
                bus=int(row.bus),
                p_mw=float(row.p_mw) * (_f(row.get("scaling", 1.0), 1.0) or 1.0),
                vm_pu=_f(row.get("vm_pu"), 1.0),
                sn_mva=_f(row.get("sn_mva")),
                p_min_mw=_f(row.get("min_p_mw")),
                p_max_mw=_f(row.get("max_p_mw")),
            ),
            bool(row.in_service),
        )
    return devices, unsupplied


def _discrete(net: Any, supplied: set[int], rep: dict[int, int]) -> list[DiscreteDevice]:
    """Tap changers of transformers that have one, and switched shunts (step ≥ 1)."""
    out: list[DiscreteDevice] = []
    for idx, row in _rows(net.trafo):
        changer = row.get("tap_changer_type")
        pos, lo, hi = _f(row.get("tap_pos")), _f(row.get("tap_min")), _f(row.get("tap_max"))
        if (
            bool(row.in_service)
            and isinstance(changer, str)
            and changer
            and pos is not None
            and lo is not None
            and hi is not None
            and rep.get(int(row.lv_bus)) in supplied
        ):
            name = str(row["name"]) if isinstance(row["name"], str) else f"trafo {idx}"
            out.append(
                DiscreteDevice(
                    f"trafo:{idx}",
                    "tap",
                    int(idx),
                    name,
                    rep[int(row.lv_bus)],
                    int(pos),
                    int(lo),
                    int(hi),
                )
            )
    for idx, row in _rows(net.shunt):
        max_step = _f(row.get("max_step"), 1.0) or 1.0
        if bool(row.in_service) and max_step > 1 and rep.get(int(row.bus)) in supplied:
            name = str(row["name"]) if isinstance(row["name"], str) else f"shunt {idx}"
            out.append(
                DiscreteDevice(
                    f"shunt:{idx}",
                    "capacitor",
                    int(idx),
                    name,
                    rep[int(row.bus)],
                    int(_f(row.get("step"), 1.0) or 0),
                    0,
                    int(max_step),
                )
            )
    return out


def build_view(net: Any, name: str = "network") -> NetworkView:
    """Read ``net`` into a :class:`NetworkView`; raise :class:`NetworkDataError` if unusable."""
    _unsupported(net)
    _slack_generators(net)
    sn_mva = float(getattr(net, "sn_mva", 1.0) or 1.0)
    in_service_buses = {int(i) for i in net.bus.index[net.bus.in_service.astype(bool)]}
    ext = net.ext_grid[net.ext_grid.in_service.astype(bool)]
    if len(ext) == 0:
        raise NetworkDataError(f"network {name!r} has no in-service ext_grid (slack)")
    slack_buses: list[int] = []
    for _, row in _rows(ext):
        bus = int(row.bus)
        if bus not in in_service_buses:
            raise NetworkDataError(f"the slack bus {_bus_name(net, bus)} is out of service")
        if bus in slack_buses:
            raise NetworkDataError(f"two ext_grids at the same bus {_bus_name(net, bus)}")
        slack_buses.append(bus)

    rep = _fused_buses(net, in_service_buses, slack_buses)
    raw = _line_branches(net, in_service_buses, sn_mva) + _trafo_branches(
        net, in_service_buses, sn_mva
    )
    candidates = _merge_parallel(
        [
            replace(br, from_bus=rep[br.from_bus], to_bus=rep[br.to_bus])
            for br in raw
            if rep[br.from_bus] != rep[br.to_bus]
        ]
    )
    represented = set(rep.values())
    adjacency: dict[int, list[int]] = {b: [] for b in represented}
    for k, br in enumerate(candidates):
        adjacency[br.from_bus].append(k)
        adjacency[br.to_bus].append(k)

    # breadth-first from the slacks: order, parent branch, supplied set
    order = list(slack_buses)
    parent_of: dict[int, int] = dict.fromkeys(slack_buses, -1)
    tree_edges: set[int] = set()
    queue = deque(slack_buses)
    while queue:
        bus = queue.popleft()
        for k in adjacency[bus]:
            br = candidates[k]
            other = br.to_bus if br.from_bus == bus else br.from_bus
            if other not in parent_of:
                parent_of[other] = k
                tree_edges.add(k)
                order.append(other)
                queue.append(other)
    supplied = set(order)

    branches: list[Branch] = []
    position: dict[int, int] = {}
    for k, br in enumerate(candidates):
        if br.from_bus not in supplied:
            continue
        if k in tree_edges:
            child = br.to_bus if parent_of.get(br.to_bus) == k else br.from_bus
            parent = br.from_bus if child == br.to_bus else br.to_bus
            br = _oriented(br, parent)
        position[k] = len(branches)
        branches.append(br)
    parent_branch = tuple(-1 if parent_of[b] < 0 else position[parent_of[b]] for b in order)
    is_tree = len(branches) == len(order) - len(slack_buses)
    topology: Literal["radial", "meshed"] = "radial" if is_tree else "meshed"

    unsupplied_idx = sorted(represented - supplied)
    islands: list[tuple[str, ...]] = []
    seen: set[int] = set()
    for start in unsupplied_idx:
        if start in seen:
            continue
        comp, stack = [], [start]
        seen.add(start)
        while stack:
            b = stack.pop()
            comp.append(b)
            for k in adjacency[b]:
                br = candidates[k]
                other = br.to_bus if br.from_bus == b else br.from_bus
                if other not in seen:
                    seen.add(other)
                    stack.append(other)
        islands.append(tuple(_bus_name(net, b) for b in sorted(comp)))

    table = net.bus
    names = table.name.to_dict() if "name" in table.columns else {}
    vn_kv = table.vn_kv.to_dict()
    no_limit: dict[int, Any] = {}
    v_min = table.min_vm_pu.to_dict() if "min_vm_pu" in table.columns else no_limit
    v_max = table.max_vm_pu.to_dict() if "max_vm_pu" in table.columns else no_limit
    buses = tuple(
        Bus(
            index=b,
            name=names[b] if isinstance(names.get(b), str) and names[b] else f"bus {b}",
            vn_kv=float(vn_kv[b]),
            min_vm_pu=_f(v_min.get(b)),
            max_vm_pu=_f(v_max.get(b)),
        )
        for b in order
    )
    devices, unsupplied_devices = _devices(net, supplied, rep)
    slacks = []
    for _, row in _rows(ext):
        max_p, min_p = _f(row.get("max_p_mw")), _f(row.get("min_p_mw"))
        slacks.append(
            Slack(
                bus=int(row.bus),
                vm_pu=float(row.vm_pu),
                max_import_mw=max_p,
                max_export_mw=-min_p if min_p is not None else None,
            )
        )
    return NetworkView(
        name=name,
        base_mva=sn_mva,
        f_hz=float(getattr(net, "f_hz", 50.0) or 50.0),
        buses=buses,
        branches=tuple(branches),
        slacks=tuple(slacks),
        devices=tuple(devices),
        parent_branch=parent_branch,
        topology=topology,
        unsupplied_buses=tuple(_bus_name(net, b) for b in unsupplied_idx),
        unsupplied_bus_indices=tuple(b for b in sorted(in_service_buses) if rep[b] not in supplied),
        islands=tuple(islands),
        unsupplied_devices=tuple(unsupplied_devices),
        bus_alias={b: r for b, r in rep.items() if b != r and r in supplied},
        discrete=tuple(_discrete(net, supplied, rep)),
    )
